"""Sliced Wasserstein Distance on Laplacian-pyramid patches (Progressive GAN, Karras et al. 2018).

Needs no network. Per image set:
  1. Laplacian pyramid from full resolution down to 16 px (levels: R, R/2, ..., 16);
  2. per level, 128 random 7x7 neighbourhoods per image -> descriptors [n, 3*7*7];
  3. per level and per set, standardise each colour channel (mean/std over all descriptors and pixels);
  4. SWD between the two sets' descriptors with 4 x 128 random unit directions, reported x 1e3 per level
     and averaged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SWD_NHOOD_SIZE = 7
SWD_NHOODS_PER_IMAGE = 128
SWD_DIR_REPEATS = 4
SWD_DIRS_PER_REPEAT = 128
SWD_MIN_RESOLUTION = 16

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSSIAN_5x5 = torch.outer(_BINOMIAL, _BINOMIAL) / 256  # [1 4 6 4 1]^T [1 4 6 4 1] / 256


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Depthwise 5x5 binomial filter with mirror padding (scipy mode='mirror' == torch 'reflect')."""
    c = x.shape[1]
    k = (GAUSSIAN_5x5 * gain).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur then keep every second pixel (like cv2.pyrDown).  [N, C, H, W] -> [N, C, H/2, W/2]."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Zero-insert then blur with 4x the filter (like cv2.pyrUp).  [N, C, H, W] -> [N, C, 2H, 2W]."""
    n, c, h, w = x.shape
    up = torch.zeros(n, c, h * 2, w * 2, dtype=x.dtype, device=x.device)
    up[:, :, ::2, ::2] = x
    return _blur(up, gain=4.0)


def pyramid_resolutions(resolution: int) -> list:
    out = []
    while resolution >= SWD_MIN_RESOLUTION:
        out.append(resolution)
        resolution //= 2
    return out


def laplacian_pyramid(x: torch.Tensor, num_levels: int) -> list:
    """L_i = G_i - up(G_{i+1}) for i < last, L_last = G_last, with G_0 = x, G_{i+1} = pyr_down(G_i)."""
    pyramid = [x]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def patch_descriptors(level: torch.Tensor, generator: torch.Generator, nhood_size: int = SWD_NHOOD_SIZE,
                      nhoods_per_image: int = SWD_NHOODS_PER_IMAGE) -> torch.Tensor:
    """Random nhood x nhood patches, centres uniform in [h, S - h) with h = nhood // 2.

    level: [N, C, H, W] -> [N * nhoods_per_image, C, nhood, nhood]
    """
    n, c, hgt, wid = level.shape
    h = nhood_size // 2
    cy = torch.randint(h, hgt - h, (n, nhoods_per_image), generator=generator).to(level.device)
    cx = torch.randint(h, wid - h, (n, nhoods_per_image), generator=generator).to(level.device)
    off = torch.arange(-h, h + 1, device=level.device)
    ys = (cy[:, :, None] + off)[:, :, :, None]  # [N, P, k, 1]
    xs = (cx[:, :, None] + off)[:, :, None, :]  # [N, P, 1, k]
    flat = (ys * wid + xs).reshape(n, 1, -1)  # [N, 1, P*k*k]
    patches = level.reshape(n, c, hgt * wid).gather(2, flat.expand(n, c, flat.shape[2]))
    patches = patches.reshape(n, c, nhoods_per_image, nhood_size, nhood_size).permute(0, 2, 1, 3, 4)
    return patches.reshape(-1, c, nhood_size, nhood_size)


def images_to_descriptors(images: torch.Tensor, generator: torch.Generator) -> list:
    """uint8 [N, 1|3, R, R] -> per pyramid level, descriptors [N * 128, 3, 7, 7] (float32, unnormalised)."""
    x = images.to(torch.float32)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    levels = laplacian_pyramid(x, len(pyramid_resolutions(x.shape[2])))
    return [patch_descriptors(lvl, generator) for lvl in levels]


def finalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Standardise each colour channel over all descriptors and pixels of ONE set, then flatten.
    desc: [n, C, k, k] -> [n, C*k*k]."""
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator,
                       dir_repeats: int = SWD_DIR_REPEATS, dirs_per_repeat: int = SWD_DIRS_PER_REPEAT) -> float:
    """SW_1(A, B) ~= mean over random unit directions d of (1/n) sum_i |sort(A d)_i - sort(B d)_i|.

    a, b: [n, D] with the same n. Directions: dir_repeats x dirs_per_repeat Gaussian vectors, unit-normed.
    """
    if a.shape != b.shape:
        raise ValueError(f"SWD needs equal-size descriptor sets, got {tuple(a.shape)} and {tuple(b.shape)}")
    results = []
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=generator).to(a)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        pa = (a @ dirs).sort(dim=0).values
        pb = (b @ dirs).sort(dim=0).values
        results.append((pa - pb).abs().mean().item())
    return float(np.mean(results))


def swd_from_descriptors(real_levels: list, fake_levels: list, resolutions: list, seed: int = 0) -> dict:
    """{'swd_<res>': SWD x 1e3 per level, 'swd_avg': their mean} from per-level raw descriptors."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for res, r, f in zip(resolutions, real_levels, fake_levels):
        out[f"swd_{res}"] = 1e3 * sliced_wasserstein(finalize_descriptors(r), finalize_descriptors(f), g)
    out["swd_avg"] = float(np.mean([out[f"swd_{res}"] for res in resolutions]))
    return out
