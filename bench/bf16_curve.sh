#!/bin/sh
# The bf16 training curve against the fp32 one: the default Fashion-MNIST DiT trained for
# STEPS steps (default 300) from the same seed in each precision, FD_fmnist of both at the
# end, and the loss curves compared (mean of |bf16 - fp32| over the logged steps, and
# over 50-step windows). Appends one JSON line per precision and one comparison line to
# bench/bf16_curve_results.jsonl.
# usage: bench/bf16_curve.sh [STEPS] [RUN_ROOT]     (from the build tree, next to ./sadm)
set -eu
steps=${1:-300}
root=${2:-runs/bf16-curve}
here=$(cd "$(dirname "$0")" && pwd)
out=$here/bf16_curve_results.jsonl
for p in fp32 bf16; do
    rm -rf "$root/$p"
    start=$(date +%s)
    ./sadm train --steps "$steps" --log-every 5 --precision "$p" --run-dir "$root/$p" --fd-samples 1000 \
        > "$root.$p.out" 2>&1
    end=$(date +%s)
    fd=$(grep -o 'FD_fmnist[^0-9]*[0-9.]*' "$root.$p.out" | tail -1 | grep -o '[0-9.]*$' || echo null)
    echo "{\"precision\": \"$p\", \"steps\": $steps, \"seconds\": $((end - start)), \"fd_fmnist\": ${fd:-null}, \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\", \"kernels\": \"$(./sadm info | sed -n 's/^active: *//p')\"}" >> "$out"
done
python3 - "$root" "$out" <<'PY'
import json, sys
root, out = sys.argv[1], sys.argv[2]
curves = {}
for p in ("fp32", "bf16"):
    curves[p] = {r["step"]: r["loss"] for r in map(json.loads, open(f"{root}/{p}/log.jsonl")) if "loss" in r}
steps = sorted(set(curves["fp32"]) & set(curves["bf16"]))
diff = [abs(curves["bf16"][s] - curves["fp32"][s]) for s in steps]
win = {}
for s in steps:
    win.setdefault((s - 1) // 50, []).append(s)
windows = []
for k in sorted(win):
    a = sum(curves["fp32"][s] for s in win[k]) / len(win[k])
    b = sum(curves["bf16"][s] for s in win[k]) / len(win[k])
    windows.append({"steps": f"{win[k][0]}-{win[k][-1]}", "fp32": round(a, 5), "bf16": round(b, 5),
                    "rel_diff": round((b - a) / a, 5)})
rec = {"compare": "bf16 vs fp32", "logged_steps": len(steps), "mean_abs_loss_diff": sum(diff) / len(diff),
       "max_abs_loss_diff": max(diff), "windows": windows}
open(out, "a").write(json.dumps(rec) + "\n")
print(json.dumps(rec, indent=1))
PY
