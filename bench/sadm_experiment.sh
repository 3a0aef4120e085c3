#!/bin/sh
# The SADM experiment of the README: fine-tune one plain Fashion-MNIST checkpoint for
# STEPS more steps plainly and with SADM, under several seeds (same data order and noise
# per seed in every arm), sample each result and score it with bench/fd_fmnist.py.
#
# usage: bench/sadm_experiment.sh BASE_CHECKPOINT OUT_DIR
#   environment: STEPS (300), SEEDS ("1 2 3"), NUM (1000 samples, 100 per class),
#   ARMS ("plain sadm:0.01:none"; an arm is plain or sadm:LAMBDA:WEIGHTING[:DISTANCE]),
#   SADM (./sadm), PYTHON (Debian's /usr/bin/python3, which has torch)
# Writes OUT_DIR/<arm>-s<seed>/ (run, samples, grid.png) and OUT_DIR/results.jsonl, and
# prints a table: Fréchet distance (classifier features and pixels) mean ± std per arm,
# seconds per step, and the structural-distance / embedding-spread of the last log line.
set -eu
base=$1
out=$2
STEPS=${STEPS:-300}
SEEDS=${SEEDS:-"1 2 3"}
NUM=${NUM:-1000}
ARMS=${ARMS:-"plain sadm:0.01:none"}
SADM=${SADM:-./sadm}
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
mkdir -p "$out"

start=$("$PYTHON" -c "import sys; sys.path.insert(0, '$here/../tests/reference'); import st; print(st.load(sys.argv[1])[1]['train.step'])" "$base")
target=$((start + STEPS))
labels=$("$PYTHON" -c "print(','.join(str(i % 10) for i in range($NUM)))")
grid_labels=$("$PYTHON" -c "print(','.join(str(i % 10) for i in range(100)))")

for arm in $ARMS; do
    for seed in $SEEDS; do
        dir="$out/$(echo "$arm" | tr ':' '_')-s$seed"
        if [ ! -f "$dir/samples.safetensors" ]; then
            rm -rf "$dir"
            opts=""
            case $arm in
            plain) ;;
            sadm:*)
                lambda=$(echo "$arm" | cut -d: -f2)
                weighting=$(echo "$arm" | cut -d: -f3)
                distance=$(echo "$arm" | cut -d: -f4)
                opts="--sadm --lambda $lambda --weighting $weighting --distance ${distance:-cosine-mse}"
                ;;
            *) echo "unknown arm $arm" >&2; exit 2 ;;
            esac
            t0=$(date +%s.%N)
            # shellcheck disable=SC2086
            "$SADM" train --init "$base" --seed "$seed" --steps "$target" --run-dir "$dir" --ckpt-every 100000 --fd-samples 0 $opts
            t1=$(date +%s.%N)
            echo "$t0 $t1" | awk -v n="$STEPS" '{ printf "%.4f\n", ($2 - $1) / n }' > "$dir/seconds_per_step"
            "$SADM" sample --model "$dir/checkpoint.safetensors" --raw-weights --sampler ddim --steps ddim25 \
                --labels "$labels" --seed 7 --batch-size 100 --grid "$dir/all.png" --out-tensor "$dir/samples.safetensors"
            "$SADM" sample --model "$dir/checkpoint.safetensors" --raw-weights --sampler ddim --steps ddim25 \
                --labels "$grid_labels" --seed 8 --batch-size 100 --grid "$dir/grid.png"
        fi
    done
done

# shellcheck disable=SC2046
"$PYTHON" "$here/fd_fmnist.py" "$out/cache" $(for arm in $ARMS; do for seed in $SEEDS; do
    echo "$out/$(echo "$arm" | tr ':' '_')-s$seed/samples.safetensors"; done; done) > "$out/results.jsonl"

"$PYTHON" - "$out" "$ARMS" "$SEEDS" <<'EOF'
import json, os, statistics, sys
out, arms, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
res = {}
floor = None
for line in open(os.path.join(out, "results.jsonl")):
    r = json.loads(line)
    if r["file"].startswith("floor"):
        floor = r
    else:
        res[os.path.basename(os.path.dirname(r["file"]))] = r
def ms(v):
    return "%.3f ± %.3f" % (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
print("| arm | FD classifier | FD pixels | s/step | L_struct (last) | real cos (last) |")
print("|---|---|---|---|---|---|")
for arm in arms:
    names = ["%s-s%s" % (arm.replace(":", "_"), s) for s in seeds]
    fc = [res[n]["fd_classifier"] for n in names]
    fp = [res[n]["fd_pixels"] for n in names]
    sps = [float(open(os.path.join(out, n, "seconds_per_step")).read()) for n in names]
    last = [json.loads(open(os.path.join(out, n, "log.jsonl")).read().splitlines()[-1]) for n in names]
    st = ms([l["struct"] for l in last]) if "struct" in last[0] else "-"
    rc = ms([l["real_cos"] for l in last]) if "real_cos" in last[0] else "-"
    print("| %s | %s | %s | %.3f | %s | %s |" % (arm, ms(fc), ms(fp), statistics.mean(sps), st, rc))
print("| floor: %d training images | %.3f | %.3f | | | |" % (floor["n"], floor["fd_classifier"], floor["fd_pixels"]))
print("classifier test accuracy: %.4f" % floor["classifier_test_accuracy"])
EOF
