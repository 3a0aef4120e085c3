#!/bin/sh
# Makes the shipped base model again: the default `sadm train` run for STEPS steps in
# RUN_DIR (resumable: run it again after a stop and it continues), its EMA converted to
# F16 as OUT, and FD_fmnist of 1000 EMA samples (DDIM 25, no guidance) against the 10k
# test images, appended as one JSON line to bench/base_model_results.jsonl.
#
#   bench/base_model.sh STEPS [RUN_DIR [OUT]]     (from the top of the build tree)
set -eu
steps=${1:?usage: bench/base_model.sh STEPS [RUN_DIR [OUT]]}
run=${2:-runs/base}
out=${3:-data/fmnist-dit.safetensors}
here=$(cd "$(dirname "$0")/.." && pwd)
sadm=./sadm
start=$(date +%s)
if [ -f "$run/checkpoint.safetensors" ]; then
    "$sadm" train --resume --run-dir "$run" --steps "$steps" --fd-samples 0 --grid-per-class 0
else
    "$sadm" train --run-dir "$run" --steps "$steps" --fd-samples 0 --grid-per-class 0
fi
secs=$(( $(date +%s) - start ))
"$sadm" convert "$run/model-ema.safetensors" "$out" --dtype F16
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$sadm" sample --model "$out" --num 1000 --sampler ddim --steps ddim25 --batch-size 100 --out-tensor "$tmp/s.safetensors" --grid ""
fd=$("$sadm" fid compare fmnist-test "$tmp/s.safetensors" --features fmnist --json | sed -n 's/.*"fd_fmnist": \([0-9.e+-]*\).*/\1/p')
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
printf '{"steps": %s, "fd_ema": %s, "samples": 1000, "sampler": "ddim25", "train_seconds_this_call": %s, "cpu": "%s", "threads": %s, "file": "%s"}\n' \
    "$steps" "$fd" "$secs" "$cpu" "$(nproc)" "$out" >> "$here/bench/base_model_results.jsonl"
tail -1 "$here/bench/base_model_results.jsonl"
