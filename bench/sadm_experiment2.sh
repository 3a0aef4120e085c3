#!/bin/sh
# The SADM experiment, second version (issue 17): fine-tune the shipped base model
# (data/fmnist-dit.safetensors) for STEPS steps in every arm under several seeds (a seed
# gives the same data order, timesteps and noise in every arm: paired), then score the EMA
# and the raw weights of each run with NUM samples (NUM/10 per class, DDIM 25, no guidance,
# the same x_T in every run) against the 10k Fashion-MNIST test images in the shipped
# classifier's features: FD_fmnist, precision and recall (k = 3).
#
# usage: bench/sadm_experiment2.sh OUT_DIR          (from the top of the build tree)
#   environment: ARMS (the names below; default all), SEEDS ("1 2 3"), STEPS (1000),
#   NUM (5000), LR (1e-4), BASE (data/fmnist-dit.safetensors), SADM (./sadm),
#   RESULTS (bench/sadm_experiment2_results.jsonl), PYTHON (/usr/bin/python3)
#
# Resumable at every stage: a run with a record in RESULTS is done; otherwise its training
# resumes from OUT_DIR/<arm>-s<seed>/checkpoint.safetensors, and samples already written
# are kept. Runs go seed by seed (all arms of seed 1 first), so that a partial result is
# already a paired comparison. One JSON line per finished run is appended to RESULTS.
set -eu
out=${1:?usage: bench/sadm_experiment2.sh OUT_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
ARMS=${ARMS:-"base plain alpha-1e-3 t400-1e-3 adaptive-0.01 warmup200-1e-3 alpha-1e-4 restart-1e-3 adaptive-0.1"}
SEEDS=${SEEDS:-"1 2 3"}
STEPS=${STEPS:-1000}
NUM=${NUM:-5000}
LR=${LR:-1e-4}
BASE=${BASE:-$here/data/fmnist-dit.safetensors}
SADM=${SADM:-./sadm}
RESULTS=${RESULTS:-$here/bench/sadm_experiment2_results.jsonl}
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
touch "$RESULTS"

# The options of an arm. The SADM arms use the default encoder (fresh per run, Adam lr
# 1e-4, one encoder step per denoiser step) and cosine-mse.
arm_opts() {
    case $1 in
    base | plain) echo "" ;;
    alpha-1e-3) echo "--sadm --lambda 1e-3 --weighting alpha" ;;
    alpha-1e-4) echo "--sadm --lambda 1e-4 --weighting alpha" ;;
    t400-1e-3) echo "--sadm --lambda 1e-3 --weighting t<400" ;;
    adaptive-0.01) echo "--sadm --adaptive-lambda 0.01 --weighting alpha" ;;
    warmup200-1e-3) echo "--sadm --lambda 1e-3 --weighting alpha --disc-warmup 200" ;;
    softmax-kl-1e-3) echo "--sadm --lambda 1e-3 --weighting alpha --distance softmax-kl" ;;
    # session 9: the encoder collapsed in the fixed-lambda arms of seed 1; these replace it
    # with a fresh one after 50 collapsed steps, and try a stronger adaptive ratio
    restart-1e-3) echo "--sadm --lambda 1e-3 --weighting alpha --disc-restart 50" ;;
    adaptive-0.1) echo "--sadm --adaptive-lambda 0.1 --weighting alpha --disc-restart 50" ;;
    *) echo "sadm_experiment2: unknown arm '$1'" >&2; exit 2 ;;
    esac
}

labels=$("$PYTHON" -c "print(','.join(str(i % 10) for i in range($NUM)))")
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')

have_record() {
    "$PYTHON" - "$RESULTS" "$1" "$2" "$STEPS" "$NUM" <<'EOF'
import json, sys
path, arm, seed, steps, num = sys.argv[1:]
for line in open(path):
    r = json.loads(line)
    if r["arm"] == arm and str(r["seed"]) == seed and (arm == "base" or r["steps"] == int(steps)) and r["samples"] == int(num):
        sys.exit(0)
sys.exit(1)
EOF
}

steps_done() {
    "$PYTHON" -c "import sys; sys.path.insert(0, '$here/tests/reference'); import st; print(st.load(sys.argv[1])[1].get('train.step', 0))" "$1"
}

# samples of MODEL (extra options in $3) into FILE, unless FILE exists
sample_to() {
    [ -f "$2" ] && return 0
    # shellcheck disable=SC2086
    "$SADM" sample --model "$1" $3 --labels "$labels" --sampler ddim --steps ddim25 --seed 7 --batch-size 100 \
        --grid "" --out-tensor "$2.part.safetensors"
    mv "$2.part.safetensors" "$2"
}

