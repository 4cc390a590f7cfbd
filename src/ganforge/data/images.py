"""Decoding one image file into a clean greyscale or RGB picture.

Shared by the training dataset (ImageFolderDataset) and the dataset tool, so that both read the same
files the same way: alpha is composited on white, palettes are expanded, 16-bit and binary images
become 8-bit greyscale.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageFile

# File name endings we treat as images (lower case). Pillow can open more formats, but these are the
# ones people keep datasets in; anything else in a source folder is ignored, not reported as corrupt.
IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm",
)

# Greyscale modes (after compositing alpha) and the colour modes Pillow converts to RGB.
_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def is_image_name(name: str) -> bool:
    """True if the file name ends with one of IMAGE_EXTENSIONS (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


class ImageReadError(Exception):
    """An image file that could not be decoded (corrupt, truncated, not an image)."""


def palette_is_grey(img: Image.Image) -> bool:
    """True if a palette ('P') image uses only grey entries (r == g == b)."""
    pal = img.getpalette()
    if pal is None:
        return True
    arr = np.asarray(pal, dtype=np.int32).reshape(-1, 3)
    used = np.unique(np.asarray(img))
    used = used[used < len(arr)]
    sub = arr[used]
    return bool(np.all((sub[:, 0] == sub[:, 1]) & (sub[:, 1] == sub[:, 2])))


def open_image(source, name: str = "") -> Image.Image:
    """Open and fully decode an image from a path, bytes or file object.

    Raises ImageReadError (with a short reason) for anything Pillow cannot decode completely,
    including truncated files. The returned image is loaded (no lazy decoding left).
    """
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    # Truncated files must fail rather than come back half grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        img = Image.open(source)
        img.load()
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"too large ({e})") from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001  a malformed file can make any decoder raise anything
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "cannot identify image file" in msg:
            msg = "not a readable image"
        raise ImageReadError(msg) from None
    return img


def exif_upright(img: Image.Image) -> tuple[Image.Image, bool]:
    """Apply the EXIF orientation tag (phone photos), returning (image, whether it was rotated)."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001  broken EXIF: leave the pixels as they are
        return img, False
    if orientation in (None, 1):
        return img, False
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img), True
    except Exception:  # noqa: BLE001
        return img, False


def image_kind(img: Image.Image) -> str:
    """Classify a decoded image for the conversion report.

    Returns one of 'grey', 'grey+alpha', 'rgb', 'rgba', 'palette-grey', 'palette', 'other'.
    """
    mode = img.mode
    if mode == "P":
        has_alpha = "transparency" in img.info
        if palette_is_grey(img) and not has_alpha:
            return "palette-grey"
        return "palette"
    if mode in ("LA", "La"):
        return "grey+alpha"
    if mode in _GREY_MODES:
        return "grey"
    if mode == "RGB":
        return "rgb"
    if mode in ("RGBA", "RGBa", "PA"):
        return "rgba"
    return "other"


def _to_8bit_grey(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.round(arr * (255.0 / hi)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L")
    return img.convert("L")


def to_grey_or_rgb(img: Image.Image, background=(255, 255, 255)) -> Image.Image:
    """Return an 'L' or 'RGB' image: alpha composited on `background`, palettes expanded.

    Greyscale inputs (including greyscale palettes and greyscale+alpha) come back as 'L'; everything
    else as 'RGB'.
    """
    kind = image_kind(img)
    if kind == "grey":
        return img if img.mode == "L" else _to_8bit_grey(img)
    if kind == "palette-grey":
        return img.convert("L")
    if kind == "rgb":
        return img
    if kind == "grey+alpha":
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(bg, rgba).convert("L")
    if img.mode == "P" or kind == "rgba" or "A" in img.getbands():
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV ...


def image_to_array(img: Image.Image, channels: int | None = None) -> np.ndarray:
    """PIL image -> uint8 numpy [C, H, W]; `channels` 1 or 3 forces greyscale or RGB."""
    img = to_grey_or_rgb(img)
    if channels == 1 and img.mode != "L":
        img = img.convert("L")
    elif channels == 3 and img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    # A fresh, writable array (np.asarray of a PIL image is read-only, which torch warns about).
    return np.array(arr.transpose(2, 0, 1), order="C", copy=True)
