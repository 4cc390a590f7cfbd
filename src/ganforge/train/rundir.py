"""The run directory: what a training run writes, and how it is read back to continue.

    <outdir>/<NNNNN>-<desc>/
        training_options.json          resolved options (written once, atomically)
        stats.jsonl                    one JSON object per log tick
        reals.png, fakes_init.png, fakesKKKKKK.png
        network-snapshot-KKKKKK/       config.json + model.safetensors (native format, G, G_ema, D)
                                       + training_state.pt (optimizers, pl_mean, counters, RNG, sampler)
        latest                         name of the newest complete snapshot (a one-line text file)

A snapshot is assembled in a hidden staging directory and renamed into place in one step; `latest`
is replaced (temp file + fsync + rename) only after that. A kill or a full disk at any moment
therefore leaves `latest` pointing at a complete snapshot.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from typing import Any

import numpy as np
import torch

from ganforge.errors import FormatError, UsageError
from ganforge import fsutil
from ganforge.fsutil import OLD_DIR_MARK, fsync_dir, recover_dir, replace_dir

OPTIONS_NAME = "training_options.json"
STATE_NAME = "training_state.pt"
LATEST_NAME = "latest"
SNAPSHOT_PREFIX = "network-snapshot-"
STATE_VERSION = 1


def _disk_error(path: str, e: OSError) -> UsageError:
    return UsageError(f"could not write {path}: {e.strerror or e}; free some disk space or choose another "
                      "--outdir (the previous snapshot is intact; continue with --resume)")


def atomic_write_bytes(path: str, data: bytes) -> None:
    """`ganforge.fsutil.atomic_write_bytes` (temp file in the same directory, fsync, rename), with a
    refused write (a full disk, permissions) reported as a UsageError that says what to do."""
    try:
        fsutil.atomic_write_bytes(path, data)
    except OSError as e:
        raise _disk_error(path, e) from None


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def append_line(path: str, line: str) -> None:
    """Append one line (a JSON log record) and fsync; a torn last line is skipped by readers."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _disk_error(path, e) from None


def snapshot_name(cur_nimg: int) -> str:
    """network-snapshot-KKKKKK (kimg), with .NNN images appended when cur_nimg is not whole kimg."""
    kimg, rest = divmod(int(cur_nimg), 1000)
    return f"{SNAPSHOT_PREFIX}{kimg:06d}" + (f".{rest:03d}" if rest else "")


def next_run_dir(outdir: str, desc: str) -> str:
    """<outdir>/<NNNNN>-<desc> with the next free 5-digit id (NVIDIA's convention)."""
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create --outdir {outdir}: {e.strerror}; choose a writable location") from None
    ids = [int(m.group(1)) for n in os.listdir(outdir) if (m := re.match(r"^(\d+)-", n))]
    run_id = max(ids, default=-1) + 1
    return os.path.join(outdir, f"{run_id:05d}-{desc}")


def is_run_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, OPTIONS_NAME))


def latest_snapshot(run_dir: str) -> str | None:
    """Absolute path of the newest complete snapshot of a run, or None if it has none yet."""
    p = os.path.join(run_dir, LATEST_NAME)
    if not os.path.isfile(p):
        return None
    with open(p, encoding="utf-8") as f:
        name = f.read().strip()
    snap = os.path.join(run_dir, name)
    if name.startswith(SNAPSHOT_PREFIX) and "/" not in name and os.sep not in name:
        recover_dir(snap)  # a re-write of this snapshot was killed between its renames: the old copy is aside
    if not name.startswith(SNAPSHOT_PREFIX) or not os.path.isfile(os.path.join(snap, STATE_NAME)):
        raise FormatError(f"{p} names {name!r}, which is not a complete snapshot; the run directory is damaged")
    return snap


def write_options(run_dir: str, options: dict[str, Any]) -> None:
    """Write training_options.json atomically (a kill leaves the old or the new file, never a mix)."""
    atomic_write_text(os.path.join(run_dir, OPTIONS_NAME), json.dumps(options, indent=2) + "\n")


_OPTION_KEYS = ("data", "cond", "mirror", "seed", "snap", "tick", "config")


def read_options(run_dir: str) -> dict[str, Any]:
    p = os.path.join(run_dir, OPTIONS_NAME)
    try:
        with open(p, encoding="utf-8") as f:
            options = json.load(f)
    except (OSError, ValueError) as e:
        raise FormatError(f"{p} is unreadable ({e}); the run directory is damaged") from None
    missing = [k for k in _OPTION_KEYS if not isinstance(options, dict) or k not in options]
    if missing:
        raise FormatError(f"{p} lacks {', '.join(missing)}; the run directory is damaged")
    return options


