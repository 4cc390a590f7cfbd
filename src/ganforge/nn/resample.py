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

# The memory layout of feature maps is a run-time setting of a network, not part of its architecture:
# each layout-aware module (the StyleGAN2 blocks, Conv2dLayer) carries `channels_last`, set for a whole
# network by set_channels_last(net, value) (G.set_channels_last / D.set_channels_last), and passes it to
# to_preferred_layout / conv2d_resample explicitly.
#   None  (auto, the default): channels_last on a CPU, NCHW elsewhere. On a CPU channels_last (NHWC) is
#         the layout oneDNN computes in: convolutions, transposed convolutions and the depthwise FIR then
#         run without converting layouts on the way in and out (CPU, batch 32, 64 channels, 32x32:
#         transposed conv 2x, FIR 2-3x, 3x3 conv ~15% faster; benchmarks/train.py measures the step).
#   True  channels_last on every device (on CUDA it pays with float16 / tensor cores).
#   False NCHW everywhere.
# The layout changes strides only, never values' meaning; results agree to float rounding.
ChannelsLast = bool | None


def check_channels_last(value: ChannelsLast) -> ChannelsLast:
    """value if it is a valid layout setting (True, False or None = auto), else a ValueError."""
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"channels_last must be True, False or None (auto: channels_last on CPU only), "
                         f"got {value!r}")
    return value


def set_channels_last(module: torch.nn.Module, value: ChannelsLast) -> torch.nn.Module:
    """Set the feature-map layout of every layout-aware module inside `module` (those with a
    `channels_last` attribute); returns module. A run-time setting: not saved, not in init_kwargs."""
    check_channels_last(value)
    for m in module.modules():
        if "channels_last" in vars(m):
            m.channels_last = value
    return module


class LayoutSetting:
    """Mixin of the networks: `net.set_channels_last(value)` sets the memory layout of the feature maps,
    a run-time setting (not saved, not a constructor argument): None = auto (channels_last on a CPU,
    NCHW elsewhere; the default), True = channels_last on every device, False = NCHW everywhere. Values
    agree to float rounding. Returns the network; the current setting is `net.channels_last`."""

    channels_last: ChannelsLast = None

    def set_channels_last(self, value: ChannelsLast):
        return set_channels_last(self, value)


