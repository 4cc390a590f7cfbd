"""StyleGAN2 generator and discriminator (Karras et al. 2020, config F; conditional as in
NVIDIA's stylegan2-ada-pytorch).

Constructor arguments, attribute names and state-dict keys are those of NVIDIA's PyTorch networks,
so a published checkpoint's tensors load with `load_state_dict(strict=True)` and reproduce its
images. The code is ganforge's own.

Shapes: z [N, z_dim], c [N, c_dim], ws [N, num_ws, w_dim], img [N, img_channels, R, R].
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ganforge.nn.activation import bias_act, get_activation
from ganforge.nn.layers import Conv2dLayer, FullyConnectedLayer, normalize_2nd_moment
from ganforge.nn.mbstd import MinibatchStdLayer
from ganforge.nn.modconv import modulated_conv2d, modulated_conv2d_bias_act
from ganforge.nn.resample import (ChannelsLast, LayoutSetting, downsample2d, setup_filter, to_preferred_layout,
                                  upsample2d)

MAPPING_LR_MULTIPLIER = 0.01  # mapping network learns 100x slower (StyleGAN §C, kept in StyleGAN2)
W_AVG_BETA = 0.995            # decay of the tracked average w used by truncation
NOISE_MODES = ("random", "const", "none")

# A noise source: source(layer, batch, res, device) -> n ~ N(0, 1) of shape [batch, 1, res, res], the
# per-pixel noise of one SynthesisLayer with noise_mode='random' (instead of the global RNG). Training
# passes one so that a sample's noise depends on its index in the global batch, not on how the batch is
# split over processes.
NoiseSource = Callable[[nn.Module, int, int, torch.device], torch.Tensor]
ARCHITECTURES = ("orig", "skip", "resnet")


def channels_for(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: C(res) = min(channel_base // res, channel_max)."""
    return min(channel_base // res, channel_max)


def _resolution_log2(img_resolution: int) -> int:
    log2 = int(round(math.log2(img_resolution))) if img_resolution > 0 else 0
    if img_resolution < 4 or 2 ** log2 != img_resolution:
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return log2


def _use_fp16(x_device: torch.device, block_wants_fp16: bool, force_fp32: bool) -> bool:
    # Half precision only pays (and is only well supported) on CUDA; elsewhere run float32.
    return block_wants_fp16 and not force_fp32 and x_device.type == "cuda"


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """Truncation trick in W (StyleGAN §B): w' = w_avg + psi * (w - w_avg).

    Applied to the first `cutoff` layers only when cutoff is given (all layers otherwise).
    ws: [N, num_ws, w_dim], w_avg: [w_dim] -> [N, num_ws, w_dim]
    """
    if psi == 1:
        return ws
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


class MappingNetwork(nn.Module):
    """z (+ class embedding) -> w through `num_layers` equalized FC layers with lr multiplier 0.01.

    x = normalize_2nd_moment(z) [, normalize_2nd_moment(embed(c))]; x = lrelu(FC_i(x)) * sqrt(2);
    while training: w_avg <- lerp(mean_batch(x), w_avg, w_avg_beta); broadcast to num_ws; truncate.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = MAPPING_LR_MULTIPLIER,
                 w_avg_beta: float | None = W_AVG_BETA):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                                          lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool | None = None,
                skip_w_avg_update: bool = False) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this network is conditional: c must be [batch, {self.c_dim}]")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas is None:
            update_emas = self.training and not skip_w_avg_update
        if update_emas and self.w_avg_beta is not None and self.num_ws is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+ optional 2x up), per-pixel noise with learned strength, bias, lrelu.

    s = affine(w) (bias init 1); y = demod(conv(x * s, W)); y += noise_strength * noise;
    y = clamp(lrelu(y + b) * sqrt(2) * gain, +-conv_clamp * gain)
    noise: 'random' N(0,1) [N,1,R,R] each call; 'const' the stored noise_const [R,R]; 'none'.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = get_activation(activation).def_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = False,
                gain: float = 1.0, noise: NoiseSource | None = None) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        styles = self.affine(w)
        source, noise = noise, None
        if self.use_noise and noise_mode == "random":
            shape = [x.shape[0], 1, self.resolution, self.resolution]
            noise = (source(self, x.shape[0], self.resolution, x.device) if source is not None
                     else torch.randn(shape, device=x.device))
            noise = noise * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return modulated_conv2d_bias_act(x, self.weight, styles, self.bias, noise=noise, up=self.up,
                                         padding=self.padding, resample_filter=self.resample_filter,
                                         flip_weight=(self.up == 1), fused_modconv=fused_modconv,
                                         act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation: y = conv(x * s / sqrt(in), W) + b."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = False) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: [const | conv0 (up 2)] -> conv1 -> [ToRGB].

    'skip': img = upsample2d(img) + torgb(x) at every resolution (StyleGAN2 Fig. 7b).
    'resnet': x = (skip(x) + conv1(conv0(x))) * sqrt(1/2); ToRGB only at the last block.
    'orig': plain conv stack; ToRGB only at the last block.
    Each ToRGB shares its w with the next block's conv0 (w index advances by num_conv).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False, **layer_kwargs: Any):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last: ChannelsLast = None  # run-time layout setting (set_channels_last); None: auto
        self.num_conv = 0
        self.num_torgb = 0
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "random",
                force_fp32: bool = False, fused_modconv: bool | None = None,
                noise: NoiseSource | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        w_iter = iter(ws.unbind(dim=1))
        dtype = torch.float16 if _use_fp16(ws.device, self.use_fp16, force_fp32) else torch.float32
        if fused_modconv is None:
            # A grouped conv per sample only pays for a single sample; a shared conv is faster otherwise.
            fused_modconv = (not self.training) and ws.shape[0] == 1 and ws.device.type == "cuda"
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = x.to(dtype)
        x = to_preferred_layout(x, self.channels_last)
        kw = dict(noise_mode=noise_mode, fused_modconv=fused_modconv, noise=noise)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **kw)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **kw)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **kw)
            x = y.add_(x)  # y: the skip conv's fresh output, which autograd does not keep
        else:
            x = self.conv0(x, next(w_iter), **kw)
            x = self.conv1(x, next(w_iter), **kw)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(LayoutSetting, nn.Module):
    """ws [N, num_ws, w_dim] -> img [N, img_channels, R, R] through blocks b4, b8, ..., bR."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, **block_kwargs: Any):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = _resolution_log2(img_resolution)
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.channels_last: ChannelsLast = None
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: channels_for(res, channel_base, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=res >= fp16_resolution,
                                   **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def block_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Split ws [N, num_ws, w_dim] into each block's slice (ToRGB shares w with the next conv0)."""
        out, w_idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            out.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None, noise: NoiseSource | None = None) -> torch.Tensor:
        """ws [batch, num_ws, w_dim] -> img [batch, img_channels, R, R]. noise: a NoiseSource for the
        per-pixel noise of noise_mode='random' (default: torch.randn on the global RNG)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [batch, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, self.block_ws(ws)):
            x, img = getattr(self, f"b{res}")(x, img, cur_ws, noise_mode=noise_mode, force_fp32=force_fp32,
                                              fused_modconv=fused_modconv, noise=noise)
        return img


class Generator(LayoutSetting, nn.Module):
    """StyleGAN2 generator: G(z, c) = synthesis(mapping(z, c)).

    z: [N, z_dim], c: [N, c_dim] one-hot (or [N, 0]) -> img [N, img_channels, R, R] in about [-1, 1]
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None, **kwargs: Any):
        super().__init__()
        synthesis_kwargs = {**(synthesis_kwargs or {}), **kwargs}
        mapping_kwargs = dict(mapping_kwargs or {})
        self.init_kwargs = copy.deepcopy(dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                              img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                                              synthesis_kwargs=synthesis_kwargs))
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)
        self.channels_last: ChannelsLast = None

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool | None = None, **synthesis_kwargs: Any):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, **synthesis_kwargs)

    def sample(self, seeds: Sequence[int], class_idx: int | None = None, truncation_psi: float = 1,
               truncation_cutoff: int | None = None, noise_mode: str = "const", batch_size: int = 16) -> torch.Tensor:
        """Images for integer seeds, as uint8 [N, img_channels, R, R] (z as NVIDIA derives it from a seed)."""
        from ganforge.models.latents import class_labels, z_from_seeds, to_uint8

        device = next(self.parameters()).device
        out = []
        with torch.no_grad():
            for i in range(0, len(seeds), batch_size):
                chunk = list(seeds[i:i + batch_size])
                z = z_from_seeds(chunk, self.z_dim).to(device)
                c = class_labels(class_idx, self.c_dim, len(chunk)).to(device)
                img = self(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                           noise_mode=noise_mode)
                out.append(to_uint8(img).cpu())
        return torch.cat(out) if out else torch.zeros([0, self.img_channels, self.img_resolution,
                                                       self.img_resolution], dtype=torch.uint8)