def write_snapshot(run_dir: str, cur_nimg: int, ckpt, training_state: dict[str, Any], *, save_fn=None) -> str:
    """Write one complete snapshot and point `latest` at it. Returns its path.

    ckpt: ganforge.formats.Checkpoint (G, G_ema, D); training_state: tensors/dicts/numbers only.
    """
    from ganforge.formats import native

    name = snapshot_name(cur_nimg)
    final = os.path.join(run_dir, name)
    staging = os.path.join(run_dir, f".staging-{name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (save_fn or native.save)(ckpt, staging)
        buf = io.BytesIO()
        torch.save(training_state, buf)
        atomic_write_bytes(os.path.join(staging, STATE_NAME), buf.getvalue())
        fsync_dir(staging)
        replace_dir(staging, final)  # the same kimg may be written again (e.g. the end of a resumed run)
        fsync_dir(run_dir)
        atomic_write_text(os.path.join(run_dir, LATEST_NAME), name + "\n")
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise _disk_error(final, e) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def read_training_state(snapshot_dir: str) -> dict[str, Any]:
    p = os.path.join(snapshot_dir, STATE_NAME)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise FormatError(f"{p} is unreadable or damaged ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise FormatError(f"{p} is not a ganforge training state (version {STATE_VERSION})")
    return state


def clean_staging(run_dir: str) -> None:
    """Remove half-written snapshots and temporary files left by a killed process. The aside copy of a
    snapshot whose re-write was killed between its renames is renamed back first (never deleted while
    it is the only copy)."""
    for n in os.listdir(run_dir):
        if OLD_DIR_MARK in n and n.startswith(SNAPSHOT_PREFIX):
            recover_dir(os.path.join(run_dir, n.split(OLD_DIR_MARK)[0]))
    for n in os.listdir(run_dir):
        if n.startswith(".staging-") or n.startswith(".tmp-") or OLD_DIR_MARK in n:
            p = os.path.join(run_dir, n)
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    os.unlink(p)
                except OSError:
                    pass


# -- the images of a run ---------------------------------------------------------------------------

GRID_ROWS_MAX = 16  # snapshot grids: one row per class for the first 16 classes


def grid_cols(resolution: int) -> int:
    """Columns of a run's image grids (reals.png, fakes*.png): 8, or 4 above 256 px (NVIDIA's grids
    are sized in pixels; ours keep a snapshot PNG small)."""
    return 8 if resolution <= 256 else 4


def grid_spec(G) -> tuple[list[int], torch.Tensor]:
    """Fixed seeds and labels of the snapshot grid: one row per class (first 16), seeds 0..cols-1 in
    every row, or a cols x cols grid of seeds for an unconditional G. -> seeds, c [n, c_dim]"""
    cols = grid_cols(G.img_resolution)
    if G.c_dim > 0:
        rows = min(G.c_dim, GRID_ROWS_MAX)
        seeds = list(range(cols)) * rows
        c = torch.zeros([rows * cols, G.c_dim])
        for r in range(rows):
            c[r * cols:(r + 1) * cols, r] = 1
    else:
        seeds = list(range(cols * cols))
        c = torch.zeros([cols * cols, 0])
    return seeds, c


@torch.no_grad()
def render_grid(G, path: str, batch: int = 32) -> None:
    """The snapshot grid of G (grid_spec; noise_mode const) written atomically as a PNG."""
    from ganforge.models.latents import to_uint8, z_from_seeds
    from ganforge.synthesis.images import make_grid

    seeds, c = grid_spec(G)
    device = next(G.parameters()).device
    z = z_from_seeds(seeds, G.z_dim)
    imgs = []
    for i in range(0, len(seeds), batch):
        imgs.append(to_uint8(G(z[i:i + batch].to(device), c[i:i + batch].to(device), noise_mode="const")).cpu())
    save_png(make_grid(torch.cat(imgs), cols=grid_cols(G.img_resolution)), path)


def save_png(arr, path: str) -> None:
    """uint8 [H, W] or [H, W, C] -> PNG at path, atomically."""
    from ganforge.synthesis.images import encode_png

    atomic_write_bytes(path, encode_png(arr))


def save_reals(ds, path: str) -> None:
    """reals.png: the first images of each class (one row per class, first 16) for a dataset with class
    labels, else a fixed random pick (RandomState(0)) of cols x cols images."""
    from ganforge.synthesis.images import make_grid

    cols = grid_cols(ds.resolution)
    idx = []
    if ds.has_labels and ds.label_dim > 0 and ds.get_class(0) is not None:
        rows = min(ds.label_dim, GRID_ROWS_MAX)
        picked: dict[int, list[int]] = {r: [] for r in range(rows)}
        for i in range(len(ds)):
            k = ds.get_class(i)
            if k is not None and k < rows and len(picked[k]) < cols:
                picked[k].append(i)
            if all(len(v) == cols for v in picked.values()):
                break
        idx = [i for r in range(rows) for i in picked[r]]
    if not idx:  # no labels, or labels that are not classes (vectors)
        idx = np.random.RandomState(0).permutation(len(ds))[:cols * cols].tolist()
    save_png(make_grid(np.stack([ds[i][0] for i in idx]), cols=cols), path)


__all__ = ["atomic_write_bytes", "atomic_write_text", "append_line", "snapshot_name", "next_run_dir",
           "is_run_dir", "latest_snapshot", "read_options", "write_options", "write_snapshot", "read_training_state",
           "clean_staging", "grid_cols", "grid_spec", "render_grid", "save_png", "save_reals", "OPTIONS_NAME",
           "STATE_NAME", "LATEST_NAME"]
