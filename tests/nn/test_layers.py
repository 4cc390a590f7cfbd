import math

import numpy as np
import pytest
import torch

from ganforge.nn.activation import bias_act
from ganforge.nn.layers import Conv2dLayer, FullyConnectedLayer, normalize_2nd_moment
from ganforge.nn.mbstd import minibatch_stddev


def test_equalized_lr_runtime_scaling():
    torch.manual_seed(0)
    layer = FullyConnectedLayer(256, 64, lr_multiplier=0.01, bias_init=0.5)
    # Stored weights are N(0,1)/lr_mul; the run-time gain lr_mul/sqrt(fan_in) brings them to He scale.
    assert layer.weight.std().item() == pytest.approx(100, rel=0.05)
    assert layer.weight_gain == pytest.approx(0.01 / 16)
    x = torch.randn(8, 256)
    expected = x @ (layer.weight * 0.01 / math.sqrt(256)).t() + 0.5 * 0.01
    assert torch.allclose(layer(x), expected, atol=1e-5)
    y = FullyConnectedLayer(256, 512)(torch.randn(4096, 256))
    assert y.std().item() == pytest.approx(1.0, rel=0.05)  # unit in, unit out


def test_equalized_lr_multiplier_scales_effective_learning_rate():
    # With lr_mul, an SGD step of size lr on the stored weight moves the effective weight by lr * lr_mul^2 / sqrt(in) * grad_eff.
    torch.manual_seed(0)
    a = FullyConnectedLayer(16, 4, lr_multiplier=1.0)
    b = FullyConnectedLayer(16, 4, lr_multiplier=0.1)
    x = torch.randn(5, 16)
    for layer in (a, b):
        layer(x).sum().backward()
    grad_eff_a = a.weight.grad / a.weight_gain  # dL/dW_eff is the same function of x for both
    grad_eff_b = b.weight.grad / b.weight_gain
    assert torch.allclose(grad_eff_a, grad_eff_b, atol=1e-5)
    assert b.weight.grad.abs().sum() / a.weight.grad.abs().sum() == pytest.approx(0.1, rel=1e-4)


def test_conv_layer_gain_and_clamp():
    torch.manual_seed(0)
    conv = Conv2dLayer(64, 64, 3, activation="lrelu")
    y = conv(torch.randn(16, 64, 16, 16))
    # lrelu(0.2) of unit-variance input has E[y^2] = (1 + 0.04)/2; the sqrt 2 gain restores ~1.04.
    assert y[..., 1:-1, 1:-1].square().mean().item() == pytest.approx(1.04, rel=0.1)
    clamped = Conv2dLayer(8, 8, 3, conv_clamp=0.5)(torch.randn(2, 8, 4, 4) * 10)
    assert clamped.abs().max().item() <= 0.5 + 1e-6


def test_bias_act_formula():
    x = torch.randn(2, 3, 4, 4)
    b = torch.randn(3)
    got = bias_act(x, b, act="lrelu", gain=2.0, clamp=1.5)
    expected = torch.nn.functional.leaky_relu(x + b[None, :, None, None], 0.2) * 2.0
    assert torch.allclose(got, expected.clamp(-1.5, 1.5))
    assert torch.allclose(bias_act(x, None, act="lrelu"), torch.nn.functional.leaky_relu(x, 0.2) * math.sqrt(2))


def test_normalize_2nd_moment():
    z = torch.randn(4, 512) * 7
    y = normalize_2nd_moment(z)
    assert torch.allclose(y.square().mean(1), torch.ones(4), atol=1e-5)


def test_minibatch_stddev_matches_naive_loop():
    x = torch.randn(8, 6, 3, 3)
    y = minibatch_stddev(x, group_size=4, num_channels=2)
    assert y.shape == (8, 8, 3, 3)
    xn = x.numpy().astype(np.float64)
    groups = 8 // 4
    for i in range(8):
        members = [j for j in range(8) if j % groups == i % groups]  # sample i is in group i mod (N/G)
        for f in range(2):
            block = xn[members][:, f * 3:(f + 1) * 3]
            expected = np.sqrt(block.var(axis=0) + 1e-8).mean()
            assert y[i, 6 + f].numpy() == pytest.approx(np.full((3, 3), expected), rel=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        minibatch_stddev(torch.randn(6, 4, 2, 2), group_size=4)


@pytest.mark.parametrize("up,down,k", [(1, 1, 3), (1, 2, 3), (1, 2, 1), (2, 1, 3), (2, 1, 1)])
@pytest.mark.parametrize("activation", ["lrelu", "linear", "relu"])
def test_conv_layer_equals_bias_act_of_equalized_conv(up, down, k, activation):
    # y = clamp(act(conv2d_resample(x, W / sqrt(in k^2)) + b) * act_gain * gain, +-clamp * gain)
    from ganforge.nn.resample import conv2d_resample

    torch.manual_seed(3)
    conv = Conv2dLayer(4, 5, k, activation=activation, up=up, down=down, conv_clamp=2.0)
    conv.bias.data.normal_()
    x = torch.randn(2, 4, 8, 8)
    raw = conv2d_resample(x, conv.weight / math.sqrt(4 * k * k), conv.resample_filter, up=up, down=down,
                          padding=k // 2, flip_weight=(up == 1))
    expected = bias_act(raw, conv.bias, act=activation, gain=conv.act_gain * 0.7, clamp=2.0 * 0.7)
    assert torch.allclose(conv(x, gain=0.7), expected, atol=1e-5)


@pytest.mark.parametrize("down", [1, 2])
def test_conv_layer_gradients_to_second_order_match_composed_math(down):
    # The layer folds gain and bias into the convolution and applies leaky ReLU in place; R1 needs its
    # second derivatives, which must equal those of the plain composition.
    from ganforge.nn.resample import conv2d_resample

    torch.manual_seed(5)
    conv = Conv2dLayer(3, 4, 3, activation="lrelu", down=down).double()
    conv.bias.data.normal_()
    x0 = torch.randn(2, 3, 8, 8, dtype=torch.float64)

    def composed(x):
        raw = conv2d_resample(x, conv.weight / math.sqrt(27), conv.resample_filter, down=down, padding=1)
        return bias_act(raw, conv.bias, act="lrelu", gain=conv.act_gain * 0.7)

    results = []
    for fn in (lambda x: conv(x, gain=0.7), composed):
        x = x0.clone().requires_grad_(True)
        y = fn(x)
        (gx,) = torch.autograd.grad((y.square() * 0.5).sum(), x, create_graph=True)
        second = torch.autograd.grad(gx.square().sum(), [x, conv.weight, conv.bias])
        results.append([y, gx, *second])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-10)
