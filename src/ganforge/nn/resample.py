"""FIR resampling: the [1,3,3,1] filters StyleGAN2 uses for every up- and down-sampling.

Everything here is plain PyTorch (no custom CUDA ops). The semantics follow scipy.signal.upfirdn on
both image axes: insert zeros (up), pad or crop, convolve with a 2-D FIR filter, keep every
`down`-th sample. Filters are stored as [fh, fw] tensors (outer product of the 1-D taps, normalised
to sum 1), the same buffer NVIDIA's networks call `resample_filter`.

Padding order everywhere is [x0, x1, y0, y1] (left, right, top, bottom), negative values crop.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

Padding = int | Sequence[int]


def setup_filter(taps: Sequence[float] | torch.Tensor = (1, 3, 3, 1), normalize: bool = True,
                 gain: float = 1.0) -> torch.Tensor:
    """Turn 1-D filter taps into the 2-D FIR kernel used for resampling.

    f2d[i, j] = t_i * t_j / (sum_i t_i)^2 * gain     (separable outer product, unit DC gain)

    taps: [k] 1-D taps (or an already 2-D [k, k] kernel)
    returns [k, k] float32
    """
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1:
        f = torch.outer(f, f)
    if f.ndim != 2:
        raise ValueError(f"resample filter must be 1-D taps or a 2-D kernel, got shape {list(f.shape)}")
    if normalize:
        f = f / f.sum()
    return f * gain


def _parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) == 4:
        return padding[0], padding[1], padding[2], padding[3]
    raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}")


def _separable_taps(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Split a rank-1 [fh, fw] kernel into column and row taps, or None if it is not rank 1."""
    if f.ndim != 2:
        return None
    col = f[:, f.abs().sum(0).argmax()]
    pivot = col.abs().argmax()
    if col[pivot] == 0:
        return None
    row = f[pivot] / col[pivot]
    if not torch.allclose(torch.outer(col, row), f, rtol=1e-6, atol=1e-9):
        return None
    return col, row


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1, padding: Padding = 0,
              gain: float = 1.0, flip_filter: bool = False) -> torch.Tensor:
    """Upsample, FIR-filter and downsample a batch of images (like scipy.signal.upfirdn in 2-D).

    y = downsample_down( conv2d( pad( zero_insert_up(x) ), f * gain ) )

    The filter is applied as a true convolution (flipped) unless flip_filter=True; the [1,3,3,1]
    filters are symmetric so the distinction only matters for custom filters.

    x: [batch, channels, height, width]
    f: [fh, fw] filter (None means identity)
    returns [batch, channels, (height*up + y0 + y1 - fh + 1) // down, (width*up + x0 + x1 - fw + 1) // down]
    (rounded up: every `down`-th sample starting at 0 is kept)
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    px0, px1, py0, py1 = _parse_padding(padding)
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if min(px0, px1, py0, py1) < 0:
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = (f * gain).to(dtype=x.dtype, device=x.device)
    if not flip_filter:
        f = f.flip([0, 1])
    taps = _separable_taps(f) if f.numel() > 1 else None
    if taps is not None and f.shape[0] > 1:
        col, row = taps
        x = F.conv2d(x, row.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        x = F.conv2d(x, col.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, gain: float = 1.0) -> torch.Tensor:
    """Upsample by `up` with the FIR filter f (zero insertion then filtering; DC gain `gain`).

    Padding is chosen so that the output is exactly [.., H*up, W*up] and aligned with the input
    grid the way StyleGAN2 expects (filter centred between input samples).

    x: [batch, channels, height, width] -> [batch, channels, height*up, width*up]
    """
    fh, fw = f.shape
    pad = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, gain: float = 1.0) -> torch.Tensor:
    """Low-pass with the FIR filter f, then keep every `down`-th sample.

    x: [batch, channels, height, width] -> [batch, channels, height/down, width/down]
    """
    fh, fw = f.shape
    pad = [(fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, gain=gain)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1, flip_weight: bool = True) -> torch.Tensor:
    """A convolution combined with FIR up- or down-sampling, as StyleGAN2 uses it.

    up=2:   y = FIR_up( conv_transpose2d(x, w, stride 2) )  -- equivalent to conv(upsample2d(x), w)
            with the filter and the kernel placed so that the output is [.., 2H, 2W]
    down=2: y = conv2d( FIR(x), w, stride 2 )             -- equivalent to downsample2d(conv(x, w))
    else:   y = conv2d(x, w, padding)

    flip_weight=True computes a correlation (what F.conv2d does); flip_weight=False a true
    convolution. StyleGAN2's up-sampling layers use flip_weight=False, which makes their kernels
    equal to the TensorFlow conv2d_transpose kernels of the original release.

    x: [batch, in_channels, height, width]
    w: [out_channels, in_channels // groups, kh, kw]
    f: [fh, fw] FIR filter (required when up or down > 1)
    returns [batch, out_channels, height * up / down, width * up / down]
    """
    out_channels, in_per_group, kh, kw = w.shape
    if up == 1 and down == 1:
        return F.conv2d(x, w if flip_weight else w.flip([2, 3]), padding=padding, groups=groups)
    if f is None:
        raise ValueError("conv2d_resample needs a FIR filter when up or down > 1")
    fh, fw = f.shape
    if down > 1 and up == 1:
        if kh == 1 and kw == 1:  # filter + decimate first: 1x1 conv on a quarter of the pixels
            x = downsample2d(x, f, down=down) if padding == 0 else upfirdn2d(
                x, f, down=down, padding=[padding + (fw - down + 1) // 2, padding + (fw - down) // 2,
                                          padding + (fh - down + 1) // 2, padding + (fh - down) // 2])
            return F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
        # Pad so that filter and stride-`down` kernel together cover the input exactly once per output pixel.
        pad = [padding + (fw - down + 1) // 2, padding + (fw - down) // 2,
               padding + (fh - down + 1) // 2, padding + (fh - down) // 2]
        x = upfirdn2d(x, f, padding=pad)
        return F.conv2d(x, w if flip_weight else w.flip([2, 3]), stride=down, groups=groups)
    if up > 1 and down == 1:
        if kh == 1 and kw == 1:  # 1x1 conv on the small grid, then upsample
            x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
            return upsample2d(x, f, up=up) if padding == 0 else upfirdn2d(
                x, f, up=up, gain=up * up,
                padding=[padding + (fw + up - 1) // 2, padding + (fw - up) // 2,
                         padding + (fh + up - 1) // 2, padding + (fh - up) // 2])
        # Transposed convolution wants [in, out/groups, kh, kw].
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            wt = wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        if flip_weight:
            wt = wt.flip([2, 3])
        x = F.conv_transpose2d(x, wt, stride=up, groups=groups)
        # conv_transpose output is up*(H-1)+kh; the FIR filter (gain up^2) trims it to up*H + 2*padding - kh + 1.
        p0x = padding + (fw + up - 1) // 2 - (kw - 1)
        p1x = padding + (fw - up) // 2 - (kw - up)
        p0y = padding + (fh + up - 1) // 2 - (kh - 1)
        p1y = padding + (fh - up) // 2 - (kh - up)
        return upfirdn2d(x, f, padding=[p0x, p1x, p0y, p1y], gain=up * up)
    raise ValueError("conv2d_resample supports up or down sampling, not both at once")
