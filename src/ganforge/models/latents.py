"""Latents and labels from user-facing numbers: seeds -> z, class index -> one-hot c, images -> uint8.

Seeds give the same z on every device: z = numpy RandomState(seed).randn(z_dim), computed in float64
on the CPU (as NVIDIA's tools do, so seeds match their published figures) and only then cast to
float32, so MPS/CUDA never see float64.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """z = RandomState(seed).randn(z_dim) as float64 [z_dim] (NVIDIA generate.py convention)."""
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed {seed} is out of range; seeds are integers in [0, 2**32)")
    return np.random.RandomState(int(seed)).randn(z_dim)


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """[len(seeds), z_dim] float32 latents, one row per seed."""
    if len(seeds) == 0:
        return torch.zeros([0, z_dim])
    return torch.from_numpy(np.stack([z_from_seed(s, z_dim) for s in seeds])).to(torch.float32)


def class_labels(class_idx: int | None, c_dim: int, batch: int) -> torch.Tensor:
    """One-hot labels [batch, c_dim] for class_idx ([batch, 0] for unconditional networks)."""
    c = torch.zeros([batch, c_dim])
    if c_dim > 0:
        if class_idx is None or not 0 <= class_idx < c_dim:
            raise ValueError(f"class index must be in [0, {c_dim}) for this conditional network, got {class_idx}")
        c[:, class_idx] = 1
    return c


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 with NVIDIA's rounding: clamp(img * 127.5 + 128, 0, 255)."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)