class DiscriminatorBlock(nn.Module):
    """One resolution of D: [fromRGB] -> conv0 3x3 -> conv1 3x3 down 2 (+ resnet skip, * sqrt(1/2))."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None,
                 use_fp16: bool = False, freeze_layers: int = 0):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last: ChannelsLast = None  # run-time layout setting (set_channels_last); None: auto
        self.num_layers = 0

        def trainable() -> bool:  # Freeze-D: the first `freeze_layers` layers (from the input side) are buffers
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       trainable=trainable(), conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 trainable=trainable(), conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 trainable=trainable(), resample_filter=resample_filter, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False):
        dtype = torch.float16 if _use_fp16(img.device if img is not None else x.device, self.use_fp16,
                                           force_fp32) else torch.float32
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        x = to_preferred_layout(x, self.channels_last)
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y.add_(x)  # y: the skip conv's fresh output, which autograd does not keep
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """4x4 head of D (float32): minibatch stddev -> conv 3x3 -> FC -> out; conditional by projection:
    logit = sum_j out_j * cmap_j / sqrt(cmap_dim)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None, is_first: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.architecture = architecture
        self.is_first = is_first  # a 4x4 D has no blocks: the epilogue reads the image itself
        if architecture == "skip" or is_first:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        if self.is_first:
            x = self.fromrgb(img.to(torch.float32))
        else:
            x = x.to(torch.float32)
            if self.architecture == "skip":
                x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(LayoutSetting, nn.Module):
    """StyleGAN2 discriminator: D(img, c) -> logits [N, 1]. Default 'resnet' (StyleGAN2 Fig. 7c)."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, cmap_dim: int | None = None, block_kwargs: dict | None = None,
                 mapping_kwargs: dict | None = None, epilogue_kwargs: dict | None = None):
        super().__init__()
        block_kwargs, mapping_kwargs, epilogue_kwargs = (dict(block_kwargs or {}), dict(mapping_kwargs or {}),
                                                         dict(epilogue_kwargs or {}))
        self.init_kwargs = copy.deepcopy(dict(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, architecture=architecture,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
            cmap_dim=cmap_dim, block_kwargs=block_kwargs, mapping_kwargs=mapping_kwargs,
            epilogue_kwargs=epilogue_kwargs))
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = _resolution_log2(img_resolution)
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {res: channels_for(res, channel_base, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                                       resolution=res, first_layer_idx=layer_idx, use_fp16=res >= fp16_resolution,
                                       **block_kwargs, **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, is_first=img_resolution == 4,
                                        **epilogue_kwargs, **common)
        self.channels_last: ChannelsLast = None

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False,
                update_emas: bool = False) -> torch.Tensor:
        expected = [self.img_channels, self.img_resolution, self.img_resolution]
        if img.ndim != 4 or list(img.shape[1:]) != expected:
            raise ValueError(f"D expects images [batch, {', '.join(map(str, expected))}], got {list(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)
