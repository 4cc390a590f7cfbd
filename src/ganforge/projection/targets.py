"""Target images for the projector, prepared as NVIDIA projector.py does: centre crop to a square
(box ((w-s)//2, (h-s)//2, (w+s)//2, (h+s)//2), s = min(w, h)), resize to G.img_resolution with
PIL LANCZOS, uint8. Colour follows the network: greyscale ('L', ITU-R 601-2 luma) for 1-channel
networks, RGB for 3-channel ones; a target of the other kind is converted, and the note says so.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganforge.errors import UsageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def check_target_path(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"target {path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"target {path} is a directory; give an image file")


def prepare_target(img: Image.Image, resolution: int, channels: int) -> tuple[np.ndarray, str | None]:
    """PIL image -> (uint8 [channels, R, R], note or None). note says how the colour was converted."""
    if channels not in (1, 3):
        raise UsageError(f"projection supports 1- and 3-channel networks; this one has {channels} channels")
    grey_modes = ("1", "L", "LA", "I", "I;16", "F")
    note = None
    if channels == 1:
        if img.mode not in grey_modes:
            note = f"converted {img.mode} to greyscale (the network is 1-channel)"
        img = img.convert("L")
    else:
        if img.mode in grey_modes:
            note = f"converted greyscale ({img.mode}) to RGB (the network is 3-channel)"
        img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    img = img.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr), note


def load_target(path: str, resolution: int, channels: int) -> tuple[np.ndarray, str | None]:
    """Read an image file and prepare it (see `prepare_target`); one-line UsageError when unreadable."""
    check_target_path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return prepare_target(img, resolution, channels)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        msg = str(e).split("\n")[0]
        raise UsageError(f"target {path}: not a readable image ({type(e).__name__}: {msg})") from None


def load_targets(paths, resolution: int, channels: int) -> tuple[np.ndarray, list[str]]:
    """Several targets -> (uint8 [N, C, R, R], notes naming the files that were converted)."""
    arrs, notes = [], []
    for p in paths:
        a, note = load_target(p, resolution, channels)
        arrs.append(a)
        if note:
            notes.append(f"{p}: {note}")
    return np.stack(arrs), notes


def image_files(folder: str) -> list[str]:
    """The image files directly in `folder`, sorted by name (UsageError when it is not a folder or has none)."""
    if not os.path.isdir(folder):
        raise UsageError(f"{folder} is not a directory")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    if not files:
        raise UsageError(f"{folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return files
