"""Latent interpolation and looping videos (GIF or MP4)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from ganforge.errors import UsageError
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
    """
    if interp not in INTERPOLATIONS:
        raise UsageError(f"--interp must be one of {', '.join(INTERPOLATIONS)}")
    if frames < 1:
        raise UsageError("--frames must be at least 1")
    check_class(G, class_idx)
    rows, cols = grid
    cells = rows * cols
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


def write_video(frames_iter, out: str, fps: int = 30, total: int | None = None) -> str:
    """Write frames to .mp4 (libx264 via imageio-ffmpeg) or .gif. Writes to a temporary name then renames."""
    import imageio.v2 as imageio

    ext = os.path.splitext(out)[1].lower()
    if ext not in (".mp4", ".gif"):
        raise UsageError(f"--out {out}: the video must end in .mp4 or .gif")
    parent = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {parent}: {e.strerror}; choose a writable --out") from None
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{parent} is not writable; choose another --out")
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
