"""Fréchet distance of Fashion-MNIST sample sets against the 10k test images, in the
penultimate (128-d) features of a small CNN classifier trained here with PyTorch — an
interim judge until libsadm's own classifier (evaluation issue) exists — and, as a
second opinion, in pixel space. Used by bench/sadm_experiment.sh.

usage: fd_fmnist.py CACHE_DIR SAMPLES.safetensors [SAMPLES.safetensors ...]
  CACHE_DIR keeps the classifier (trained once, 2 epochs, seed 0) and the test statistics.
  SAMPLES: `sadm sample --out-tensor` files (samples (N,1,32,32) in [-1, 1]).
Prints one JSON line per sample file, and one for the floor: the same number of training
images (real data the model learnt from) against the test set.
"""
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))

import numpy as np  # noqa: E402
import torch as th  # noqa: E402
import torch.nn as nn  # noqa: E402

import st  # noqa: E402

DATA = os.environ.get("SADM_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")


def idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(self.body(x))


def classifier(cache):
    path = os.path.join(cache, "classifier.pt")
    net = Net()
    if os.path.exists(path):
        net.load_state_dict(th.load(path))
        return net.eval()
    th.manual_seed(0)
    x = th.from_numpy(idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    y = th.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    opt = th.optim.Adam(net.parameters(), lr=1e-3)
    for epoch in range(2):
        perm = th.randperm(len(x))
        for i in range(0, len(x), 128):
            b = perm[i:i + 128]
            loss = nn.functional.cross_entropy(net(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    th.save(net.state_dict(), path)
    return net.eval()


def features(net, x01):
    with th.no_grad():
        return np.concatenate([net.body(th.from_numpy(x01[i:i + 500])).double().numpy() for i in range(0, len(x01), 500)])


def stats(f):
    return f.mean(axis=0), np.cov(f, rowvar=False)


def sqrtm_psd(a):
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet(s1, s2):
    (m1, c1), (m2, c2) = s1, s2
    r = sqrtm_psd(c1)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(sqrtm_psd(r @ c2 @ r)))


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    th.set_num_threads(os.cpu_count() or 1)
    cache = sys.argv[1]
    os.makedirs(cache, exist_ok=True)
    net = classifier(cache)
    test = idx("t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
    acc = float((net(th.from_numpy(test)).argmax(1).numpy() == idx("t10k-labels-idx1-ubyte.gz")).mean())
    ref_f, ref_p = stats(features(net, test)), stats(test.reshape(len(test), -1).astype(np.float64))
    n = None
    for path in sys.argv[2:]:
        s, _ = st.load(path)
        x = np.clip((s["samples"][:, :, 2:30, 2:30] + 1) / 2, 0, 1).astype(np.float32)  # undo the 2-pixel padding
        n = len(x)
        print(json.dumps({"file": path, "n": n, "fd_classifier": frechet(stats(features(net, x)), ref_f),
                          "fd_pixels": frechet(stats(x.reshape(n, -1).astype(np.float64)), ref_p),
                          "classifier_test_accuracy": acc}), flush=True)
    train = idx("train-images-idx3-ubyte.gz")
    pick = np.random.default_rng(0).choice(len(train), n, replace=False)
    x = train[pick].astype(np.float32)[:, None] / 255.0
    print(json.dumps({"file": "floor: %d training images" % n, "n": n,
                      "fd_classifier": frechet(stats(features(net, x)), ref_f),
                      "fd_pixels": frechet(stats(x.reshape(n, -1).astype(np.float64)), ref_p),
                      "classifier_test_accuracy": acc}), flush=True)


if __name__ == "__main__":
    main()
