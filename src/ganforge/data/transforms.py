"""Geometric transforms of the dataset tool: every image becomes a resolution x resolution square."""

from __future__ import annotations

from PIL import Image

from ganforge.errors import UsageError

TRANSFORMS = ("center-crop", "center-crop-wide", "resize", "pad")
RESIZE_FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
}
WIDE_ASPECT = (4, 3)  # center-crop-wide keeps a 4:3 landscape strip (like LSUN Car's 512x384)


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _resize(img: Image.Image, size, resample) -> Image.Image:
    size = (int(size[0]), int(size[1]))
    return img if img.size == size else img.resize(size, resample=resample)


def center_crop(img: Image.Image, res: int, resample) -> Image.Image:
    """Crop the largest centred square, then resize it to res x res."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    if (w, h) != (s, s):
        img = img.crop((left, top, left + s, top + s))
    return _resize(img, (res, res), resample)


def center_crop_wide(img: Image.Image, res: int, resample) -> Image.Image:
    """Crop a centred 4:3 landscape strip, resize it to res x (3/4 res) and letterbox it (black bars
    above and below) into a res x res square."""
    aw, ah = WIDE_ASPECT
    w, h = img.size
    if w * ah > h * aw:  # wider than 4:3: trim the sides
        cw, ch = round(h * aw / ah), h
    else:  # taller than 4:3: trim top and bottom
        cw, ch = w, round(w * ah / aw)
    left, top = (w - cw) // 2, (h - ch) // 2
    img = img.crop((left, top, left + cw, top + ch))
    out_h = max(1, round(res * ah / aw))
    img = _resize(img, (res, out_h), resample)
    canvas = Image.new(img.mode, (res, res), 0)
    canvas.paste(img, (0, (res - out_h) // 2))
    return canvas


def resize(img: Image.Image, res: int, resample) -> Image.Image:
    """Stretch to res x res (aspect ratio not kept)."""
    return _resize(img, (res, res), resample)


def pad(img: Image.Image, res: int, resample) -> Image.Image:
    """Centre the image on a black res x res canvas; an image larger than res is first scaled down
    (aspect kept) so that its longer side is res. An image that fits is never resampled."""
    w, h = img.size
    if w > res or h > res:
        scale = res / max(w, h)
        img = _resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), resample)
        w, h = img.size
    if (w, h) == (res, res):
        return img
    canvas = Image.new(img.mode, (res, res), 0)
    canvas.paste(img, ((res - w) // 2, (res - h) // 2))
    return canvas


_FUNCS = {"center-crop": center_crop, "center-crop-wide": center_crop_wide, "resize": resize, "pad": pad}


def apply_transform(img: Image.Image, res: int, transform: str | None, resize_filter: str = "lanczos",
                    name: str = "") -> tuple[Image.Image, bool]:
    """Bring one image to res x res. Returns (image, changed: whether the geometry changed).

    Without a transform the image must be square: a power-of-two size different from res is resized
    (as NVIDIA's tool does); anything else is a UsageError naming the --transform to use.
    """
    resample = RESIZE_FILTERS[resize_filter]
    w, h = img.size
    if transform is None:
        if w != h:
            raise UsageError(
                f"{name or 'an image'} is {w}x{h}, not square; add --transform center-crop (crop the "
                "middle), --transform pad (keep it all, add black borders) or --transform resize (stretch)")
        if w != res and not is_power_of_two(w):
            raise UsageError(
                f"{name or 'an image'} is {w}x{h}, not a power of two; add --transform pad (put it on a "
                f"{res}x{res} canvas) or --transform resize (scale it to {res}x{res})")
        out = _resize(img, (res, res), resample)
        return out, out is not img
    if transform not in _FUNCS:
        raise UsageError(f"unknown --transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")
    out = _FUNCS[transform](img, res, resample)
    return out, out is not img
