"""Batch normalisation as BigGAN's generator uses it: class-conditional (gain and bias predicted from
[shared class embedding, z chunk]) and, for networks imported from pytorch-pretrained-BigGAN, with
running statistics stored per truncation value.

Statistics. With n_stats == 1 the layer keeps ordinary running statistics, running_mean [C] and
running_var [C] (unbiased, momentum 0.1, what F.batch_norm maintains): training normalises with the
batch's moments and updates them; eval uses them. With n_stats > 1 (TF-Hub's BigGAN-deep, 51 rows
for truncation 0, 0.02, ..., 1) the buffers are [n_stats, C], frozen, and eval picks the row for
the truncation value the sampler used (`truncation_statistics`); training still normalises with
the batch's moments but leaves the table alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.nn.spectral_norm import SN_EPS, SNLinear

BN_EPS = 1e-5       # BigGAN-PyTorch's --BN_eps default (TF-Hub's BigGAN-deep uses 1e-4)
BN_MOMENTUM = 0.1


def batch_norm_affine(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, gain: torch.Tensor,
                      bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalise with given statistics, then apply a (per-sample) affine map, as one scale and shift:

    y = (x - mu) / sqrt(var + eps) * gain + bias  =  x * s + (bias - mu * s),   s = gain / sqrt(var + eps)

    x: [batch, C, H, W]; mean, var: [C]; gain, bias: [C] or [batch, C] -> [batch, C, H, W]
    """
    scale = gain * torch.rsqrt(var + eps)
    shift = bias - mean * scale
    if scale.ndim == 1:
        scale, shift = scale.unsqueeze(0), shift.unsqueeze(0)
    return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])


def truncation_statistics(means: torch.Tensor, vars_: torch.Tensor, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The row of a truncation-indexed statistics table for truncation t (pytorch-pretrained-BigGAN's
    BigGANBatchNorm, reproduced exactly so imported networks give the same images):

    step = 1 / (n_stats - 1);  coef, k = modf(t / step)   (Python floats, float64)
    coef == 0:  mu = means[k]
    otherwise:  mu = means[k] * coef + means[k + 1] * (1 - coef)      (same for var)

    The weights are the reverse of linear interpolation, and float rounding makes coef a tiny
    non-zero number for t = 0.14, 0.28, 0.56, 0.58 and 0.94, which then take the neighbouring row;
    both are what the published code does, kept for parity.

    means, vars_: [n_stats, C] -> ([C], [C]); t in (0, 1]
    """
    n_stats = means.shape[0]
    if not 0 < truncation <= 1:
        raise ValueError(f"truncation {truncation} is outside (0, 1], the range of this network's "
                         "truncation-indexed batch-norm statistics")
    coef, start = math.modf(truncation / (1.0 / (n_stats - 1)))
    start = int(start)
    if coef == 0.0:
        return means[start], vars_[start]
    return (means[start] * coef + means[start + 1] * (1 - coef),
            vars_[start] * coef + vars_[start + 1] * (1 - coef))


class _StatisticsBatchNorm(nn.Module):
    """Running statistics (one row, or one per truncation value) and the normalisation itself."""

    def __init__(self, num_features: int, eps: float, momentum: float, n_stats: int):
        super().__init__()
        if n_stats < 1:
            raise ValueError(f"n_stats must be >= 1, got {n_stats}")
        self.num_features, self.eps, self.momentum, self.n_stats = num_features, float(eps), float(momentum), n_stats
        shape = [num_features] if n_stats == 1 else [n_stats, num_features]
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))

    def statistics(self, truncation: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean [C], var [C]) that eval mode normalises with."""
        if self.n_stats == 1:
            return self.running_mean, self.running_var
        return truncation_statistics(self.running_mean, self.running_var, 1.0 if truncation is None else truncation)

    def normalize(self, x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor,
                  truncation: float | None) -> torch.Tensor:
        if self.training:
            update = self.n_stats == 1
            x = F.batch_norm(x, self.running_mean if update else None, self.running_var if update else None,
                             None, None, True, self.momentum, self.eps)
            if gain.ndim == 1:
                return torch.addcmul(bias[None, :, None, None], x, gain[None, :, None, None])
            return torch.addcmul(bias[:, :, None, None], x, gain[:, :, None, None])
        mean, var = self.statistics(truncation)
        return batch_norm_affine(x, mean, var, gain, bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, n_stats={self.n_stats}"


class ConditionalBatchNorm2d(_StatisticsBatchNorm):
    """Class-conditional batch norm (BigGAN §3, "conditional BatchNorm"; de Vries et al. 2017):

    y = BN(x) * (1 + W_gamma h) + W_beta h,     h = [e(c), z_b]   (the shared class embedding
                                                                   and this block's z chunk)
    W_gamma, W_beta: spectrally normalised linear maps without bias, [C, cond_dim].

    x: [batch, C, H, W], h: [batch, cond_dim] -> [batch, C, H, W]
    """

    def __init__(self, num_features: int, cond_dim: int, eps: float = BN_EPS, momentum: float = BN_MOMENTUM,
                 n_stats: int = 1, sn_eps: float = SN_EPS, sn_eval_mode: str = "stored"):
        super().__init__(num_features, eps, momentum, n_stats)
        self.cond_dim = cond_dim
        self.gain = SNLinear(cond_dim, num_features, bias=False, sn_eps=sn_eps, sn_eval_mode=sn_eval_mode)
        self.bias = SNLinear(cond_dim, num_features, bias=False, sn_eps=sn_eps, sn_eval_mode=sn_eval_mode)

    def forward(self, x: torch.Tensor, h: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        return self.normalize(x, 1 + self.gain(h), self.bias(h), truncation)


class BatchNorm2d(_StatisticsBatchNorm):
    """Plain batch norm with a learned gain and bias (G's last normalisation, before ToRGB):

    y = (x - mu) / sqrt(var + eps) * weight + bias

    x: [batch, C, H, W] -> [batch, C, H, W]
    """

    def __init__(self, num_features: int, eps: float = BN_EPS, momentum: float = BN_MOMENTUM, n_stats: int = 1):
        super().__init__(num_features, eps, momentum, n_stats)
        self.weight = nn.Parameter(torch.ones([num_features]))
        self.bias = nn.Parameter(torch.zeros([num_features]))

    def forward(self, x: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        return self.normalize(x, self.weight, self.bias, truncation)


__all__ = ["BN_EPS", "BN_MOMENTUM", "batch_norm_affine", "truncation_statistics", "ConditionalBatchNorm2d",
           "BatchNorm2d"]
