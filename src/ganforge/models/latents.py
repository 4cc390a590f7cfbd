"""Latents and labels from user-facing numbers: seeds -> z, class index -> one-hot c, images -> uint8;
and the two operations on latents that training, synthesis and metrics share: style mixing of w's
(`mix_styles`) and spherical interpolation of z's (`slerp`).

Seeds give the same z on every device: z = numpy RandomState(seed).randn(z_dim), computed in float64
on the CPU (as NVIDIA's tools do, so seeds match their published figures) and only then cast to
float32, so MPS/CUDA never see float64. BigGAN's truncated z's come from seeds the same way
(`truncated_z_from_seed`, in either of the two truncation modes of TRUNCATION_MODES).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def class_labels(class_idx, c_dim: int, batch: int) -> torch.Tensor:
    """One-hot labels [batch, c_dim] for class_idx: one class for the whole batch, or a sequence of
    `batch` classes, one per row ([batch, 0] for unconditional networks)."""
    c = torch.zeros([batch, c_dim])
    if c_dim > 0:
        per_row = list(class_idx) if isinstance(class_idx, (list, tuple, np.ndarray, torch.Tensor)) else None
        ks = per_row if per_row is not None else [class_idx] * batch
        if len(ks) != batch or any(k is None or not 0 <= int(k) < c_dim for k in ks):
            raise ValueError(f"class indices must be {batch} values in [0, {c_dim}) for this conditional network, "
                             f"got {class_idx}")
        c[torch.arange(batch), torch.as_tensor([int(k) for k in ks], dtype=torch.long)] = 1
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


# -- truncation trick (BigGAN) ----------------------------------------------------------------------

TRUNCATION_MODES = ("resample", "scale")
RESAMPLE_MIN_THRESHOLD = 1e-3   # a redraw is accepted with p ~ 0.8 t: t = 1e-3 costs ~ 8000 rounds
SCALE_MAX_TRUNCATION = 2.0      # "scale": t * truncnorm(-2, 2); TF-Hub documents (0, 1]
SCALE_TRUNCNORM_BOUND = 2.0     # the fixed [-2, 2] of the TF-Hub / pytorch-pretrained-BigGAN sampler


def _seeded_state(seed: int) -> np.random.RandomState:
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed {seed} is out of range; seeds are integers in [0, 2**32)")
    return np.random.RandomState(int(seed))


def _check_mode(mode: str) -> None:
    if mode not in TRUNCATION_MODES:
        raise ValueError(f"truncation mode must be one of {', '.join(TRUNCATION_MODES)}, got {mode!r}")


def _check_truncation(truncation: float, mode: str) -> float:
    _check_mode(mode)
    t = float(truncation)
    if mode == "resample" and not (np.isfinite(t) and t >= RESAMPLE_MIN_THRESHOLD):
        raise ValueError(f"truncation threshold for mode 'resample' must be a finite number >= "
                         f"{RESAMPLE_MIN_THRESHOLD:g} (larger than every |z_i| means no truncation), got {truncation}")
    if mode == "scale" and not (np.isfinite(t) and 0 < t <= SCALE_MAX_TRUNCATION):
        raise ValueError(f"truncation for mode 'scale' must be in (0, {SCALE_MAX_TRUNCATION:g}], got {truncation}")
    return t


def truncated_z_from_seed(seed: int, z_dim: int, truncation: float | None, mode: str) -> np.ndarray:
    """BigGAN's truncation trick (Brock et al. 2019, §3.1): a seed's z with its components kept small.

    mode "resample" (the paper): z ~ N(0, I), and every component with |z_i| > t is redrawn until it falls
    inside, so each z_i ~ N(0, 1) conditioned on |z_i| <= t, i.e. truncnorm(-t, t):
        rs = RandomState(seed);  z = rs.randn(z_dim)
        while any |z_i| > t:  z[|z| > t] = rs.randn(count)       (the outliers in index order)
    With t >= max_i |z_i| nothing is redrawn and z equals z_from_seed(seed, z_dim) exactly; t must be
    finite and >= RESAMPLE_MIN_THRESHOLD (the expected number of rounds grows like 1/t).

    mode "scale" (TF-Hub BigGAN, pytorch-pretrained-BigGAN's truncated_noise_sample): a truncated normal
    on [-2, 2], scaled by t in (0, 2], so |z_i| <= 2 t:
        z = t * float32(truncnorm.rvs(-2, 2, size=(1, z_dim), random_state=RandomState(seed)))[0]
    rounded as they round it: the draw is cast to float32 first and multiplied by t in float32, so
    float32(z) is their sample bit for bit (given the same scipy: truncnorm's sampler changed in 1.4).

    truncation None: no truncation in "resample" (z_from_seed), t = 1 in "scale" (plain truncnorm(-2, 2)).
    Raises ValueError for an unknown mode, a truncation outside its range, or a seed outside [0, 2**32).

    returns float64 [z_dim] ("scale": float32 values held in float64)
    """
    _check_mode(mode)
    if truncation is None:
        if mode == "resample":
            return z_from_seed(seed, z_dim)
        truncation = 1.0
    t = _check_truncation(truncation, mode)
    rs = _seeded_state(seed)
    if mode == "resample":
        z = rs.randn(z_dim)
        outside = np.abs(z) > t
        while outside.any():
            z[outside] = rs.randn(int(outside.sum()))
            outside = np.abs(z) > t
        return z
    from scipy.stats import truncnorm

    values = truncnorm.rvs(-SCALE_TRUNCNORM_BOUND, SCALE_TRUNCNORM_BOUND, size=(1, z_dim),
                           random_state=rs).astype(np.float32)
    return (np.float32(t) * values[0]).astype(np.float64)


def truncated_z_from_seeds(seeds: Sequence[int], z_dim: int, truncation: float | None, mode: str) -> torch.Tensor:
    """[len(seeds), z_dim] float32 truncated latents, one row per seed (see truncated_z_from_seed).

    truncation None: "resample" gives z_from_seeds(seeds, z_dim) (untruncated N(0, I)); "scale" uses t = 1.
    """
    _check_mode(mode)
    if truncation is not None:
        _check_truncation(truncation, mode)
    if len(seeds) == 0:
        return torch.zeros([0, z_dim])
    rows = [truncated_z_from_seed(s, z_dim, truncation, mode) for s in seeds]
    return torch.from_numpy(np.stack(rows)).to(torch.float32)


def statistics_truncation(truncation: float | None, mode: str) -> float | None:
    """The truncation value a BigGAN's batch norms pick their stored statistics by (networks with
    per-truncation statistics, pytorch-pretrained-BigGAN's): the scale of "scale" sampling, which TF-Hub's
    BigGAN-deep was evaluated with; None (their t = 1 row) for "resample", whose threshold is not a scale."""
    return truncation if mode == "scale" else None
