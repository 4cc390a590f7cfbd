"""Latent interpolation and looping videos (GIF or MP4)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.fsutil import check_output_path, make_parent_dirs
from ganforge.models.latents import class_labels, slerp, to_uint8, z_from_seeds
from ganforge.synthesis.generate import check_class
from ganforge.synthesis.images import make_grid

INTERPOLATIONS = ("slerp-z", "lerp-w")


def _frames_schedule(num_keys: int, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a closed loop over num_keys keyframes with `frames` frames per transition: (k0, k1, t)."""
    total = num_keys * frames
    pos = np.arange(total) / frames
    k0 = np.floor(pos).astype(int) % num_keys
    t = pos - np.floor(pos)
    t = 0.5 - 0.5 * np.cos(np.pi * t)  # ease in/out so the loop has no visible kinks at keyframes
    return k0, (k0 + 1) % num_keys, t


@torch.no_grad()
def interpolation_frames(G, seeds: Sequence[int], grid: tuple[int, int], frames: int, interp: str = "lerp-w",
                         truncation_psi: float = 1, class_idx: int | None = None, noise_mode: str = "const",
                         batch_size: int = 16, progress=None):
    """Yield uint8 [H, W, C] grid frames of a seamless loop; each grid cell visits its own seeds.

    Cell j of rows*cols cells gets keyframes seeds[j], seeds[j + cells], ...; needs >= 2 per cell.
    class_idx None on a conditional network: cell j stays in class j mod c_dim.
    """
    if interp not in INTERPOLATIONS:
        raise UsageError(f"--interp must be one of {', '.join(INTERPOLATIONS)}")
    if frames < 1:
        raise UsageError("--frames must be at least 1")
    rows, cols = grid
    cells = rows * cols
    if G.c_dim and class_idx is None:
        class_idx = [j % G.c_dim for j in range(cells)]
    check_class(G, class_idx)
    if len(seeds) < 2 * cells or len(seeds) % cells:
        raise UsageError(f"--grid {rows}x{cols} needs a multiple of {cells} seeds, at least {2 * cells} "
                         f"(two keyframes per cell); got {len(seeds)}")
    nkeys = len(seeds) // cells
    device = next(G.parameters()).device
    z = z_from_seeds(seeds, G.z_dim).to(device).reshape(nkeys, cells, G.z_dim)
    c = class_labels(class_idx, G.c_dim, cells).to(device)
    if interp == "lerp-w":
        w = torch.stack([G.mapping(z[k], c, truncation_psi=truncation_psi) for k in range(nkeys)])
    k0, k1, t = _frames_schedule(nkeys, frames)
    ws_all = []
    for a, b, tt in zip(k0, k1, t):
        if interp == "lerp-w":
            ws_all.append(w[a].lerp(w[b], float(tt)))
        else:
            zz = slerp(z[a], z[b], float(tt)) * (G.z_dim ** 0.5)
            ws_all.append(G.mapping(zz, c, truncation_psi=truncation_psi))
    for i in range(0, len(ws_all), max(1, batch_size // cells)):
        chunk = torch.cat(ws_all[i:i + max(1, batch_size // cells)])
        imgs = to_uint8(G.synthesis(chunk, noise_mode=noise_mode)).cpu()
        for f in range(0, len(imgs), cells):
            yield make_grid(imgs[f:f + cells], rows, cols)
            if progress is not None:
                progress.update(1)


MAX_FPS = 240


def check_video_out(out: str, fps: int, overwrite: bool = False) -> None:
    """The video request, checked before any frame is computed: .mp4 or .gif, 1 <= fps <= MAX_FPS, and
    the output rule of `fsutil.check_output_path` (an existing file only with --overwrite)."""
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".mp4", ".gif"):
        raise UsageError(f"--out {out}: the video must end in .mp4 or .gif")
    if not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
        raise UsageError(f"--fps {fps}: give a whole number of frames per second, 1..{MAX_FPS} (e.g. 30)")
    check_output_path(out, "--out", overwrite=overwrite)


def write_video(frames_iter, out: str, fps: int = 30, total: int | None = None, overwrite: bool = True) -> str:
    """Write frames to .mp4 (libx264 via imageio-ffmpeg) or .gif. Writes to a temporary name then renames.
    (`check_video_out` first; overwrite=False refuses an existing `out`.)"""
    import imageio.v2 as imageio

    check_video_out(out, fps, overwrite=overwrite)
    ext = os.path.splitext(out)[1].lower()
    parent = os.path.dirname(os.path.abspath(out))
    make_parent_dirs(out, "--out")
    tmp = os.path.join(parent, f".tmp-{os.getpid()}-{os.path.basename(out)}")
    try:
        if ext == ".mp4":
            writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                        pixelformat="yuv420p", macro_block_size=1)
        else:
            writer = imageio.get_writer(tmp, format="GIF", mode="I", duration=1000 / fps, loop=0)
        with writer:
            for frame in frames_iter:
                writer.append_data(np.ascontiguousarray(frame))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out


# -- BigGAN: class and z interpolation (the paper's Fig. 8 and BigGAN-PyTorch's interp sheets) -------------

BIGGAN_INTERPOLATIONS = ("class", "lerp-z")


def class_path(classes: Sequence[int], c_dim: int, t: np.ndarray, k0: np.ndarray, k1: np.ndarray) -> torch.Tensor:
    """Labels along a path through classes: c = (1 - t) e_{k0} + t e_{k1} per point, [len(t), c_dim].

    BigGAN conditions through the linear shared embedding, so mixing one-hots is interpolating the class
    embeddings, which is how BigGAN-PyTorch's interp_sheet morphs one class into another.
    """
    eye = torch.eye(c_dim)
    idx = torch.as_tensor(classes)
    tt = torch.as_tensor(t, dtype=torch.float32)[:, None]
    return (1 - tt) * eye[idx[k0]] + tt * eye[idx[k1]]


def check_classes(G, classes: Sequence[int], at_least: int = 1) -> None:
    if G.c_dim == 0:
        raise UsageError("this network is unconditional (c_dim=0); class interpolation needs a conditional network")
    bad = [k for k in classes if not 0 <= k < G.c_dim]
    if bad:
        raise UsageError(f"class {bad[0]} is out of range; this network has classes 0..{G.c_dim - 1}")
    if len(classes) < at_least:
        raise UsageError(f"give at least {at_least} classes with --classes, e.g. --classes 1,207,980")


def _segments(num_keys: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An open path through num_keys keyframes with `steps` points per segment, endpoints shared: (k0, k1, t)."""
    pos = np.linspace(0, num_keys - 1, (num_keys - 1) * (steps - 1) + 1)
    k0 = np.minimum(np.floor(pos).astype(int), num_keys - 2)
    return k0, k0 + 1, pos - k0


@torch.no_grad()
def biggan_interpolation_sheet(G, kind: str, seeds: Sequence[int], classes: Sequence[int], steps: int,
                               truncation: float | None = None, truncation_mode: str | None = None,
                               batch_size: int = 16, progress=None) -> tuple[np.ndarray, dict]:
    """An interpolation sheet (uint8 [H, W, C]) and its latents:
      kind "class": one row per seed (z fixed), columns walk the class path classes[0] -> classes[1] -> ...;
      kind "lerp-z": one row per class, columns walk z linearly seed[0] -> seed[1] -> ... (class fixed).
    `steps` points per segment, endpoints included."""
    from ganforge.models.latents import truncated_z_from_seeds
    from ganforge.models.latents import statistics_truncation
    from ganforge.synthesis.generate import biggan_images, check_biggan_truncation

    if kind not in BIGGAN_INTERPOLATIONS:
        raise UsageError(f"--interp {kind!r}: use one of {', '.join(BIGGAN_INTERPOLATIONS)}")
    if steps < 2:
        raise UsageError("--interp-steps must be at least 2 (the two ends of each segment)")
    mode, t = check_biggan_truncation(G, truncation, truncation_mode)
    check_classes(G, classes, at_least=2 if kind == "class" else 1)
    if kind == "lerp-z" and len(seeds) < 2:
        raise UsageError("z interpolation needs at least two --seeds to walk between")
    z_keys = truncated_z_from_seeds(seeds, G.z_dim, t, mode)
    if kind == "class":
        k0, k1, tt = _segments(len(classes), steps)
        c_row = class_path(classes, G.c_dim, tt, k0, k1)
        z = z_keys.repeat_interleave(len(tt), dim=0)
        c = c_row.repeat(len(seeds), 1)
        rows, cols = len(seeds), len(tt)
    else:
        k0, k1, tt = _segments(len(seeds), steps)
        w = torch.as_tensor(tt, dtype=torch.float32)[:, None]
        z_row = (1 - w) * z_keys[k0] + w * z_keys[k1]
        z = z_row.repeat(len(classes), 1)
        c = torch.eye(G.c_dim)[torch.as_tensor(classes)].repeat_interleave(len(tt), dim=0)
        rows, cols = len(classes), len(tt)
    images = biggan_images(G, z, c, statistics_truncation(t, mode), batch_size=batch_size, progress=progress)
    latents = {"z": z.numpy(), "c": c.numpy(), "seeds": np.asarray(seeds, dtype=np.int64),
               "classes": np.asarray(classes, dtype=np.int64), "truncation": np.float32(np.nan if t is None else t),
               "truncation_mode": np.str_(mode)}
    return make_grid(images, rows, cols), latents


@torch.no_grad()
def biggan_interpolation_frames(G, seeds: Sequence[int], classes: Sequence[int], grid: tuple[int, int], frames: int,
                                interp: str = "class", truncation: float | None = None,
                                truncation_mode: str | None = None, batch_size: int = 16, progress=None):
    """Yield uint8 [H, W, C] grid frames of a seamless loop for BigGAN:
      interp "class": cell j keeps the z of seeds[j] and loops through `classes`;
      interp "lerp-z": cell j loops linearly through seeds[j], seeds[j + cells], ... at classes[0]."""
    from ganforge.models.latents import truncated_z_from_seeds
    from ganforge.models.latents import statistics_truncation
    from ganforge.synthesis.generate import biggan_images, check_biggan_truncation

    if interp not in BIGGAN_INTERPOLATIONS:
        raise UsageError(f"--interp {interp!r}: a BigGAN network interpolates with one of {', '.join(BIGGAN_INTERPOLATIONS)}")
    if frames < 1:
        raise UsageError("--frames must be at least 1")
    mode, t = check_biggan_truncation(G, truncation, truncation_mode)
    rows, cols = grid
    cells = rows * cols
    check_classes(G, classes, at_least=2 if interp == "class" else 1)
    if interp == "class":
        if len(seeds) < cells:
            raise UsageError(f"--grid {rows}x{cols} needs at least {cells} seeds (one per cell); got {len(seeds)}")
        z_cells = truncated_z_from_seeds(list(seeds)[:cells], G.z_dim, t, mode)
        nkeys = len(classes)
    else:
        if len(seeds) < 2 * cells or len(seeds) % cells:
            raise UsageError(f"--grid {rows}x{cols} needs a multiple of {cells} seeds, at least {2 * cells} "
                             f"(two keyframes per cell); got {len(seeds)}")
        nkeys = len(seeds) // cells
        z_keys = truncated_z_from_seeds(seeds, G.z_dim, t, mode).reshape(nkeys, cells, G.z_dim)
    k0, k1, tt = _frames_schedule(nkeys, frames)
    bn_t = statistics_truncation(t, mode)
    step = max(1, batch_size // cells)
    for i in range(0, len(tt), step):
        zs, cs = [], []
        for a, b, w in zip(k0[i:i + step], k1[i:i + step], tt[i:i + step]):
            if interp == "class":
                zs.append(z_cells)
                cs.append(class_path(classes, G.c_dim, np.full(cells, w), np.full(cells, a), np.full(cells, b)))
            else:
                zs.append(z_keys[a].lerp(z_keys[b], float(w)))
                cs.append(torch.eye(G.c_dim)[[classes[0]] * cells])
        imgs = biggan_images(G, torch.cat(zs), torch.cat(cs), bn_t, batch_size=batch_size)
        for f in range(0, len(imgs), cells):
            yield make_grid(imgs[f:f + cells], rows, cols)
            if progress is not None:
                progress.update(1)
