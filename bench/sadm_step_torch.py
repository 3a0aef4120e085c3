"""PyTorch side of `sadm bench sadm`: the same DiT, loss and AdamW step as libsadm, plain and
with SADM's minimax step (one encoder Adam step on -L_struct with x̂0 detached, then the
denoiser's step on mean(loss) + lambda L_struct through the updated encoder), the encoder
and distance of tests/reference/sadm_torch.py. Random data; prints one JSON line.

usage: sadm_step_torch.py INPUT CHANNELS CLASSES PATCH DEPTH HIDDEN HEADS BATCH STEPS THREADS
                          ENC_PATCH ENC_DEPTH ENC_HIDDEN ENC_HEADS ENC_EMBED [fp32|bf16]
bf16: every forward under torch.autocast("cpu", dtype=torch.bfloat16).
"""
import contextlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffusion_torch  # noqa: E402
import dit_torch  # noqa: E402
import sadm_torch  # noqa: E402


def main():
    a = list(map(int, sys.argv[1:16]))
    (inp, ch, classes, patch, depth, hidden, heads, batch, steps, threads, ep, ed, eh, ehd, ee) = a
    bf16 = len(sys.argv) > 16 and sys.argv[16] == "bf16"

    def amp():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = dit_torch.DiT(inp, patch, ch, hidden, depth, heads, 4.0, 0.1, classes, True)
    enc = sadm_torch.StructureEncoder(inp, ep, ch, eh, ed, ehd, 4.0, ee)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    dparams = [p for p in enc.parameters() if p.requires_grad]
    dopt = torch.optim.Adam(dparams, lr=1e-4)
    d = diffusion_torch.Diffusion(diffusion_torch.betas_for("linear", 1000))
    x0 = torch.rand(batch, ch, inp, inp) * 2 - 1
    y = torch.randint(0, classes, (batch,))
    w = torch.ones(batch)
    res = {}
    for mode in ("plain", "sadm"):
        times = []
        for i in range(steps + 2):
            t = torch.randint(0, 1000, (batch,))
            noise = torch.randn_like(x0)
            start = time.perf_counter()
            xt = d.q_sample(x0, t, noise)
            with amp():
                out = model(xt, t, y).float()
            loss = d.training_losses(lambda *args: out, x0, t, y, noise, True)["loss"].mean()
            if mode == "sadm":
                xhat = d.ext(d.sqrt_recip_alphas_cumprod, t, xt.shape) * xt - \
                    d.ext(d.sqrt_recipm1_alphas_cumprod, t, xt.shape) * out[:, :ch]
                for p in dparams:
                    p.requires_grad_(True)
                with amp():
                    z = enc(torch.cat([x0, xhat.detach()])).float()
                dloss = -sadm_torch.struct_distance(z[:batch], z[batch:], w, "cosine-mse", 0.1)
                dopt.zero_grad()
                dloss.backward()
                dopt.step()
                for p in dparams:
                    p.requires_grad_(False)
                with torch.no_grad(), amp():
                    zr = enc(x0).float()
                with amp():
                    zf = enc(xhat).float()
                loss = loss + 0.001 * sadm_torch.struct_distance(zr, zf, w, "cosine-mse", 0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i >= 2:
                times.append(time.perf_counter() - start)
        res[mode + "_s"] = float(np.median(times))
    res["torch"] = torch.__version__
    print(json.dumps(res))


if __name__ == "__main__":
    main()
