"""Reference statistics and Fréchet distances for tests/test_eval.c: numpy's mean and
covariance, and the Fréchet distance exactly as pytorch-fid's calculate_frechet_distance
computes it (scipy.linalg.sqrtm of sigma1 @ sigma2, with its eps-offset fallback when the
product is singular, and the real part taken).

usage: fid_ref.py stats FEATS.safetensors OUT.safetensors     (x (n, d) float32 -> mu, sigma)
       fid_ref.py fid STATS.safetensors OUT.safetensors       (mu1, s1, mu2, s2 -> fid, offset)
"""
import sys

import numpy as np
from scipy import linalg

import st


def frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    offset = 0.0
    if not np.isfinite(covmean).all():
        offset = eps
        off = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + off).dot(sigma2 + off))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean), offset


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    t, _ = st.load(sys.argv[2])
    if sys.argv[1] == "stats":
        x = t["x"].astype(np.float64)
        st.save(sys.argv[3], {"mu": x.mean(axis=0), "sigma": np.cov(x, rowvar=False)})
    elif sys.argv[1] == "fid":
        fid, offset = frechet(t["mu1"], t["s1"], t["mu2"], t["s2"])
        st.save(sys.argv[3], {"fid": np.array([fid]), "offset": np.array([offset])})
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
