"""Image output: uint8 grids, PNG files, and writing a set of output files all or nothing."""

from __future__ import annotations

import io
import math
import os
from typing import Iterable

import numpy as np
import torch
from PIL import Image

from ganforge.errors import UsageError
from ganforge.fsutil import atomic_write_bytes, fsync_dir


def to_hwc(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 [C, H, W] -> [H, W, C] (C=1 squeezed to [H, W] for greyscale PNGs)."""
    arr = img.cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    arr = arr.transpose(1, 2, 0)
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def grid_shape(n: int, rows: int | None = None, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) of the row-major grid that shows n images.

    neither given: cols = ceil(sqrt(n)), rows = ceil(n / cols)  (square, or one column wider than tall)
    one given:     the other is what n images need (rows = ceil(n / cols), or cols = ceil(n / rows))
    both given:    they must fit n: every image gets a cell and no row or column stays empty, i.e.
                   rows == ceil(n / cols) and cols <= n; anything else is a UsageError.
    """
    if n < 1:
        raise ValueError(f"a grid needs at least one image, got {n}")
    if (rows is not None and rows < 1) or (cols is not None and cols < 1):
        raise UsageError(f"grid rows and columns must be at least 1, got {rows}x{cols}")
    if rows is None and cols is None:
        cols = math.ceil(math.sqrt(n))
    if rows is None:
        return math.ceil(n / cols), cols
    if cols is None:
        return rows, math.ceil(n / rows)
    fit = f"{math.ceil(n / cols)}x{cols}" if cols <= n else f"1x{n}"
    if n > rows * cols:
        raise UsageError(f"--grid {rows}x{cols} holds {rows * cols} images but there are {n}; "
                         f"use --grid {fit} or pass fewer seeds")
    if rows != math.ceil(n / cols) or cols > n:
        k, what = (rows - math.ceil(n / cols), "row") if rows != math.ceil(n / cols) else (cols - n, "column")
        empty = f"{k} {what}" + ("s" if k > 1 else "")
        raise UsageError(f"--grid {rows}x{cols} for {n} images leaves {empty} empty; "
                         f"use --grid {fit} or pass more seeds")
    return rows, cols


def make_grid(images: torch.Tensor | np.ndarray, rows: int | None = None, cols: int | None = None,
              pad: int = 0, fill: int = 255) -> np.ndarray:
    """Tile uint8 images [N, C, H, W] row-major into one [rows*H, cols*W, C] array (C=1 -> [.., ..]).

    rows, cols: as `grid_shape` decides them from N and whichever of the two is given.
    """
    imgs = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    n, c, h, w = imgs.shape
    rows, cols = grid_shape(n, rows, cols)
    grid = np.full([rows * (h + pad) - pad, cols * (w + pad) - pad, c], fill, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[r * (h + pad): r * (h + pad) + h, col * (w + pad): col * (w + pad) + w] = imgs[i].transpose(1, 2, 0)
    return grid[:, :, 0] if c == 1 else grid


def encode_png(arr: np.ndarray) -> bytes:
    """uint8 [H, W] (greyscale), [H, W, 3] (RGB) or [H, W, 4] (RGBA) -> the bytes of a PNG file."""
    mode = "L" if arr.ndim == 2 else ("RGBA" if arr.shape[2] == 4 else "RGB")
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def save_png(arr: np.ndarray, path: str) -> None:
    """Write `arr` as a PNG file atomically (temp file, fsync, rename: never a half-written `path`)."""
    atomic_write_bytes(path, encode_png(arr))


def check_outdir(outdir: str) -> None:
    """One clear UsageError unless `outdir` is, or can be created as, a writable directory. Creates nothing."""
    path = os.path.abspath(outdir)
    probe = path
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if probe == path:
        if not os.path.isdir(path):
            raise UsageError(f"{outdir} is not a directory; choose another --outdir")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"output directory {outdir} is not writable; choose another --outdir")
        return
    if not os.path.isdir(probe):
        raise UsageError(f"cannot create output directory {outdir}: {probe} is not a directory; "
                         "choose a writable --outdir")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create output directory {outdir}: {probe} is not writable; "
                         "choose a writable --outdir")


def prepare_outdir(outdir: str) -> str:
    """Create `outdir` (and parents); one clear error if that is impossible or it is not writable."""
    check_outdir(outdir)
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output directory {outdir}: {e.strerror}; choose a writable --outdir") from None
    return outdir


STAGED_PREFIX = ".staged-"


def write_files(outdir: str, files: Iterable[tuple[str, bytes]]) -> list[str]:
    """Write each (file name, bytes) into `outdir`, all or nothing. Returns the paths, in order.

    Every file is first written completely under a hidden name in `outdir` (temp file, fsync, rename:
    `atomic_write_bytes`); only when all of them are on disk are they renamed to their final names.
    `files` may be a generator (e.g. PNGs encoded one at a time). If anything fails before that
    (a full disk, a bug, an interrupt), the hidden files and any directories created here are removed
    and the files already in `outdir` are left exactly as they were; a refused write is a UsageError.
    A later name equal to an earlier one replaces it.
    """
    outdir = os.fspath(outdir)
    created = []
    probe = os.path.abspath(outdir)
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        created.append(probe)
        probe = os.path.dirname(probe)
    staged: dict[str, str] = {}
    paths: list[str] = []
    target = outdir
    try:
        os.makedirs(outdir, exist_ok=True)
        for name, data in files:
            if not name or os.path.basename(name) != name or name.startswith("."):
                raise ValueError(f"output file name {name!r} must be a plain, visible file name")
            target = os.path.join(outdir, name)
            staged[name] = os.path.join(outdir, f"{STAGED_PREFIX}{os.getpid()}-{name}")
            atomic_write_bytes(staged[name], data)
        for name in list(staged):
            target = os.path.join(outdir, name)
            os.replace(staged[name], target)
            del staged[name]
            paths.append(target)
        fsync_dir(outdir)
        return paths
    except BaseException as exc:
        for tmp in staged.values():
            try:
                os.unlink(tmp)
            except OSError:
                pass
        for d in created if not paths else []:  # deepest first; only directories that are still empty
            try:
                os.rmdir(d)
            except FileNotFoundError:
                continue
            except OSError:
                break
        if isinstance(exc, OSError):
            done = (f"{len(paths)} of {len(paths) + len(staged)} files were already replaced" if paths else
                    "nothing was written")
            raise UsageError(f"could not write {target}: {exc.strerror or exc}; free some disk space or choose "
                             f"another --outdir ({done})") from None
        raise
