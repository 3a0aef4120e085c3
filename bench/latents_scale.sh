#!/bin/sh
# sadm train on ImageNet-sized latent shards (issue 14, part 3): N synthetic rows (default
# 1281167, ImageNet's train split) of 4x32x32 BF16 latents with x_flip in sadm encode's
# layout (bench/latents_scale.py; ~21 GB of disk at the default), then STEPS steps of a
# small DiT on them, sampling the process's memory twice a second: the anonymous memory
# (what the process allocated) against the file pages of the mapped shards it touched.
#
# usage: bench/latents_scale.sh DIR [N] [STEPS]     (from the top of the build tree)
#   environment: SADM (./sadm), PYTHON (/usr/bin/python3), RESULTS (bench/latents_scale_results.jsonl),
#   NOTE (a remark stored with the result)
set -eu
dir=${1:?usage: bench/latents_scale.sh DIR [N] [STEPS]}
n=${2:-1281167}
steps=${3:-200}
here=$(cd "$(dirname "$0")/.." && pwd)
SADM=${SADM:-./sadm}
PYTHON=${PYTHON:-/usr/bin/python3}
RESULTS=${RESULTS:-$here/bench/latents_scale_results.jsonl}
"$PYTHON" "$here/bench/latents_scale.py" "$dir/latents" "$n"
bytes=$(du -sb "$dir/latents" | cut -f1)
rm -rf "$dir/run"
start=$(date +%s.%N)
"$SADM" train --data "$dir/latents" --depth 2 --hidden-size 64 --num-heads 2 --patch-size 2 --batch-size 256 \
    --steps "$steps" --log-every 50 --ckpt-every 100000 --fd-samples 0 --run-dir "$dir/run" >"$dir/train.log" 2>&1 &
pid=$!
anon=0 file=0
# the wrapper script of an uninstalled build execs the real binary under the same pid
while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/^RssAnon/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    f=$(awk '/^RssFile/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ "${a:-0}" -gt "$anon" ] && anon=$a
    [ "${f:-0}" -gt "$file" ] && file=$f
    sleep 0.5
done
wait "$pid"
secs=$(echo "$(date +%s.%N) - $start" | bc)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
line=$(printf '{"rows": %s, "shard_bytes": %s, "steps": %s, "batch": 256, "seconds": %.1f, "max_rss_anon_mb": %.1f, "max_rss_file_mb": %.1f, "cpu": "%s", "date": "%s", "note": "%s"}' \
    "$n" "$bytes" "$steps" "$secs" "$(echo "$anon / 1024" | bc -l)" "$(echo "$file / 1024" | bc -l)" "$cpu" "$(date -u +%Y-%m-%dT%H:%MZ)" "${NOTE:-}")
echo "$line" | tee -a "$RESULTS"
grep -m1 'DiT depth' "$dir/train.log" || true
tail -2 "$dir/train.log"
