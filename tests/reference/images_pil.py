"""Builds a small image folder with Pillow and the samples DiT's train.py would make of it
(ADM's center_crop_arr, copied below, on Image.open(...).convert("RGB")), for
tests/test_images.c.

usage: images_pil.py make ROOT SIZE OUT.safetensors
  ROOT gets classes b_cats/ and a_dogs/ (sorted: a_dogs = 0) with JPEG and PNG files of
  several modes and sizes, one in a nested folder, and a non-image file.
  OUT: crop (N, SIZE, SIZE, 3) uint8 and label (N) int64, in ImageFolder's order.
"""
import os
import sys

import numpy as np
from PIL import Image

import st


def center_crop_arr(pil_image, image_size):  # ADM / DiT train.py
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "make":
        raise SystemExit(__doc__)
    root, size, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rng = np.random.default_rng(0)
    smooth = lambda h, w, c: (np.cumsum(np.cumsum(rng.integers(0, 9, (h, w, c)), 0), 1) % 256).astype(np.uint8)
    files = [
        ("b_cats/c1.jpg", Image.fromarray(smooth(300, 200, 3)), {"quality": 90}),
        ("b_cats/c0.png", Image.fromarray(smooth(50, 77, 3)), {}),
        ("b_cats/deeper/c2.PNG", Image.fromarray(smooth(130, 130, 1)[:, :, 0], "L"), {}),
        ("a_dogs/d0.png", Image.fromarray(smooth(97, 64, 4), "RGBA"), {}),
        ("a_dogs/d1.jpeg", Image.fromarray(smooth(64, 300, 1)[:, :, 0], "L"), {"quality": 75}),
        ("a_dogs/d2.png", Image.fromarray(smooth(40, 41, 3)).convert("P"), {}),
    ]
    for rel, img, kw in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        img.save(path, format="PNG" if rel.lower().endswith("png") else "JPEG", **kw)
    with open(os.path.join(root, "a_dogs", "notes.txt"), "w") as f:
        f.write("not an image\n")
    # ImageFolder's order: classes sorted, then sorted(os.walk) and sorted file names
    crops, labels = [], []
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    for label, cls in enumerate(classes):
        for dirpath, _, names in sorted(os.walk(os.path.join(root, cls))):
            for name in sorted(names):
                if name.lower().endswith((".jpg", ".jpeg", ".png")):
                    img = Image.open(os.path.join(dirpath, name)).convert("RGB")
                    crops.append(center_crop_arr(img, size))
                    labels.append(label)
    st.save(out, {"crop": np.stack(crops).astype(np.uint8), "label": np.array(labels, dtype=np.int64)})


if __name__ == "__main__":
    main()
