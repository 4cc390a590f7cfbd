"""Spectral normalisation (Miyato et al. 2018), as BigGAN uses it in G and D.

A weight W (any shape; viewed as the matrix W_mat [out, fan_in] = W.reshape(out, -1)) is used as
    W_SN = W / sigma_0(W),        sigma_0 ~= u^T W_mat v
where (u, v) estimate the top singular pair of W_mat by the power method. The vectors persist in
buffers (`u` [out], `v` [fan_in]) and advance by one power iteration per training forward
(Miyato's Algorithm 1, BigGAN's num_itrs = 1); `sigma` [] holds the latest training estimate of
sigma_0 for monitoring (BigGAN's top-singular-value plots, §4).

In eval mode nothing is written. What eval computes is a per-layer setting, `eval_mode`:
  "stored"      sigma = u^T W v from the stored vectors, no power step (torch.nn.utils.spectral_norm
                and pytorch-pretrained-BigGAN; also ganforge's own networks);
  "power_step"  one power step from the stored u, used and discarded (ajbrock/BigGAN-PyTorch's
                layers.SN, which runs power_iteration(update=self.training) on every forward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SN_EVAL_MODES = ("stored", "power_step")
SN_EPS = 1e-12  # F.normalize's floor on ||x|| (torch's and Miyato's default; BigGAN-PyTorch runs use 1e-6, TF-Hub 1e-4)


def power_iteration(weight_mat: torch.Tensor, u: torch.Tensor, eps: float = SN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the power method for the top singular pair of W (Miyato et al. 2018, Algorithm 1).

    v  = W^T u / max(||W^T u||, eps)
    u' = W v   / max(||W v||,   eps)

    weight_mat: [out, fan_in], u: [out] -> (u' [out], v [fan_in]); no gradient flows through them.
    """
    with torch.no_grad():
        v = F.normalize(torch.mv(weight_mat.t(), u), dim=0, eps=eps)
        u = F.normalize(torch.mv(weight_mat, v), dim=0, eps=eps)
    return u, v


def spectral_sigma(weight_mat: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The spectral-norm estimate sigma_0 = u^T W v (differentiable in W; u, v are constants).

    weight_mat: [out, fan_in], u: [out], v: [fan_in] -> []
    """
    return torch.dot(u, torch.mv(weight_mat, v))


class SpectralNormMixin:
    """Adds persistent power-iteration vectors and `normalized_weight()` to a layer with `.weight`.

    Buffers: u [out] and v [fan_in] (unit vectors), sigma [] (sigma_0 of the last training step).
    """

    def _init_spectral_norm(self, eps: float, eval_mode: str) -> None:
        if eval_mode not in SN_EVAL_MODES:
            raise ValueError(f"spectral norm eval_mode must be one of {SN_EVAL_MODES}, got {eval_mode!r}")
        self.sn_eps = float(eps)
        self.sn_eval_mode = eval_mode
        out = self.weight.shape[0]
        fan_in = self.weight[0].numel()
        self.register_buffer("u", F.normalize(torch.randn(out), dim=0, eps=self.sn_eps))
        self.register_buffer("v", F.normalize(torch.randn(fan_in), dim=0, eps=self.sn_eps))
        self.register_buffer("sigma", torch.ones([]))

    def weight_matrix(self) -> torch.Tensor:
        """W_mat = W.reshape(out, -1): [out, fan_in] (reshape: imported weights may be non-contiguous)."""
        return self.weight.reshape(self.weight.shape[0], -1)

    def normalized_weight(self) -> torch.Tensor:
        """W / sigma_0 with the power step this mode calls for (module docstring); same shape as W."""
        weight_mat = self.weight_matrix()
        if self.training:
            u, v = power_iteration(weight_mat, self.u, self.sn_eps)
            with torch.no_grad():
                self.u.copy_(u)
                self.v.copy_(v)
            # clones: a second forward before backward (D on reals, then fakes) updates the buffers in place
            u, v = u.clone(), v.clone()
        elif self.sn_eval_mode == "power_step":
            u, v = power_iteration(weight_mat, self.u, self.sn_eps)
        else:
            u, v = self.u, self.v
        sigma = spectral_sigma(weight_mat, u.to(weight_mat.dtype), v.to(weight_mat.dtype))
        if self.training:
            with torch.no_grad():
                self.sigma.copy_(sigma.detach())
        return self.weight / sigma

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sn_eps={self.sn_eps}, sn_eval_mode={self.sn_eval_mode!r}"


class SNConv2d(SpectralNormMixin, nn.Conv2d):
    """Conv2d with a spectrally normalised kernel: y = conv2d(x, W / sigma_0(W)) + b.

    weight: [out_channels, in_channels, k, k]; x: [batch, in_channels, H, W] -> [batch, out_channels, H', W']
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int | None = None,
                 bias: bool = True, sn_eps: float = SN_EPS, sn_eval_mode: str = "stored"):
        super().__init__(in_channels, out_channels, kernel_size,
                         padding=kernel_size // 2 if padding is None else padding, bias=bias)
        self._init_spectral_norm(sn_eps, sn_eval_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)


class SNLinear(SpectralNormMixin, nn.Linear):
    """Linear layer with a spectrally normalised matrix: y = x (W / sigma_0(W))^T + b.

    weight: [out_features, in_features]; x: [batch, in_features] -> [batch, out_features]
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, sn_eps: float = SN_EPS,
                 sn_eval_mode: str = "stored"):
        super().__init__(in_features, out_features, bias=bias)
        self._init_spectral_norm(sn_eps, sn_eval_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


class ClassEmbedding(nn.Module):
    """A class embedding applied to a one-hot (or mixed) label: e = c E.

    weight E: [num_classes, embed_dim] (row k is class k's embedding, nn.Embedding's layout)
    c: [batch, num_classes] -> e: [batch, embed_dim]. A one-hot c selects a row exactly; a convex
    mixture of one-hots interpolates embeddings (BigGAN's class interpolation, §3 / Fig. 8).
    """

    def __init__(self, num_classes: int, embed_dim: int):
        super().__init__()
        self.num_classes, self.embed_dim = num_classes, embed_dim
        self.weight = nn.Parameter(torch.randn([num_classes, embed_dim]))

    def embedding_matrix(self) -> torch.Tensor:
        return self.weight

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return c.to(self.weight.dtype) @ self.embedding_matrix()

    def extra_repr(self) -> str:
        return f"{self.num_classes}, {self.embed_dim}"


class SNEmbedding(SpectralNormMixin, ClassEmbedding):
    """Spectrally normalised class embedding (the projection discriminator's, BigGAN D): e = c (E / sigma_0(E)).

    E: [num_classes, embed_dim]; the power iteration runs on E itself (u [num_classes], v [embed_dim]),
    as BigGAN-PyTorch's SNEmbedding does.
    """

    def __init__(self, num_classes: int, embed_dim: int, sn_eps: float = SN_EPS, sn_eval_mode: str = "stored"):
        super().__init__(num_classes, embed_dim)
        self._init_spectral_norm(sn_eps, sn_eval_mode)

    def embedding_matrix(self) -> torch.Tensor:
        return self.normalized_weight()


def spectral_norm_layers(module: nn.Module):
    """(name, layer) for every spectrally normalised layer inside `module`."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, SpectralNormMixin)]


__all__ = ["SN_EVAL_MODES", "SN_EPS", "power_iteration", "spectral_sigma", "SpectralNormMixin", "SNConv2d",
           "SNLinear", "ClassEmbedding", "SNEmbedding", "spectral_norm_layers"]
