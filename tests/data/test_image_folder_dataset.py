"""ImageFolderDataset: folder and zip, labels, x-flip, max_size, errors, DataLoader workers."""

import json
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from data_helpers import png_bytes
from ganforge.data import ImageFolderDataset
from ganforge.errors import FormatError, UsageError


def _make(tmp_path, n=10, size=8, channels=3, labels="int", as_zip=False):
    rng = np.random.RandomState(0)
    shape = (size, size, channels) if channels == 3 else (size, size)
    pics = [rng.randint(0, 256, shape, dtype=np.uint8) for _ in range(n)]
    names = [f"{i // 4:05d}/img{i:08d}.png" for i in range(n)]
    if labels == "int":
        lab = [[nm, int(i % 3)] for i, nm in enumerate(names)]
    elif labels == "float":
        lab = [[nm, [float(i), -1.0, 0.5]] for i, nm in enumerate(names)]
    else:
        lab = None
    meta = json.dumps({"labels": lab})
    if as_zip:
        path = tmp_path / "ds.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for nm, p in zip(names, pics):
                zf.writestr(nm, png_bytes(Image.fromarray(p)))
            zf.writestr("dataset.json", meta)
    else:
        path = tmp_path / "ds"
        for nm, p in zip(names, pics):
            os.makedirs(path / os.path.dirname(nm), exist_ok=True)
            Image.fromarray(p).save(path / nm)
        (path / "dataset.json").write_text(meta)
    return path, pics


@pytest.mark.parametrize("as_zip", [False, True])
def test_images_and_one_hot_labels(tmp_path, as_zip):
    path, pics = _make(tmp_path, as_zip=as_zip)
    ds = ImageFolderDataset(path, use_labels=True, resolution=8)
    assert len(ds) == 10 and ds.image_shape == [3, 8, 8] and ds.num_channels == 3 and ds.resolution == 8
    assert ds.has_labels and ds.label_dim == 3 and ds.label_shape == [3] and ds.name == "ds"
    for i in range(10):
        img, label = ds[i]
        assert img.dtype == np.uint8 and img.shape == (3, 8, 8) and img.flags["WRITEABLE"]
        np.testing.assert_array_equal(img, pics[i].transpose(2, 0, 1))
        np.testing.assert_array_equal(label, np.eye(3, dtype=np.float32)[i % 3])
        assert label.dtype == np.float32 and ds.get_class(i) == i % 3
    unlabelled = ImageFolderDataset(path)  # use_labels=False
    assert unlabelled.label_dim == 0 and unlabelled[0][1].shape == (0,) and not unlabelled.has_labels


def test_float_labels_greyscale_and_null_labels(tmp_path):
    path, pics = _make(tmp_path, channels=1, labels="float")
    ds = ImageFolderDataset(path, use_labels=True)
    assert ds.image_shape == [1, 8, 8] and ds.label_dim == 3
    np.testing.assert_array_equal(ds[4][1], np.array([4.0, -1.0, 0.5], np.float32))
    np.testing.assert_array_equal(ds[4][0][0], pics[4])
    assert ds[4][0].flags["WRITEABLE"]  # torch.as_tensor of a read-only array warns
    path2, _ = _make(tmp_path / "n", labels=None)
    ds2 = ImageFolderDataset(path2, use_labels=True)
    assert not ds2.has_labels and ds2[0][1].shape == (0,)


def test_xflip_doubles_and_mirrors(tmp_path):
    path, pics = _make(tmp_path, as_zip=True)
    ds = ImageFolderDataset(path, use_labels=True, xflip=True)
    assert len(ds) == 20
    for i in range(10):
        a, la = ds[i]
        b, lb = ds[i + 10]
        np.testing.assert_array_equal(b, a[:, :, ::-1])
        np.testing.assert_array_equal(la, lb)
        assert b.flags["C_CONTIGUOUS"]


def test_max_size_is_a_seeded_subset_in_file_order(tmp_path):
    path, pics = _make(tmp_path)
    a = ImageFolderDataset(path, max_size=4, random_seed=1)
    b = ImageFolderDataset(path, max_size=4, random_seed=1)
    c = ImageFolderDataset(path, max_size=4, random_seed=2)
    assert len(a) == 4 and a.raw_names == b.raw_names and a.raw_names != c.raw_names
    assert a.raw_names == sorted(a.raw_names) and len(set(a.raw_names)) == 4
    full = ImageFolderDataset(path)
    idx = [full.raw_names.index(n) for n in a.raw_names]
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(a[k][0], full[i][0])
    assert len(ImageFolderDataset(path, max_size=100)) == 10
    assert len(ImageFolderDataset(path, max_size=4, xflip=True)) == 8


def test_dataset_errors(tmp_path):
    path, _ = _make(tmp_path)
    with pytest.raises(UsageError, match="resolution 16"):
        ImageFolderDataset(path, resolution=16)
    with pytest.raises(UsageError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(UsageError, match="neither a folder nor a zip"):
        ImageFolderDataset(tmp_path / "text.zip")
    # labels missing for an image, and a corrupt image inside the dataset: FormatError, not a crash
    (path / "dataset.json").write_text(json.dumps({"labels": [["00000/img00000000.png", 1]]}))
    with pytest.raises(FormatError, match="no label for"):
        ImageFolderDataset(path, use_labels=True)
    (path / "00001" / "img00000005.png").write_bytes(b"broken")
    ds = ImageFolderDataset(path)
    with pytest.raises(FormatError, match="img00000005.png"):
        ds[5]
    Image.new("RGB", (4, 4)).save(path / "00001" / "img00000006.png")
    with pytest.raises(FormatError, match="4x4 but the dataset's first image is 8x8"):
        ds[6]


def test_dataloader_workers_read_a_zip(tmp_path):
    path, pics = _make(tmp_path, as_zip=True)
    ds = ImageFolderDataset(path, use_labels=True)
    ds[0]  # the zip is open in this process; workers must reopen their own
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2, shuffle=False)
    imgs, labels = zip(*loader)
    imgs = torch.cat(imgs).numpy()
    assert imgs.shape == (10, 3, 8, 8) and torch.cat(labels).shape == (10, 3)
    for i in range(10):
        np.testing.assert_array_equal(imgs[i], pics[i].transpose(2, 0, 1))
