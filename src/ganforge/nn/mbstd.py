"""Minibatch standard deviation (Progressive GAN §3), the discriminator's view of sample variety."""

from __future__ import annotations

import torch
from torch import nn

MBSTD_EPS = 1e-8


def minibatch_stddev(x: torch.Tensor, group_size: int | None = 4, num_channels: int = 1) -> torch.Tensor:
    """Append the average per-group standard deviation as extra feature maps.

    Samples are split into groups of G = min(group_size, N); sample i belongs to group i mod (N/G).
    Channels are split into F = num_channels parts of C/F channels.
        sd[n, f] = mean_{c in part f, h, w} sqrt( Var_{g in group n}(x[g, c, h, w]) + 1e-8 )
    (the variance is the biased one, over the G members of the group), tiled over the group
    members and pixels and concatenated as F new channels.

    x: [N, C, H, W] with N divisible by G and C by F
    returns [N, C + num_channels, H, W]
    """
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    if n % g != 0:
        raise ValueError(f"minibatch stddev: batch size {n} is not divisible by the group size {g}; "
                         f"use a batch that is a multiple of {g}")
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)              # [G, n, F, c, H, W]
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + MBSTD_EPS).sqrt()     # [n, F, c, H, W]
    y = y.mean(dim=[2, 3, 4])                           # [n, F]
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)       # [N, F, H, W]
    return torch.cat([x, y.to(x.dtype)], dim=1)


class MinibatchStdLayer(nn.Module):
    def __init__(self, group_size: int | None = 4, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size, self.num_channels)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
