import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from ganforge.nn.resample import conv2d_resample, downsample2d, setup_filter, upfirdn2d, upsample2d


def scipy_upfirdn2d(x, taps, up, down, pad):
    """Independent reference: scipy.signal.upfirdn along each axis of a separable filter.

    scipy computes the full convolution of the zero-stuffed signal; our padding [p0, p1] means the
    output sample i sits at full-convolution index i*down + (len(taps)-1) - p0.
    """
    taps = np.asarray(taps, np.float64)
    taps = taps / taps.sum()
    p0x, p1x, p0y, p1y = pad

    def along(a, axis, p0, p1):
        full = np.apply_along_axis(lambda v: scipy.signal.upfirdn(taps, v, up=up), axis, a)
        n_in = a.shape[axis] * up
        length = n_in + p0 + p1 - len(taps) + 1
        start = len(taps) - 1 - p0
        idx = np.arange(start, start + length)
        valid = (idx >= 0) & (idx < full.shape[axis])
        out = np.zeros(a.shape[:axis] + (length,) + a.shape[axis + 1:])
        sl = [slice(None)] * a.ndim
        sl[axis] = np.nonzero(valid)[0]
        src = [slice(None)] * a.ndim
        src[axis] = idx[valid]
        out[tuple(sl)] = full[tuple(src)]
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(None, None, down)
        return out[tuple(sl)]

    y = along(x.astype(np.float64), 3, p0x, p1x)
    return along(y, 2, p0y, p1y)


def test_setup_filter_is_normalised_outer_product():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4)
    expected = torch.tensor([1.0, 3, 3, 1])
    assert torch.allclose(f, torch.outer(expected, expected) / 64)
    assert f.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("impl", ["shift-add", "depthwise"])
@pytest.mark.parametrize("up,down,pad", [(1, 1, [1, 2, 0, 1]), (2, 1, [2, 1, 2, 1]), (1, 2, [1, 1, 1, 1]),
                                         (2, 1, [-1, 0, 1, -2]), (1, 1, [0, 0, 0, 0]), (1, 2, [0, 1, 2, -1])])
def test_upfirdn2d_matches_scipy(up, down, pad, impl, monkeypatch):
    # Both implementations of the separable FIR (the choice is made per call by _prefer_depthwise).
    from ganforge.nn import resample

    monkeypatch.setattr(resample, "_prefer_depthwise", lambda x, down: impl == "depthwise")
    x = np.random.RandomState(0).randn(2, 3, 7, 9).astype(np.float32)
    got = upfirdn2d(torch.from_numpy(x), setup_filter([1, 3, 3, 1]), up=up, down=down, padding=pad).numpy()
    ref = scipy_upfirdn2d(x, [1, 3, 3, 1], up, down, pad)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_upfirdn2d_nonseparable_filter_matches_direct_convolution():
    f = torch.tensor([[1.0, 2, 0], [0, 1, 3], [2, 0, 1]])
    x = torch.randn(1, 2, 6, 6)
    got = upfirdn2d(x, f, padding=1)
    direct = F.conv2d(F.pad(x, [1, 1, 1, 1]), f.flip([0, 1])[None, None].repeat(2, 1, 1, 1), groups=2)
    assert torch.allclose(got, direct, atol=1e-6)


def test_upsample_downsample_shapes_and_dc_gain():
    f = setup_filter([1, 3, 3, 1])
    x = torch.ones(1, 1, 8, 8)
    up = upsample2d(x, f)
    assert up.shape == (1, 1, 16, 16)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))  # constant stays constant inside
    down = downsample2d(x, f)
    assert down.shape == (1, 1, 4, 4)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))


def test_conv2d_resample_up_equals_convolution_of_upsampled_image():
    # Away from the border, the fused transposed conv + FIR equals a true convolution of upsample2d(x).
    f = setup_filter([1, 3, 3, 1])
    x, w = torch.randn(2, 3, 8, 8), torch.randn(5, 3, 3, 3)
    fused = conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False)
    ref = F.conv2d(upsample2d(x, f), w.flip([2, 3]), padding=1)
    assert fused.shape == (2, 5, 16, 16)
    assert torch.allclose(fused[..., 4:-4, 4:-4], ref[..., 4:-4, 4:-4], atol=1e-4)