score() { "$SADM" fid compare fmnist-test "$1" --features fmnist --json; }

for seed in $SEEDS; do
    for arm in $ARMS; do
        [ "$arm" = base ] && [ "$seed" != "$(echo "$SEEDS" | cut -d' ' -f1)" ] && continue
        if have_record "$arm" "$seed"; then continue; fi
        opts=$(arm_opts "$arm")
        dir="$out/$arm-s$seed"
        mkdir -p "$dir"
        echo "== sadm_experiment2: $arm, seed $seed ($(date -u +%H:%M:%S))" >&2
        train_s=0
        if [ "$arm" = base ]; then
            ema_model=$BASE raw_model=$BASE raw_opt=""
        else
            ckpt="$dir/checkpoint.safetensors"
            if [ ! -f "$ckpt" ] || [ "$(steps_done "$ckpt")" -lt "$STEPS" ]; then
                t0=$(date +%s)
                if [ -f "$ckpt" ]; then
                    "$SADM" train --resume --run-dir "$dir" --steps "$STEPS" --fd-samples 0
                else
                    # shellcheck disable=SC2086
                    "$SADM" train --init "$BASE" --seed "$seed" --steps "$STEPS" --lr "$LR" --run-dir "$dir" \
                        --ckpt-every 250 --fd-samples 0 $opts
                fi
                echo $(($(date +%s) - t0)) >> "$dir/train_seconds"
            fi
            train_s=$(awk '{ s += $1 } END { print s + 0 }' "$dir/train_seconds" 2>/dev/null || echo 0)
            ema_model="$dir/model-ema.safetensors" raw_model=$ckpt raw_opt="--raw-weights"
        fi
        sample_to "$ema_model" "$dir/ema.safetensors" ""
        [ "$arm" = base ] || sample_to "$raw_model" "$dir/raw.safetensors" "$raw_opt"
        score "$dir/ema.safetensors" > "$dir/score-ema.json"
        if [ "$arm" = base ]; then cp "$dir/score-ema.json" "$dir/score-raw.json"; else score "$dir/raw.safetensors" > "$dir/score-raw.json"; fi
        "$PYTHON" - "$dir" "$arm" "$seed" "$STEPS" "$NUM" "$LR" "$opts" "$train_s" "$cpu" >> "$RESULTS" <<'EOF'
import json, os, sys
d, arm, seed, steps, num, lr, opts, train_s, cpu = sys.argv[1:]
ema = json.load(open(os.path.join(d, "score-ema.json")))
raw = json.load(open(os.path.join(d, "score-raw.json")))
rec = {"arm": arm, "seed": int(seed), "steps": 0 if arm == "base" else int(steps), "samples": int(num),
       "sampler": "ddim25", "lr": float(lr), "options": opts,
       "fd_ema": ema["fd_fmnist"], "fd_raw": raw["fd_fmnist"],
       "precision": ema["precision"], "recall": ema["recall"],
       "precision_raw": raw["precision"], "recall_raw": raw["recall"]}
# the SADM trajectories: means of the logged values over each tenth of the run
log = os.path.join(d, "log.jsonl")
if os.path.exists(log):
    rows = [json.loads(l) for l in open(log) if l.strip()]
    rows = [r for r in rows if "step" in r and "loss" in r]
    if rows:
        # the log's throughput (batch 64, the default) without start-up and end-of-run grid
        ips = [r["images_per_s"] for r in rows if r.get("images_per_s")]
        rec["seconds_per_step"] = round(sum(64.0 / v for v in ips) / len(ips), 4) if ips else None
        rec["train_seconds"] = int(train_s)
        n = len(rows)
        for key in ("loss", "struct", "real_cos", "fake_cos", "lambda_eff", "grad_share"):
            if key in rows[0]:
                rec[key + "_trajectory"] = [round(sum(r[key] for r in rows[i * n // 10:(i + 1) * n // 10]) /
                                                  max(1, len(rows[i * n // 10:(i + 1) * n // 10])), 6) for i in range(10)]
        if "disc_restarts" in rows[-1]:
            rec["disc_restarts"] = rows[-1]["disc_restarts"]
rec["cpu"] = cpu
rec["threads"] = os.cpu_count()
print(json.dumps(rec))
EOF
        tail -1 "$RESULTS" >&2
    done
done
