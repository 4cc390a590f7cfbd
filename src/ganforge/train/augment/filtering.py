"""The image-space filter of the ADA pipe (Karras et al. 2020, Appendix B.3): amplification of 4 dyadic
frequency bands, each image with its own separable filter."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Low-pass (scaling) filter of the orthogonal wavelet sym2, as tabulated by PyWavelets: builds the
# frequency bands of the image-space filter.
SYM2_LOWPASS = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)

IMGFILTER_BANDS = 4                               # dyadic bands [0, pi/8], [pi/8, pi/4], [pi/4, pi/2], [pi/2, pi]
IMGFILTER_EXPECTED_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)  # assumed 1/f power per band, e_i


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


__all__ = ["SYM2_LOWPASS", "IMGFILTER_BANDS", "IMGFILTER_EXPECTED_POWER", "imgfilter_bank", "band_gains",
           "filter_images"]
