"""Exponential moving average of the generator's weights (Karras et al. 2018; NVIDIA's loop).

G_ema is what a trained run samples from. The decay is expressed as a half-life in images, so it
does not depend on the batch size: after ema_kimg * 1000 images an old weight's influence halves.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_half_life_nimg(ema_kimg: float, cur_nimg: int, rampup: float | None) -> float:
    """EMA half-life in images, with NVIDIA's rampup at the start of training.

    ema_nimg = ema_kimg * 1000;  with rampup r:  ema_nimg = min(ema_nimg, cur_nimg * r)
    """
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return ema_nimg


def ema_beta(batch_size: int, ema_nimg: float) -> float:
    """Per-step decay: beta = 0.5 ** (batch / max(ema_nimg, 1e-8)), so beta**(ema_nimg/batch) = 1/2."""
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """theta_ema <- theta + beta * (theta_ema - theta)   (= lerp(theta, theta_ema, beta));
    buffers (w_avg, noise constants) are copied as they are."""
    ema_params = [p for p in G_ema.parameters()]
    params = [p.detach() for p in G.parameters()]
    if len(ema_params) != len(params):
        raise ValueError("G_ema and G have different parameter lists")
    if ema_params:
        torch._foreach_mul_(ema_params, beta)
        torch._foreach_add_(ema_params, params, alpha=1 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


__all__ = ["ema_half_life_nimg", "ema_beta", "update_ema"]
