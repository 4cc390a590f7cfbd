"""The corruptions of the ADA pipe (Karras et al. 2020, Appendix B.4): additive RGB noise and cutout."""

from __future__ import annotations

import torch


def add_noise(images: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Additive RGB noise: y = x + sigma_n * eps, eps ~ N(0, I) per pixel and channel.

    images, noise: [N, C, H, W];  sigma: [N, 1, 1, 1]  ->  [N, C, H, W]
    """
    return images + noise * sigma.to(images.dtype)


def cutout(images: torch.Tensor, size: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): zero a rectangle of relative size s centred at (c_x, c_y).

    y[n, :, i, j] = 0  where |(j + 0.5)/W - c_x| < s_x/2 and |(i + 0.5)/H - c_y| < s_y/2, else x

    images: [N, C, H, W];  size, center: [N, 2, 1, 1, 1] (x then y; s = 0 keeps the image)
    """
    n, c, h, w = images.shape
    xs = (torch.arange(w, device=images.device, dtype=torch.float32).reshape(1, 1, 1, -1) + 0.5) / w
    ys = (torch.arange(h, device=images.device, dtype=torch.float32).reshape(1, 1, -1, 1) + 0.5) / h
    keep_x = (xs - center[:, 0]).abs() >= size[:, 0] / 2
    keep_y = (ys - center[:, 1]).abs() >= size[:, 1] / 2
    return images * (keep_x | keep_y).to(images.dtype)


__all__ = ["add_noise", "cutout"]
