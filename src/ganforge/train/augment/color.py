"""The colour transforms of the ADA pipe (Karras et al. 2020, Appendix B.2): one homogeneous 4x4 matrix
per image (composed from ganforge.train.augment.matrices), applied per pixel."""

from __future__ import annotations

import torch

from ganforge.errors import UsageError


def color_transform(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Apply a homogeneous 4x4 colour matrix per sample (ADA Appendix B.2).

    RGB (3 channels):  y = C[:3, :3] x + C[:3, 3]                         per pixel, x = (r, g, b)
    grey (1 channel):  y = mean_i(sum_j C[i, j]) x + mean_i C[i, 3]       (i, j < 3): the grey value is
                       taken as (x, x, x), transformed, and averaged back to one channel

    images: [N, C, H, W] with C in {1, 3};  C: [N, 4, 4]  ->  [N, C, H, W]
    """
    n, ch, h, w = images.shape
    C = C.to(images.dtype)
    x = images.reshape(n, ch, h * w)
    if ch == 3:
        x = C[:, :3, :3] @ x + C[:, :3, 3:]
    elif ch == 1:
        rows = C[:, :3, :].mean(dim=1, keepdim=True)         # [N, 1, 4]
        x = x * rows[:, :, :3].sum(dim=2, keepdim=True) + rows[:, :, 3:]
    else:
        raise UsageError(f"colour augmentation needs RGB (3 channels) or greyscale (1 channel) images, "
                         f"got {ch} channels; use an augpipe without colour (e.g. 'bg')")
    return x.reshape(n, ch, h, w)


__all__ = ["color_transform"]
