"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs")."""

from __future__ import annotations

import numpy as np

KID_NUM_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x^T y / d + 1)^3, the cubic kernel of KID.  x: [m, d], y: [n, d] -> [m, n]."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic kernel, equal subset sizes m:

    MMD^2_u = [sum_{i!=j} k(x_i,x_j) + sum_{i!=j} k(y_i,y_j)] / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2
    x, y: [m, d]
    """
    m = x.shape[0]
    a = polynomial_kernel(x, x) + polynomial_kernel(y, y)
    b = polynomial_kernel(x, y)
    return float((a.sum() - np.trace(a)) / (m * (m - 1)) - 2 * b.sum() / (m * m))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = KID_NUM_SUBSETS,
                              max_subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> float:
    """KID = mean over `num_subsets` random subsets of MMD^2_u (see `mmd2_unbiased`).

    Subsets of m = min(n_real, n_fake, max_subset_size) are drawn without replacement, independently
    from each set (NVIDIA / clean-fid protocol; the RNG is seeded here, unseeded there). float64.
    real: [n_real, d], fake: [n_fake, d]
    """
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.RandomState(seed)
    t = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        t += mmd2_unbiased(x, y)
    return t / num_subsets
