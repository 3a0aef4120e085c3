#!/usr/bin/env python3
"""Converts pytorch-fid's FID Inception-v3 weights to the safetensors file `sadm fid` reads.

    python3 tools/convert_inception.py pt_inception-2015-12-05-6726825d.pth fid-inception.safetensors

The .pth is pytorch-fid's port of TensorFlow's 2015-12-05 Inception (the network ADM's
evaluator runs), from https://github.com/mseitzer/pytorch-fid/releases (fid_weights);
libsadm cannot download it for you. Needs torch (only to read the .pth). The names stay
torchvision's (Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_mean, ...,
fc.weight); num_batches_tracked counters are dropped; everything is stored as float32.
"""
import json
import struct
import sys

import numpy as np
import torch


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sd = torch.load(sys.argv[1], map_location="cpu")
    if "state_dict" in sd:
        sd = sd["state_dict"]
    out = {k: v.float().numpy() for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    if "fc.weight" not in out or tuple(out["fc.weight"].shape) != (1008, 2048):
        raise SystemExit("%s does not look like the FID Inception (no fc.weight of 1008×2048)" % sys.argv[1])
    save_safetensors(sys.argv[2], out)
    print("wrote %s: %d tensors" % (sys.argv[2], len(out)))


if __name__ == "__main__":
    main()
