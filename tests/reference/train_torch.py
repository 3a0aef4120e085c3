"""Replays a libsadm training run in PyTorch (tests/test_train.c): the same initial
weights, the same batches, torch.optim.AdamW and DiT's EMA (update_ema of train.py).

usage: train_torch.py replay MODEL.safetensors BATCHES.safetensors OUT.safetensors LR EMA_DECAY
  BATCHES: x0.<k>, t.<k>, y.<k>, noise.<k> for steps k = 0..K-1
  OUT: loss (K) per-step batch-mean losses, and the final weights and EMA (<name>, ema.<name>)
"""
import sys
from collections import OrderedDict

import numpy as np
import torch as th

import diffusion_torch
import dit_torch
import st


def main():
    th.set_num_threads(1)
    if len(sys.argv) != 7 or sys.argv[1] != "replay":
        raise SystemExit(__doc__)
    model, meta = dit_torch.model_from_file(sys.argv[2])
    learn_sigma = meta["learn_sigma"] in ("True", "true", "1")
    batches, _ = st.load(sys.argv[3])
    lr, decay = float(sys.argv[5]), float(sys.argv[6])
    ema = OrderedDict((k, v.detach().clone()) for k, v in model.named_parameters())
    opt = th.optim.AdamW(model.parameters(), lr=lr, weight_decay=0)
    d = diffusion_torch.Diffusion(diffusion_torch.betas_for("linear", 1000))
    losses = []
    k = 0
    while "x0.%d" % k in batches:
        b = {n: th.from_numpy(batches["%s.%d" % (n, k)]) for n in ("x0", "t", "y", "noise")}
        loss = d.training_losses(model, b["x0"], b["t"], b["y"], b["noise"], learn_sigma)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with th.no_grad():  # update_ema of DiT's train.py
            for name, p in model.named_parameters():
                ema[name].mul_(decay).add_(p.data, alpha=1 - decay)
        losses.append(loss.item())
        k += 1
    out = {"loss": np.array(losses, dtype=np.float32)}
    for name, p in model.named_parameters():
        out[name] = p.detach().numpy()
        out["ema." + name] = ema[name].numpy()
    st.save(sys.argv[4], out)


if __name__ == "__main__":
    main()
