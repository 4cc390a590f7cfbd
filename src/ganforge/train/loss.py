"""StyleGAN2 training objectives (Karras et al. 2020, §2-3 and Appendix B; NVIDIA's
stylegan2-ada-pytorch `StyleGAN2Loss`). Each equation lives in one function below.

Shapes: logits [N, 1], images [N, C, H, W], ws [N, num_ws, w_dim].
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

# Style mixing lives with the latents; re-exported here for the training loop (the same function).
from ganforge.models.latents import mix_styles

R1_INTERVAL = 16           # lazy regularization: R1 every 16 minibatches (StyleGAN2 §3.1)
PL_INTERVAL = 4            # lazy regularization: path length every 4 minibatches
PL_WEIGHT = 2.0            # w_pl, weight of the path length penalty (Appendix B)
PL_DECAY = 0.01            # running mean of the path length, `a` in eq. 4
PL_BATCH_SHRINK = 2        # the path length term uses half the minibatch
STYLE_MIXING_PROB = 0.9    # style-mixing regularization probability (StyleGAN §3.1)
GRAD_NAN = 0.0             # gradient sanitising before every optimizer step
GRAD_POSINF = 1e5
GRAD_NEGINF = -1e5


def generator_logistic_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic generator loss (Goodfellow et al. 2014, as in StyleGAN2).

    L_G = softplus(-D(G(z)))  =  -log sigmoid(D(G(z)))

    fake_logits: [N, 1] -> per-sample loss [N, 1]
    """
    return F.softplus(-fake_logits)


def discriminator_logistic_loss(fake_logits: torch.Tensor | None, real_logits: torch.Tensor | None):
    """Logistic discriminator loss, split into its fake and real halves.

    L_D = softplus(D(G(z))) + softplus(-D(x))

    fake_logits, real_logits: [N, 1] (either may be None) -> (loss_fake [N, 1] | None, loss_real [N, 1] | None)
    """
    loss_fake = F.softplus(fake_logits) if fake_logits is not None else None
    loss_real = F.softplus(-real_logits) if real_logits is not None else None
    return loss_fake, loss_real


def r1_penalty(real_logits: torch.Tensor, real_img: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 regularization on real data (Mescheder et al. 2018, eq. 9; StyleGAN2 uses it lazily).

    R1 = gamma / 2 * || grad_x D(x) ||^2        (the norm over all pixels and channels of one image)

    The gradient is taken with create_graph=True so the penalty itself can be differentiated.
    real_logits: [N, 1] computed from real_img; real_img: [N, C, H, W] with requires_grad
    returns per-sample penalty [N]
    """
    (grad,) = torch.autograd.grad(outputs=real_logits.sum(), inputs=real_img, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3]) * (gamma / 2)


def path_length_noise(img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The random image-space direction y of the path length regularizer (StyleGAN2 eq. 4).

    y ~ N(0, I) / sqrt(H * W), so that E||J_w^T y|| does not depend on the image resolution.

    img: [N, C, H, W] -> y [N, C, H, W]
    """
    h, w = img.shape[2], img.shape[3]
    y = torch.randn(img.shape, generator=generator, device=generator.device if generator is not None else img.device)
    return y.to(img.device) / math.sqrt(h * w)


def path_lengths(img: torch.Tensor, ws: torch.Tensor, pl_noise: torch.Tensor) -> torch.Tensor:
    """Per-sample path length || J_w^T y ||_2 (StyleGAN2 eq. 4), with J_w = dg(w)/dw.

    J_w^T y = grad_w (g(w) . y); its squared norm is summed over w_dim and averaged over the
    num_ws copies of w, then square-rooted (NVIDIA: pl_grads.square().sum(2).mean(1).sqrt()).

    img: [N, C, H, W] = g(ws); ws: [N, num_ws, w_dim] (requires grad); pl_noise: [N, C, H, W]
    returns [N] (differentiable, create_graph=True)
    """
    (grad,) = torch.autograd.grad(outputs=(img * pl_noise).sum(), inputs=ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: torch.Tensor, pl_mean: torch.Tensor, pl_decay: float = PL_DECAY,
                        global_mean: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """Path length regularization (StyleGAN2 eq. 4) with the running target a.

        a'        = a + decay * (mean_i |J^T y|_i - a)                (a tracked across steps)
        penalty_i = (|J^T y|_i - a')^2

    As in NVIDIA's code, a' is not detached: the gradient also flows through the batch mean in a'.
    With data parallelism the mean is over the global batch: `global_mean(x)` averages a detached
    scalar over all ranks (identity on one process). The gradient through a' is then written as a
    value-zero surrogate, -2 * decay * mean_global(l - a') * (m_local - stop_grad(m_local)), so that
    averaging the per-rank gradients gives exactly the single-process gradient.

    lengths: [N] (differentiable); pl_mean: [] buffer a (not modified here)
    returns (penalty [N], new a' [] detached)
    """
    m_local = lengths.mean()
    m_global = global_mean(m_local.detach()) if global_mean is not None else m_local.detach()
    new_mean = pl_mean.lerp(m_global, pl_decay).detach()
    dev = lengths - new_mean
    centred = global_mean(dev.detach().mean()) if global_mean is not None else dev.detach().mean()
    surrogate = -2 * pl_decay * centred * (m_local - m_local.detach())
    return dev.square() + surrogate, new_mean


def style_mixing_cutoff(batch: int, num_ws: int, prob: float = STYLE_MIXING_PROB,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample crossover layer of style-mixing regularization (StyleGAN §3.1).

    cutoff ~ U{1, ..., num_ws - 1} with probability `prob`, else num_ws (no mixing); layers
    [0, cutoff) take w1 and layers [cutoff, num_ws) take w2: mix_styles(w1, w2, cutoff). NVIDIA
    draws one cutoff per minibatch per GPU; drawing one per sample gives the same marginal and does
    not depend on how the batch is split across GPUs.

    returns int64 [batch]
    """
    if prob <= 0 or num_ws < 2:
        return torch.full([batch], num_ws, dtype=torch.int64)
    cutoff = torch.randint(1, num_ws, [batch], generator=generator, dtype=torch.int64)
    keep = torch.rand([batch], generator=generator) >= prob
    return torch.where(keep, torch.full_like(cutoff, num_ws), cutoff)


def sanitize_gradients(params) -> None:
    """Replace NaN/Inf in .grad in place: nan -> 0, +inf -> 1e5, -inf -> -1e5 (NVIDIA's loop)."""
    for p in params:
        if p.grad is not None:
            torch.nan_to_num(p.grad, nan=GRAD_NAN, posinf=GRAD_POSINF, neginf=GRAD_NEGINF, out=p.grad)


__all__ = [
    "R1_INTERVAL", "PL_INTERVAL", "PL_WEIGHT", "PL_DECAY", "PL_BATCH_SHRINK", "STYLE_MIXING_PROB",
    "generator_logistic_loss", "discriminator_logistic_loss", "r1_penalty", "path_length_noise",
    "path_lengths", "path_length_penalty", "style_mixing_cutoff", "mix_styles", "sanitize_gradients",
]
