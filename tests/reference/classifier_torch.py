"""PyTorch reference of libsadm's Fashion-MNIST classifier (lib/sadm.h section 13), written
from its definition as an nn.Module; used by tests/test_classifier.c.

usage:
  classifier_torch.py model W.safetensors BATCH.safetensors OUT.safetensors
      BATCH: x (N,1,32,32), y (N) int64
      OUT: logits, features, loss (mean cross-entropy), dlogits, grad.<name> of the loss
  classifier_torch.py train W.safetensors BATCH.safetensors OUT.safetensors STEPS LR
      STEPS full-batch AdamW steps (betas 0.9/0.999, eps 1e-8, no weight decay) at
      lr (1 + cos(pi s / STEPS)) / 2 for step s: OUT holds the weights after them
  classifier_torch.py accuracy W.safetensors FMNIST_DIR OUT.safetensors
      OUT: accuracy (F64) and predictions (int64) on the 10k test images, read from the
      IDX files with gzip and padded to 32x32 as libsadm's data set pads them
"""
import gzip
import math
import sys

import numpy as np
import torch as th
import torch.nn as nn
import torch.nn.functional as F

import st


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 8 * 8, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        feat = F.relu(self.fc1(h.flatten(1)))
        return self.fc2(feat), feat


def load(path):
    w, meta = st.load(path)
    assert meta.get("architecture") == "fmnist-cnn-v1", meta
    m = Classifier().double()
    m.load_state_dict({k: th.from_numpy(v).double() for k, v in w.items()})
    return m


def model(wpath, bpath, out):
    m = load(wpath)
    b, _ = st.load(bpath)
    x = th.from_numpy(b["x"]).double()
    y = th.from_numpy(b["y"])
    logits, feat = m(x)
    logits.retain_grad()
    loss = F.cross_entropy(logits, y)
    loss.backward()
    res = {"logits": logits.detach().float().numpy(), "features": feat.detach().float().numpy(),
           "loss": np.array([loss.item()], np.float32), "dlogits": logits.grad.float().numpy()}
    for name, p in m.named_parameters():
        res["grad." + name] = p.grad.float().numpy()
    st.save(out, res)


def train(wpath, bpath, out, steps, lr):
    m = load(wpath)
    b, _ = st.load(bpath)
    x = th.from_numpy(b["x"]).double()
    y = th.from_numpy(b["y"])
    opt = th.optim.AdamW(m.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * s / steps))
        opt.zero_grad()
        F.cross_entropy(m(x)[0], y).backward()
        opt.step()
    st.save(out, {k: v.float().numpy() for k, v in m.state_dict().items()})


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def accuracy(wpath, folder, out):
    m = load(wpath).float()
    images = idx(folder + "/t10k-images-idx3-ubyte.gz")
    labels = idx(folder + "/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x = np.zeros((len(images), 1, 32, 32), np.float32) - 1.0
    x[:, 0, 2:30, 2:30] = images.astype(np.float32) / 127.5 - 1.0
    with th.no_grad():
        pred = th.cat([m(th.from_numpy(x[i:i + 1000]))[0].argmax(1) for i in range(0, len(x), 1000)]).numpy()
    st.save(out, {"accuracy": np.array([(pred == labels).mean()]), "predictions": pred.astype(np.int64)})


if __name__ == "__main__":
    th.set_num_threads(2)
    cmd = sys.argv[1]
    if cmd == "model":
        model(*sys.argv[2:5])
    elif cmd == "train":
        train(*sys.argv[2:5], int(sys.argv[5]), float(sys.argv[6]))
    elif cmd == "accuracy":
        accuracy(*sys.argv[2:5])
    else:
        sys.exit("unknown command " + cmd)
