"""The dataset tool: turn a folder, zip or offline set into a training dataset in NVIDIA's layout.

Output (a .zip, or a folder for any other --dest):

    00000/img00000000.png ... 00000/img00000999.png, 00001/img00001000.png, ...
    dataset.json   {"labels": [["00000/img00000000.png", 6], ...] or null, "class_names": [...]}

Every image is resolution x resolution, 1 channel (when every input is greyscale) or 3 (RGB), saved
as PNG with compress_level=0 by default (as NVIDIA's dataset_tool does). The "class_names" key is
ours; NVIDIA's loader ignores it. Writes go to a temporary file or folder beside the destination that
is renamed into place only when everything succeeded.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field

from PIL import Image

from ganforge.data.images import ImageReadError, exif_upright, image_kind, to_grey_or_rgb
from ganforge.data.sources import Source, open_source
from ganforge.data.transforms import RESIZE_FILTERS, TRANSFORMS, apply_transform, is_power_of_two
from ganforge.errors import UsageError
from ganforge.fsutil import current_umask, fsync_dir

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same input gives a byte-identical zip

_CONVERSION_TEXT = {
    "rgba": "RGBA composited on white",
    "grey+alpha": "greyscale+alpha composited on white",
    "palette": "palette expanded to RGB",
    "palette-grey": "greyscale palette expanded",
    "other": "other colour modes (CMYK, ...) converted to RGB",
}


def archive_name(idx: int) -> str:
    """NVIDIA's file name for image idx: 5-digit folder of a thousand images, 8-digit file index."""
    s = f"{idx:08d}"
    return f"{s[:5]}/img{s}.png"


@dataclass
class DatasetReport:
    """What the dataset tool did; str(report) is the summary printed at the end."""

    source: str = ""
    dest: str = ""
    written: int = 0
    resolution: int = 0
    channels: int = 0
    label_origin: str | None = None
    num_classes: int | None = None
    class_names: list | None = None
    transform: str | None = None
    skipped: list = field(default_factory=list)       # (name, reason) of unreadable images
    ignored: int = 0                                  # non-image files not looked at
    conversions: Counter = field(default_factory=Counter)
    resized: int = 0                                  # images whose geometry changed

    def __str__(self):
        mode = {1: "greyscale", 3: "RGB"}.get(self.channels, f"{self.channels}-channel")
        lines = [f"wrote {self.written} images ({self.resolution}x{self.resolution} {mode}) to {self.dest}"]
        if self.label_origin:
            lines.append(f"labels: {self.num_classes if self.num_classes is not None else 'vector'}"
                         f"{' classes' if self.num_classes is not None else ''} from {self.label_origin}")
        else:
            lines.append("labels: none")
        if self.resized:
            lines.append(f"transformed: {self.resized} images ({self.transform or 'resize'})")
        for key, n in sorted(self.conversions.items()):
            lines.append(f"converted: {n} {key}")
        if self.ignored:
            lines.append(f"ignored: {self.ignored} files that are not images")
        lines.append(f"skipped: {len(self.skipped)} unreadable images")
        for name, reason in self.skipped[:20]:
            lines.append(f"  {name}: {reason}")
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


# -- writers (temporary, renamed into place at the end) -----------------------------------------
class _ZipWriter:
    def __init__(self, dest: str):
        parent = os.path.dirname(os.path.abspath(dest))
        fd, self.tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".tmp", dir=parent)
        os.close(fd)
        self.dest = dest
        self.zf = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)

    def write(self, name: str, data: bytes):
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.external_attr = 0o644 << 16
        self.zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)

    def read_back(self):
        """Reopen the written images for a second pass; returns (names, read function)."""
        self.zf.close()
        src = zipfile.ZipFile(self.tmp)
        old = self.tmp
        parent = os.path.dirname(old)
        fd, self.tmp = tempfile.mkstemp(prefix=os.path.basename(old) + ".", suffix=".tmp", dir=parent)
        os.close(fd)
        self.zf = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
        return src, old

    def commit(self):
        self.zf.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(self.tmp, 0o666 & ~current_umask())  # mkstemp made it private; give it normal permissions
        os.replace(self.tmp, self.dest)
        fsync_dir(os.path.dirname(os.path.abspath(self.dest)))

    def abort(self):
        try:
            self.zf.close()
        except Exception:
            pass
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


