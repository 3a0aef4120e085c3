"""The reference of `sadm encode` (tests/test_encode.c): a small ImageNet-layout folder made
with Pillow, and what diffusers' AutoencoderKL gives for it when the images are prepared as
DiT's train.py / fast-DiT's extract_features.py prepare them (Image.open().convert("RGB"),
ADM's center_crop_arr, ToTensor, Normalize(0.5, 0.5)); run by the diffusers venv's Python.

  encode_ref.py make ROOT
      ROOT/n01.../ with JPEG (RGB, CMYK, grey), PNG (RGBA, palette, grey smaller than the
      crop) files of odd sizes, a corrupt JPEG, an empty PNG and a text file
  encode_ref.py encode VAE_DIR ROOT SIZE OUT.safetensors
      for every image Pillow can open, in ImageFolder's order: mean, logvar of the image and
      mean_flip, logvar_flip of it mirrored (N, C, h, w); y (N) its class; index (N) its
      position among all .jpg/.jpeg/.png files (the corrupt ones included)
"""
import os
import sys

import numpy as np
import safetensors.torch  # noqa: F401  (diffusers 0.27 calls safetensors.torch without importing it)
import torch
from diffusers import AutoencoderKL
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from images_pil import center_crop_arr  # noqa: E402

torch.set_num_threads(1)
EXTENSIONS = (".jpg", ".jpeg", ".png")


def make(root):
    rng = np.random.default_rng(7)
    smooth = lambda h, w, c: (np.cumsum(np.cumsum(rng.integers(0, 9, (h, w, c)), 0), 1) % 256).astype(np.uint8)
    files = [
        ("n01440764/n01440764_10026.JPEG", Image.fromarray(smooth(45, 37, 3)), {"quality": 92}),
        ("n01440764/n01440764_10027.png", Image.fromarray(smooth(20, 30, 1)[:, :, 0], "L"), {}),
        ("n01443537/n01443537_1.JPEG", Image.fromarray(smooth(40, 64, 3)).convert("CMYK"), {"quality": 95}),
        ("n01443537/n01443537_2.png", Image.fromarray(smooth(33, 50, 4), "RGBA"), {}),
        ("n01443537/n01443537_3.png", Image.fromarray(smooth(70, 41, 3)).convert("P"), {}),
        ("n01484850/a.jpeg", Image.fromarray(smooth(64, 40, 1)[:, :, 0], "L"), {"quality": 90}),
        ("n01484850/b.JPEG", Image.fromarray(smooth(33, 33, 3)), {"quality": 85}),
    ]
    for name, im, kw in files:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        im.save(path, **kw)
    with open(os.path.join(root, "n01440764/n01440764_2.JPEG"), "wb") as f:  # a JPEG cut short
        good = open(os.path.join(root, files[0][0]), "rb").read()
        f.write(good[: len(good) * 2 // 3])
    open(os.path.join(root, "n01484850/c.png"), "wb").close()  # empty
    open(os.path.join(root, "n01484850/labels.txt"), "w").write("not an image\n")


def image_folder(root):
    """torchvision's ImageFolder order: classes = sorted sub-folders, files by sorted os.walk."""
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    out = []
    for label, c in enumerate(classes):
        for folder, _, names in sorted(os.walk(os.path.join(root, c))):
            for name in sorted(names):
                if name.lower().endswith(EXTENSIONS):
                    out.append((os.path.join(folder, name), label))
    return out


def encode(vae_dir, root, size, out):
    vae = AutoencoderKL.from_pretrained(vae_dir).eval()
    res = {k: [] for k in ("mean", "logvar", "mean_flip", "logvar_flip")}
    ys, index = [], []
    for i, (path, label) in enumerate(image_folder(root)):
        try:
            im = Image.open(path)
            im.load()
        except Exception:
            continue
        arr = center_crop_arr(im.convert("RGB"), size)
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255.0)
        x = ((x - 0.5) / 0.5).unsqueeze(0)
        with torch.no_grad():
            for suffix, xx in (("", x), ("_flip", torch.flip(x, [3]))):
                post = vae.encode(xx).latent_dist
                res["mean" + suffix].append(post.mean[0].numpy())
                res["logvar" + suffix].append(post.logvar[0].numpy())
        ys.append(label)
        index.append(i)
    tensors = {k: np.stack(v).astype(np.float32) for k, v in res.items()}
    tensors["y"] = np.array(ys, dtype=np.int64)
    tensors["index"] = np.array(index, dtype=np.int64)
    st.save(out, tensors)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "encode":
        encode(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
