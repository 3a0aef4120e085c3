"""float32 to the narrow storage types as users' tools round them: numpy's astype(float16)
and torch's .bfloat16() (both round to nearest even). Used by tests/test_safetensors.c.

usage: narrow_ref.py IN.safetensors OUT.safetensors
  IN: x (N) float32;  OUT: h (N) float16, b (N) int16 = the bits of x.bfloat16()
"""
import sys

import numpy as np
import torch

import st


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    t, _ = st.load(sys.argv[1])
    x = t["x"]
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)
    b = torch.from_numpy(x).bfloat16().view(torch.int16).numpy()
    st.save(sys.argv[2], {"h": h, "b": b})


if __name__ == "__main__":
    main()
