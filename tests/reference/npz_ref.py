"""npz files for tests/test_npz.c, written and read by NumPy itself.

usage: npz_ref.py make DIR     writes DIR/stored.npz (np.savez), DIR/deflated.npz
                               (np.savez_compressed), DIR/fortran.npz, DIR/bigendian.npz and
                               DIR/expected.safetensors with the same arrays
       npz_ref.py check FILE.npz EXPECTED.safetensors   np.load(FILE) must hold exactly the
                               expected arrays (names, dtypes, shapes, values)
"""
import os
import sys

import numpy as np

import st


def arrays():
    rng = np.random.default_rng(5)
    return {
        "arr_0": rng.integers(0, 256, size=(100, 32, 32, 3), dtype=np.uint8),  # > 64 KiB: several inflate rounds
        "mu": rng.standard_normal(7),
        "sigma": rng.standard_normal((7, 7)),
        "labels": rng.integers(0, 1000, size=(100,), dtype=np.int64),
        "feats": rng.standard_normal((5, 3)).astype(np.float32),
    }


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        d = sys.argv[2]
        a = arrays()
        np.savez(os.path.join(d, "stored.npz"), **a)
        np.savez_compressed(os.path.join(d, "deflated.npz"), **a)
        np.savez(os.path.join(d, "fortran.npz"), x=np.asfortranarray(a["sigma"]))
        np.savez(os.path.join(d, "bigendian.npz"), x=a["mu"].astype(">f8"))
        st.save(os.path.join(d, "expected.safetensors"), a)
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        got = np.load(sys.argv[2])
        want, _ = st.load(sys.argv[3])
        if sorted(got.files) != sorted(want):
            raise SystemExit("names: %s vs %s" % (sorted(got.files), sorted(want)))
        for k, v in want.items():
            g = got[k]
            if g.dtype != v.dtype or g.shape != v.shape or not np.array_equal(g, v):
                raise SystemExit("%s: %s %s differs from %s %s" % (k, g.dtype, g.shape, v.dtype, v.shape))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