def test_conv2d_resample_down_equals_filtered_decimation_of_convolution():
    f = setup_filter([1, 3, 3, 1])
    x, w = torch.randn(2, 3, 8, 8), torch.randn(5, 3, 3, 3)
    fused = conv2d_resample(x, w, f, down=2, padding=1)
    ref = downsample2d(F.conv2d(x, w, padding=1), f)
    assert fused.shape == (2, 5, 4, 4)
    assert torch.allclose(fused[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-4)
    w1 = torch.randn(5, 3, 1, 1)
    assert torch.allclose(conv2d_resample(x, w1, f, down=2), downsample2d(F.conv2d(x, w1), f), atol=1e-5)
    assert torch.allclose(conv2d_resample(x, w1, f, up=2), upsample2d(F.conv2d(x, w1), f), atol=1e-5)


def test_grouped_transposed_conv_matches_per_group_calls():
    f = setup_filter([1, 3, 3, 1])
    x, w = torch.randn(1, 6, 5, 5), torch.randn(4, 3, 3, 3)
    both = conv2d_resample(x, w, f, up=2, padding=1, groups=2, flip_weight=False)
    g0 = conv2d_resample(x[:, :3], w[:2], f, up=2, padding=1, flip_weight=False)
    g1 = conv2d_resample(x[:, 3:], w[2:], f, up=2, padding=1, flip_weight=False)
    assert torch.allclose(both, torch.cat([g0, g1], 1), atol=1e-5)



@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 4, 1]])  # sums of 8: exact float32 taps
@pytest.mark.parametrize("down,pad", [(1, [1, 1, 1, 1]), (2, [1, 1, 1, 1]), (1, [2, 2, 2, 2]), (1, [2, 0, -1, 1]),
                                      (2, [0, 1, 2, 1]), (2, [2, 2, 2, 2])])
def test_fir_gradients_match_convolution_reference_to_second_order(down, pad, taps):
    # Under autograd the FIR is one depthwise conv with the padding inside, whose backward is again a FIR
    # (_DepthwiseFIR, flipped taps); check it against autograd through the plain pad-conv-decimate
    # formulation, to first and second order, with symmetric and asymmetric taps.
    f = setup_filter(taps)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, *upfirdn2d(x.detach(), f.double(), down=down, padding=pad).shape[2:], dtype=torch.float64)

    def conv_ref(x):
        p = pad
        xp = F.pad(x, [max(p[0], 0), max(p[1], 0), max(p[2], 0), max(p[3], 0)])
        xp = xp[:, :, max(-p[2], 0): xp.shape[2] - max(-p[3], 0), max(-p[0], 0): xp.shape[3] - max(-p[1], 0)]
        y = F.conv2d(xp, f.double().flip([0, 1])[None, None].repeat(3, 1, 1, 1), groups=3)
        return y[:, :, ::down, ::down]

    for fn in (lambda x: upfirdn2d(x, f.double(), down=down, padding=pad), conv_ref):
        y = fn(x)
        (g,) = torch.autograd.grad((y.square() * w).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g.square() * torch.arange(g.numel(), dtype=g.dtype).reshape(g.shape)).sum(), x)
        if fn is conv_ref:
            assert torch.allclose(y, y_fast) and torch.allclose(g, g_fast) and torch.allclose(gg, gg_fast)
        y_fast, g_fast, gg_fast = y, g, gg
    assert torch.autograd.gradcheck(lambda x: upfirdn2d(x, f.double(), down=down, padding=pad), (x,))
    assert torch.autograd.gradgradcheck(lambda x: upfirdn2d(x, f.double(), down=down, padding=pad), (x,))


