"""Geometric transforms of the ADA pipe (Karras et al. 2020, Appendix B.1): exact pixel blitting and the
general (almost) alias-free resampler built on the orthogonal sym6 wavelet filter.

Images are [N, C, H, W]; G_inv: [N, 3, 3] maps output to input pixels in centred coordinates
(see ganforge.train.augment.matrices for the matrices).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.nn.resample import upfirdn2d
from ganforge.train.augment.matrices import affine2d

# Low-pass (scaling) filter of the orthogonal wavelet sym6, as tabulated by PyWavelets: the resampling
# filter of the geometric transforms.
SYM6_LOWPASS = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
                0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
                -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)


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


__all__ = ["SYM6_LOWPASS", "blit", "geom_filter_taps", "upsample2x", "downsample2x_crop", "geometric_transform"]