class _DirWriter:
    def __init__(self, dest: str):
        parent = os.path.dirname(os.path.abspath(dest))
        self.tmp = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(dest)) + ".", suffix=".tmp",
                                    dir=parent)
        self.dest = dest

    def write(self, name: str, data: bytes):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def commit(self):
        os.chmod(self.tmp, 0o777 & ~current_umask())
        if os.path.isdir(self.dest):
            os.rmdir(self.dest)  # checked empty before we started
        os.replace(self.tmp, self.dest)
        fsync_dir(os.path.dirname(os.path.abspath(self.dest)))

    def abort(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def _encode_png(img: Image.Image, compress_level: int, optimize: bool) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="png", compress_level=compress_level, optimize=optimize)
    return buf.getvalue()


def _check_args(dest, resolution, transform, resize_filter, max_images, compress_level):
    if resolution is not None and (resolution < 4 or not is_power_of_two(resolution)):
        raise UsageError(f"--resolution {resolution} is not a power of two >= 4 (StyleGAN2 needs one, "
                         "e.g. 32, 64, 256)")
    if transform is not None and transform not in TRANSFORMS:
        raise UsageError(f"unknown --transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")
    if transform is not None and resolution is None:
        raise UsageError(f"--transform {transform} needs --resolution (the output size)")
    if resize_filter not in RESIZE_FILTERS:
        raise UsageError(f"unknown --resize-filter {resize_filter!r}; choose one of "
                         f"{', '.join(RESIZE_FILTERS)}")
    if max_images is not None and max_images <= 0:
        raise UsageError(f"--max-images must be positive, got {max_images}")
    if not 0 <= compress_level <= 9:
        raise UsageError(f"--compress-level must be 0..9, got {compress_level}")
    dest = os.fspath(dest)
    if dest.lower().endswith(".zip"):
        if os.path.isdir(dest):
            raise UsageError(f"--dest {dest} is a folder; give a new .zip file name")
    elif os.path.exists(dest):
        if not os.path.isdir(dest):
            raise UsageError(f"--dest {dest} exists and is not a folder; give a .zip name or a new folder")
        if os.listdir(dest):
            raise UsageError(f"--dest folder {dest} is not empty; give an empty or new folder")
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise UsageError(f"the folder of --dest ({parent}) does not exist; create it first")
    return dest


