"""Image preprocessing shared by the feature networks: uint8 conversion, greyscale tiling, TF1 resize.

The FID Inception-v3 was trained and published as a TensorFlow 1 graph that resizes its input with
``tf.image.resize_bilinear(align_corners=False)``. TF1's bilinear resize uses the *asymmetric* sampling
grid, not PyTorch's half-pixel one; reproducing it is what makes FID comparable with published numbers.
"""

from __future__ import annotations

import torch

# Generator output -> uint8 with NVIDIA's rounding, (img * 127.5 + 128).clamp(0, 255) truncated: one home.
from ganforge.models.latents import to_uint8  # noqa: F401

__all__ = ["to_uint8", "tile_greyscale", "tf1_source_coords", "tf1_resize_bilinear", "prepare_uint8"]

INCEPTION_RESOLUTION = 299  # input size of the TF inception-2015-12-05 graph
VGG_RESOLUTION = 224  # input size of VGG16 (P&R features)


def tile_greyscale(x: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] -> [N, 3, H, W] by repeating the channel; 3-channel input passes unchanged."""
    if x.shape[1] == 1:
        return x.repeat(1, 3, 1, 1)
    if x.shape[1] != 3:
        raise ValueError(f"feature networks take 1- or 3-channel images, got {x.shape[1]} channels")
    return x


def tf1_source_coords(in_size: int, out_size: int, device=None):
    """TF1 ``resize_bilinear(align_corners=False)`` sampling grid along one axis.

    The asymmetric mapping: s_i = i * (in_size / out_size) for output index i (float32, as TF computes it),
        lower_i = floor(s_i),  upper_i = min(ceil(s_i), in_size - 1),  lerp_i = s_i - floor(s_i).
    Half-pixel centres ((i + 0.5) * scale - 0.5), which PyTorch's align_corners=False uses, are *not* used.

    returns lower [out_size] int64, upper [out_size] int64, lerp [out_size] float32
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    s = torch.arange(out_size, dtype=torch.float32, device=device) * scale.to(device)
    f = torch.floor(s)
    lower = f.to(torch.int64).clamp(0, in_size - 1)
    upper = torch.ceil(s).to(torch.int64).clamp(max=in_size - 1)
    return lower, upper, s - f


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with TF1's asymmetric grid (see `tf1_source_coords`), in TF's order of operations.

    top    = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * lerp_x
    bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * lerp_x
    out    = top + (bottom - top) * lerp_y

    Equivalent to NVIDIA's TorchScript trick (affine_grid shifted by 1/in - 1/out, then grid_sample with
    border padding). Identity when the size does not change.

    x: [N, C, H, W] float   returns [N, C, size[0], size[1]] float
    """
    n, c, h, w = x.shape
    oh, ow = size
    if (h, w) == (oh, ow):
        return x
    y0, y1, ly = tf1_source_coords(h, oh, x.device)
    x0, x1, lx = tf1_source_coords(w, ow, x.device)
    left = x.index_select(3, x0)
    right = x.index_select(3, x1)
    rows = left + (right - left) * lx.to(x.dtype)  # [N, C, H, ow]
    top = rows.index_select(2, y0)
    bottom = rows.index_select(2, y1)
    return top + (bottom - top) * ly.to(x.dtype)[:, None]


def prepare_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 1|3, H, W] -> float32 [N, 3, size, size] in [0, 255], TF1-resized."""
    if images.dtype != torch.uint8:
        raise TypeError(f"feature networks take uint8 images, got {images.dtype}; use ganforge.models.latents.to_uint8 first")
    x = tile_greyscale(images).to(torch.float32)
    return tf1_resize_bilinear(x, (size, size))
