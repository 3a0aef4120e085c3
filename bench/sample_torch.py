"""PyTorch side of `sadm bench sample`: DDIM sampling with classifier-free guidance of the
same DiT (tests/reference copies of DiT's code), timed. Prints one JSON line.

usage: sample_torch.py INPUT CHANNELS CLASSES PATCH DEPTH HIDDEN HEADS BATCH STEPS CFG THREADS [fp32|bf16]
bf16: the model under torch.autocast("cpu", dtype=torch.bfloat16); the DDIM update in fp32.
"""
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
    (inp, ch, classes, patch, depth, hidden, heads, batch, steps, threads) = map(int, sys.argv[1:10] + sys.argv[11:12])
    cfg = float(sys.argv[10])
    bf16 = len(sys.argv) > 12 and sys.argv[12] == "bf16"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = dit_torch.DiT(inp, patch, ch, hidden, depth, heads, 4.0, 0.1, classes, True).eval()
    base = diffusion_torch.Diffusion(diffusion_torch.betas_for("linear", 1000))
    stride = 1000 // steps
    keep = list(range(0, 1000, stride))[:steps]
    new_betas, last = [], 1.0
    for i, ac in enumerate(base.alphas_cumprod):
        if i in keep:
            new_betas.append(1 - ac / last)
            last = ac
    d = diffusion_torch.Diffusion(np.array(new_betas))
    tmap = torch.tensor(keep)
    y = torch.randint(0, classes, (batch,))
    y2 = torch.cat([y, torch.full_like(y, classes)])
    x = torch.randn(batch, ch, inp, inp)
    start = time.perf_counter()
    with torch.no_grad():
        for i in reversed(range(len(keep))):
            t = torch.full((2 * batch,), i)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(torch.cat([x, x]), tmap[t], y2)
            out = out.float()
            eps = out[:, :ch]
            cond, uncond = eps[:batch], eps[batch:]
            eps = uncond + cfg * (cond - uncond)
            tt = t[:batch]
            px0 = d.ext(d.sqrt_recip_alphas_cumprod, tt, x.shape) * x - d.ext(d.sqrt_recipm1_alphas_cumprod, tt, x.shape) * eps
            e2 = (d.ext(d.sqrt_recip_alphas_cumprod, tt, x.shape) * x - px0) / d.ext(d.sqrt_recipm1_alphas_cumprod, tt, x.shape)
            abp = d.ext(d.alphas_cumprod_prev, tt, x.shape)
            x = px0 * torch.sqrt(abp) + torch.sqrt(1 - abp) * e2
    total = time.perf_counter() - start
    print(json.dumps({"seconds": total, "images_per_s": batch / total,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "torch": torch.__version__, "precision": "bf16 autocast" if bf16 else "fp32"}))


if __name__ == "__main__":
    main()
