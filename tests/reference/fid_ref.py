"""Reference statistics and Fréchet distances for tests/test_eval.c: numpy's mean and
covariance, and the Fréchet distance exactly as pytorch-fid's calculate_frechet_distance
computes it (scipy.linalg.sqrtm of sigma1 @ sigma2, with its eps-offset fallback when the
product is singular, and the real part taken).

Also the Inception Score and improved precision/recall written directly from ADM's
evaluator (compute_inception_score; ManifoldEstimator with k = 3), in float64.

usage: fid_ref.py stats FEATS.safetensors OUT.safetensors     (x (n, d) float32 -> mu, sigma)
       fid_ref.py fid STATS.safetensors OUT.safetensors       (mu1, s1, mu2, s2 -> fid, offset)
       fid_ref.py is LOGITS.safetensors OUT.safetensors SPLIT (logits (n, c) -> is)
       fid_ref.py pr FEATS.safetensors OUT.safetensors        (ref, sample -> precision, recall)
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


def inception_score(logits, split_size):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    preds = e / e.sum(axis=1, keepdims=True)
    scores = []
    for i in range(0, len(preds), split_size):
        part = preds[i:i + split_size]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores))


def sq_dist(a, b):
    return np.maximum((a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :], 0)


def precision_recall(ref, sample, k=3):
    r_ref = np.partition(sq_dist(ref, ref), k, axis=1)[:, k]
    r_sam = np.partition(sq_dist(sample, sample), k, axis=1)[:, k]
    precision = np.mean(np.any(sq_dist(sample, ref) <= r_ref[None, :], axis=1))
    recall = np.mean(np.any(sq_dist(ref, sample) <= r_sam[None, :], axis=1))
    return precision, recall


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "is":
        t, _ = st.load(sys.argv[2])
        st.save(sys.argv[3], {"is": np.array([inception_score(t["logits"].astype(np.float64), int(sys.argv[4]))])})
        return
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    t, _ = st.load(sys.argv[2])
    if sys.argv[1] == "stats":
        x = t["x"].astype(np.float64)
        st.save(sys.argv[3], {"mu": x.mean(axis=0), "sigma": np.cov(x, rowvar=False)})
    elif sys.argv[1] == "fid":
        fid, offset = frechet(t["mu1"], t["s1"], t["mu2"], t["s2"])
        st.save(sys.argv[3], {"fid": np.array([fid]), "offset": np.array([offset])})
    elif sys.argv[1] == "pr":
        p, r = precision_recall(t["ref"].astype(np.float64), t["sample"].astype(np.float64))
        st.save(sys.argv[3], {"precision": np.array([p]), "recall": np.array([r])})
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
