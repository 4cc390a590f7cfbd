"""Improved precision and recall (Kynkaanniemi et al. 2019) on VGG16 fc2 features, k = 3."""

from __future__ import annotations

import torch

PR_NHOOD_SIZE = 3


def _pairwise(a: torch.Tensor, b: torch.Tensor, col_batch: int) -> torch.Tensor:
    return torch.cat([torch.cdist(a, b[j:j + col_batch]) for j in range(0, b.shape[0], col_batch)], dim=1)


def manifold_radii(feats: torch.Tensor, k: int = PR_NHOOD_SIZE, row_batch: int = 1000,
                   col_batch: int = 10000) -> torch.Tensor:
    """r_i = distance from feats[i] to its k-th nearest neighbour in the set, the point itself counted as
    neighbour 0 (i.e. the (k+1)-th smallest distance).  feats: [N, D] -> [N]."""
    out = []
    for i in range(0, feats.shape[0], row_batch):
        d = _pairwise(feats[i:i + row_batch], feats, col_batch)
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def fraction_in_manifold(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor,
                         row_batch: int = 1000, col_batch: int = 10000) -> float:
    """Fraction of probes p with  exists m in manifold: ||p - m|| <= r_m.  probes [P, D], manifold [M, D]."""
    inside = []
    for i in range(0, probes.shape[0], row_batch):
        hit = torch.zeros(min(row_batch, probes.shape[0] - i), dtype=torch.bool, device=probes.device)
        for j in range(0, manifold.shape[0], col_batch):
            d = torch.cdist(probes[i:i + row_batch], manifold[j:j + col_batch])
            hit |= (d <= radii[j:j + col_batch][None, :]).any(dim=1)
        inside.append(hit)
    return torch.cat(inside).float().mean().item()


def precision_recall(real, fake, k: int = PR_NHOOD_SIZE, row_batch: int = 1000, col_batch: int = 10000):
    """precision = fraction of generated samples inside the real manifold,
    recall    = fraction of real samples inside the generated manifold,
    where a manifold is the union of balls around its points with radius = distance to the k-th NN.
    real: [Nr, D], fake: [Ng, D] (float32) -> (precision, recall)."""
    real = torch.as_tensor(real, dtype=torch.float32)
    fake = torch.as_tensor(fake, dtype=torch.float32)
    r_real = manifold_radii(real, k, row_batch, col_batch)
    r_fake = manifold_radii(fake, k, row_batch, col_batch)
    precision = fraction_in_manifold(fake, real, r_real, row_batch, col_batch)
    recall = fraction_in_manifold(real, fake, r_fake, row_batch, col_batch)
    return precision, recall
