"""Noise regularization of the projector (StyleGAN2 paper, App. D; NVIDIA projector.py).

The per-pixel noise maps are optimised with the latent, and kept from carrying coherent signal by a
penalty on their lag-1 autocorrelation at every scale of a pyramid (2x2 averaging down to 8x8):

    L_{i,j} = ( mean_{x,y} n_ij(x,y) n_ij(x-1,y) )^2 + ( mean_{x,y} n_ij(x,y) n_ij(x,y-1) )^2
    L_noise = sum_i sum_j L_{i,j}          (total loss: distance + alpha * L_noise, alpha = 1e5)

with circular shifts (torch.roll), as the code does; a map of 8x8 or smaller contributes its own level only.
After every optimiser step each map is renormalised to zero mean and unit (population) variance:

    n <- (n - mean(n)) / sqrt(mean((n - mean(n))^2))

ganforge keeps one set of maps per target (a batch of targets = independent projections), so both the
penalty and the renormalisation are computed per target, never over the batch (rosinality's projector
mixes the targets' statistics: it takes one mean over the whole batch tensor).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

NOISE_PYRAMID_MIN = 8  # the pyramid stops at the first level of 8x8 or smaller


def noise_regularization(noises: Iterable[torch.Tensor]) -> torch.Tensor:
    """L_noise per target.  noises: tensors [N, H, W] (one per noise input, H = W) -> [N]."""
    reg = None
    for v in noises:
        n = v.unsqueeze(1)  # [N, 1, H, W] for avg_pool2d
        while True:
            term = ((n * torch.roll(n, shifts=1, dims=3)).mean(dim=(1, 2, 3)) ** 2
                    + (n * torch.roll(n, shifts=1, dims=2)).mean(dim=(1, 2, 3)) ** 2)
            reg = term if reg is None else reg + term
            if n.shape[2] <= NOISE_PYRAMID_MIN:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    if reg is None:
        raise ValueError("no noise maps to regularize")
    return reg


@torch.no_grad()
def renormalize_noise_(noises: Iterable[torch.Tensor]) -> None:
    """In place, per target: n <- (n - mean) / rms(n - mean) over each [H, W] map.  noises: [N, H, W]."""
    for buf in noises:
        buf -= buf.mean(dim=(1, 2), keepdim=True)
        buf *= buf.square().mean(dim=(1, 2), keepdim=True).rsqrt()
