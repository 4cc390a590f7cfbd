"""The ADA augmentation pipeline: the presets, the parameter draws in NVIDIA's order, and `AugmentPipe`,
which composes the transforms of the sibling modules (Karras et al. 2020, §2.3 and Appendix B)."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ganforge.errors import UsageError
from ganforge.train.augment.color import color_transform
from ganforge.train.augment.corruptions import add_noise, cutout
from ganforge.train.augment.filtering import IMGFILTER_BANDS, band_gains, filter_images, imgfilter_bank
from ganforge.train.augment.geometric import blit, geom_filter_taps, geometric_transform
from ganforge.train.augment.matrices import (affine2d, brightness_matrix, contrast_matrix, hue_rotation,
                                             luma_flip_matrix, rotation2d, saturation_matrix)

# The augmentation pipelines of the paper (Fig. 4, Appendix B), by NVIDIA's --augpipe names.
_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
AUGPIPE_SPECS: dict[str, dict[str, float]] = {
    "blit": dict(_BLIT),
    "geom": dict(_GEOM),
    "color": dict(_COLOR),
    "filter": dict(imgfilter=1),
    "noise": dict(noise=1),
    "cutout": dict(cutout=1),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}
DEFAULT_AUGPIPE = "bgc"

_GEOM_KEYS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
_COLOR_KEYS = ("brightness", "contrast", "lumaflip", "hue", "saturation")


# -- parameter sampling ------------------------------------------------------------------------------

def gated(value: torch.Tensor, prob: torch.Tensor | float, neutral: float) -> torch.Tensor:
    """Keep each sample's `value` with probability `prob`, else the no-op value `neutral`.

    The Bernoulli draw is one uniform per sample: u ~ U[0, 1) of shape [N, 1, ..., 1] (the rank of value);
    returns where(u < prob, value, neutral), same shape as value.
    """
    u = torch.rand([value.shape[0]] + [1] * (value.ndim - 1), device=value.device)
    return torch.where(u < prob, value, torch.full_like(value, neutral))


def _uniform_pm1(shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """u ~ U[-1, 1) (as 2 * U[0, 1) - 1, one uniform per element)."""
    return torch.rand(list(shape), device=device) * 2 - 1


# -- the pipe -----------------------------------------------------------------------------------------

class AugmentPipe(torch.nn.Module):
    """The ADA augmentation pipeline (Karras et al. 2020, §2.3 and Appendix B).

    Each multiplier (xflip, rotate90, ..., cutout) is the relative probability of its transformation;
    transformation k runs on a given image with probability multiplier_k * p (rotate: see below), where
    `p` is the registered scalar buffer set by the training loop or by `AdaController`. All multipliers
    default to 0 (off); the *_std / *_max / *_size arguments are the strengths from the paper:

      xint_max        integer translation, uniform in +-xint_max * size (rounded to whole pixels)
      scale_std       isotropic scaling: s = 2^(N(0, scale_std^2))
      rotate_max      arbitrary rotation, uniform in +-rotate_max * pi, applied before AND after the
                      anisotropic scaling, each with probability 1 - sqrt(1 - rotate * p) (so that at least
                      one of the two happens with probability rotate * p)
      aniso_std       anisotropic scaling: (s, 1/s), s = 2^(N(0, aniso_std^2))
      xfrac_std       fractional translation: N(0, (xfrac_std * size)^2)
      brightness_std  b ~ N(0, brightness_std^2), added
      contrast_std    c = 2^(N(0, contrast_std^2)), multiplied
      hue_max         rotation about the luma axis, uniform in +-hue_max * pi
      saturation_std  chroma scaled by 2^(N(0, saturation_std^2))
      imgfilter_bands relative probability per frequency band; imgfilter_std: band gain 2^(N(0, std^2))
      noise_std       sigma = |N(0, noise_std^2)| of additive Gaussian noise
      cutout_size     side of the cutout square relative to the image size

    lossless_blit (ganforge's only addition to NVIDIA's arguments): when the only geometric transforms on
    are x-flip, 90-degree rotations and integer translation (the 'blit' preset), execute them exactly as
    pixel copies. NVIDIA's pipe always resamples, and because its sym6 filter is not symmetric a
    resampled flip or 90-degree rotation rings (a flipped unit impulse gets side lobes of ~7%); set
    lossless_blit=False to reproduce that. As soon as a general geometric transform is on (bg, bgc, ...)
    everything geometric is composed into one matrix and resampled, exactly like NVIDIA's pipe.

    Colour transforms need 1- or 3-channel images (hue and saturation are skipped on greyscale); the
    image-space filter needs images larger than 21 pixels per side.
    """

    def __init__(self,
                 xflip: float = 0, rotate90: float = 0, xint: float = 0, xint_max: float = 0.125,
                 scale: float = 0, rotate: float = 0, aniso: float = 0, xfrac: float = 0, scale_std: float = 0.2,
                 rotate_max: float = 1, aniso_std: float = 0.2, xfrac_std: float = 0.125,
                 brightness: float = 0, contrast: float = 0, lumaflip: float = 0, hue: float = 0,
                 saturation: float = 0, brightness_std: float = 0.2, contrast_std: float = 0.5,
                 hue_max: float = 1, saturation_std: float = 1,
                 imgfilter: float = 0, imgfilter_bands: Sequence[float] = (1, 1, 1, 1), imgfilter_std: float = 1,
                 noise: float = 0, cutout: float = 0, noise_std: float = 0.1, cutout_size: float = 0.5,
                 *, lossless_blit: bool = True):
        super().__init__()
        self.lossless_blit = bool(lossless_blit)
        self.register_buffer("p", torch.ones([]))  # overall augmentation probability
        # Pixel blitting: probability multipliers and the integer translation range (fraction of the size).
        self.xflip, self.rotate90, self.xint = float(xflip), float(rotate90), float(xint)
        self.xint_max = float(xint_max)
        # General geometric transforms: multipliers and strengths.
        self.scale, self.rotate, self.aniso, self.xfrac = float(scale), float(rotate), float(aniso), float(xfrac)
        self.scale_std, self.rotate_max = float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        # Colour transforms: multipliers and strengths.
        self.brightness, self.contrast, self.lumaflip = float(brightness), float(contrast), float(lumaflip)
        self.hue, self.saturation = float(hue), float(saturation)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std = float(hue_max), float(saturation_std)
        # Image-space filter: multiplier, per-band multipliers, strength.
        self.imgfilter, self.imgfilter_std = float(imgfilter), float(imgfilter_std)
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        if len(self.imgfilter_bands) != IMGFILTER_BANDS:
            raise UsageError(f"imgfilter_bands needs {IMGFILTER_BANDS} values (one per frequency band), "
                             f"got {len(self.imgfilter_bands)}")
        # Corruptions: multipliers and strengths.
        self.noise, self.cutout = float(noise), float(cutout)
        self.noise_std, self.cutout_size = float(noise_std), float(cutout_size)
        # Derived constants, not state: kept out of state_dict.
        # upfirdn2d turns separable filters into Python floats, so the resampling taps stay on the CPU
        # (no device sync per call); the filter bank is used on the images' device.
        self.geom_taps = geom_filter_taps()
        self.register_buffer("Hz_fbank", torch.as_tensor(imgfilter_bank(), dtype=torch.float32), persistent=False)

    def extra_repr(self) -> str:
        on = [k for k in _GEOM_KEYS + _COLOR_KEYS + ("imgfilter", "noise", "cutout") if getattr(self, k) > 0]
        return f"p={float(self.p):.4f}, enabled={on}"

    @property
    def geometric(self) -> bool:
        return any(getattr(self, k) > 0 for k in _GEOM_KEYS)

    @property
    def general_geometric(self) -> bool:
        """Whether any non-integer geometric transform is on (else pixel blitting is exact)."""
        return any(getattr(self, k) > 0 for k in ("scale", "rotate", "aniso", "xfrac"))

    @property
    def colour(self) -> bool:
        return any(getattr(self, k) > 0 for k in _COLOR_KEYS)

    # .. drawing the parameters (the order of the draws is part of the contract) ......................
    def sample_geometry(self, n: int, width: int, height: int, device: torch.device) -> torch.Tensor:
        """Draw the geometric transforms and compose them into G_inv: [N, 3, 3], output -> input pixels.

        G_inv = F^-1 R90^-1 T_int^-1 S^-1 R_pre^-1 A^-1 R_post^-1 T_frac^-1  (transforms applied in the
        paper's order x-flip, rot90, int. translation, scale, pre-rotation, aniso, post-rotation, frac.
        translation), with F = diag(1 - 2i, 1), R90 = rotation by -k pi/2, S = diag(s, s), A = diag(s, 1/s).
        """
        p = self.p
        G = torch.eye(3, device=device).expand(n, 3, 3)
        one = torch.ones([n], device=device)
        if self.xflip > 0:
            i = gated(torch.floor(torch.rand([n], device=device) * 2), self.xflip * p, 0)
            G = G @ affine2d(1 - 2 * i, 0, 0, 0, 1, 0, like=one)
        if self.rotate90 > 0:
            k = gated(torch.floor(torch.rand([n], device=device) * 4), self.rotate90 * p, 0).long() % 4
            cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=device)[k]
            sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=device)[k]
            G = G @ rotation2d(cos, sin)
        if self.xint > 0:
            t = gated(_uniform_pm1([n, 2], device) * self.xint_max, self.xint * p, 0)
            G = G @ affine2d(1, 0, -torch.round(t[:, 0] * width), 0, 1, -torch.round(t[:, 1] * height), like=one)
        if self.scale > 0:
            s = gated(torch.exp2(torch.randn([n], device=device) * self.scale_std), self.scale * p, 1)
            G = G @ affine2d(1 / s, 0, 0, 0, 1 / s, 0, like=one)
        # Rotation before and after the anisotropic scaling, each with probability p_rot:
        # P(pre or post) = 1 - (1 - p_rot)^2 = rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))
        if self.rotate > 0:
            theta = gated(_uniform_pm1([n], device) * (math.pi * self.rotate_max), p_rot, 0)
            G = G @ rotation2d(torch.cos(theta), torch.sin(theta))
        if self.aniso > 0:
            s = gated(torch.exp2(torch.randn([n], device=device) * self.aniso_std), self.aniso * p, 1)
            G = G @ affine2d(1 / s, 0, 0, 0, s, 0, like=one)
        if self.rotate > 0:
            theta = gated(_uniform_pm1([n], device) * (math.pi * self.rotate_max), p_rot, 0)
            G = G @ rotation2d(torch.cos(theta), torch.sin(theta))
        if self.xfrac > 0:
            t = gated(torch.randn([n, 2], device=device) * self.xfrac_std, self.xfrac * p, 0)
            G = G @ affine2d(1, 0, -t[:, 0] * width, 0, 1, -t[:, 1] * height, like=one)
        return G

    def sample_color(self, n: int, channels: int, device: torch.device) -> torch.Tensor:
        """Draw the colour transforms and compose them into C: [N, 4, 4], colour_out = C colour_in.

        C = Sat Hue LumaFlip Contrast Bright, acting on homogeneous RGB (r, g, b, 1):
          Bright   = translate(b, b, b)                   b ~ N(0, brightness_std^2)
          Contrast = scale(c, c, c)                       c = 2^N(0, contrast_std^2)
          LumaFlip = I - 2 v v^T i                        i in {0, 1}: Householder reflection along v
          Hue      = rotation by theta about v            (Rodrigues), theta ~ U(+-hue_max pi)
          Sat      = v v^T + (I - v v^T) s                s = 2^N(0, saturation_std^2)
        with v = (1, 1, 1) / sqrt(3) the luma axis. Hue and saturation are skipped for 1-channel images.
        """
        p = self.p
        C = torch.eye(4, device=device).expand(n, 4, 4)
        if self.brightness > 0:
            b = gated(torch.randn([n], device=device) * self.brightness_std, self.brightness * p, 0)
            C = brightness_matrix(b) @ C
        if self.contrast > 0:
            c = gated(torch.exp2(torch.randn([n], device=device) * self.contrast_std), self.contrast * p, 1)
            C = contrast_matrix(c) @ C
        if self.lumaflip > 0:
            i = gated(torch.floor(torch.rand([n, 1, 1], device=device) * 2), self.lumaflip * p, 0)
            C = luma_flip_matrix(i) @ C
        if self.hue > 0 and channels > 1:
            theta = gated(_uniform_pm1([n], device) * (math.pi * self.hue_max), self.hue * p, 0)
            C = hue_rotation(theta) @ C
        if self.saturation > 0 and channels > 1:
            s = gated(torch.exp2(torch.randn([n, 1, 1], device=device) * self.saturation_std), self.saturation * p, 1)
            C = saturation_matrix(s) @ C
        return C

    def sample_filter(self, n: int, device: torch.device) -> torch.Tensor:
        """Draw the per-band amplifications t_i = 2^N(0, imgfilter_std^2) (each with probability
        imgfilter * p * band_i; see band_gains) and return each image's filter h = g @ bank: [N, 43]."""
        t = []
        for strength in self.imgfilter_bands:
            t_i = torch.exp2(torch.randn([n], device=device) * self.imgfilter_std)
            t.append(gated(t_i, self.imgfilter * self.p * strength, 1))
        return band_gains(t) @ self.Hz_fbank

    # .. forward .......................................................................................
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augment a batch: [N, C, H, W] float -> [N, C, H, W] (same dtype; computed in float32 or float64)."""
        if not (isinstance(images, torch.Tensor) and images.ndim == 4 and images.is_floating_point()):
            raise UsageError("AugmentPipe takes a float tensor of images [N, C, H, W]")
        n, ch, h, w = images.shape
        dev = images.device
        if self.colour and ch not in (1, 3):
            raise UsageError(f"colour augmentation needs RGB (3 channels) or greyscale (1 channel) images, "
                             f"got {ch} channels; use an augpipe without colour (e.g. 'bg')")
        k = self.Hz_fbank.shape[1] // 2
        if self.imgfilter > 0 and min(h, w) <= k:
            raise UsageError(f"the image-space filter needs images larger than {k}x{k} pixels, got {h}x{w}; "
                             f"use an augpipe without 'f' (e.g. 'bgc')")

        # Draw everything first, in the fixed order, so the RNG stream does not depend on p.
        G_inv = self.sample_geometry(n, w, h, dev) if self.geometric else None
        C = self.sample_color(n, ch, dev) if self.colour else None
        taps = self.sample_filter(n, dev) if self.imgfilter > 0 else None
        if self.noise > 0:
            sigma = gated(torch.randn([n, 1, 1, 1], device=dev).abs() * self.noise_std, self.noise * self.p, 0)
            eps = torch.randn([n, ch, h, w], device=dev)
        if self.cutout > 0:
            size = gated(torch.full([n, 2, 1, 1, 1], self.cutout_size, device=dev), self.cutout * self.p, 0)
            center = torch.rand([n, 2, 1, 1, 1], device=dev)
        if not bool(self.p != 0):
            return images  # exactly the identity (the draws above still advanced the RNG)

        x = images if images.dtype in (torch.float32, torch.float64) else images.float()
        if G_inv is not None:
            if self.lossless_blit and not self.general_geometric and (self.rotate90 == 0 or h == w):
                x = blit(x, G_inv)
            else:
                x = geometric_transform(x, G_inv, self.geom_taps.to(x.dtype))
        if C is not None:
            x = color_transform(x, C)
        if taps is not None:
            x = filter_images(x, taps)
        if self.noise > 0:
            x = add_noise(x, sigma, eps.to(x.dtype))
        if self.cutout > 0:
            x = cutout(x, size, center)
        return x.to(images.dtype)


def build_augment_pipe(name: str, p: float | None = None) -> AugmentPipe:
    """The pipe of a named preset (AUGPIPE_SPECS: blit, geom, color, filter, noise, cutout, bg, bgc, ...).

    p: initial augmentation probability in [0, 1] (None keeps the module default, 1).
    """
    if name not in AUGPIPE_SPECS:
        raise UsageError(f"unknown augpipe {name!r}; choose one of: {', '.join(AUGPIPE_SPECS)}")
    pipe = AugmentPipe(**AUGPIPE_SPECS[name])
    if p is not None:
        if not (0 <= p <= 1):
            raise UsageError(f"augmentation probability p must be between 0 and 1, got {p}")
        pipe.p.fill_(float(p))
    return pipe


__all__ = ["AUGPIPE_SPECS", "DEFAULT_AUGPIPE", "AugmentPipe", "build_augment_pipe", "gated"]
