"""Adaptive discriminator augmentation (ADA), Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data" (arXiv 2006.06676), §2-3 and Appendix B.

D only ever sees augmented images, reals and fakes alike, so the augmentations do not leak into the
generated distribution as long as each one is applied with a probability p < ~0.8. `AugmentPipe`
applies the paper's 18 transformations (6 groups) in a fixed order, each to each image independently with
probability `multiplier * p`:

  pixel blitting      x-flip, 90-degree rotations, integer translation
  general geometric   isotropic scaling, arbitrary rotation, anisotropic scaling, fractional translation
  colour              brightness, contrast, luma flip, hue rotation, saturation
  image-space filter  amplification of 4 frequency bands
  corruptions         additive RGB noise, cutout

`AdaController` adjusts p during training from the overfitting heuristic r_t = E[sign(D(x_real))].

Randomness and determinism: every draw comes from torch's global RNG on the images' device, in a
fixed order and with fixed shapes (the same order and shapes as NVIDIA's stylegan2-ada-pytorch, so a
seeded call reproduces NVIDIA's output to float tolerance). Draws are made even when p = 0, so the RNG
stream does not depend on p; at p = 0 the pipe then returns its input unchanged (exactly).

Images are [N, C, H, W] floats in about [-1, 1] (the colour transforms act around 0). The forward pass
is differentiable in the images to any order (D's fakes need first-order gradients, R1 on augmented
reals needs the gradient of a gradient).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.errors import UsageError
from ganforge.nn.resample import upfirdn2d

# -- constants --------------------------------------------------------------------------------------

# Low-pass (scaling) filters of two orthogonal wavelets, as tabulated by PyWavelets: sym2 builds the
# frequency bands of the image-space filter, sym6 is the resampling filter of the geometric transforms.
SYM2_LOWPASS = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6_LOWPASS = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
                0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
                -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

IMGFILTER_BANDS = 4                               # dyadic bands [0, pi/8], [pi/8, pi/4], [pi/4, pi/2], [pi/2, pi]
IMGFILTER_EXPECTED_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)  # assumed 1/f power per band, e_i
LUMA_AXIS = (1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3))  # v: the grey diagonal of RGB space

ADA_TARGET = 0.6        # target value of the overfitting heuristic r_t (paper §3)
ADA_INTERVAL = 4        # adjust p every 4 minibatches
ADA_KIMG = 500          # p can go from 0 to 1 in 500k images
ADA_KIMG_TRANSFER = 100  # NVIDIA's train.py uses 100 when fine-tuning from a pretrained network (--resume)

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


# -- the transforms, as math ------------------------------------------------------------------------

def imgfilter_bank() -> np.ndarray:
    """The 4-band filter bank of the image-space filter (ADA Appendix B.3), float64 [4, 43].

    With the orthogonal low-pass H(z) (sym2) and its mirror H(-z), the two half-band filters
        L(z) = H(z) H(z^-1) / 2,   Hi(z) = H(-z) H(-z^-1) / 2,   L + Hi = 1 (perfect reconstruction)
    split [0, pi] into [0, pi/2] and [pi/2, pi]. Repeating the split on the low band, each step
    stretches the existing bands (z -> z^2, i.e. zeros between taps), low-passes them with L and adds a
    new high band Hi, gives the dyadic bands b_0 = [0, pi/8], b_1 = [pi/8, pi/4], b_2 = [pi/4, pi/2],
    b_3 = [pi/2, pi]. All rows are symmetric and sum_i b_i = delta (the identity filter).
    """
    lo = np.asarray(SYM2_LOWPASS, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bands = [np.ones(1)] + [np.zeros(1)] * (IMGFILTER_BANDS - 1)
    for i in range(1, IMGFILTER_BANDS):
        stretched = []
        for b in bands:
            s = np.zeros(2 * b.size - 1)
            s[::2] = b
            stretched.append(np.convolve(s, lo2))
        n = stretched[0].size
        start = (n - hi2.size) // 2
        stretched[i][start:start + hi2.size] += hi2
        bands = stretched
    return np.stack(bands)


def band_gains(amplification: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample gains of the frequency bands, each band's boost normalised to keep the expected power.

    For band i with amplification t_i (1 = untouched), the gain vector is g^(i) with g^(i)_i = t_i and 1
    elsewhere, normalised so that the expected power of a 1/f image is unchanged:
        g^(i) <- g^(i) / sqrt(sum_j e_j (g^(i)_j)^2),   e = [10, 1, 1, 1] / 13
    and the bands combine multiplicatively: g = prod_i g^(i).

    amplification: list of IMGFILTER_BANDS tensors [N] -> g: [N, IMGFILTER_BANDS]
    """
    n = amplification[0].shape[0]
    e = torch.tensor(IMGFILTER_EXPECTED_POWER, dtype=torch.float32, device=amplification[0].device)
    g = amplification[0].new_ones([n, IMGFILTER_BANDS])
    for i, t_i in enumerate(amplification):
        t = amplification[0].new_ones([n, IMGFILTER_BANDS])
        t[:, i] = t_i
        g = g * (t / (e * t.square()).sum(dim=1, keepdim=True).sqrt())
    return g


