"""The random streams of a training run.

Every random draw of a step comes from generators reseeded from (run seed, step, stream): the latents
(and labels, style-mixing cutoffs) of the global batch come from stream 0, drawn identically on every
rank; each synthesis layer's per-pixel noise and the path-length noise have streams of their own; the
global streams (torch, numpy, Python's random: ADA's augmentations and whatever a user's code draws)
are reseeded per rank at the start of every step. A run resumed from a snapshot, or continued on
another number of processes, therefore draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

LATENT_STREAM = 0           # z, z2, labels, mixing cutoffs of the global batch (shared by all ranks)
GLOBAL_STREAM_BASE = 1      # + rank: the global torch/numpy/Python streams of that rank
LAYER_NOISE_BASE = 1000     # + 100 * phase + layer index: per-pixel noise of a synthesis layer
PL_NOISE_STREAM = 1 << 32   # the path-length regularizer's image-space noise


def step_seed(seed: int, step: int, stream: int) -> int:
    """A distinct 63-bit seed per (run seed, step, stream); stream 0 is shared by all ranks."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(step) * 0xBF58476D1CE4E5B9 + int(stream) * 0x94D049BB133111EB)
    x &= (1 << 64) - 1
    x ^= x >> 31
    return x & ((1 << 63) - 1)


def seed_global_streams(seed: int) -> None:
    """Seed the global RNG streams (torch CPU and CUDA, numpy, Python's random) at the start of a step.

    ganforge draws its own latents and noise from explicit generators; the global streams serve what
    draws from them (ADA's augmentations, a user's dataset or callback). Reseeding them from
    (run seed, step, rank) makes each step's draws a function of the step alone, so a run killed at
    any moment and resumed from its last snapshot draws exactly what the uninterrupted run drew."""
    torch.manual_seed(seed)
    np.random.seed(seed % (1 << 32))
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": torch.tensor(py_state[1], dtype=torch.int64),
                   "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


__all__ = ["step_seed", "seed_global_streams", "rng_state", "set_rng_state", "LATENT_STREAM",
           "GLOBAL_STREAM_BASE", "LAYER_NOISE_BASE", "PL_NOISE_STREAM"]
