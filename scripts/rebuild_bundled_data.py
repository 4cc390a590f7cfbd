#!/usr/bin/env python3
"""Rebuild the datasets bundled in src/ganforge/data/bundled/ from the Debian packages.

    sudo apt-get install dataset-fashion-mnist fonts-noto-color-emoji
    pip install fonttools
    python scripts/rebuild_bundled_data.py            # rewrite the bundled files
    python scripts/rebuild_bundled_data.py --check    # rebuild into a temp folder and compare

What it writes (deterministically: fixed zip timestamps, fixed selection, fixed order):

  fashion-mnist-10k-32.zip  Fashion-MNIST, the first 1,000 images of each of the 10 classes in the
                            order of train-images-idx3-ubyte.gz (10,000 images, kept in file order),
                            padded 28x28 -> 32x32 with black (2 px each side, no resampling),
                            1-channel PNG, integer labels + class names in dataset.json.
                            The 10k test set (t10k-*) is NOT bundled; it stays held out.
  noto-emoji-32.zip         Noto Color Emoji 2.042: one bitmap per single code point of the font's
                            cmap (1,446 images; skin-tone/ZWJ/flag sequences left out to keep the
                            package small), centred on a square canvas, composited on white,
                            resized 136 -> 32 with Lanczos, RGB PNG, labels null.
  LICENSE-fashion-mnist.txt, LICENSE-noto-emoji.txt  the licence notices, from the Debian copyright
                            files.

Both zips use NVIDIA's dataset_tool layout (00000/img00000000.png ...), with PNG compression level 9
(the `ganforge dataset` default is level 0, like NVIDIA's tool) to keep the package small.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile

import numpy as np

from ganforge.data.sources import (EMOJI_APT, EMOJI_FONT, FASHION_MNIST_APT, FASHION_MNIST_CLASSES,
                                   FASHION_MNIST_DIR, Source, SourceItem, emoji_source, read_idx)
from ganforge.data.tool import convert_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED = os.path.join(REPO, "src", "ganforge", "data", "bundled")
PER_CLASS = 1000
RESOLUTION = 32

FASHION_NOTICE = """\
Fashion-MNIST subset bundled with ganforge
==========================================

File: fashion-mnist-10k-32.zip

Contents: 10,000 images of Fashion-MNIST (the first 1,000 images of each class in the
order of train-images-idx3-ubyte.gz), padded from 28x28 to 32x32 with black borders,
stored as PNG in NVIDIA's dataset_tool layout with class labels in dataset.json.
Built by scripts/rebuild_bundled_data.py from the Debian package
dataset-fashion-mnist {version} (/usr/share/datasets/fashion-mnist/).

Upstream: https://github.com/zalandoresearch/fashion-mnist
Copyright (c) 2017 Zalando SE. Licensed under the MIT (Expat) licence, reproduced below
from the Debian copyright file /usr/share/doc/dataset-fashion-mnist/copyright:

----------------------------------------------------------------------------------------
{copyright}"""

EMOJI_NOTICE = """\
Noto Color Emoji images bundled with ganforge
=============================================

File: noto-emoji-32.zip