def convert_dataset(source, dest, resolution: int | None = None, transform: str | None = None,
                    max_images: int | None = None, resize_filter: str = "lanczos",
                    no_labels: bool = False, compress_level: int = 0, optimize: bool = False,
                    progress: bool | None = None) -> DatasetReport:
    """Build a dataset in NVIDIA's layout from `source` (a --source string or a Source) at `dest`.

    Unreadable images are skipped and listed in the report; user mistakes raise UsageError and leave
    `dest` untouched. progress: None shows a tqdm bar only on a terminal.
    """
    from tqdm import tqdm

    dest = _check_args(dest, resolution, transform, resize_filter, max_images, compress_level)
    src = source if isinstance(source, Source) else open_source(os.fspath(source), no_labels=no_labels)
    if not isinstance(source, Source):
        if os.path.abspath(os.fspath(source)) == os.path.abspath(dest):
            raise UsageError("--source and --dest are the same path; write to a new file")
    if resolution is None and src.default_transform is not None:
        raise UsageError(f"{src.description} needs --resolution (e.g. --resolution 32; the images get "
                         f"--transform {src.default_transform} unless you pick another)")
    if not src.items:
        raise UsageError(f"no images found in {src.description} (looked for .png, .jpg, .bmp, .webp, ...)")
    if transform is None and src.default_transform is not None and resolution is not None:
        transform = src.default_transform

    report = DatasetReport(source=src.description, dest=dest, transform=transform,
                           ignored=len(src.ignored), label_origin=src.label_origin,
                           class_names=src.class_names)
    writer = _ZipWriter(dest) if dest.lower().endswith(".zip") else _DirWriter(dest)
    labels = []
    modes = {}  # archive name -> 'L' or 'RGB'
    try:
        total = len(src.items) if max_images is None else min(len(src.items), max_images)
        bar = tqdm(total=total, unit="img", desc="dataset", disable=(None if progress is None else not progress))
        res = resolution
        for item in src.items:
            if max_images is not None and report.written >= max_images:
                break
            try:
                img = item.load()
            except ImageReadError as e:
                report.skipped.append((item.name, str(e)))
                continue
            try:
                kind = image_kind(img)
                img, rotated = exif_upright(img)
                img = to_grey_or_rgb(img)
            except (OSError, ValueError, TypeError) as e:
                report.skipped.append((item.name, f"cannot convert {getattr(img, 'mode', '?')} image ({e})"))
                continue
            if kind in _CONVERSION_TEXT:
                report.conversions[_CONVERSION_TEXT[kind]] += 1
            if rotated:
                report.conversions["rotated upright (EXIF orientation)"] += 1
            if res is None:  # no --resolution: the first image decides (it must be square, 2^k)
                w, h = img.size
                if w != h or not is_power_of_two(w) or w < 4:
                    raise UsageError(
                        f"{item.name} is {w}x{h}; without --resolution every image must be square with a "
                        "power-of-two size; add e.g. --resolution 64 --transform center-crop (or pad, resize)")
                res = w
            img, changed = apply_transform(img, res, transform, resize_filter, item.name)
            report.resized += int(changed)
            name = archive_name(report.written)
            writer.write(name, _encode_png(img, compress_level, optimize))
            modes[name] = img.mode
            labels.append([name, item.label])
            report.written += 1
            bar.update(1)
        bar.close()
        if report.written == 0:
            raise UsageError(f"no readable images in {src.description} ({len(report.skipped)} unreadable); "
                             "nothing written")
        # Greyscale stays 1 channel only if every image is greyscale; otherwise all become RGB.
        n_grey = sum(m == "L" for m in modes.values())
        if 0 < n_grey < len(modes):
            report.conversions["greyscale -> RGB (the dataset has colour images)"] += n_grey
            _regrey_to_rgb(writer, modes, compress_level, optimize)
            report.channels = 3
        else:
            report.channels = 1 if n_grey else 3
        report.resolution = res
        if src.has_labels:
            meta = {"labels": labels}
            ints = [lab for _, lab in labels if isinstance(lab, int)]
            if len(ints) == len(labels):
                report.num_classes = len(src.class_names) if src.class_names else max(ints) + 1
            if src.class_names:
                meta["class_names"] = list(src.class_names)
        else:
            meta = {"labels": None}
        writer.write("dataset.json", json.dumps(meta).encode("utf-8"))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return report


def _regrey_to_rgb(writer, modes, compress_level, optimize):
    """Second pass when greyscale and colour inputs were mixed: re-encode the greyscale PNGs as RGB."""
    if isinstance(writer, _ZipWriter):
        src, old = writer.read_back()
        try:
            for name in src.namelist():
                data = src.read(name)
                if modes.get(name) == "L":
                    img = Image.open(io.BytesIO(data)).convert("RGB")
                    data = _encode_png(img, compress_level, optimize)
                writer.write(name, data)
        finally:
            src.close()
            os.remove(old)
    else:
        for name, mode in modes.items():
            if mode == "L":
                path = os.path.join(writer.tmp, name)
                img = Image.open(path).convert("RGB")
                with open(path, "wb") as f:
                    f.write(_encode_png(img, compress_level, optimize))
