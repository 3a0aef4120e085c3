#!/usr/bin/python3
"""The tables of the SADM experiment v2 from its results (bench/sadm_experiment2.sh).

usage: bench/sadm_experiment2_report.py [RESULTS.jsonl [RUN_DIR [GRIDS.png [SEED]]]]
  RESULTS: bench/sadm_experiment2_results.jsonl; RUN_DIR: runs/sadm2 (for the grids)
  GRIDS: writes the end-of-run sample grids (samples.png of each run of SEED, default 1)
  side by side, arms in the order of the results, with their names above.

Per arm: mean ± std over seeds of FD_fmnist (EMA and raw weights), precision and recall
(EMA); the paired difference to plain (same seed) with a 95% t interval; seconds per
step; and the SADM trajectories' last tenth (L_struct, real_cos, grad_share).
"""
import json
import math
import os
import statistics
import sys

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def ms(v, digits=2):
    if not v:
        return "-"
    if len(v) == 1:
        return "%.*f" % (digits, v[0])
    return "%.*f ± %.*f" % (digits, statistics.mean(v), digits, statistics.stdev(v))


def paired(arm_runs, plain_runs, key, digits=2):
    """mean difference arm - plain over the seeds both have, with a 95% t interval"""
    d = [arm_runs[s][key] - plain_runs[s][key] for s in sorted(arm_runs) if s in plain_runs]
    if not d:
        return "-"
    m = statistics.mean(d)
    if len(d) < 2:
        return "%+.*f (1 seed)" % (digits, m)
    h = T975.get(len(d) - 1, 2.0) * statistics.stdev(d) / math.sqrt(len(d))
    return "%+.*f [%+.*f, %+.*f] (%d)" % (digits, m, digits, m - h, digits, m + h, len(d))


def last(runs, key):
    v = [r[key + "_trajectory"][-1] for r in runs.values() if key + "_trajectory" in r]
    return "%.3g" % statistics.mean(v) if v else "-"


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "bench/sadm_experiment2_results.jsonl"
    run_dir = sys.argv[2] if len(sys.argv) > 2 else "runs/sadm2"
    grids = sys.argv[3] if len(sys.argv) > 3 else None
    grid_seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    arms = {}
    for line in open(results):
        if line.strip():
            r = json.loads(line)
            arms.setdefault(r["arm"], {})[r["seed"]] = r
    plain = arms.get("plain", {})
    print("| arm | seeds | FD_fmnist EMA | FD_fmnist raw | precision | recall | ΔFD EMA vs plain [95%] | "
          "ΔFD raw vs plain | Δrecall vs plain | s/step | L_struct | real_cos | grad_share |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for arm, runs in arms.items():
        v = lambda k: [runs[s][k] for s in sorted(runs)]
        sps = [x for x in v("seconds_per_step")] if all("seconds_per_step" in r for r in runs.values()) else []
        sps = [x for x in sps if x]
        other = arm not in ("plain", "base")
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            arm, ",".join(str(s) for s in sorted(runs)), ms(v("fd_ema")), ms(v("fd_raw")), ms(v("precision"), 3),
            ms(v("recall"), 3),
            paired(runs, plain, "fd_ema") if other else "",
            paired(runs, plain, "fd_raw") if other else "",
            paired(runs, plain, "recall", 3) if other else "",
            ms(sps, 3) if sps else "-", last(runs, "struct"), last(runs, "real_cos"), last(runs, "grad_share")))
    if grids:
        from PIL import Image, ImageDraw
        names = [a for a in arms if os.path.exists(os.path.join(run_dir, "%s-s%d" % (a, grid_seed), "samples.png"))]
        if not names:
            print("no grids of seed %d under %s" % (grid_seed, run_dir), file=sys.stderr)
            return
        ims = [Image.open(os.path.join(run_dir, "%s-s%d" % (a, grid_seed), "samples.png")).convert("L") for a in names]
        w, h, pad, top = ims[0].width, ims[0].height, 8, 16
        out = Image.new("L", (len(ims) * (w + pad) - pad, h + top), 255)
        draw = ImageDraw.Draw(out)
        for i, (a, im) in enumerate(zip(names, ims)):
            out.paste(im, (i * (w + pad), top))
            draw.text((i * (w + pad) + 2, 2), a, fill=0)
        out.save(grids)
        print("wrote %s (%s, seed %d)" % (grids, ", ".join(names), grid_seed), file=sys.stderr)


if __name__ == "__main__":
    main()
