"""Inception Score (Salimans et al. 2016) from class probabilities."""

from __future__ import annotations

import numpy as np

IS_NUM_SPLITS = 10


def inception_score(probs: np.ndarray, num_splits: int = IS_NUM_SPLITS):
    """IS = exp( E_x KL(p(y|x) || p(y)) ), per contiguous split, -> (mean, std) over the splits.

    Split i holds samples [i N / s, (i+1) N / s); p(y) is the split's mean of p(y|x).
    probs: [N, C] softmax outputs (the FID Inception's 1008-way softmax *without* the fc bias). float64.
    """
    probs = np.asarray(probs, np.float64)
    n = probs.shape[0]
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        py = part.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
