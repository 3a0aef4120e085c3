#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/<harness>/: small
valid files made by NumPy, Pillow and zlib (the model corpus also holds files that
`sadm train` wrote; see tests/fuzz/README). Remake: python3 tests/fuzz/make_corpus.py
(Debian's python3-numpy and python3-pil)."""
import gzip
import io
import json
import os
import struct
import zipfile

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def savez(compressed=False, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, a in tensors.items():
        dt = {"float32": "F32", "float16": "F16", "float64": "F64", "int64": "I64", "uint8": "U8", "int32": "I32"}[a.dtype.name]
        raw = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


rng = np.random.default_rng(0)

# npz: stored, deflated, zip64 (forced), statistics-shaped, images-shaped, 0-d and empty
put("npz", "stored.npz", savez(arr_0=rng.integers(0, 255, (3, 4, 4, 3), dtype=np.uint8)))
put("npz", "deflated.npz", savez(True, mu=rng.standard_normal(5), sigma=np.eye(5)))
put("npz", "types.npz", savez(a=np.arange(3, dtype="<f4"), b=np.arange(2, dtype="<i8"), c=np.array(1.5),
                              d=np.zeros((0, 2), "<f2"), e=np.array([True, False])))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
    with z.open("mu.npy", "w", force_zip64=True) as m:
        np.lib.format.write_array(m, np.arange(4, dtype="<f8"))
put("npz", "zip64.npz", buf.getvalue())

# safetensors: every dtype, metadata, an empty tensor
put("safetensors", "dtypes.safetensors",
    safetensors({"a": rng.standard_normal((2, 3)).astype("<f4"), "b": np.arange(4, dtype="<f2"),
                 "c": np.arange(2, dtype="<f8"), "d": np.arange(3, dtype="<i8"), "e": np.zeros((0, 4), "<f4")},
                {"hidden_size": "8", "note": "corpus"}))
put("safetensors", "empty.safetensors", safetensors({}))

# dataset: x (N,C,S,S) and y int64, with and without num_classes
put("dataset", "latents.safetensors",
    safetensors({"x": rng.standard_normal((3, 4, 4, 4)).astype("<f4"), "y": np.array([0, 2, 1], "<i8")}, {"num_classes": "3"}))
put("dataset", "nometa.safetensors",
    safetensors({"x": rng.standard_normal((2, 1, 4, 4)).astype("<f2"), "y": np.array([1, 0], "<i8")}))

# idx: images (magic 0x803) and labels (0x801), gzip and plain
img = struct.pack(">IIII", 0x803, 2, 28, 28) + bytes(rng.integers(0, 255, 2 * 28 * 28, dtype=np.uint8))
lab = struct.pack(">II", 0x801, 2) + bytes([3, 9])
put("idx", "images.gz", gzip.compress(img, mtime=0))
put("idx", "labels.gz", gzip.compress(lab, mtime=0))
put("idx", "labels-plain", lab)

# images: the colour types and encodings Pillow's convert("RGB") path meets
def save(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


rgb = Image.fromarray(rng.integers(0, 255, (9, 13, 3), dtype=np.uint8), "RGB")
put("image", "rgb.jpg", save(rgb, "JPEG", quality=80))
put("image", "progressive.jpg", save(rgb, "JPEG", quality=60, progressive=True))
put("image", "grey.jpg", save(rgb.convert("L"), "JPEG"))
put("image", "cmyk.jpg", save(rgb.convert("CMYK"), "JPEG"))
put("image", "rgb.png", save(rgb, "PNG"))
put("image", "rgba.png", save(rgb.convert("RGBA"), "PNG"))
put("image", "grey.png", save(rgb.convert("L"), "PNG"))
put("image", "palette.png", save(rgb.convert("P"), "PNG"))
put("image", "bw.png", save(rgb.convert("1"), "PNG"))
put("image", "grey16.png", save(Image.fromarray((rng.integers(0, 65535, (5, 7))).astype(np.uint16)), "PNG"))
