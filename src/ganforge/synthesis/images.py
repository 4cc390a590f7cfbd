"""Image output: uint8 grids and PNG files."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image

from ganforge.errors import UsageError


def to_hwc(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 [C, H, W] -> [H, W, C] (C=1 squeezed to [H, W] for greyscale PNGs)."""
    arr = img.cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    arr = arr.transpose(1, 2, 0)
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def make_grid(images: torch.Tensor | np.ndarray, rows: int | None = None, cols: int | None = None,
              pad: int = 0, fill: int = 255) -> np.ndarray:
    """Tile uint8 images [N, C, H, W] row-major into one [rows*H, cols*W, C] array (C=1 -> [.., ..])."""
    imgs = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    n, c, h, w = imgs.shape
    if rows is None and cols is None:
        cols = max(1, int(math.ceil(math.sqrt(n))))
    if cols is None:
        cols = int(math.ceil(n / rows))
    if rows is None:
        rows = int(math.ceil(n / cols))
    grid = np.full([rows * (h + pad) - pad, cols * (w + pad) - pad, c], fill, dtype=np.uint8)
    for i in range(min(n, rows * cols)):
        r, col = divmod(i, cols)
        grid[r * (h + pad): r * (h + pad) + h, col * (w + pad): col * (w + pad) + w] = imgs[i].transpose(1, 2, 0)
    return grid[:, :, 0] if c == 1 else grid


def save_png(arr: np.ndarray, path: str) -> None:
    mode = "L" if arr.ndim == 2 else ("RGBA" if arr.shape[2] == 4 else "RGB")
    Image.fromarray(arr, mode).save(path)


def prepare_outdir(outdir: str) -> str:
    """Create `outdir` (and parents); one clear error if that is impossible or it is not writable."""
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output directory {outdir}: {e.strerror}; choose a writable --outdir") from None
    if not os.path.isdir(outdir):
        raise UsageError(f"{outdir} is not a directory; choose another --outdir")
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {outdir} is not writable; choose another --outdir")
    return outdir
