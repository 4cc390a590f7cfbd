"""Files the data tests write for themselves (no apt packages needed)."""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image


def run_cli(*args, env=None):
    """Run `python -m ganforge ...` in a subprocess; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], capture_output=True,
                          text=True, env=full_env, timeout=120)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="png")
    return buf.getvalue()


def write_messy_folder(root) -> dict:
    """A class-per-sub-folder image folder with every kind of trouble. Returns facts about it.

    a/grey.png      16x16 L (a horizontal ramp)
    a/rgb.png       24x16 RGB  (not square: needs a transform)
    a/rgba.png      16x16 RGBA: left half transparent red, right half opaque blue
    b/corrupt.png   random bytes
    b/photo.jpg     16x16 RGB JPEG
    b/palette.png   16x16 P (colour palette)
    b/truncated.png first half of a valid PNG
    b/notes.txt     not an image (ignored)
    """
    os.makedirs(os.path.join(root, "a"), exist_ok=True)
    os.makedirs(os.path.join(root, "b"), exist_ok=True)
    rng = np.random.RandomState(0)
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    Image.fromarray(grey, "L").save(os.path.join(root, "a", "grey.png"))
    Image.fromarray(rng.randint(0, 256, (16, 24, 3), dtype=np.uint8), "RGB").save(os.path.join(root, "a", "rgb.png"))
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = (255, 0, 0, 0)
    rgba[:, 8:] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(os.path.join(root, "a", "rgba.png"))
    with open(os.path.join(root, "b", "corrupt.png"), "wb") as f:
        f.write(rng.bytes(300))
    Image.fromarray(rng.randint(0, 256, (16, 16, 3), dtype=np.uint8), "RGB").save(
        os.path.join(root, "b", "photo.jpg"), quality=90)
    pal = Image.fromarray(rng.randint(0, 4, (16, 16), dtype=np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0] + [0] * (256 * 3 - 12))
    pal.save(os.path.join(root, "b", "palette.png"))
    full = png_bytes(Image.fromarray(rng.randint(0, 256, (64, 64, 3), dtype=np.uint8), "RGB"))
    with open(os.path.join(root, "b", "truncated.png"), "wb") as f:
        f.write(full[: len(full) // 2])
    with open(os.path.join(root, "b", "notes.txt"), "w") as f:
        f.write("not an image\n")
    return {"grey": grey, "rgba": rgba,
            # sorted order of the readable images, with their sub-folder class
            "readable": [("a/grey.png", 0), ("a/rgb.png", 0), ("a/rgba.png", 0),
                         ("b/palette.png", 1), ("b/photo.jpg", 1)]}


def write_idx(path: str, array: np.ndarray):
    """Write a gzip'd IDX file of uint8 data (magic 0x00 0x00 0x08 ndim, big-endian sizes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_fake_fashion_mnist(root, n=20, seed=0):
    """Tiny Fashion-MNIST look-alike in the Debian package's file names; returns (images, labels)."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.RandomState(seed)
    x = rng.randint(1, 256, (n, 28, 28)).astype(np.uint8)  # never 0, so the black padding is visible
    y = (np.arange(n) % 10).astype(np.uint8)
    write_idx(os.path.join(root, "train-images-idx3-ubyte.gz"), x)
    write_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"), y)
    return x, y
