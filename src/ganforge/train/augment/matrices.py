"""Batched homogeneous transform matrices of the ADA pipe (Karras et al. 2020, Appendix B).

2-D affine matrices [N, 3, 3] act on pixel coordinates (x, y, 1) (the geometric transforms);
4x4 matrices [N, 4, 4] act on homogeneous colours (r, g, b, 1) (the colour transforms). Entries are [N]
tensors or numbers; every matrix is float32 on the device of its tensor argument.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

LUMA_AXIS = (1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3))  # v: the grey diagonal of RGB space


# -- homogeneous matrices, batched ------------------------------------------------------------------

def _stack_matrix(rows: Sequence[Sequence[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """Batched matrix from entries that are [N] tensors or numbers: returns [N, len(rows), len(rows[0])]."""
    n = like.shape[0]
    flat = [e.reshape(n) if isinstance(e, torch.Tensor) else like.new_full([n], float(e))
            for row in rows for e in row]
    return torch.stack(flat, dim=1).reshape(n, len(rows), len(rows[0]))


def affine2d(a: torch.Tensor | float, b: torch.Tensor | float, tx: torch.Tensor | float,
             c: torch.Tensor | float, d: torch.Tensor | float, ty: torch.Tensor | float,
             like: torch.Tensor) -> torch.Tensor:
    """Homogeneous 2-D affine matrices [[a, b, tx], [c, d, ty], [0, 0, 1]]; entries [N] or scalars -> [N, 3, 3]."""
    return _stack_matrix([[a, b, tx], [c, d, ty], [0, 0, 1]], like)


def rotation2d(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise rotation [[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]] (y axis down: clockwise on screen).

    cos, sin: [N] -> [N, 3, 3]
    """
    return affine2d(cos, -sin, 0, sin, cos, 0, like=cos)


# -- colour matrices (homogeneous RGB) -------------------------------------------------------------

def _luma_projector(device: torch.device) -> torch.Tensor:
    """v v^T in homogeneous RGB coordinates, v = (1, 1, 1, 0) / sqrt(3): [4, 4]."""
    v = torch.tensor(LUMA_AXIS + (0.0,), device=device)
    return torch.outer(v, v)


def brightness_matrix(b: torch.Tensor) -> torch.Tensor:
    """Brightness: add b to every channel, colour_out = colour_in + b (1, 1, 1).

    b: [N] -> [N, 4, 4] = translate3d(b, b, b)
    """
    return _stack_matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], b)


def contrast_matrix(c: torch.Tensor) -> torch.Tensor:
    """Contrast: scale every channel about 0, colour_out = c colour_in.

    c: [N] -> [N, 4, 4] = scale3d(c, c, c)
    """
    return _stack_matrix([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]], c)


def luma_flip_matrix(i: torch.Tensor) -> torch.Tensor:
    """Luma flip: Householder reflection along the luma axis, M = I - 2 v v^T i, i in {0, 1}.

    With i = 1 the luma component (v^T x) changes sign and the chroma (x - v v^T x) is kept.
    i: [N] (or [N, 1, 1]) -> [N, 4, 4]
    """
    vvT = _luma_projector(i.device)
    return torch.eye(4, device=i.device) - 2 * vvT * i.reshape(-1, 1, 1)


def hue_rotation(theta: torch.Tensor) -> torch.Tensor:
    """Hue rotation: rotate RGB space by theta about the luma axis v (Rodrigues' formula).

    R = cos(theta) I + sin(theta) [v]_x + (1 - cos(theta)) v v^T      (3x3 block; row/column 4 = identity)
    Luma v^T x is preserved, chroma rotates.
    theta: [N] -> [N, 4, 4]
    """
    vx, vy, vz = torch.tensor(LUMA_AXIS, device=theta.device).unbind()  # float32, like the images
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _stack_matrix([
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1]], theta)


def saturation_matrix(s: torch.Tensor) -> torch.Tensor:
    """Saturation: keep luma, scale chroma by s, M = v v^T + (I - v v^T) s  (s = 0: greyscale).

    s: [N] (or [N, 1, 1]) -> [N, 4, 4] (homogeneous row/column 4 = identity)
    """
    vvT = _luma_projector(s.device)
    chroma = torch.eye(4, device=s.device) - vvT
    chroma[3, 3] = 0
    m = vvT + chroma * s.reshape(-1, 1, 1)
    m[:, 3, 3] = 1
    return m


__all__ = ["LUMA_AXIS", "affine2d", "rotation2d", "brightness_matrix", "contrast_matrix", "luma_flip_matrix",
           "hue_rotation", "saturation_matrix"]
