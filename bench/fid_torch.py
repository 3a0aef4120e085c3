"""PyTorch side of `sadm bench fid`: the FID Inception-v3 of pytorch-fid (torchvision's
Inception3 with the FID blocks, tests/reference/inception_ref.py) in float32 with the given
weights; times the pool features of image set A and prints the FID of A against B by
pytorch-fid's formula (scipy.linalg.sqrtm, tests/reference/fid_ref.py) as one JSON line.

usage: fid_torch.py WEIGHTS.safetensors A.safetensors B.safetensors MODE BATCH THREADS
  A, B: images (N, H, W, 3) uint8; MODE: adm or pytorch-fid
       fid_torch.py make WEIGHTS.safetensors SEED
  random weights and BatchNorm statistics (no real weights can be downloaded here)
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import fid_ref  # noqa: E402
import inception_ref  # noqa: E402
import st  # noqa: E402


def prepare(img, mode):
    x = img.astype(np.float64).transpose(0, 3, 1, 2)
    if mode == "adm":
        return torch.from_numpy((inception_ref.tf1_resize(x, 299) - 128) / 128).float()
    t = F.interpolate(torch.from_numpy(x / 255).float(), size=(299, 299), mode="bilinear", align_corners=False)
    return 2 * t - 1


def pool_features(net, images, mode, batch):
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = prepare(images[i:i + batch], mode)
            x = inception_ref._to_6e(net, x)
            out.append(net.avgpool(net.Mixed_7c(net.Mixed_7b(net.Mixed_7a(x)))).flatten(1))
    return torch.cat(out).double().numpy()


def main():
    if sys.argv[1] == "make":
        inception_ref.make(sys.argv[2], int(sys.argv[3]))
        print(json.dumps({"made": 1, "seed": int(sys.argv[3])}))
        return
    wpath, apath, bpath, mode, batch, threads = sys.argv[1:7]
    batch, threads = int(batch), int(threads)
    torch.set_num_threads(threads)
    net = inception_ref.fid_inception()
    w, _ = st.load(wpath)
    sd = net.state_dict()
    net.load_state_dict({k: torch.from_numpy(w[k]) if k in w else sd[k] for k in sd})
    a = st.load(apath)[0]["images"]
    b = st.load(bpath)[0]["images"]
    pool_features(net, a[:batch], mode, batch)  # warm-up
    t0 = time.perf_counter()
    fa = pool_features(net, a, mode, batch)
    secs = time.perf_counter() - t0
    fb = pool_features(net, b, mode, batch)
    fid, _ = fid_ref.frechet(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    print(json.dumps({"images_per_s": len(a) / secs, "fid": float(fid)}))


if __name__ == "__main__":
    main()