def test_filter_taps_cache_follows_in_place_changes():
    # The separable taps are cached (on the tensor, keyed by its version, and by value): a filter
    # changed in place must not be served from the cache.
    x = torch.randn(1, 2, 8, 8)
    f = setup_filter([1, 3, 3, 1])
    a = upfirdn2d(x, f, padding=1)
    f.mul_(2)
    assert torch.allclose(upfirdn2d(x, f, padding=1), 2 * a, atol=1e-6)
    box = setup_filter([1, 1, 1, 1])  # same shape, other values: not the cached [1, 3, 3, 1] taps
    y = upfirdn2d(x, box, padding=1)
    assert torch.allclose(y[0, 0, 2, 2], x[0, 0, 1:5, 1:5].mean(), atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("cin", [1, 3, 4])
def test_image_1x1_conv_as_matmul_equals_conv2d_to_second_order(cin, channels_last):
    # conv2d_resample runs 1x1 convolutions from images (fromRGB) as one matmul, whose result is laid out
    # channels_last or NCHW as the layout setting says (None, auto: channels_last on a CPU).
    from ganforge.nn.resample import conv2d_resample

    for setting in (channels_last, None):
        y = conv2d_resample(torch.randn(2, cin, 5, 6), torch.randn(7, cin, 1, 1), channels_last=setting)
        expect_cl = True if setting is None else setting
        assert y.is_contiguous(memory_format=torch.channels_last if expect_cl else torch.contiguous_format)
    torch.manual_seed(cin)
    x0 = torch.randn(2, cin, 5, 6, dtype=torch.float64)
    w = torch.randn(7, cin, 1, 1, dtype=torch.float64, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64, requires_grad=True)
    results = []
    for fn in (lambda x: conv2d_resample(x, w, bias=b), lambda x: F.conv2d(x, w, b)):
        x = x0.clone().requires_grad_(True)
        y = fn(x)
        (gx,) = torch.autograd.grad((y.square() * 0.5).sum(), x, create_graph=True)
        results.append([y, gx, *torch.autograd.grad(gx.square().sum(), [x, w, b])])
    for a, r in zip(*results):
        assert a.shape == r.shape and torch.allclose(a, r, atol=1e-10)


def _every_fir_path(x, f):
    """One call of each way the filter reaches the FIR: shift-add / depthwise (up=1), zero insertion (up=2),
    decimation, and the conv + FIR pairs of conv2d_resample (forward and backward)."""
    xg = x.clone().requires_grad_(True)
    w = torch.randn(3, x.shape[1], 3, 3, generator=torch.Generator().manual_seed(0))
    outs = [upfirdn2d(x, f, padding=1), upsample2d(x, f), downsample2d(x, f),
            conv2d_resample(xg, w, f, up=2), conv2d_resample(xg, w, f, down=2)]
    sum(o.square().sum() for o in outs[3:]).backward()
    return outs


def test_fir_taps_are_derived_once_per_filter_and_version(monkeypatch):
    # On CUDA, deriving the separable taps reads the filter's values on the host (a device sync): it must
    # happen once per filter tensor, on a host copy, not on every resampling call (the zero-insertion path
    # used to split the device filter on every upsample), and again after an in-place change.
    from ganforge.nn import resample

    seen = []
    real = resample._separable_taps

    def counting(f):
        seen.append(f.device.type)
        return real(f)

    monkeypatch.setattr(resample, "_separable_taps", counting)
    x = torch.randn(2, 4, 8, 8)
    f = setup_filter([1, 3, 3, 1])
    first = _every_fir_path(x, f)
    for _ in range(5):
        _every_fir_path(x, f)
    assert seen == ["cpu"]
    f.mul_(2)  # in place: a new version, new taps
    again = _every_fir_path(x, f)
    assert seen == ["cpu", "cpu"]
    for a, b in zip(first[:3], again[:3]):
        assert torch.allclose(b, 2 * a, rtol=1e-5, atol=1e-6)


def test_fir_builds_no_host_tensor_per_call_in_steady_state(monkeypatch):
    # The taps' device tensors are cached per (taps, dtype, device): after a first call of every path no FIR
    # call builds a tensor from host data (on CUDA each was a synchronous host-to-device copy).
    from ganforge.nn import resample

    x = torch.randn(2, 4, 8, 8)
    f = setup_filter([1, 3, 3, 1])
    ref = _every_fir_path(x, f)
    built = []
    real = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: built.append(a) or real(*a, **k))
    for _ in range(3):
        outs = _every_fir_path(x, f)
    assert built == []
    for a, b in zip(ref, outs):
        assert torch.equal(a, b)


def test_fir_tap_tensor_cached_under_inference_mode_serves_autograd_later(monkeypatch):
    # A kernel first built under torch.inference_mode must still be usable (saved for backward) in training.
    from ganforge.nn import resample

    monkeypatch.setattr(resample, "_DEVICE_TAPS", {})
    x = torch.randn(2, 4, 8, 8)
    f = setup_filter([1, 3, 3, 1])
    with torch.inference_mode():
        ref = [upfirdn2d(x, f, padding=1), upsample2d(x, f), downsample2d(x, f)]
    xg = x.clone().requires_grad_(True)
    out = [upfirdn2d(xg, f, padding=1), upsample2d(xg, f), downsample2d(xg, f)]
    (gx,) = torch.autograd.grad(sum(o.square().sum() for o in out), xg, create_graph=True)
    gx.square().sum().backward()
    for a, b in zip(ref, out):
        assert torch.allclose(a, b.detach(), atol=1e-6)


def test_filter_taps_memo_is_not_carried_stale_by_a_deep_copy():
    # Tensor.__deepcopy__ copies the tensor's __dict__ (where the taps memo lives) and restarts the version
    # counter: a copy of a filter changed after its taps were memoised must not be served the old taps.
    import copy

    x = torch.randn(1, 2, 8, 8)
    f = setup_filter([1, 3, 3, 1])
    f.mul_(1)
    a = upfirdn2d(x, f, padding=1)
    f.mul_(2)
    g = copy.deepcopy(f)
    assert torch.allclose(upfirdn2d(x, g, padding=1), 2 * a, atol=1e-6)
