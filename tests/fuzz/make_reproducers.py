#!/usr/bin/env python3
"""Writes the hostile-file reproducers of issue 18 into tests/fuzz/regress/<harness>/.

Each file is small and committed; this script documents how it was made (and remakes
it: python3 tests/fuzz/make_reproducers.py). The regression tests in tests/test_*.c
and the fuzz harnesses (tests/fuzz/run.sh) read them. Needs numpy and Pillow (Debian's
python3-numpy, python3-pil).
"""
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regress")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy_bytes(descr, shape, payload):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h = h + " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload


def npz_with_extra(member, extra):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        zi = zipfile.ZipInfo("x.npy", date_time=(1980, 1, 1, 0, 0, 0))
        zi.extra = extra
        z.writestr(zi, member)
    return bytearray(buf.getvalue())


def central_entry(b):
    return b.find(b"PK\x01\x02")


def npz_reproducers():
    member = npy_bytes("<f4", "(2,)", np.arange(2, dtype="<f4").tobytes())
    # 1. zip64 extra field whose declared length runs past the entry: sizes marked
    #    0xFFFFFFFF send the reader to 16 declared bytes of which only 8 exist.
    b = npz_with_extra(member, b"\x01\x00\x08\x00" + struct.pack("<Q", len(member)))
    c = central_entry(b)
    struct.pack_into("<II", b, c + 20, 0xFFFFFFFF, 0xFFFFFFFF)  # compressed, uncompressed
    nlen = struct.unpack_from("<H", b, c + 28)[0]
    struct.pack_into("<H", b, c + 46 + nlen + 2, 16)  # the extra field's own length
    put("npz", "zip64-extra-overrun.npz", bytes(b))
    # 2. a shape whose byte count wraps 64 bits: (2^62+1) * 2 * 2 bytes = 4 (mod 2^64)
    m = npy_bytes("|u1", "(%d, 2, 2)" % (2**62 + 1), b"\x01\x02\x03\x04")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("arr_0.npy", date_time=(1980, 1, 1, 0, 0, 0)), m)
    put("npz", "shape-overflow.npz", buf.getvalue())
    # 3. a directory that claims 65535 members in a tiny file
    b = bytearray(npz_with_extra(member, b""))
    e = b.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", b, e + 8, 0xFFFE, 0xFFFE)
    put("npz", "member-count-lie.npz", bytes(b))
    # 4. a zip64 local offset that wraps when 30 is added
    b = npz_with_extra(member, b"\x01\x00\x08\x00" + struct.pack("<Q", 2**64 - 10))
    c = central_entry(b)
    struct.pack_into("<I", b, c + 42, 0xFFFFFFFF)
    put("npz", "offset-wrap.npz", bytes(b))


def safetensors_bytes(tensors, metadata):
    header = {}
    data = b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


DIT_META = {"input_size": "32", "patch_size": "8", "in_channels": "1", "hidden_size": "16", "depth": "1",
            "num_heads": "2", "mlp_ratio": "4", "class_dropout_prob": "0.1", "num_classes": "10",
            "learn_sigma": "True"}


def model_reproducers():
    one = ("F32", (1,), b"\0\0\0\0")
    # a 10^7-deep DiT in a few hundred bytes: must be refused before anything is allocated
    put("model", "dit-depth-1e7.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, depth="10000000")))
    # sizes that overflow int (and products that overflow size_t)
    put("model", "dit-hidden-overflow.safetensors",
        safetensors_bytes({"x": one}, dict(DIT_META, hidden_size="999999996", num_heads="4")))
    put("model", "dit-input-huge.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, input_size="800000000", patch_size="2")))
    put("model", "dit-mlp-ratio-nan.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, mlp_ratio="nan")))
    put("model", "dit-mlp-ratio-huge.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, mlp_ratio="1e30")))
    put("model", "dit-classes-huge.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, num_classes="1000000000")))
    put("model", "dit-depth-fraction.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, depth="2.5")))
    put("model", "dit-depth-space.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, depth=" 1")))
    put("model", "dit-dropout-nan.safetensors", safetensors_bytes({"x": one}, dict(DIT_META, class_dropout_prob="nan")))


def dataset_reproducers():
    x = np.zeros((2, 1, 4, 4), "<f4").tobytes()
    y = np.array([0, 1], "<i8").tobytes()
    t = {"x": ("F32", (2, 1, 4, 4), x), "y": ("I64", (2,), y)}
    put("dataset", "num-classes-4x.safetensors", safetensors_bytes(t, {"num_classes": "4x"}))
    put("dataset", "num-classes-huge.safetensors", safetensors_bytes(t, {"num_classes": "99999999999"}))
    put("dataset", "label-huge.safetensors",
        safetensors_bytes({"x": t["x"], "y": ("I64", (2,), np.array([0, 2**40], "<i8").tobytes())}, None))


def image_reproducers():
    from PIL import Image
    # a JPEG that declares 16384 x 16784 = 275 M pixels in a few hundred bytes
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 30, 200)).save(buf, "JPEG", quality=50)
    b = bytearray(buf.getvalue())
    sof = b.find(b"\xff\xc0")
    struct.pack_into(">HH", b, sof + 5, 16784, 16384)  # height, width
    put("image", "jpeg-275M-pixels.jpg", bytes(b))
    # a PNG that declares 200000 x 200000 pixels (IHDR CRC fixed up so libpng reads on)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    b = bytearray(buf.getvalue())
    struct.pack_into(">II", b, 16, 200000, 200000)
    import zlib
    struct.pack_into(">I", b, 29, zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    put("image", "png-40G-pixels.png", bytes(b))


def latents_reproducers():
    # found by fuzz_latents: "images" was trusted for the label allocation (343 GB here)
    m = {"format": "sadm-latents", "version": 1, "dtype": "F32", "latent_shape": [4, 2, 2], "num_classes": 2,
         "images": 42949672964, "settings_fnv1a": "00000000000000aa", "complete": True,
         "shards": [{"file": "shard-000000.safetensors", "first": 0, "rows": 3}, {"file": 1, "rows": 0}]}
    put("latents", "manifest-images-42949672964.json", json.dumps(m).encode())


if __name__ == "__main__":
    npz_reproducers()
    model_reproducers()
    dataset_reproducers()
    image_reproducers()
    latents_reproducers()
    print("reproducers written to", OUT, file=sys.stderr)
