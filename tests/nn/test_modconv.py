import pytest
import torch
import torch.nn.functional as F

from ganforge.nn.modconv import demodulate, demodulation_coefficients, modulate, modulated_conv2d
from ganforge.nn.resample import setup_filter


def test_demodulation_keeps_unit_variance():
    # StyleGAN2 §2.2: with unit-variance i.i.d. inputs, demodulated outputs have unit variance.
    torch.manual_seed(0)
    x = torch.randn(64, 32, 16, 16)
    w = torch.randn(48, 32, 3, 3)
    s = torch.rand(64, 32) + 0.5
    y = modulated_conv2d(x, w, s, demodulate=True, padding=1)
    assert y[:, :, 1:-1, 1:-1].std().item() == pytest.approx(1.0, rel=0.05)
    # Without demodulation the scale follows the styles and the kernel norm instead.
    y_raw = modulated_conv2d(x, w, s, demodulate=False, padding=1)
    assert y_raw[:, :, 1:-1, 1:-1].std().item() > 3


def test_demodulate_matches_equation():
    w = torch.randn(4, 3, 3, 3)
    s = torch.rand(2, 3) + 0.1
    got = demodulate(w, s)
    for b in range(2):
        for o in range(4):
            wp = w[o] * s[b][:, None, None]                       # eq. 1
            expected = wp / torch.sqrt((wp ** 2).sum() + 1e-8)   # eq. 3
            assert torch.allclose(got[b, o], expected, atol=1e-6)
    assert torch.allclose(demodulation_coefficients(w, s),
                          (modulate(w, s).square().sum([2, 3, 4]) + 1e-8).rsqrt(), atol=1e-6)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demod", [True, False])
def test_fused_and_shared_weight_paths_agree(up, demod):
    torch.manual_seed(1)
    x = torch.randn(3, 5, 8, 8)
    w = torch.randn(6, 5, 3, 3)
    s = torch.randn(3, 5)
    noise = torch.randn(3, 1, 8 * up, 8 * up)
    f = setup_filter([1, 3, 3, 1])
    kw = dict(noise=noise, up=up, padding=1, resample_filter=f, demodulate=demod, flip_weight=(up == 1))
    a = modulated_conv2d(x, w, s, fused_modconv=True, **kw)
    b = modulated_conv2d(x, w, s, fused_modconv=False, **kw)
    assert torch.allclose(a, b, atol=1e-4)


def test_modulated_conv_equals_per_sample_convolution():
    x = torch.randn(2, 3, 6, 6)
    w = torch.randn(4, 3, 3, 3)
    s = torch.randn(2, 3)
    y = modulated_conv2d(x, w, s, padding=1)
    for b in range(2):
        ref = F.conv2d(x[b:b + 1], demodulate(w, s)[b], padding=1)
        assert torch.allclose(y[b:b + 1], ref, atol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
def test_inplace_layer_path_matches_composed_math(up):
    from ganforge.nn.activation import bias_act
    from ganforge.nn.modconv import modulated_conv2d_bias_act

    torch.manual_seed(2)
    x, w, s, b = torch.randn(2, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(2, 4), torch.randn(5)
    noise = torch.randn(6 * up, 6 * up)
    f = setup_filter([1, 3, 3, 1])
    kw = dict(up=up, padding=1, resample_filter=f, flip_weight=(up == 1))
    composed = bias_act(modulated_conv2d(x, w, s, noise=noise, **kw), b, act="lrelu", gain=1.7, clamp=0.9)
    with torch.no_grad():
        fast = modulated_conv2d_bias_act(x, w, s, b, noise=noise, act="lrelu", gain=1.7, clamp=0.9, **kw)
    assert torch.allclose(fast, composed, atol=1e-5)


def test_layer_fast_path_gradients_match_composed_math():
    from ganforge.nn.activation import bias_act
    from ganforge.nn.modconv import modulated_conv2d_bias_act

    torch.manual_seed(4)
    f = setup_filter([1, 3, 3, 1])
    args = [torch.randn(2, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(2, 4), torch.randn(5), torch.randn(12, 12)]
    grads = []
    for fast in (True, False):
        x, w, s, b, n = [t.clone().double().requires_grad_(True) for t in args]
        kw = dict(up=2, padding=1, resample_filter=f.double(), flip_weight=False)
        if fast:
            y = modulated_conv2d_bias_act(x, w, s, b, noise=n, act="lrelu", gain=1.3, **kw)
        else:
            y = bias_act(modulated_conv2d(x, w, s, noise=n, **kw), b, act="lrelu", gain=1.3)
        grads.append([y] + list(torch.autograd.grad((y.square() * 0.5).sum(), [x, w, s, b, n])))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("demod", [False, True])
def test_1x1_modulated_conv_on_channels_last_input_matches_nchw(demod):
    # ToRGB on a channels_last feature map takes the [pixels, channels] matmul: same values and gradients.
    torch.manual_seed(5)
    args = [torch.randn(3, 6, 5, 4), torch.randn(2, 6, 1, 1), torch.randn(3, 6) + 2]
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        x, w, s = [t.clone().double().requires_grad_(True) for t in args]
        y = modulated_conv2d(x.contiguous(memory_format=fmt), w, s, demodulate=demod)
        (gx,) = torch.autograd.grad((y.square() * 0.5).sum(), x, create_graph=True)
        results.append([y, gx, *torch.autograd.grad(gx.square().sum(), [x, w, s])])
    for a, b in zip(*results):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-10)
