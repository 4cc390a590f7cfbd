"""Tiny datasets and command lines for the training tests (16x16 greyscale, 2 classes)."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

# A 16x16 net of a few thousand parameters: every CLI training test uses these flags.
TINY = ["--cfg", "small", "--cbase", "64", "--cmax", "8", "--workers", "0", "--threads", "1"]


def write_dataset(root, n: int = 32, res: int = 16, classes: int = 2, channels: int = 1, seed: int = 0) -> str:
    """A folder of n PNGs (class k: bright blob on the left (k=0) or right (k=1)) + dataset.json."""
    rng = np.random.RandomState(seed)
    os.makedirs(root, exist_ok=True)
    labels = []
    yy, xx = np.mgrid[0:res, 0:res]
    for i in range(n):
        k = i % classes
        cx = res * (0.3 + 0.4 * k) + rng.uniform(-1, 1)
        cy = res * 0.5 + rng.uniform(-2, 2)
        img = 255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (res / 6) ** 2))
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        if channels == 3:
            img = np.stack([img] * 3, axis=2)
        name = f"img{i:05d}.png"
        Image.fromarray(img).save(os.path.join(root, name))
        labels.append([name, k])
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump({"labels": labels}, f)
    return str(root)


def load_weights(snapshot_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(os.path.join(str(snapshot_dir), "model.safetensors"))
