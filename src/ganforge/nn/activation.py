"""Bias, activation, gain and clamp in one call (what NVIDIA's fused `bias_act` op computes).

y = clamp(act(x + b) * gain, -clamp, +clamp)

The default gain of an activation keeps unit-variance inputs at roughly unit variance:
sqrt(2) for ReLU-like activations (He et al.), 1 otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2  # leaky ReLU negative slope used throughout StyleGAN/StyleGAN2


@dataclass(frozen=True)
class Activation:
    fn: Callable[[torch.Tensor], torch.Tensor]
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x: x, 1.0),
    "relu": Activation(F.relu, math.sqrt(2)),
    "lrelu": Activation(lambda x: F.leaky_relu(x, LRELU_SLOPE), math.sqrt(2)),
    "tanh": Activation(torch.tanh, 1.0),
    "sigmoid": Activation(torch.sigmoid, 1.0),
    "elu": Activation(F.elu, 1.0),
    "selu": Activation(F.selu, 1.0),
    "softplus": Activation(F.softplus, 1.0),
    "swish": Activation(F.silu, math.sqrt(2)),
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, dim: int = 1) -> torch.Tensor:
    """y = clamp(act(x + b) * gain, -clamp, clamp), b broadcast along `dim`.

    x: [batch, channels, ...]  (channels at `dim`)
    b: [channels] or None
    gain: None means the activation's default gain (sqrt 2 for lrelu)
    clamp: None or a non-negative bound applied after the gain
    """
    spec = get_activation(act)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    x = spec.fn(x)
    gain = spec.def_gain if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
