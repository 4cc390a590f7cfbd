"""Applying a latent direction: the edit itself, the edit figure and the looping walk.

Both SeFa and GANSpace edit in W+ after truncation (genforce/sefa sefa.py `code[:, layers, :] += boundary *
distance`; GANSpace adds `comp * lat_std * delta` to the layers [start, end)): only the chosen layers' w's move.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ganforge.synthesis.generate import synthesize
from ganforge.synthesis.images import make_grid


def edit_ws(ws: torch.Tensor, direction: torch.Tensor, strength: float | torch.Tensor,
            layers: Sequence[int]) -> torch.Tensor:
    """w'_l = w_l + strength * n  for l in layers;  w'_l = w_l  otherwise.

    ws: [N, num_ws, w_dim]; direction n: [w_dim]; strength: a number or [N] (one per sample);
    layers: w indices. Returns a new tensor [N, num_ws, w_dim]; ws is not modified.
    """
    if ws.ndim != 3 or direction.shape != (ws.shape[2],):
        raise ValueError(f"edit_ws: ws [N, num_ws, w_dim] and direction [w_dim], got {list(ws.shape)} and "
                         f"{list(direction.shape)}")
    mask = torch.zeros(ws.shape[1], dtype=ws.dtype, device=ws.device)
    mask[list(layers)] = 1
    s = torch.as_tensor(strength, dtype=ws.dtype, device=ws.device).reshape(-1, 1, 1)
    return ws + s * mask[None, :, None] * direction.to(ws)[None, None, :]


def edit_grid_ws(ws: torch.Tensor, directions: torch.Tensor, strengths: Sequence[float],
                 layers: Sequence[int]) -> torch.Tensor:
    """Every (sample, direction, strength) edit: ws [S, num_ws, w_dim], directions [K, w_dim] (already scaled
    as the edit wants them), strengths [M] -> [S, K, M, num_ws, w_dim], cell [s, k, m] = edit_ws(ws[s],
    directions[k], strengths[m], layers)."""
    return torch.stack([torch.stack([edit_ws(ws, d, float(m), layers) for m in strengths], dim=1)
                        for d in directions], dim=1)


@torch.no_grad()
def edit_figures(G, ws: torch.Tensor, directions: torch.Tensor, strengths: Sequence[float], layers: Sequence[int],
                 noise_mode: str = "const", batch_size: int = 16, progress=None) -> tuple[list[np.ndarray], torch.Tensor]:
    """One figure per sample: row k = direction k, column m = strengths[m] (e.g. -3 ... +3), each cell the
    image of edit_ws(ws[s], directions[k], strengths[m], layers).

    ws: [S, num_ws, w_dim]; directions: [K, w_dim]; returns (S figures uint8 [K*H, M*W(, C)] as make_grid
    writes them, the edited ws [S*K*M, num_ws, w_dim] in (sample, direction, strength) order).
    """
    S, K, M = len(ws), len(directions), len(strengths)
    edited = edit_grid_ws(ws, directions, strengths, layers).reshape(S * K * M, *ws.shape[1:])
    images = synthesize(G, edited, noise_mode, batch_size, progress)
    figures = [make_grid(images[s * K * M:(s + 1) * K * M], K, M) for s in range(S)]
    return figures, edited


def walk_offsets(lo: float, hi: float, frames: int) -> np.ndarray:
    """[frames] strengths of one seamless loop along a direction, 0 -> hi -> 0 -> lo -> (0):
    with x = sin(2 pi f / frames):  s_f = hi * x  where x >= 0,  s_f = lo * |x|  where x < 0."""
    t = np.arange(frames) / frames
    x = np.sin(2 * np.pi * t)
    return np.where(x >= 0, hi * x, -lo * x)


@torch.no_grad()
def edit_walk_frames(G, ws: torch.Tensor, directions: torch.Tensor, layers: Sequence[int], lo: float, hi: float,
                     frames: int = 60, noise_mode: str = "const", batch_size: int = 16, progress=None):
    """Yield uint8 grid frames ([H', W'(, C)], one cell per sample, square grid) of a loop that walks each
    direction in turn by walk_offsets(lo, hi, frames): the first and last frame of every direction are the
    unedited images, so the video loops without a jump."""
    S = len(ws)
    cols = math.ceil(math.sqrt(S))
    offsets = walk_offsets(lo, hi, frames)
    for direction in directions:
        for i in range(0, frames, max(1, batch_size // S)):
            chunk = offsets[i:i + max(1, batch_size // S)]
            batch = torch.cat([edit_ws(ws, direction, float(s), layers) for s in chunk])
            imgs = synthesize(G, batch, noise_mode, batch_size)
            for f in range(len(chunk)):
                yield make_grid(imgs[f * S:(f + 1) * S], None, cols)
                if progress is not None:
                    progress.update(1)


__all__ = ["edit_figures", "edit_grid_ws", "edit_walk_frames", "edit_ws", "walk_offsets"]
