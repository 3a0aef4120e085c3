"""PyTorch side of `sadm bench train`: the same DiT, loss and AdamW step as libsadm
(tests/reference/ copies of DiT's models.py and gaussian_diffusion.py), timed on random
data. Prints one JSON line.

usage: train_torch.py INPUT CHANNELS CLASSES PATCH DEPTH HIDDEN HEADS BATCH STEPS THREADS [fp32|bf16]
bf16: the forward and loss under torch.autocast("cpu", dtype=torch.bfloat16), as a PyTorch
user would write mixed precision on a CPU (the optimiser and master weights stay fp32).
"""
import contextlib
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffusion_torch  # noqa: E402
import dit_torch  # noqa: E402


def main():
    (inp, ch, classes, patch, depth, hidden, heads, batch, steps, threads) = map(int, sys.argv[1:11])
    bf16 = len(sys.argv) > 11 and sys.argv[11] == "bf16"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = dit_torch.DiT(inp, patch, ch, hidden, depth, heads, 4.0, 0.1, classes, True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    d = diffusion_torch.Diffusion(diffusion_torch.betas_for("linear", 1000))
    x0 = torch.rand(batch, ch, inp, inp) * 2 - 1
    y = torch.randint(0, classes, (batch,))
    times = []
    for i in range(steps + 2):
        t = torch.randint(0, 1000, (batch,))
        noise = torch.randn_like(x0)
        start = time.perf_counter()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = d.training_losses(model, x0, t, y, noise, True)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - start)
    step = float(np.median(times))
    print(json.dumps({"step_s": step, "images_per_s": batch / step,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "precision": "bf16 autocast" if bf16 else "fp32"}))


if __name__ == "__main__":
    main()
