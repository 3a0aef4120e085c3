"""torch.save files for tests/test_torch_load.c, made by PyTorch itself.

usage:
  pt_ref.py state MODEL.safetensors OUT.pt REF.safetensors DTYPE
      the DiT of MODEL (dit_torch.py) as model.state_dict() in DTYPE (float32, float16,
      bfloat16), torch.save'd; REF gets the same tensors as float32 (exact for all three)
  pt_ref.py train MODEL.safetensors OUT.pt REF.safetensors
      a DiT train.py checkpoint {"model", "ema", "opt", "args"}: ema = the weights, model =
      the weights + 1, opt = AdamW's state dict after one step, args = argparse.Namespace;
      REF: the ema tensors and, as model.<name>, the model tensors
  pt_ref.py views OUT.pt REF.safetensors
      a state dict of views into shared storages (offsets), and REF as contiguous copies
  pt_ref.py noncontig OUT.pt
      a state dict with a transposed (non-contiguous) tensor
  pt_ref.py recursive OUT.pt
      a dict holding a tensor and a list that contains itself
  pt_ref.py shortstorage OUT.pt
      a state dict whose first storage member is cut to half its bytes (rewritten zip)
  pt_ref.py hostile OUT.pt MARKER KIND
      a file whose pickle would create MARKER under torch.load: KIND reduce (os.system via
      __reduce__), global (builtins.exec as a global), or in_tensor (the payload inside the
      state dict next to real tensors)
"""
import argparse
import collections
import copy
import os
import sys

import numpy as np
import torch as th

import dit_torch
import st


def refs(sd, prefix=""):
    return {prefix + k: v.detach().float().contiguous().numpy() for k, v in sd.items()}


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch '%s'" % self.marker,))


class ExecPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, ("open(%r, 'w').close()" % self.marker,))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    th.manual_seed(0)
    if cmd == "state":
        model, _ = dit_torch.model_from_file(args[0])
        dtype = getattr(th, args[3])
        model = model.to(dtype)
        sd = model.state_dict()
        th.save(sd, args[1])
        st.save(args[2], refs(sd))
    elif cmd == "train":
        model, _ = dit_torch.model_from_file(args[0])
        ema = copy.deepcopy(model.state_dict())  # a copy (keeps _metadata): opt.step below changes the weights
        raw = collections.OrderedDict((k, v + 1) for k, v in ema.items())
        opt = th.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
        sum(p.sum() for p in model.parameters()).backward()
        opt.step()
        ns = argparse.Namespace(model="DiT-S/2", image_size=256, num_classes=1000, epochs=1400, global_seed=0)
        th.save({"model": raw, "ema": ema, "opt": opt.state_dict(), "args": ns}, args[1])
        r = refs(ema)
        r.update(refs(raw, "model."))
        st.save(args[2], r)
    elif cmd == "views":
        base = th.arange(40, dtype=th.float32) * 0.25 - 3
        other = th.randn(6, 5)
        sd = collections.OrderedDict(a=base[:12].view(3, 4), b=base[12:40].view(7, 4), c=other[2:4], d=other)
        th.save(sd, args[0])
        st.save(args[1], refs(sd))
    elif cmd == "noncontig":
        th.save({"w": th.randn(3, 5).t()}, args[0])
    elif cmd == "recursive":
        loop = []
        loop.append(loop)
        th.save({"w": th.randn(2), "x": loop}, args[0])
    elif cmd == "shortstorage":
        import io
        import zipfile
        buf = io.BytesIO()
        th.save({"w": th.randn(64), "b": th.randn(8)}, buf)
        src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
        with zipfile.ZipFile(args[0], "w", zipfile.ZIP_STORED) as out:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename.endswith("/data/0"):
                    data = data[: len(data) // 2]
                out.writestr(info.filename, data)
    elif cmd == "hostile":
        marker, kind = args[1], args[2]
        if kind == "reduce":
            obj = Payload(marker)
        elif kind == "global":
            obj = ExecPayload(marker)
        elif kind == "in_tensor":
            obj = collections.OrderedDict(weight=th.randn(3), bias=Payload(marker))
        else:
            raise SystemExit("unknown kind " + kind)
        th.save(obj, args[0])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
