"""The FID Inception-v3 for tests/test_inception.c: torchvision's Inception3 (Debian's
python3-torchvision) with the blocks pytorch-fid patches (average pooling without the
padded zeros in A, C and the first E block, max pooling in the last E block; 1008
classes), random weights and BatchNorm statistics, run in float64 on given images.

usage: inception_ref.py make WEIGHTS.safetensors SEED
       inception_ref.py make WEIGHTS.pth SEED     (the same weights as torch.save writes a state
                                                  dict, num_batches_tracked included, as pytorch-fid's .pth)
       inception_ref.py run WEIGHTS.safetensors IMAGES.safetensors OUT.safetensors
  IMAGES: images (N, H, W, 3) uint8.  OUT: <mode>.pool (N, 2048), <mode>.logits (N, 1008),
  <mode>.spatial (N, 2023) for mode adm and pytorch-fid
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models import inception

import st


class FIDInceptionA(inception.InceptionA):
    def forward(self, x):
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, pool], 1)


class FIDInceptionC(inception.InceptionC):
    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([self.branch1x1(x), b7, d, pool], 1)


class FIDInceptionE(inception.InceptionE):
    def __init__(self, in_channels, max_pool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.max_pool:
            pool = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pool = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pool)], 1)


def fid_inception():
    net = inception.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280, False)
    net.Mixed_7c = FIDInceptionE(2048, True)
    return net.eval()


def make(path, seed):
    torch.manual_seed(seed)
    net = fid_inception()
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, (2.0 / m.weight[0].numel()) ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        net.fc.weight.normal_(0, 2048 ** -0.5)
        net.fc.bias.normal_(0, 0.1)
    if path.endswith(".pth"):
        torch.save(net.state_dict(), path)
        return
    st.save(path, {k: v.numpy() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")})


def tf1_resize(x, size):
    """TensorFlow 1 ResizeBilinear, align_corners False, no half-pixel centres (float64)."""
    n, c, h, w = x.shape
    def axis(inp):
        src = np.arange(size) * (inp / size)
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, inp - 1), src - i0
    y0, y1, ly = axis(h)
    x0, x1, lx = axis(w)
    top = x[:, :, y0][:, :, :, x0] + (x[:, :, y0][:, :, :, x1] - x[:, :, y0][:, :, :, x0]) * lx
    bot = x[:, :, y1][:, :, :, x0] + (x[:, :, y1][:, :, :, x1] - x[:, :, y1][:, :, :, x0]) * lx
    return top + (bot - top) * ly[:, None]


def run(wpath, ipath, opath):
    torch.set_num_threads(1)
    net = fid_inception()
    w, _ = st.load(wpath)
    sd = net.state_dict()
    net.load_state_dict({k: torch.from_numpy(w[k]) if k in w else sd[k] for k in sd})
    net = net.double()
    spatial = []
    net.Mixed_6d.branch1x1.register_forward_hook(lambda mod, inp, out: spatial.append(out))
    img = st.load(ipath)[0]["images"]
    x = img.astype(np.float64).transpose(0, 3, 1, 2)
    out = {}
    for mode in ("adm", "pytorch-fid"):
        if mode == "adm":
            inp = torch.from_numpy((tf1_resize(x, 299) - 128) / 128)
        else:
            inp = F.interpolate(torch.from_numpy(x / 255), size=(299, 299), mode="bilinear", align_corners=False)
            inp = 2 * inp - 1
        spatial.clear()
        with torch.no_grad():
            logits = net(inp)
            # the pool features: the network up to its average pool
            feats = net.avgpool(net.Mixed_7c(net.Mixed_7b(net.Mixed_7a(_to_6e(net, inp))))).flatten(1)
        s = spatial[0][:, :7].permute(0, 2, 3, 1).reshape(len(x), -1)
        out[mode + ".pool"] = feats.float().numpy()
        out[mode + ".logits"] = logits.float().numpy()
        out[mode + ".spatial"] = s.float().numpy()
    st.save(opath, out)


def _to_6e(net, x):
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        x = getattr(net, name)(x)
    return x


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
