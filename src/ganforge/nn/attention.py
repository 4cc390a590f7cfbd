"""Self-attention (SAGAN, Zhang et al. 2019), in the form BigGAN's G and D use it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.nn.spectral_norm import SN_EPS, SNConv2d


def self_attention(x: torch.Tensor, theta: torch.Tensor, phi: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The attention read-out of SAGAN (its eq. 1-2, with BigGAN's 2x2 max-pooled keys and values).

    beta_{i,j} = softmax_j(theta_i . phi_j)        attention of query position i on key position j
    o_i        = sum_j beta_{i,j} g_j

    x (only for the spatial shape): [batch, C, H, W]
    theta: [batch, Ck, H, W] (queries), phi: [batch, Ck, H/2, W/2] (keys), g: [batch, Cv, H/2, W/2] (values)
    returns o: [batch, Cv, H, W]
    """
    n, _, h, w = x.shape
    q = theta.reshape(n, theta.shape[1], h * w)
    k = phi.reshape(n, phi.shape[1], -1)
    v = g.reshape(n, g.shape[1], -1)
    beta = F.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)       # [batch, HW, HW/4]
    return torch.bmm(v, beta.transpose(1, 2)).reshape(n, v.shape[1], h, w)


class SelfAttention(nn.Module):
    """y = x + gamma * W_o o(x): SAGAN self-attention with a learned gain gamma that starts at 0, so a
    new attention layer is the identity (BigGAN-PyTorch layers.Attention; pytorch-pretrained-BigGAN SelfAttn).

    theta, phi: 1x1 SN convs C -> C/8; g: C -> C/2; phi(x) and g(x) are 2x2 max-pooled; o: C/2 -> C; no biases.
    x: [batch, C, H, W] (H, W even) -> [batch, C, H, W]
    """

    def __init__(self, channels: int, sn_eps: float = SN_EPS, sn_eval_mode: str = "stored"):
        super().__init__()
        if channels % 8:
            raise ValueError(f"self-attention needs a channel count divisible by 8, got {channels}")
        self.channels = channels

        def conv(cin, cout):
            return SNConv2d(cin, cout, kernel_size=1, padding=0, bias=False, sn_eps=sn_eps, sn_eval_mode=sn_eval_mode)

        self.theta = conv(channels, channels // 8)
        self.phi = conv(channels, channels // 8)
        self.g = conv(channels, channels // 2)
        self.o = conv(channels // 2, channels)
        self.gamma = nn.Parameter(torch.zeros([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self_attention(x, self.theta(x), F.max_pool2d(self.phi(x), 2), F.max_pool2d(self.g(x), 2))
        return x + self.gamma * self.o(o)


__all__ = ["self_attention", "SelfAttention"]
