"""Adam with the lazy-regularization correction (StyleGAN2 §3.1, Appendix B).

When a regularizer runs only every I minibatches (its loss multiplied by I), the optimizer takes
I + 1 steps per I minibatches instead of I. To keep the same effective schedule the learning rate
and the Adam betas are rescaled by c = I / (I + 1):

    lr' = lr * c,    beta_1' = beta_1 ** c,    beta_2' = beta_2 ** c
"""

from __future__ import annotations

import torch

ADAM_BETAS = (0.0, 0.99)   # StyleGAN2's Adam betas
ADAM_EPS = 1e-8


def lazy_regularization_adam(lr: float, betas: tuple[float, float], reg_interval: int | None):
    """(lr', betas') for a network whose regularizer runs every `reg_interval` minibatches
    (None: regularized every step, no correction)."""
    if reg_interval is None:
        return lr, tuple(betas)
    c = reg_interval / (reg_interval + 1)
    return lr * c, tuple(b ** c for b in betas)


def make_adam(params, lr: float, reg_interval: int | None, betas=ADAM_BETAS, eps: float = ADAM_EPS):
    """torch.optim.Adam with the lazy-regularization correction. The fused kernel (one pass over all
    tensors; the same update rule) is used wherever PyTorch has it (CPU, CUDA), the per-tensor loop elsewhere."""
    lr_c, betas_c = lazy_regularization_adam(lr, betas, reg_interval)
    params = list(params)
    dev = params[0].device.type if params else "cpu"
    fused = dev in ("cpu", "cuda") and all(p.dtype == torch.float32 and p.device.type == dev for p in params)
    return torch.optim.Adam(params, lr=lr_c, betas=betas_c, eps=eps, fused=fused or None)


__all__ = ["ADAM_BETAS", "ADAM_EPS", "lazy_regularization_adam", "make_adam"]
