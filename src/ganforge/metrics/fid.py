"""Fréchet Inception Distance (Heusel et al. 2017, TTUR) from feature statistics.

FID = ||mu_r - mu_g||^2 + Tr(Sigma_r) + Tr(Sigma_g) - 2 Tr((Sigma_r Sigma_g)^(1/2))

Statistics follow NVIDIA's StyleGAN2-ADA `FeatureStats`: float64 running sums of float32 features,
mu = sum(x) / N and Sigma = sum(x x^T) / N - mu mu^T, i.e. the 1/N (maximum-likelihood) covariance.
pytorch-fid / clean-fid / torch-fidelity use np.cov (1/(N-1)). The difference is a factor N/(N-1) on
Sigma: negligible at N = 50k (~1e-4 relative on the trace terms), visible below a few thousand samples.
We keep NVIDIA's choice because the StyleGAN papers' numbers were computed that way.
"""

from __future__ import annotations

import warnings

import numpy as np


class FeatureStats:
    """Accumulates mean/covariance of features in float64 (optionally keeps all features, for KID/P&R).

    append(x): x [n, D] float32/float64 array or tensor.  mean() -> [D], cov() -> [D, D] (1/N).
    """

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = True):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.num_items = 0
        self.num_features = None
        self.raw_mean = None
        self.raw_cov = None
        self.all_features = []

    def append(self, x):
        x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be [n, D], got shape {x.shape}")
        if self.num_features is None:
            self.num_features = x.shape[1]
            if self.capture_mean_cov:
                self.raw_mean = np.zeros([x.shape[1]], dtype=np.float64)
                self.raw_cov = np.zeros([x.shape[1], x.shape[1]], dtype=np.float64)
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def get_all(self) -> np.ndarray:
        return np.concatenate(self.all_features, axis=0)

    def mean(self) -> np.ndarray:
        return self.raw_mean / self.num_items

    def cov(self) -> np.ndarray:
        mu = self.mean()
        return self.raw_cov / self.num_items - np.outer(mu, mu)


def mean_cov(features: np.ndarray):
    """(mu, Sigma) of features [N, D] with the 1/N covariance (see the module docstring)."""
    s = FeatureStats()
    s.append(features)
    return s.mean(), s.cov()


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """scipy.linalg.sqrtm without its console output: the `disp=False` behaviour across scipy versions
    (scipy >= 1.17 deprecates `disp`; without it old versions only print a warning, the result is equal)."""
    import scipy.linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = scipy.linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = "sqrtm", eps: float = 1e-6) -> float:
    """Tr((Sigma1 Sigma2)^(1/2)).

    method='sqrtm' (reference: TTUR / pytorch-fid / NVIDIA): scipy.linalg.sqrtm(Sigma1 Sigma2); if the
        result is not finite, retry with eps*I added to both covariances; take the real part.
    method='eigh': sum_i sqrt(max(lambda_i, 0)) with lambda the eigenvalues of the symmetric PSD matrix
        A Sigma2 A, A = Sigma1^(1/2) (same spectrum as Sigma1 Sigma2). Measured on a 2-core CPU, D = 2048:
        same value to ~1e-14 relative on full-rank covariances, 3-5x faster than sqrtm (22-39 s vs 100-140 s).
    """
    if method == "sqrtm":
        covmean = _sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        return float(np.real(np.trace(covmean)))
    if method == "eigh":
        lam1, v1 = np.linalg.eigh(sigma1)
        a = (v1 * np.sqrt(np.clip(lam1, 0, None))) @ v1.T
        lam = np.linalg.eigvalsh(a @ sigma2 @ a)
        return float(np.sqrt(np.clip(lam, 0, None)).sum())
    raise ValueError(f"unknown method {method!r}")


def frechet_distance(mu1, sigma1, mu2, sigma2, method: str = "sqrtm") -> float:
    """FID = ||mu1 - mu2||^2 + Tr(Sigma1) + Tr(Sigma2) - 2 Tr((Sigma1 Sigma2)^(1/2)).

    mu*: [D] float64, sigma*: [D, D] float64.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2
    tr = trace_sqrt_product(sigma1, sigma2, method)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr)


def trace_sqrt_product_from_features(x1: np.ndarray, x2: np.ndarray) -> float:
    """Tr((Sigma1 Sigma2)^(1/2)) straight from two feature sets, exact for the 1/N covariances:

    Sigma_k = X_k^T X_k / N_k with X_k the centred features, and the non-zero eigenvalues of Sigma1 Sigma2
    are those of M M^T / (N1 N2), M = X1 X2^T [N1, N2]; hence Tr(...)^(1/2) = ||M||_* / sqrt(N1 N2)
    (nuclear norm = sum of singular values). Costs O(N1 N2 D) instead of O(D^3): used when N < D, where
    the D x D covariances are rank-deficient and sqrtm is both slow and ill-conditioned.
    x1: [N1, D], x2: [N2, D]
    """
    c1 = np.asarray(x1, np.float64)
    c2 = np.asarray(x2, np.float64)
    c1 = c1 - c1.mean(axis=0)
    c2 = c2 - c2.mean(axis=0)
    s = np.linalg.svd(c1 @ c2.T, compute_uv=False)
    return float(s.sum() / np.sqrt(c1.shape[0] * c2.shape[0]))


def fid_from_features(x1: np.ndarray, x2: np.ndarray, method: str = "sqrtm") -> float:
    """FID of two feature sets [N1, D], [N2, D] (1/N covariances).

    With min(N1, N2) < D the trace term comes from `trace_sqrt_product_from_features` (exact, fast);
    otherwise from `trace_sqrt_product(method)` on the covariance matrices (the reference path).
    """
    mu1, s1 = mean_cov(x1)
    mu2, s2 = mean_cov(x2)
    if min(len(x1), len(x2)) < x1.shape[1]:
        diff = mu1 - mu2
        tr = trace_sqrt_product_from_features(x1, x2)
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr)
    return frechet_distance(mu1, s1, mu2, s2, method=method)