def filter_images(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter each image with its own separable, symmetric 1-D filter, reflect-padded (same size out).

    y[n, c] = taps[n] (x) taps[n] * x[n, c]     (rows then columns; K = 2k + 1 taps, reflect pad k)

    images: [N, C, H, W] with H, W > k;  taps: [N, K]  ->  [N, C, H, W]
    """
    n, c, h, w = images.shape
    k = taps.shape[1] // 2
    weight = taps.to(images.dtype).repeat_interleave(c, dim=0).reshape(n * c, 1, 1, -1)
    x = F.pad(images.reshape(1, n * c, h, w), [k, k, k, k], mode="reflect")
    x = F.conv2d(x, weight, groups=n * c)                    # along width
    x = F.conv2d(x, weight.transpose(2, 3), groups=n * c)    # along height
    return x.reshape(n, c, h, w)


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


def color_transform(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Apply a homogeneous 4x4 colour matrix per sample (ADA Appendix B.2).

    RGB (3 channels):  y = C[:3, :3] x + C[:3, 3]                         per pixel, x = (r, g, b)
    grey (1 channel):  y = mean_i(sum_j C[i, j]) x + mean_i C[i, 3]       (i, j < 3): the grey value is
                       taken as (x, x, x), transformed, and averaged back to one channel

    images: [N, C, H, W] with C in {1, 3};  C: [N, 4, 4]  ->  [N, C, H, W]
    """
    n, ch, h, w = images.shape
    C = C.to(images.dtype)
    x = images.reshape(n, ch, h * w)
    if ch == 3:
        x = C[:, :3, :3] @ x + C[:, :3, 3:]
    elif ch == 1:
        rows = C[:, :3, :].mean(dim=1, keepdim=True)         # [N, 1, 4]
        x = x * rows[:, :, :3].sum(dim=2, keepdim=True) + rows[:, :, 3:]
    else:
        raise UsageError(f"colour augmentation needs RGB (3 channels) or greyscale (1 channel) images, "
                         f"got {ch} channels; use an augpipe without colour (e.g. 'bg')")
    return x.reshape(n, ch, h, w)


def add_noise(images: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Additive RGB noise: y = x + sigma_n * eps, eps ~ N(0, I) per pixel and channel.

    images, noise: [N, C, H, W];  sigma: [N, 1, 1, 1]  ->  [N, C, H, W]
    """
    return images + noise * sigma.to(images.dtype)


def cutout(images: torch.Tensor, size: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): zero a rectangle of relative size s centred at (c_x, c_y).

    y[n, :, i, j] = 0  where |(j + 0.5)/W - c_x| < s_x/2 and |(i + 0.5)/H - c_y| < s_y/2, else x

    images: [N, C, H, W];  size, center: [N, 2, 1, 1, 1] (x then y; s = 0 keeps the image)
    """
    n, c, h, w = images.shape
    xs = (torch.arange(w, device=images.device, dtype=torch.float32).reshape(1, 1, 1, -1) + 0.5) / w
    ys = (torch.arange(h, device=images.device, dtype=torch.float32).reshape(1, 1, -1, 1) + 0.5) / h
    keep_x = (xs - center[:, 0]).abs() >= size[:, 0] / 2
    keep_y = (ys - center[:, 1]).abs() >= size[:, 1] / 2
    return images * (keep_x | keep_y).to(images.dtype)


def _reflect_index(i: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reflect-padding index (edge not repeated: -1 -> 1, n -> n-2) and whether it lies within one reflection."""
    inside = (i >= -(n - 1)) & (i <= 2 * (n - 1))
    i = torch.where(i < 0, -i, i)
    i = torch.where(i > n - 1, 2 * (n - 1) - i, i)
    return i.clamp(0, n - 1), inside


def blit(images: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
    """Pixel blitting: an integer transform (flips, 90-degree rotations, integer translation), exactly.

    y[n, :, p] = x[n, :, reflect(G_inv[n] p)]

    with p = (j - (W-1)/2, i - (H-1)/2, 1) the output pixel in centred coordinates, G_inv mapping output to
    input pixels, and `reflect` the reflect padding of the input (sources beyond one reflection give 0).

    images: [N, C, H, W];  G_inv: [N, 3, 3] with integer entries (square images if it rotates)  ->  [N, C, H, W]
    """
    n, c, h, w = images.shape
    dev = images.device
    cx, cy = (w - 1) / 2, (h - 1) / 2
    gx = torch.arange(w, device=dev, dtype=torch.float32) - cx
    gy = torch.arange(h, device=dev, dtype=torch.float32) - cy
    p = torch.stack([gx.reshape(1, -1).expand(h, w), gy.reshape(-1, 1).expand(h, w), torch.ones(h, w, device=dev)])
    src = G_inv.float() @ p.reshape(3, h * w)                  # [N, 3, H*W]
    sx = torch.round(src[:, 0] + cx).long()
    sy = torch.round(src[:, 1] + cy).long()
    sx, in_x = _reflect_index(sx, w)
    sy, in_y = _reflect_index(sy, h)
    idx = (sy * w + sx).unsqueeze(1).expand(n, c, h * w)
    y = images.reshape(n, c, h * w).gather(2, idx)
    y = y * (in_x & in_y).unsqueeze(1).to(y.dtype)
    return y.reshape(n, c, h, w)


def geom_filter_taps(device: torch.device | str = "cpu") -> torch.Tensor:
    """The resampling filter of the geometric transforms: sym6 low-pass taps scaled to unit DC gain, [12]."""
    t = torch.tensor(SYM6_LOWPASS, dtype=torch.float64)
    return (t / t.sum()).to(device=device, dtype=torch.float32)


def _fir_along(x: torch.Tensor, taps: torch.Tensor, dim: int, p0: int, p1: int, gain: float = 1.0) -> torch.Tensor:
    """1-D correlation along dim 3 (width) or 2 (height) with zero padding p0/p1 (negative crops):
    y[j] = gain * sum_k taps[k] x[j + k - p0]."""
    f = taps.reshape(1, -1) if dim == 3 else taps.reshape(-1, 1)
    pad = [p0, p1, 0, 0] if dim == 3 else [0, 0, p0, p1]
    return upfirdn2d(x, f, padding=pad, gain=gain, flip_filter=True)


def _every_other(x: torch.Tensor, dim: int, start: int) -> torch.Tensor:
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(start, None, 2)
    return x[tuple(idx)]


def upsample2x(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """2x FIR upsampling with the separable filter taps (x) taps, as two polyphase filters per axis.

    Equals upsample2d(x, outer(taps), up=2) (zero insertion, padding [K/2, K/2 - 1], convolution with
    gain 4): output sample 2m of an axis is sum_q 2 r[2q] x[m + q - K/4] and sample 2m+1 is
    sum_q 2 r[2q+1] x[m + q - K/4 + 1], with r the reversed taps. Filtering the input at its own rate
    skips the multiplications by inserted zeros (about 4x less work on CPUs).

    x: [N, C, H, W];  taps: [K] with K % 4 == 0  ->  [N, C, 2H, 2W]
    """
    k = taps.shape[0]
    assert k % 4 == 0
    r = taps.flip(0)
    for dim in (3, 2):
        even = _fir_along(x, r[0::2], dim, k // 4, k // 4 - 1, gain=2.0)
        odd = _fir_along(x, r[1::2], dim, k // 4 - 1, k // 4, gain=2.0)
        x = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)
    return x


def downsample2x_crop(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter with taps (x) taps (correlation, i.e. the time-reversed convolution filter), keep every 2nd
    sample and crop the K/4-pixel border of the half-rate grid, as two polyphase filters per axis.

    Equals upfirdn2d(x, outer(taps), down=2, padding=-1, flip_filter=True) for the inputs below: sample j
    of an axis is sum_q taps[2q] x[2(j+q) + 1] + sum_q taps[2q+1] x[2(j+q+1)].

    x: [N, C, 2H + K, 2W + K];  taps: [K] (K even)  ->  [N, C, H, W]
    """
    for dim in (3, 2):
        x = _fir_along(_every_other(x, dim, 1), taps[0::2], dim, 0, -1) + \
            _fir_along(_every_other(x, dim, 0), taps[1::2], dim, -1, 0)
    return x


def geometric_transform(images: torch.Tensor, G_inv: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """General geometric transform with an (almost) alias-free resampler (ADA Appendix B.1).

    y(p) = x(G_inv p)  for every output pixel p, evaluated as
      1. reflect-pad x far enough that every transformed output corner (plus the filter's reach) lands in it;
      2. upsample 2x with the orthogonal wavelet low-pass f = taps (x) taps (sym6, 12 taps; upsample2x);
      3. bilinear sampling of the 2x image at G_inv p (matrix conjugated into the 2x grid), on a 2x output
         grid that extends the image by K/4 pixels per side;
      4. filter with the time-reversed f, keep every 2nd sample and crop the border: back to [H, W]
         (downsample2x_crop).
    Because f is orthogonal, steps 2 + 4 alone are the identity, so an integer transform reproduces
    pixel blitting up to float rounding.

    Coordinates are centred pixel units: p = (j - (W-1)/2, i - (H-1)/2, 1) for pixel (i, j).
    images: [N, C, H, W];  G_inv: [N, 3, 3] (output -> input);  taps: [K] the 1-D sym6 filter, unit DC gain
    returns [N, C, H, W]
    """
    n, c, h, w = images.shape
    dev = images.device
    pad = taps.shape[0] // 4                                  # 3 for the 12-tap sym6 filter
    cx, cy = (w - 1) / 2, (h - 1) / 2

    # 1. How far the transformed output corners reach outside the image, plus 2 * pad, in whole pixels;
    # at most W-1 / H-1 (the reach of one reflection).
    corners = torch.tensor([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]], device=dev)
    reach = (G_inv @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)       # [xy, N * 4]
    reach = torch.cat([-reach, reach]).max(dim=1).values                      # [x0, y0, x1, y1]
    reach = reach + torch.tensor([pad * 2 - cx, pad * 2 - cy] * 2, device=dev)
    reach = reach.clamp_min(0).minimum(torch.tensor([w - 1, h - 1] * 2, device=dev, dtype=reach.dtype))
    mx0, my0, mx1, my1 = (int(v) for v in reach.ceil().tolist())
    x = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
    # Centred coordinates of the padded image are shifted by the asymmetric part of the padding.
    G = affine2d(1, 0, (mx0 - mx1) / 2, 0, 1, (my0 - my1) / 2, like=G_inv[:, 0, 0]) @ G_inv

    # 2. Upsample. On the 2x grid a pixel of centred coordinate q sits at u = 2q - 1/2, so
    # G_2x = T(-1/2) S(2) G S(1/2) T(1/2).
    x = upsample2x(x, taps)
    s2 = affine2d(2, 0, 0, 0, 2, 0, like=G[:, 0, 0])
    s2_inv = affine2d(0.5, 0, 0, 0, 0.5, 0, like=G[:, 0, 0])
    t_m = affine2d(1, 0, -0.5, 0, 1, -0.5, like=G[:, 0, 0])
    t_p = affine2d(1, 0, 0.5, 0, 1, 0.5, like=G[:, 0, 0])
    G = t_m @ s2 @ G @ s2_inv @ t_p

    # 3. Sample. affine_grid works in [-1, 1] coordinates of the output and input (align_corners=False):
    # convert pixels -> normalised on both sides.
    out_h, out_w = (h + pad * 2) * 2, (w + pad * 2) * 2
    to_in = affine2d(2 / x.shape[3], 0, 0, 0, 2 / x.shape[2], 0, like=G[:, 0, 0])
    from_out = affine2d(out_w / 2, 0, 0, 0, out_h / 2, 0, like=G[:, 0, 0])
    theta = (to_in @ G @ from_out)[:, :2, :].to(x.dtype)
    grid = F.affine_grid(theta, [n, c, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # 4. Downsample with the time-reversed filter and crop the 2 * pad border of the 2x grid.
    return downsample2x_crop(x, taps)


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


# -- adaptive p -------------------------------------------------------------------------------------

def ada_adjustment(r_t: float, target: float = ADA_TARGET, batch_size: int = 1, interval: int = ADA_INTERVAL,
                   kimg: float = ADA_KIMG) -> float:
    """The ADA step on p (paper §3): p moves by one unit per `kimg` thousand images, towards r_t = target.

    r_t = E[sign(D(x_real))]         (over the real images seen since the last adjustment)
    delta_p = sign(r_t - target) * (batch_size * interval) / (kimg * 1000)
    and the caller applies p <- max(p + delta_p, 0).
    """
    return float(np.sign(r_t - target)) * (batch_size * interval) / (kimg * 1000)


class AdaController:
    """Adaptive augmentation probability: the overfitting heuristic r_t drives the pipe's p (paper §3).

    Usage in a training loop (batch_size = the global minibatch, all ranks together):

        ada = AdaController(pipe, batch_size=64)            # target 0.6, every 4 minibatches, 500 kimg
        ...   real_logits = D(pipe(reals))   ->   ada.accumulate(real_logits)   (every D pass on reals)
        ...   after each minibatch:              ada.step()

    Every `interval` minibatches, r_t = sum(sign(logits)) / count over all logits accumulated since the
    last adjustment (all ranks: the two sums are all-reduced when a torch.distributed process group with
    more than one rank is initialised), and p <- max(p + ada_adjustment(r_t), 0) in the pipe's float32
    buffer. With no logits accumulated, p is left as it is.

    state_dict() carries p, the pending sums and the minibatch counter, so load_state_dict() resumes
    exactly. Under torch.distributed each rank's pending sums are its own: call synchronize() on every
    rank before rank 0 takes the state_dict, and load_state_dict() on every rank (ranks other than 0
    then start with empty sums).
    """

    def __init__(self, pipe: AugmentPipe, batch_size: int, target: float = ADA_TARGET,
                 interval: int = ADA_INTERVAL, kimg: float = ADA_KIMG):
        if batch_size <= 0 or interval <= 0 or kimg <= 0:
            raise UsageError("ADA needs a positive batch size, interval and kimg")
        if not (0 <= target <= 1):
            raise UsageError(f"ADA target must be between 0 and 1, got {target}")
        self.pipe, self.batch_size, self.target = pipe, int(batch_size), float(target)
        self.interval, self.kimg = int(interval), float(kimg)
        self._sums = torch.zeros(2, device=pipe.p.device)  # [sum of signs, number of logits], this rank
        self.batches = 0                                   # minibatches since the last adjustment

    @property
    def p(self) -> float:
        return float(self.pipe.p)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add sign(D(x_real)) of one pass: logits of any shape (all elements count)."""
        x = real_logits.detach()
        if self._sums.device != x.device:
            self._sums = self._sums.to(x.device)
        self._sums += torch.stack([x.sign().sum().float(), x.new_tensor(x.numel(), dtype=torch.float32)])

    def _reduced_sums(self) -> torch.Tensor:
        sums = self._sums.clone()
        if _world_size() > 1:
            torch.distributed.all_reduce(sums, op=torch.distributed.ReduceOp.SUM)
        return sums

    def step(self) -> bool:
        """Count one finished minibatch; every `interval`-th call adjust p. Returns whether it adjusted."""
        self.batches += 1
        if self.batches < self.interval:
            return False
        self.batches = 0
        sign_sum, count = self._reduced_sums().tolist()
        self._sums.zero_()
        if count == 0:
            return False
        adjust = ada_adjustment(sign_sum / count, self.target, self.batch_size, self.interval, self.kimg)
        with torch.no_grad():
            self.pipe.p.copy_((self.pipe.p + adjust).clamp_min(0))
        return True

    def synchronize(self) -> None:
        """Collective: gather all ranks' pending sums on rank 0 (zero elsewhere); the next adjustment is unchanged."""
        if _world_size() > 1:
            total = self._reduced_sums()
            self._sums = total if torch.distributed.get_rank() == 0 else torch.zeros_like(total)

    def state_dict(self) -> dict[str, Any]:
        sign_sum, count = self._sums.tolist()
        return {"p": float(self.pipe.p), "sign_sum": sign_sum, "count": count, "batches": self.batches,
                "target": self.target, "interval": self.interval, "kimg": self.kimg, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.pipe.p.fill_(float(state["p"]))
        keep = _world_size() <= 1 or torch.distributed.get_rank() == 0
        sums = [float(state["sign_sum"]), float(state["count"])] if keep else [0.0, 0.0]
        self._sums = torch.tensor(sums, dtype=torch.float32, device=self.pipe.p.device)
        self.batches = int(state["batches"])


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


__all__ = ["ADA_INTERVAL", "ADA_KIMG", "ADA_KIMG_TRANSFER", "ADA_TARGET", "AUGPIPE_SPECS", "AdaController",
           "AugmentPipe", "DEFAULT_AUGPIPE", "ada_adjustment", "build_augment_pipe"]
