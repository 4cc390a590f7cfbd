"""Where the dataset tool reads images from: a folder, a zip, IDX files (Fashion-MNIST), the Noto
colour emoji font.

A Source is a list of items, each a name, a loader returning a PIL image (raising ImageReadError for
an unreadable file) and a label (int, list of floats, or None), plus the class names if known.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from ganforge.data.images import ImageReadError, is_image_name, open_image
from ganforge.errors import FormatError, UsageError

# Debian packages with offline data (see DESIGN.md).
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_APT = "dataset-fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_APT = "fonts-noto-color-emoji"


@dataclass
class SourceItem:
    name: str
    load: Callable[[], Image.Image]
    label: object = None


@dataclass
class Source:
    description: str
    items: list
    class_names: list | None = None
    label_origin: str | None = None     # e.g. "sub-folder names", "dataset.json"
    ignored: list = field(default_factory=list)   # non-image files that were not looked at
    default_transform: str | None = None

    @property
    def has_labels(self) -> bool:
        return self.label_origin is not None


def _skip_name(name: str) -> bool:
    base = os.path.basename(name)
    return base.startswith("._") or name.startswith("__MACOSX/") or base in (".DS_Store", "Thumbs.db")


def _labels_from_names(names: list, meta: dict | None, no_labels: bool, where: str):
    """Labels for a list of relative names: from dataset.json if present, else from sub-folder names
    (when every image sits in one of at least two top-level folders). Returns (labels, class_names,
    origin)."""
    if no_labels:
        return [None] * len(names), None, None
    if meta is not None:
        labels = meta.get("labels")
        class_names = meta.get("class_names") if isinstance(meta.get("class_names"), list) else None
        if labels is None:
            return [None] * len(names), None, None
        try:
            table = {str(k).replace("\\", "/"): v for k, v in labels}
        except (TypeError, ValueError):
            raise FormatError(f"dataset.json in {where}: 'labels' must be a list of [file name, label] "
                              "pairs") from None
        missing = [n for n in names if n not in table]
        if missing:
            raise FormatError(f"dataset.json in {where} has no label for {missing[0]} ({len(missing)} "
                              "images unlabelled); fix it, or pass --no-labels")
        return [table[n] for n in names], class_names, "dataset.json"
    tops = [n.split("/", 1)[0] if "/" in n else None for n in names]
    classes = sorted(set(tops) - {None})
    if None in tops or len(classes) < 2:
        return [None] * len(names), None, None
    index = {c: i for i, c in enumerate(classes)}
    return [index[t] for t in tops], classes, "sub-folder names"


def _read_meta(data: bytes, where: str) -> dict:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"dataset.json in {where} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise FormatError(f"dataset.json in {where} must be an object with a 'labels' key")
    return meta


def folder_source(path: str, no_labels: bool = False) -> Source:
    names, ignored = [], []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(root, f), path).replace(os.sep, "/")
            if rel == "dataset.json" or _skip_name(rel):
                continue
            (names if is_image_name(rel) else ignored).append(rel)
    names.sort(key=lambda n: n.split("/"))  # path-component order, as NVIDIA's tool walks a folder
    meta_path = os.path.join(path, "dataset.json")
    meta = None
    if os.path.isfile(meta_path):
        with open(meta_path, "rb") as f:
            meta = _read_meta(f.read(), path)
    labels, class_names, origin = _labels_from_names(names, meta, no_labels, path)

    def loader(rel):
        def load():
            return open_image(os.path.join(path, rel))
        return load

    items = [SourceItem(n, loader(n), lab) for n, lab in zip(names, labels)]
    return Source(f"folder {path}", items, class_names, origin, ignored)


def zip_source(path: str, no_labels: bool = False) -> Source:
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise UsageError(f"cannot read zip {path}: {e}") from None
    names, ignored = [], []
    for info in infos:
        n = info.filename
        if info.is_dir() or n == "dataset.json" or _skip_name(n):
            continue
        (names if is_image_name(n) else ignored).append(n)
    names.sort()
    meta = None
    if "dataset.json" in zf.namelist():
        meta = _read_meta(zf.read("dataset.json"), path)
    labels, class_names, origin = _labels_from_names(names, meta, no_labels, path)

    def loader(n):
        def load():
            try:
                data = zf.read(n)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # CRC errors, ...
                raise ImageReadError(f"unreadable zip member ({e})") from None
            return open_image(data)
        return load

    items = [SourceItem(n, loader(n), lab) for n, lab in zip(names, labels)]
    return Source(f"zip {path}", items, class_names, origin, ignored)


# -- IDX (MNIST / Fashion-MNIST) -----------------------------------------------------------------
def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzip'd): magic 0x0000 TT DD (TT=0x08 uint8, DD = number of dims),
    then DD big-endian uint32 sizes, then the data. Returns a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise FormatError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise FormatError(f"{path} is not an IDX file of uint8 data")
    ndim = data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        raise FormatError(f"{path} is a truncated IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:head])
    count = int(np.prod(shape)) if ndim else 0
    if len(data) - head < count:
        raise FormatError(f"{path} is a truncated IDX file ({len(data) - head} of {count} bytes)")
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=head).reshape(shape)


def idx_source(images_path: str, labels_path: str | None = None, class_names=None,
               no_labels: bool = False, description: str | None = None) -> Source:
    images = read_idx(images_path)
    if images.ndim != 3:
        raise FormatError(f"{images_path}: expected an image IDX file [N, H, W], got shape {images.shape}")
    labels = None
    if labels_path is not None and os.path.isfile(labels_path) and not no_labels:
        labels = read_idx(labels_path)
        if labels.shape != (images.shape[0],):
            raise FormatError(f"{labels_path} has {labels.shape} labels for {images.shape[0]} images")

    def loader(i):
        return lambda: Image.fromarray(images[i], "L")

    items = [SourceItem(f"{i:05d}", loader(i), None if labels is None else int(labels[i]))
             for i in range(images.shape[0])]
    return Source(description or f"IDX {images_path}", items,
                  class_names if labels is not None else None,
                  "IDX labels" if labels is not None else None)


def _idx_labels_sibling(images_path: str) -> str | None:
    d, b = os.path.split(images_path)
    if "images-idx3" in b:
        return os.path.join(d, b.replace("images-idx3", "labels-idx1"))
    return None


def fashion_mnist_source(split: str = "train", no_labels: bool = False) -> Source:
    """Fashion-MNIST from the Debian package (60k train / 10k test, 28x28 greyscale, 10 classes).
    The folder can be overridden with the environment variable GANFORGE_FASHION_MNIST_DIR."""
    root = os.environ.get("GANFORGE_FASHION_MNIST_DIR", FASHION_MNIST_DIR)
    prefix = "train" if split == "train" else "t10k"
    images = os.path.join(root, f"{prefix}-images-idx3-ubyte.gz")
    if not os.path.isfile(images):
        raise UsageError(f"Fashion-MNIST is not installed ({images} is missing); install the Debian "
                         f"package: sudo apt-get install {FASHION_MNIST_APT}")
    src = idx_source(images, os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"),
                     FASHION_MNIST_CLASSES, no_labels, f"Fashion-MNIST {split} ({root})")
    src.default_transform = "pad"
    if src.label_origin:
        src.label_origin = "Fashion-MNIST labels"
    return src


def emoji_source(font_path: str | None = None, subset: str = "all") -> Source:
    """Colour bitmaps of the Noto Color Emoji font (CBDT table), each put on a transparent square
    canvas (the bitmaps are 136x128) so that the tool composites them on white.

    subset: 'all' = every bitmap in the font (3,926 in Debian's 2.042: includes skin-tone, ZWJ and flag
    sequences); 'base' = one bitmap per single code point of the font's cmap (1,446), in code point
    order. The font's path can be overridden with the environment variable GANFORGE_EMOJI_FONT."""
    font_path = font_path or os.environ.get("GANFORGE_EMOJI_FONT", EMOJI_FONT)
    if not os.path.isfile(font_path):
        raise UsageError(f"the Noto colour emoji font is not installed ({font_path} is missing); install "
                         f"the Debian package: sudo apt-get install {EMOJI_APT}")
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        raise UsageError("reading the emoji font needs fontTools: pip install fonttools") from None
    try:
        font = TTFont(font_path, lazy=True)
        strike = font["CBDT"].strikeData[0]
        order = {g: i for i, g in enumerate(font.getGlyphOrder())}
    except Exception as e:  # fontTools raises many kinds; any of them means "not this font"
        raise FormatError(f"{font_path} is not a colour bitmap (CBDT) font: {e}") from None
    if subset == "base":
        cmap = font.getBestCmap()
        names, seen = [], set()
        for cp in sorted(cmap):
            g = cmap[cp]
            if g in strike and g not in seen:
                seen.add(g)
                names.append(g)
    else:
        names = sorted(strike.keys(), key=lambda g: order.get(g, len(order)))

    def loader(g):
        def load():
            bitmap = strike[g]
            data = getattr(bitmap, "imageData", None)
            if not data:
                raise ImageReadError("glyph has no PNG bitmap")
            img = open_image(io.BytesIO(data)).convert("RGBA")
            s = max(img.size)
            canvas = Image.new("RGBA", (s, s), (255, 255, 255, 0))
            canvas.paste(img, ((s - img.size[0]) // 2, (s - img.size[1]) // 2))
            return canvas
        return load

    items = [SourceItem(g, loader(g), None) for g in names]
    what = "single code points" if subset == "base" else "all bitmaps"
    return Source(f"Noto Color Emoji, {what} ({font_path})", items, default_transform="resize")


def open_source(source: str, no_labels: bool = False) -> Source:
    """Resolve the --source argument: 'fashion-mnist', 'fashion-mnist-test', 'emoji', 'emoji-base', a
    folder, a .zip, or an IDX images file (*-images-idx3-ubyte[.gz])."""
    if source in ("fashion-mnist", "fashion-mnist-train"):
        return fashion_mnist_source("train", no_labels)
    if source == "fashion-mnist-test":
        return fashion_mnist_source("test", no_labels)
    if source in ("emoji", "emoji-base"):
        return emoji_source(subset="base" if source == "emoji-base" else "all")
    if os.path.isdir(source):
        return folder_source(source, no_labels)
    if os.path.isfile(source):
        base = os.path.basename(source)
        if "idx3-ubyte" in base:
            return idx_source(source, _idx_labels_sibling(source), None, no_labels)
        if zipfile.is_zipfile(source):
            return zip_source(source, no_labels)
        raise UsageError(f"--source {source} is a file but not a zip or an IDX images file; give a "
                         "folder, a .zip, fashion-mnist or emoji")
    raise UsageError(f"--source {source} does not exist; give a folder, a .zip, fashion-mnist or emoji")