Contents: {count} emoji images (one per single code point of the font's character map),
taken from the colour bitmaps (CBDT table) of NotoColorEmoji.ttf in the Debian package
fonts-noto-color-emoji {version}, composited on a white background and resized to 32x32
RGB, stored as PNG in NVIDIA's dataset_tool layout (no labels). Built by
scripts/rebuild_bundled_data.py.

Upstream: https://github.com/googlefonts/noto-emoji
The emoji artwork is Copyright 2013-2017 Google Inc. and licensed under the Apache
License, Version 2.0 (full text below). The font file itself is licensed under the SIL
Open Font License 1.1; the font is not redistributed here, only images derived from the
Apache-2.0 artwork it contains. The Debian copyright file
(/usr/share/doc/fonts-noto-color-emoji/copyright) states:

  Files:     *
  Copyright: 2013-2017 Google Inc.
             Arjen Nienhuis <a.g.nienhuis@gmail.com>
  License:   Apache-2.0

Changes made: rasterised bitmaps extracted, composited on white, downscaled to 32x32.

----------------------------------------------------------------------------------------
{apache}"""


def _deb_version(package: str) -> str:
    path = "/var/lib/dpkg/status"
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return "(unknown version)"
    for block in text.split("\n\n"):
        if f"Package: {package}\n" in block + "\n":
            for line in block.splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    return "(unknown version)"


def fashion_subset_source() -> Source:
    images_path = os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")
    labels_path = os.path.join(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz")
    if not os.path.isfile(images_path):
        sys.exit(f"error: {images_path} missing; sudo apt-get install {FASHION_MNIST_APT}")
    x, y = read_idx(images_path), read_idx(labels_path)
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:PER_CLASS] for c in range(10)]))
    assert keep.size == 10 * PER_CLASS

    from PIL import Image

    def loader(i):
        return lambda: Image.fromarray(x[i], "L")

    items = [SourceItem(f"train-{i:05d}", loader(int(i)), int(y[i])) for i in keep]
    return Source(f"Fashion-MNIST train, first {PER_CLASS} per class", items, FASHION_MNIST_CLASSES,
                  "Fashion-MNIST labels")


def build(out_dir: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    if not os.path.isfile(EMOJI_FONT):
        sys.exit(f"error: {EMOJI_FONT} missing; sudo apt-get install {EMOJI_APT}")
    files = {}
    rep = convert_dataset(fashion_subset_source(), os.path.join(out_dir, "fashion-mnist-10k-32.zip"),
                          resolution=RESOLUTION, transform="pad", optimize=True, progress=True)
    print(rep)
    files["fashion-mnist-10k-32.zip"] = rep.written
    rep = convert_dataset(emoji_source(subset="base"), os.path.join(out_dir, "noto-emoji-32.zip"),
                          resolution=RESOLUTION, transform="resize", resize_filter="lanczos",
                          optimize=True, progress=True)
    print(rep)
    files["noto-emoji-32.zip"] = rep.written

    copyright_text = open("/usr/share/doc/dataset-fashion-mnist/copyright", encoding="utf-8").read()
    with open(os.path.join(out_dir, "LICENSE-fashion-mnist.txt"), "w", encoding="utf-8") as f:
        f.write(FASHION_NOTICE.format(version=_deb_version("dataset-fashion-mnist"), copyright=copyright_text))
    apache = open("/usr/share/common-licenses/Apache-2.0", encoding="utf-8").read()
    with open(os.path.join(out_dir, "LICENSE-noto-emoji.txt"), "w", encoding="utf-8") as f:
        f.write(EMOJI_NOTICE.format(count=files["noto-emoji-32.zip"],
                                    version=_deb_version("fonts-noto-color-emoji"), apache=apache))
    return files


def _zip_content(path: str) -> dict:
    """name -> decoded pixels (or raw bytes for dataset.json), to compare builds independent of zlib."""
    from PIL import Image
    import io

    out = {}
    with zipfile.ZipFile(path) as zf:
        for n in zf.namelist():
            data = zf.read(n)
            out[n] = (np.asarray(Image.open(io.BytesIO(data))).tobytes() if n.endswith(".png") else data)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="rebuild in a temp folder and compare with the bundled files")
    ap.add_argument("--out", default=BUNDLED, help=f"output folder (default {BUNDLED})")
    args = ap.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(tmp)
            ok = True
            for name in sorted(os.listdir(tmp)):
                a, b = os.path.join(tmp, name), os.path.join(args.out, name)
                if not os.path.exists(b):
                    print(f"MISSING {b}")
                    ok = False
                    continue
                same_bytes = open(a, "rb").read() == open(b, "rb").read()
                same = same_bytes or (name.endswith(".zip") and _zip_content(a) == _zip_content(b))
                print(f"{'same' if same else 'DIFFERENT'}{' bytes' if same_bytes else ' pixels' if same else ''}: {name}")
                ok &= same
        sys.exit(0 if ok else 1)
    build(args.out)
    total = 0
    for name in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, name)
        size = os.path.getsize(p)
        total += size
        digest = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
        print(f"{size:>10,d}  {digest}  {name}")
    print(f"{total:>10,d}  total")


if __name__ == "__main__":
    main()
