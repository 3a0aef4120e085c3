#!/usr/bin/python3
"""Seeds of the fuzz_pt harness, written by torch.save itself (Debian's python3-torch):
state dicts in three dtypes, a DiT train.py-style checkpoint, views with offsets, and a
hostile pickle. Remake: /usr/bin/python3 tests/fuzz/make_pt_corpus.py"""
import argparse
import collections
import io
import os

import torch as th

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pt")


def put(name, obj):
    os.makedirs(OUT, exist_ok=True)
    buf = io.BytesIO()
    th.save(obj, buf)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf.getvalue())


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


th.manual_seed(0)
sd = collections.OrderedDict((("pos_embed", th.randn(1, 4, 8)), ("x_embedder.proj.weight", th.randn(8, 1, 2, 2)),
                              ("blocks.0.mlp.fc1.weight", th.randn(32, 8))))
put("f32.pt", sd)
put("f16.pt", collections.OrderedDict((k, v.half()) for k, v in sd.items()))
put("bf16.pt", collections.OrderedDict((k, v.bfloat16()) for k, v in sd.items()))
lin = th.nn.Linear(3, 2)
opt = th.optim.AdamW(lin.parameters())
lin(th.randn(1, 3)).sum().backward()
opt.step()
put("train.pt", {"model": lin.state_dict(), "ema": lin.state_dict(), "opt": opt.state_dict(),
                 "args": argparse.Namespace(model="DiT-S/2", image_size=256, lr=1e-4)})
base = th.arange(20.0)
put("views.pt", collections.OrderedDict(a=base[:8].view(2, 4), b=base[8:], c=th.tensor([True, False]), d=th.arange(3)))
put("evil.pt", {"w": th.randn(2), "x": Evil()})
