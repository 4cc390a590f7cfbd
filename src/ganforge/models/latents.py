"""Latents and labels from user-facing numbers: seeds -> z, class index -> one-hot c, images -> uint8;
and the two operations on latents that training, synthesis and metrics share: style mixing of w's
(`mix_styles`) and spherical interpolation of z's (`slerp`).

Seeds give the same z on every device: z = numpy RandomState(seed).randn(z_dim), computed in float64
on the CPU (as NVIDIA's tools do, so seeds match their published figures) and only then cast to
float32, so MPS/CUDA never see float64.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """z = RandomState(seed).randn(z_dim) as float64 [z_dim] (NVIDIA generate.py convention)."""
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed {seed} is out of range; seeds are integers in [0, 2**32)")
    return np.random.RandomState(int(seed)).randn(z_dim)


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """[len(seeds), z_dim] float32 latents, one row per seed."""
    if len(seeds) == 0:
        return torch.zeros([0, z_dim])
    return torch.from_numpy(np.stack([z_from_seed(s, z_dim) for s in seeds])).to(torch.float32)


def class_labels(class_idx: int | None, c_dim: int, batch: int) -> torch.Tensor:
    """One-hot labels [batch, c_dim] for class_idx ([batch, 0] for unconditional networks)."""
    c = torch.zeros([batch, c_dim])
    if c_dim > 0:
        if class_idx is None or not 0 <= class_idx < c_dim:
            raise ValueError(f"class index must be in [0, {c_dim}) for this conditional network, got {class_idx}")
        c[:, class_idx] = 1
    return c


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 with NVIDIA's rounding: clamp(img * 127.5 + 128, 0, 255)."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


# -- style mixing -----------------------------------------------------------------------------------

def cutoff_mask(cutoff: torch.Tensor | int, num_ws: int) -> torch.Tensor:
    """Which layers come from the second latent when mixing at a crossover layer: l >= cutoff[n].

    take_from_b[n, l] = (l >= cutoff[n])       (cutoff = num_ws: no mixing; 0: all of b)

    cutoff: int64 [N] (one crossover per sample, style-mixing regularization) or an int (all samples)
    returns bool [N, num_ws] ([1, num_ws] for an int), on cutoff's device
    """
    cutoff = torch.as_tensor(cutoff)
    layer = torch.arange(num_ws, device=cutoff.device).unsqueeze(0)
    return layer >= cutoff.reshape(-1, 1)


def layer_mask(layers: Iterable[int], num_ws: int) -> torch.Tensor:
    """Which layers come from the second latent when mixing an explicit layer set (the mix figure's --styles).

    take_from_b[0, l] = (l in layers)          (negative indices count from the end, as in Python)

    layers: layer indices in [-num_ws, num_ws) -> bool [1, num_ws]
    """
    mask = torch.zeros([1, num_ws], dtype=torch.bool)
    mask[0, torch.as_tensor(list(layers), dtype=torch.long)] = True
    return mask


def mix_styles(ws_a: torch.Tensor, ws_b: torch.Tensor,
               take_from_b: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Style mixing (StyleGAN, Karras et al. 2019, §3.1): each synthesis layer's w from one of two latents.

    w_mix[n, l] = ws_b[n, l]  if take_from_b[n, l]  else  ws_a[n, l]

    take_from_b says which layers come from ws_b, in one of three forms:
      bool [N or 1, num_ws]   the mask itself (see cutoff_mask, layer_mask)
      int64 [N]               a crossover layer per sample: layers >= cutoff[n] from ws_b (training's
                              style-mixing regularization; cutoff[n] = num_ws keeps ws_a)
      a sequence of ints      a layer set, the same for every sample (the style-mixing figure)
    An integer *tensor* is always a cutoff, a list/tuple/range always a layer set.

    ws_a, ws_b: [N, num_ws, w_dim] (or broadcastable to it) -> [N, num_ws, w_dim], a new tensor;
    gradients flow to the entries each output takes.
    """
    num_ws = ws_a.shape[1]
    if isinstance(take_from_b, torch.Tensor):
        if take_from_b.dtype == torch.bool:
            mask = take_from_b
        elif not take_from_b.is_floating_point() and not take_from_b.is_complex():
            mask = cutoff_mask(take_from_b.to(ws_a.device), num_ws)
        else:
            raise TypeError(f"mix_styles takes a bool mask or int64 cutoffs, got a {take_from_b.dtype} tensor")
    elif isinstance(take_from_b, (list, tuple, range)):
        mask = layer_mask(take_from_b, num_ws)
    else:
        raise TypeError(f"mix_styles takes a bool mask, int64 cutoffs or a list of layers, got "
                        f"{type(take_from_b).__name__}; for one crossover layer c use cutoff_mask(c, num_ws)")
    return torch.where(mask.to(ws_a.device).unsqueeze(-1), ws_b, ws_a)


# -- spherical interpolation ------------------------------------------------------------------------

def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical linear interpolation between the directions of a and b (Shoemake 1985), for z's.

    u = a / |a|,  v = b / |b|,  theta = arccos(u . v)
    slerp(a, b; t) = sin((1 - t) theta) / sin(theta) u  +  sin(t theta) / sin(theta) v

    evaluated as NVIDIA's PPL code does (metrics/perceptual_path_length.py), which needs no division by
    sin(theta):
        c = (v - (u . v) u) / |v - (u . v) u|          (unit vector orthogonal to u, towards v)
        slerp = u cos(t theta) + c sin(t theta),  then divided by its norm
    The result is a unit vector at angle t * theta from u and (1 - t) * theta from v: only the
    directions of a and b matter (StyleGAN's PPL normalises z before and after; the video loop rescales
    by sqrt(z_dim), the typical norm of z ~ N(0, I)). t outside [0, 1] extrapolates along the great circle.

    Guards: u . v is clamped to [-1, 1] and |v - (u . v) u| to at least 1e-12, so parallel a and b give
    u instead of NaN; on all other inputs the value is NVIDIA's, bit for bit. Antipodal a, b have no
    unique great circle, so no meaningful slerp.

    a, b: [..., d];  t: a number or a tensor broadcastable to [..., 1] (PPL: [N, 1])  ->  [..., d]
    """
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    theta = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = a * torch.cos(theta) + c * torch.sin(theta)
    return out / out.norm(dim=-1, keepdim=True)
