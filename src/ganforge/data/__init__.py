"""Image datasets, the dataset tool, and the small datasets bundled with ganforge.

    from ganforge.data import ImageFolderDataset, InfiniteSampler, bundled_path
    ds = ImageFolderDataset(bundled_path("fashion-mnist"), use_labels=True)
"""

from __future__ import annotations

import os

from ganforge.errors import UsageError

BUNDLED = {
    # name: (file under data/bundled/, description)
    "fashion-mnist": ("fashion-mnist-10k-32.zip",
                      "Fashion-MNIST, 1000 train images per class, 32x32 greyscale, 10 labels (MIT)"),
    "emoji": ("noto-emoji-32.zip", "Noto Color Emoji bitmaps on white, 32x32 RGB, no labels (Apache-2.0)"),
}


def bundled_path(name: str) -> str:
    """Path of a dataset zip shipped inside the package: 'fashion-mnist' or 'emoji'."""
    if name not in BUNDLED:
        raise UsageError(f"no bundled dataset {name!r}; choose one of {', '.join(sorted(BUNDLED))}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundled", BUNDLED[name][0])
    if not os.path.isfile(path):
        raise UsageError(f"the bundled dataset file {path} is missing from this installation; "
                         "reinstall ganforge or rebuild it with scripts/rebuild_bundled_data.py")
    return path


def __getattr__(name):  # lazy: importing ganforge.data does not import torch
    if name == "ImageFolderDataset":
        from ganforge.data.dataset import ImageFolderDataset

        return ImageFolderDataset
    if name == "InfiniteSampler":
        from ganforge.data.sampler import InfiniteSampler

        return InfiniteSampler
    raise AttributeError(f"module 'ganforge.data' has no attribute {name!r}")


__all__ = ["ImageFolderDataset", "InfiniteSampler", "bundled_path", "BUNDLED"]
