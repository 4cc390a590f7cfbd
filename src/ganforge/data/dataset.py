"""Image datasets for training and metrics: a folder (searched recursively) or a zip of images.

The layout is NVIDIA's (stylegan2-ada / stylegan3 dataset_tool): images anywhere in the folder or
zip, and an optional `dataset.json`

    {"labels": [["00000/img00000000.png", 6], ["00000/img00000001.png", 9], ...]}   or  null

Integer labels become one-hot vectors of width max+1; float vectors are used as they are. A dataset
written by `ganforge dataset` may carry an extra key "class_names" (ignored by NVIDIA's loader).
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ganforge.data.images import ImageReadError, image_to_array, is_image_name, open_image
from ganforge.data.sampler import InfiniteSampler  # noqa: F401  (re-exported for the training loop)
from ganforge.errors import FormatError, UsageError

__all__ = ["ImageFolderDataset", "InfiniteSampler"]


class ImageFolderDataset:
    """A folder or zip of images, as uint8 [C, H, W] arrays with optional labels.

    path:        folder (recursive) or .zip file
    resolution:  if given, the images must be resolution x resolution (UsageError otherwise)
    use_labels:  read labels from dataset.json; without it every label has shape [0]
    xflip:       double the dataset; items len..2*len-1 are the mirror images of 0..len-1
    max_size:    keep a random subset of this many images (chosen with random_seed, kept in file order)
    random_seed: seed of the max_size subset

    dataset[i] -> (image uint8 [C, H, W], label float32 [label_dim])
    Attributes: name, resolution, num_channels, image_shape [C, H, W], label_dim, label_shape,
    has_labels, class_names (list or None), raw_names (file names in the dataset's order).

    Works with torch DataLoader workers: an open zip file is not shared across processes.
    """

    def __init__(self, path, resolution=None, use_labels=False, xflip=False, max_size=None,
                 random_seed=0):
        path = os.fspath(path)
        self.path = path
        self._zipfile = None
        self._zip_pid = None
        if os.path.isdir(path):
            self._type = "dir"
            names = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for f in files:
                    rel = os.path.relpath(os.path.join(root, f), path).replace(os.sep, "/")
                    names.append(rel)
        elif os.path.isfile(path):
            if not zipfile.is_zipfile(path):
                raise UsageError(f"{path} is neither a folder nor a zip file of images; "
                                 f"make one with `ganforge dataset --source ... --dest {path}.zip`")
            self._type = "zip"
            names = self._get_zip().namelist()
        else:
            raise UsageError(f"dataset {path} does not exist; give a folder or zip of images "
                             "(`ganforge dataset` builds one)")
        self._names = sorted(n for n in names if is_image_name(n) and not n.endswith("/")
                             and not os.path.basename(n).startswith("._"))
        if not self._names:
            raise UsageError(f"dataset {path} contains no images ({', '.join(('.png', '.jpg', '...'))})")
        self.name = os.path.splitext(os.path.basename(path.rstrip("/\\")))[0]

        # Labels and class names from dataset.json.
        self._raw_labels, self.class_names = self._load_labels() if use_labels else (None, None)
        self.has_labels = self._raw_labels is not None
        if self._raw_labels is None:
            self.label_shape = [0]
        elif self._raw_labels.dtype == np.int64:
            self.label_shape = [int(self._raw_labels.max()) + 1]
        else:
            self.label_shape = list(self._raw_labels.shape[1:])
        self.label_dim = int(np.prod(self.label_shape)) if self.has_labels else 0

        # Which raw images we use, and whether each is mirrored.
        raw_idx = np.arange(len(self._names), dtype=np.int64)
        if max_size is not None and max_size < len(raw_idx):
            if max_size <= 0:
                raise UsageError(f"max_size must be positive, got {max_size}")
            rnd = np.random.RandomState(random_seed % (1 << 32))
            raw_idx = np.sort(rnd.permutation(raw_idx)[:max_size])
        self._xflip = np.zeros(raw_idx.size, dtype=np.uint8)
        if xflip:
            raw_idx = np.concatenate([raw_idx, raw_idx])
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])
        self._raw_idx = raw_idx

        # Shape from the first image (every image must match it).
        first = self._load_raw_image(0)
        self.image_shape = list(first.shape)
        self.num_channels = self.image_shape[0]
        if resolution is not None:
            h, w = self.image_shape[1:]
            if h != w or h != resolution:
                raise UsageError(
                    f"dataset {path} has {w}x{h} images but resolution {resolution} was asked for; "
                    f"rebuild it with `ganforge dataset --source {path} --dest OUT.zip "
                    f"--resolution {resolution} --transform center-crop` (or pad / resize)")

    # -- files ------------------------------------------------------------------------------------
    def _get_zip(self):
        pid = os.getpid()
        if self._zipfile is None or self._zip_pid != pid:
            try:
                self._zipfile = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise FormatError(f"cannot read zip {self.path}: {e}") from None
            self._zip_pid = pid
        return self._zipfile

    def _read_bytes(self, name: str) -> bytes:
        if self._type == "zip":
            try:
                return self._get_zip().read(name)
            except (zipfile.BadZipFile, KeyError, OSError, EOFError) as e:
                raise FormatError(f"cannot read {name} from {self.path}: {e}") from None
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def _has_file(self, name: str) -> bool:
        if self._type == "zip":
            return name in set(self._get_zip().namelist())
        return os.path.isfile(os.path.join(self.path, name))

    def close(self):
        if self._zipfile is not None:
            self._zipfile.close()
        self._zipfile = None

    def __getstate__(self):  # DataLoader workers: re-open the zip in each process
        state = dict(self.__dict__)
        state["_zipfile"] = None
        state["_zip_pid"] = None
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _load_labels(self):
        if not self._has_file("dataset.json"):
            return None, None
        try:
            meta = json.loads(self._read_bytes("dataset.json").decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(f"dataset.json in {self.path} is not valid JSON: {e}") from None
        if not isinstance(meta, dict):
            raise FormatError(f"dataset.json in {self.path} must be an object with a 'labels' key")
        class_names = meta.get("class_names")
        labels = meta.get("labels")
        if labels is None:
            return None, None
        try:
            table = {str(k).replace("\\", "/"): v for k, v in labels}
        except (TypeError, ValueError):
            raise FormatError(f"dataset.json in {self.path}: 'labels' must be a list of "
                              "[file name, label] pairs") from None
        missing = [n for n in self._names if n not in table]
        if missing:
            raise FormatError(f"dataset.json in {self.path} has no label for {missing[0]} "
                              f"({len(missing)} images unlabelled)")
        values = [table[n] for n in self._names]
        arr = np.array(values)
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            arr = arr.astype(np.int64)
            if arr.min() < 0:
                raise FormatError(f"dataset.json in {self.path} has negative class labels")
        elif np.issubdtype(arr.dtype, np.number) and arr.ndim >= 1:
            arr = arr.astype(np.float32)
            if arr.ndim == 1:
                arr = arr[:, None]
        else:
            raise FormatError(f"dataset.json in {self.path}: labels must be integers or "
                              "equal-length number lists")
        return arr, (list(class_names) if isinstance(class_names, list) else None)

    def _load_raw_image(self, raw_i: int) -> np.ndarray:
        name = self._names[raw_i]
        try:
            img = open_image(self._read_bytes(name))
        except ImageReadError as e:
            raise FormatError(f"cannot read image {name} in {self.path}: {e}; clean the dataset "
                              "with `ganforge dataset`, which skips unreadable files") from None
        channels = getattr(self, "num_channels", None)
        arr = image_to_array(img, channels)
        if hasattr(self, "image_shape") and list(arr.shape) != self.image_shape:
            raise FormatError(
                f"image {name} in {self.path} is {arr.shape[2]}x{arr.shape[1]} but the dataset's first "
                f"image is {self.image_shape[2]}x{self.image_shape[1]}; make the sizes uniform with "
                "`ganforge dataset --resolution N --transform center-crop`")
        return arr

    # -- the Dataset protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._raw_idx.size)

    def __getitem__(self, idx: int):
        raw_i = int(self._raw_idx[idx])
        image = self._load_raw_image(raw_i)
        if self._xflip[idx]:
            image = np.ascontiguousarray(image[:, :, ::-1])
        return image, self.get_label(idx)

    def get_label(self, idx: int) -> np.ndarray:
        """Label of item idx: float32 [label_dim] (one-hot for class labels), shape [0] without labels."""
        if self._raw_labels is None:
            return np.zeros([0], dtype=np.float32)
        raw = self._raw_labels[int(self._raw_idx[idx])]
        if self._raw_labels.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[int(raw)] = 1
            return onehot
        return raw.astype(np.float32).reshape(-1)

    def get_class(self, idx: int) -> int | None:
        """Integer class of item idx, or None for unlabelled / vector-labelled datasets."""
        if self._raw_labels is None or self._raw_labels.dtype != np.int64:
            return None
        return int(self._raw_labels[int(self._raw_idx[idx])])

    @property
    def raw_names(self) -> list:
        return [self._names[i] for i in self._raw_idx]

    @property
    def resolution(self) -> int:
        h, w = self.image_shape[1:]
        if h != w:
            raise UsageError(f"dataset {self.path} has non-square {w}x{h} images; "
                             "use `ganforge dataset --transform center-crop`")
        return h

    def __repr__(self):
        return (f"ImageFolderDataset({self.path!r}, {len(self)} items, image_shape={self.image_shape}, "
                f"label_dim={self.label_dim})")
