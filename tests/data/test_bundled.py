"""The datasets shipped inside the package."""

import json
import os
import zipfile

import numpy as np
import pytest

from ganforge.data import ImageFolderDataset, bundled_path
from ganforge.errors import UsageError


def test_bundled_fashion_mnist_is_stratified_and_padded():
    path = bundled_path("fashion-mnist")
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("dataset.json"))
        pngs = [n for n in zf.namelist() if n.endswith(".png")]
    labels = [lab for _, lab in meta["labels"]]
    assert len(pngs) == 10000 and np.bincount(labels).tolist() == [1000] * 10
    assert meta["class_names"][0] == "T-shirt/top" and len(meta["class_names"]) == 10
    ds = ImageFolderDataset(path, use_labels=True, resolution=32)
    assert ds.image_shape == [1, 32, 32] and ds.label_dim == 10 and len(ds) == 10000
    for i in (0, 4321, 9999):
        img, label = ds[i]
        assert img[0, :2].max() == 0 and img[0, :, :2].max() == 0  # black 2-px padding
        assert img[0, 2:30, 2:30].max() > 0 and label.sum() == 1


def test_bundled_emoji_and_licences():
    path = bundled_path("emoji")
    ds = ImageFolderDataset(path, use_labels=True, resolution=32)
    assert ds.image_shape == [3, 32, 32] and not ds.has_labels and len(ds) > 1000
    corners = np.stack([ds[i][0][:, 0, 0] for i in range(0, len(ds), 97)])
    assert np.median(corners) == 255  # composited on white
    here = os.path.dirname(path)
    assert "Zalando SE" in open(os.path.join(here, "LICENSE-fashion-mnist.txt")).read()
    assert "Apache License" in open(os.path.join(here, "LICENSE-noto-emoji.txt")).read()
    size = sum(os.path.getsize(os.path.join(here, f)) for f in os.listdir(here))
    assert size < 9.5e6


def test_unknown_bundled_name():
    with pytest.raises(UsageError, match="fashion-mnist"):
        bundled_path("cifar10")