def prefers_channels_last(x: torch.Tensor, channels: int, channels_last: ChannelsLast = None) -> bool:
    """Whether a feature map of `channels` channels computed from x should be channels_last: as the
    setting says (None: on a CPU only), for more than 4 channels (images stay NCHW), and not while
    tracing or exporting, whose graphs should not carry layout changes."""
    if channels_last is None:
        channels_last = x.device.type == "cpu"
    return (channels_last and channels > _PIXEL_MATMUL_MAX_IN
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


def to_preferred_layout(x: torch.Tensor, channels_last: ChannelsLast = None) -> torch.Tensor:
    """x [N, C, H, W] in the memory layout the setting asks for (see prefers_channels_last): converted
    to channels_last when preferred, to NCHW when not; the values are unchanged, only the strides."""
    if x.ndim != 4:
        return x
    if prefers_channels_last(x, x.shape[1], channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    if channels_last is False:
        return x.contiguous()
    return x


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
    """Split a rank-1 [fh, fw] kernel into column and row taps, or None if it is not rank 1.

    The split inspects the filter's values, which graph capture (torch.compile, torch.export / ONNX,
    tracing) cannot follow, so under capture this returns None and the 2-D filter is used: same math.
    """
    if f.ndim != 2 or torch.compiler.is_compiling() or torch.jit.is_tracing():
        return None
    col = f[:, f.abs().sum(0).argmax()]
    pivot = col.abs().argmax()
    if col[pivot] == 0:
        return None
    row = f[pivot] / col[pivot]
    if not torch.allclose(torch.outer(col, row), f, rtol=1e-6, atol=1e-9):
        return None
    return col, row


def _derive_1d_taps(f_cpu: torch.Tensor, flip_filter: bool) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(col, row) correlation taps of a rank-1 filter as Python floats, flipped for a true convolution
    unless flip_filter; None if it is not separable. f_cpu: a CPU float64 copy (no device sync here)."""
    taps = _separable_taps(f_cpu)
    if taps is None:
        return None
    col, row = taps if flip_filter else (taps[0].flip(0), taps[1].flip(0))
    return tuple(float(t) for t in col), tuple(float(t) for t in row)


def _cached_1d_taps(f: torch.Tensor, flip_filter: bool) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (col, row) taps of _derive_1d_taps for the filter tensor f, or None (not separable, or under
    graph capture).

    Derived once per filter tensor and content: the memo lives on the tensor, keyed by its identity and
    its version counter (bumped by every in-place change; not by writes through `.data`). Only that first
    call copies f to the host (one device sync); later calls read Python floats and touch no device.
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return None
    try:
        version = f._version
    except RuntimeError:  # an inference-mode tensor keeps no version counter: derive every time
        return _derive_1d_taps(f.detach().to("cpu", torch.float64), flip_filter)
    memo = getattr(f, "_ganforge_taps", None)
    # id(f): a deep copy of f carries a copy of the memo (Tensor.__deepcopy__ copies __dict__) but not f's id.
    if memo is not None and memo[0] == id(f) and memo[1] == version:
        if flip_filter in memo[2]:
            return memo[2][flip_filter]
    else:
        memo = (id(f), version, {})
    taps = _derive_1d_taps(f.detach().to("cpu", torch.float64), flip_filter)
    memo[2][flip_filter] = taps
    try:
        f._ganforge_taps = memo
    except (AttributeError, RuntimeError):
        pass
    return taps


_DEVICE_TAPS: dict[tuple, torch.Tensor] = {}


def _taps_on_device(col: tuple[float, ...] | None, row: tuple[float, ...] | None, dtype: torch.dtype,
                    device: torch.device) -> torch.Tensor:
    """The FIR kernel [1, 1, kh, kw] = outer(col, row) (col only: [1, 1, kh, 1]; row only: [1, 1, 1, kw])
    as a tensor on `device`, built once per (taps, dtype, device) and kept: no host-to-device copy per call.
    The cached tensor is a constant (no grad) and never written in place; callers expand() it."""
    key = (col, row, dtype, device)
    w = _DEVICE_TAPS.get(key)
    if w is None:
        with torch.inference_mode(False), torch.no_grad():  # a normal tensor, usable later under autograd
            if col is not None and row is not None:
                w = torch.outer(torch.tensor(col, dtype=torch.float64), torch.tensor(row, dtype=torch.float64))
            elif col is not None:
                w = torch.tensor(col, dtype=torch.float64)[:, None]
            else:
                w = torch.tensor(row, dtype=torch.float64)[None, :]
            w = w[None, None].to(device=device, dtype=dtype)
        if len(_DEVICE_TAPS) > 256:
            _DEVICE_TAPS.clear()
        _DEVICE_TAPS[key] = w
    return w


def _fir_1d_raw(x: torch.Tensor, taps: tuple[float, ...], dim: int, p0: int, p1: int, down: int = 1) -> torch.Tensor:
    """Zero-pad p0/p1 (negative crops), correlate with `taps`, keep every `down`-th sample along `dim`.

    y[j] = sum_k taps[k] * x[j*down + k - p0]       len(y) = ceil((n + p0 + p1 - K + 1) / down)

    Computed as a few shifted multiply-adds into one output buffer: no padded copy, no per-channel
    convolution (memory-bound; used without autograd on large tensors, see _prefer_depthwise).
    """
    n, k_taps = x.shape[dim], len(taps)
    full = n + p0 + p1 - k_taps + 1
    if full <= 0:
        raise ValueError("FIR filter is longer than the padded input")
    out_len = (full + down - 1) // down
    shape = list(x.shape)
    shape[dim] = out_len
    spans = []
    for k, t in enumerate(taps):
        # Output j reads input i = j*down + k - p0; keep the j whose i falls inside [0, n).
        j_lo = max(0, -((k - p0) // down))
        j_hi = min(out_len, (n - 1 - k + p0) // down + 1)
        if t != 0 and j_hi > j_lo:
            src = x.narrow(dim, j_lo * down + k - p0, (j_hi - j_lo - 1) * down + 1)
            if down > 1:
                idx = [slice(None)] * x.ndim
                idx[dim] = slice(None, None, down)
                src = src[tuple(idx)]
            spans.append((j_lo, j_hi, t, src))
    # Start from the tap that covers the most output samples: its product is written straight into
    # the output, and only the few border samples it misses are zeroed (no full zero fill).
    if not spans:
        return x.new_zeros(shape)
    first = max(spans, key=lambda sp: sp[1] - sp[0])
    j_lo, j_hi, t, src = first
    if j_lo == 0 and j_hi == out_len:
        out = torch.mul(src, t)
    else:
        out = x.new_empty(shape)
        torch.mul(src, t, out=out.narrow(dim, j_lo, j_hi - j_lo))
        out.narrow(dim, 0, j_lo).zero_()
        out.narrow(dim, j_hi, out_len - j_hi).zero_()
    for sp in spans:
        if sp is not first:
            j_lo, j_hi, t, src = sp
            out.narrow(dim, j_lo, j_hi - j_lo).add_(src, alpha=t)
    return out


def _fir_shift_add(x: torch.Tensor, col: tuple[float, ...], row: tuple[float, ...], px0: int, px1: int, py0: int,
                   py1: int, down: int) -> torch.Tensor:
    """The separable FIR as a row pass (width, dim 3) then a column pass (height, dim 2) of shifted
    multiply-adds. Not differentiable: upfirdn2d takes it only when no gradient is needed."""
    with torch.no_grad():
        return _fir_1d_raw(_fir_1d_raw(x, row, 3, px0, px1, down), col, 2, py0, py1, down)


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
    if up == 1 and 1 < f.numel() and max(f.shape) <= 8 and f.ndim == 2:
        taps = _cached_1d_taps(f, flip_filter)
        if taps is not None:
            col, row = taps
            if _prefer_depthwise(x, down):
                return _fir_depthwise(x, col, tuple(t * gain for t in row), px0, px1, py0, py1, down)
            return _fir_shift_add(x, col, tuple(t * gain for t in row), px0, px1, py0, py1, down)
    keep_channels_last = _is_channels_last(x)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if min(px0, px1, py0, py1) < 0:
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    taps = _cached_1d_taps(f, flip_filter) if f.ndim == 2 and f.numel() > 1 and f.shape[0] > 1 else None
    if taps is not None:  # a row pass then a column pass, with the host-derived taps' cached device copies
        col, row = taps
        x = F.conv2d(x, _taps_on_device(None, tuple(t * gain for t in row), x.dtype, x.device).expand(c, 1, 1, -1),
                     groups=c, stride=(1, down))
        x = F.conv2d(x, _taps_on_device(col, None, x.dtype, x.device).expand(c, 1, -1, 1), groups=c,
                     stride=(down, 1))
    else:  # not separable, or under graph capture: the 2-D filter as it is (on x's device already)
        f = (f * gain).to(dtype=x.dtype, device=x.device)
        if not flip_filter:
            f = f.flip([0, 1])
        x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c, stride=down)
    return x.contiguous(memory_format=torch.channels_last) if keep_channels_last else x


# Which implementation of the separable FIR runs (benchmarks/fir.py; CPU, 2 threads, batch 32, 64
# channels, 4..32 px): under autograd always the depthwise conv2d (forward + backward measured 1.3-3x
# faster than shift-and-add with a hand-written adjoint, which was therefore removed); without a
# gradient the depthwise conv below 4M elements and shift-and-add above (memory-bound either way,
# slightly faster there); and the depthwise conv for channels_last inputs, whose layout it keeps.
_SHIFT_ADD_MIN_NUMEL = 1 << 22


def _prefer_depthwise(x: torch.Tensor, down: int) -> bool:
    if _is_channels_last(x) or (torch.is_grad_enabled() and x.requires_grad):  # shift-add has no backward
        return True
    return x.numel() < _SHIFT_ADD_MIN_NUMEL


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.ndim == 4 and x.shape[1] > 1 and x.stride(1) == 1 and not x.is_contiguous()


def _fir_depthwise(x: torch.Tensor, col: tuple[float, ...], row: tuple[float, ...], px0: int, px1: int, py0: int,
                   py1: int, down: int) -> torch.Tensor:
    """The separable FIR (correlation taps col x row, already flipped and scaled) as one depthwise conv.

    y = conv2d(pad(x, (px0, px1, py0, py1)), outer(col, row) per channel, stride=down)
    Symmetric non-negative padding goes into the convolution itself (no padded copy).
    """
    c = x.shape[1]
    w = _taps_on_device(col, row, x.dtype, x.device).expand(c, 1, len(col), len(row))
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        if torch.is_grad_enabled() and x.requires_grad:
            return _DepthwiseFIR.apply(x, w, down, (py0, px0), False, tuple(x.shape[2:]))
        return F.conv2d(x, w, groups=c, stride=down, padding=(py0, px0))
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if min(px0, px1, py0, py1) < 0:
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    return F.conv2d(x, w, groups=c, stride=down)


class _DepthwiseFIR(torch.autograd.Function):
    """A fixed per-channel FIR w (no gradient of its own) whose backward is again a fixed FIR, to any order.

    forward, transposed=False:  y = conv2d(x, w, groups=C, stride=s, padding=p)
    forward, transposed=True:   y = conv_transpose2d(x, w, groups=C, stride=s, padding=p) sized to `out_hw`
    backward: the adjoint, i.e. the other of the two with the same w, s, p; for s=1 the adjoint of the
    correlation is the correlation with the flipped taps and padding k-1-p (a plain depthwise conv).

    PyTorch's own double backward of a grouped convolution also computes the gradient of w, one group
    at a time (64 convolutions per 64-channel FIR), although w needs none: R1 and path length, which
    differentiate twice, spent about a third of their time there.
    x: [N, C, H, W], w: [C, 1, kh, kw]
    """

    @staticmethod
    def forward(ctx, x, w, stride, padding, transposed, out_hw):
        ctx.args = (w, stride, padding, transposed, tuple(x.shape[2:]))
        c = x.shape[1]
        if not transposed:
            return F.conv2d(x, w, groups=c, stride=stride, padding=padding)
        (kh, kw) = w.shape[2:]
        out_pad = [o - ((i - 1) * stride - 2 * p + k) for o, i, p, k in zip(out_hw, x.shape[2:], padding, (kh, kw))]
        return F.conv_transpose2d(x, w, groups=c, stride=stride, padding=padding, output_padding=out_pad)

    @staticmethod
    def backward(ctx, g):
        w, stride, padding, transposed, x_hw = ctx.args
        kh, kw = w.shape[2:]
        if stride == 1 and kh - 1 - padding[0] >= 0 and kw - 1 - padding[1] >= 0:
            flipped = (kh - 1 - padding[0], kw - 1 - padding[1])
            return _DepthwiseFIR.apply(g, w.flip([2, 3]), 1, flipped, False, x_hw), None, None, None, None, None
        return _DepthwiseFIR.apply(g, w, stride, padding, not transposed, x_hw), None, None, None, None, None


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


# A 1x1 convolution from an image (1-4 channels, e.g. D's fromRGB) runs as one batched matmul:
# oneDNN's convolution is pathologically slow there (CPU, batch 32, 32x32, 1 -> 64 channels: 7.3 ms
# forward and 9.9 ms forward + backward, against 0.2 and 0.6 ms; 3 channels: 2.9 against 1.9 ms).
_PIXEL_MATMUL_MAX_IN = 4


def _conv1x1_as_matmul(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None,
                       channels_last: ChannelsLast = None) -> torch.Tensor:
    """y[n, o, p] = sum_i w[o, i] x[n, i, p] (+ b[o]) for every pixel p: F.conv2d with a 1x1 kernel.

    x: [N, I, H, W], w: [O, I, 1, 1], bias: [O] or None -> [N, O, H, W]
    The result is channels_last when prefers_channels_last asks for it (one [N*H*W, I] x [I, O] matmul,
    whose rows are the output's pixels), NCHW otherwise (one batched [O, I] x [I, H*W] matmul).
    """
    n, i, h, wd = x.shape
    o = w.shape[0]
    if prefers_channels_last(x, o, channels_last):
        xm = x.permute(0, 2, 3, 1).reshape(n * h * wd, i)
        wm = w.reshape(o, i).t()
        y = torch.mm(xm, wm) if bias is None else torch.addmm(bias, xm, wm)
        return y.reshape(n, h, wd, o).permute(0, 3, 1, 2)
    wm = w.reshape(1, o, i).expand(n, o, i)
    xm = x.reshape(n, i, h * wd)
    if bias is None:
        return torch.bmm(wm, xm).reshape(n, o, h, wd)
    return torch.baddbmm(bias.reshape(1, o, 1).expand(n, o, 1), wm, xm).reshape(n, o, h, wd)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1, flip_weight: bool = True,
                    bias: torch.Tensor | None = None, channels_last: ChannelsLast = None) -> torch.Tensor:
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
    bias: optional [out_channels], added to the result (inside the final convolution when it is last)
    channels_last: the layout setting (see set_channels_last) for the one case that chooses a layout itself,
        a 1x1 convolution from an image (<= 4 channels; computed as a matmul); other results keep x's layout
    returns [batch, out_channels, height * up / down, width * up / down]
    """
    out_channels, in_per_group, kh, kw = w.shape
    if up == 1 and down == 1:
        if kh == kw == 1 and groups == 1 and padding == 0 and in_per_group <= _PIXEL_MATMUL_MAX_IN:
            return _conv1x1_as_matmul(x, w, bias, channels_last)
        return F.conv2d(x, w if flip_weight else w.flip([2, 3]), bias, padding=padding, groups=groups)
    if f is None:
        raise ValueError("conv2d_resample needs a FIR filter when up or down > 1")
    fh, fw = f.shape
    if down > 1 and up == 1:
        if kh == 1 and kw == 1:  # filter + decimate first: 1x1 conv on a quarter of the pixels
            x = downsample2d(x, f, down=down) if padding == 0 else upfirdn2d(
                x, f, down=down, padding=[padding + (fw - down + 1) // 2, padding + (fw - down) // 2,
                                          padding + (fh - down + 1) // 2, padding + (fh - down) // 2])
            return F.conv2d(x, w if flip_weight else w.flip([2, 3]), bias, groups=groups)
        # Pad so that filter and stride-`down` kernel together cover the input exactly once per output pixel.
        pad = [padding + (fw - down + 1) // 2, padding + (fw - down) // 2,
               padding + (fh - down + 1) // 2, padding + (fh - down) // 2]
        x = upfirdn2d(x, f, padding=pad)
        return F.conv2d(x, w if flip_weight else w.flip([2, 3]), bias, stride=down, groups=groups)
    if up > 1 and down == 1:
        if kh == 1 and kw == 1:  # 1x1 conv on the small grid, then upsample
            x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
            x = upsample2d(x, f, up=up) if padding == 0 else upfirdn2d(
                x, f, up=up, gain=up * up,
                padding=[padding + (fw + up - 1) // 2, padding + (fw - up) // 2,
                         padding + (fh + up - 1) // 2, padding + (fh - up) // 2])
            return x if bias is None else x + bias.reshape(1, -1, 1, 1)
        w_eff = w.flip([2, 3]) if flip_weight else w  # transposed conv taps, [out, in/groups, kh, kw]
        # F.conv_transpose2d wants [in, out/groups, kh, kw].
        wt = w_eff.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        x = F.conv_transpose2d(x, wt.reshape(groups * in_per_group, out_channels // groups, kh, kw),
                               stride=up, groups=groups)
        # conv_transpose output is up*(H-1)+kh; the FIR filter (gain up^2) trims it to up*H + 2*padding - kh + 1.
        p0x = padding + (fw + up - 1) // 2 - (kw - 1)
        p1x = padding + (fw - up) // 2 - (kw - up)
        p0y = padding + (fh + up - 1) // 2 - (kh - 1)
        p1y = padding + (fh - up) // 2 - (kh - up)
        x = upfirdn2d(x, f, padding=[p0x, p1x, p0y, p1y], gain=up * up)
        return x if bias is None else x + bias.reshape(1, -1, 1, 1)
    raise ValueError("conv2d_resample supports up or down sampling, not both at once")
