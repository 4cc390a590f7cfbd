"""Equalized-learning-rate layers (Progressive GAN §4.1), as StyleGAN2 uses them.

Weights are stored as N(0, 1) / lr_multiplier and scaled at run time by
    weight_gain = lr_multiplier / sqrt(fan_in)
so every layer learns at the same speed under Adam whatever its fan-in, and a mapping-network
layer with lr_multiplier 0.01 moves 100x slower. Biases are scaled by lr_multiplier.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ganforge.nn.activation import LRELU_SLOPE, bias_act, get_activation
from ganforge.nn.resample import conv2d_resample, setup_filter


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm of a latent (Progressive GAN eq. "pixelwise feature vector normalization").

    y = x / sqrt(mean_j x_j^2 + eps)

    x: [batch, features] -> [batch, features]
    """
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def equalized_lr_gain(fan_in: int, lr_multiplier: float = 1.0) -> float:
    """Run-time weight scale of an equalized-lr layer: lr_multiplier / sqrt(fan_in)."""
    return lr_multiplier / math.sqrt(fan_in)


class FullyConnectedLayer(nn.Module):
    """Equalized-lr dense layer: y = act(x @ (W * g_w)^T + b * g_b) * act_gain.

    weight: [out_features, in_features], stored N(0,1)/lr_multiplier; g_w = lr_multiplier/sqrt(in)
    bias:   [out_features], initialised to bias_init; g_b = lr_multiplier
    x: [batch, in_features] -> [batch, out_features]
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        get_activation(activation)
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = equalized_lr_gain(in_features, lr_multiplier)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-lr convolution with optional FIR up/down-sampling, bias, activation and clamp.

    y = clamp(act(conv2d_resample(x, W / sqrt(in * k^2)) + b) * act_gain * gain, +-conv_clamp * gain)

    weight: [out_channels, in_channels, k, k] ~ N(0, 1)
    x: [batch, in_channels, H, W] -> [batch, out_channels, H * up / down, W * up / down]
    trainable=False stores weight and bias as buffers (Freeze-D), under the same names.
    channels_last: run-time layout setting (ganforge.nn.resample.set_channels_last; None = auto), which
    decides the layout of a 1x1 convolution's result from an image (fromRGB); not a constructor argument.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None,
                 trainable: bool = True):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.channels_last: bool | None = None  # run-time layout setting, see set_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = get_activation(activation).def_gain
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        bias_t = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_t) if bias_t is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_t is not None:
                self.register_buffer("bias", bias_t)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        g = self.act_gain * gain
        if self.activation in ("linear", "lrelu") and g > 0:
            # act(conv(x, W) + b) * g == act(conv(x, W * g) + b * g) for these positively homogeneous
            # activations: the gain and the bias ride inside the convolution, saving two full-size passes.
            w = self.weight * (self.weight_gain * g)
            b = self.bias * g if self.bias is not None else None
            x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, up=self.up, down=self.down,
                                padding=self.padding, flip_weight=(self.up == 1),
                                bias=b.to(x.dtype) if b is not None else None, channels_last=self.channels_last)
            if self.activation == "lrelu":
                # In place on the fresh conv output (its backward keeps the result). Not on a view (the
                # 1x1 conv from an image is a reshaped matmul): autograd would copy its base back and
                # forth in the backward pass (4 full-size copies).
                act = torch.nn.functional.leaky_relu if x._base is not None else torch.nn.functional.leaky_relu_
                x = act(x, LRELU_SLOPE)
            return x.clamp(-clamp, clamp) if clamp is not None and clamp >= 0 else x
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1), channels_last=self.channels_last)
        return bias_act(x, b, act=self.activation, gain=g, clamp=clamp)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"in={i}, out={o}, k={k}, activation={self.activation}, up={self.up}, down={self.down}"
