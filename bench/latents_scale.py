"""Writes a folder of synthetic latent shards in sadm encode's layout (issue 14, part 3),
so that `sadm train --data DIR` can be measured on ImageNet-sized data without encoding
ImageNet: N rows of (4, S, S) BF16 random latents with x_flip, labels mod 1000, shards of
4096 rows, a manifest naming one settings hash. Used by bench/latents_scale.sh.

usage: latents_scale.py DIR N [S]
"""
import json
import os
import struct
import sys

import numpy as np


def save(path, tensors, meta):
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".part", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".part", path)


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    out, n = sys.argv[1], int(sys.argv[2])
    s = int(sys.argv[3]) if len(sys.argv) == 4 else 32
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    per, shards, k = 4096, [], 0
    for first in range(0, n, per):
        rows = min(per, n - first)
        path = os.path.join(out, "shard-%06d.safetensors" % k)
        if not os.path.exists(path):
            bits = lambda: (rng.standard_normal((rows, 4, s, s), dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
            y = (np.arange(first, first + rows, dtype="<i8") % 1000).tobytes()
            meta = {"sadm.settings": "5ca1e5ca1e5ca1e5", "sadm.shard": str(k), "sadm.first": str(first),
                    "sadm.images": str(rows), "sadm.rows": str(rows), "sadm.skipped": "[]"}
            save(path, {"x": ("BF16", (rows, 4, s, s), bits()), "x_flip": ("BF16", (rows, 4, s, s), bits()),
                        "y": ("I64", (rows,), y)}, meta)
        shards.append({"file": os.path.basename(path), "first": first, "images": rows, "rows": rows})
        k += 1
    manifest = {"format": "sadm-latents", "version": 1, "image_size": 8 * s, "flip": True, "posterior": "sample",
                "dtype": "BF16", "seed": 0, "shard_size": per, "scaling_factor": 0.18215, "latent_shape": [4, s, s],
                "num_classes": 1000, "images": n, "files_fnv1a": "synthetic", "vae_fnv1a": "synthetic",
                "settings_fnv1a": "5ca1e5ca1e5ca1e5", "classes": ["c%03d" % i for i in range(1000)],
                "complete": True, "encoded": n, "shards": shards, "corrupt": []}
    json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
