"""The training objectives against independent computations (closed forms, direct Jacobians)."""

import math

import pytest
import torch

from testkit import tiny_G
from ganforge.train.loss import (discriminator_logistic_loss, generator_logistic_loss, mix_styles, path_length_noise,
                                 path_length_penalty, path_lengths, r1_penalty, sanitize_gradients,
                                 style_mixing_cutoff)


def test_logistic_losses_are_the_non_saturating_gan_losses():
    logits = torch.linspace(-6, 6, 25).reshape(-1, 1)
    # L_G = -log sigmoid(D(G(z))), L_D = -log(1 - sigmoid(D(G(z)))) - log sigmoid(D(x))
    assert torch.allclose(generator_logistic_loss(logits), -torch.log(torch.sigmoid(logits)), atol=1e-5)
    fake, real = discriminator_logistic_loss(logits, logits)
    assert torch.allclose(fake, -torch.log(1 - torch.sigmoid(logits)), atol=1e-4)
    assert torch.allclose(real, -torch.log(torch.sigmoid(logits)), atol=1e-5)


def test_r1_equals_gradient_norm_formula_on_a_toy_discriminator():
    # D(x) = <a, x> + 1/2 <b, x^2>  =>  grad_x D = a + b * x  =>  R1 = gamma/2 * ||a + b x||^2
    torch.manual_seed(0)
    a = torch.randn(2, 4, 4, requires_grad=True)
    b = torch.randn(2, 4, 4, requires_grad=True)
    x = torch.randn(5, 2, 4, 4, requires_grad=True)
    logits = ((x * a).sum([1, 2, 3]) + 0.5 * (b * x.square()).sum([1, 2, 3])).unsqueeze(1)
    gamma = 3.7
    pen = r1_penalty(logits, x, gamma)
    expected = gamma / 2 * (a + b * x).square().sum([1, 2, 3])
    assert pen.shape == (5,)
    assert torch.allclose(pen, expected, rtol=1e-5)
    # It is differentiable (create_graph): d/da sum_n R1_n = gamma * sum_n (a + b x_n)
    pen.sum().backward()
    assert torch.allclose(a.grad, gamma * (a + b * x).sum(0).detach(), rtol=1e-4, atol=1e-5)


def test_path_lengths_match_a_direct_jacobian():
    G = tiny_G(res=8, img_channels=2, use_noise=False).eval()
    torch.manual_seed(1)
    ws = G.mapping(torch.randn(3, G.z_dim), None).detach().requires_grad_(True)
    img = G.synthesis(ws, noise_mode="none")
    y = path_length_noise(img, torch.Generator().manual_seed(5))
    assert y.std().item() == pytest.approx(1 / math.sqrt(8 * 8), rel=0.2)  # randn / sqrt(H*W)
    got = path_lengths(img, ws, y)
    for n in range(3):
        J = torch.autograd.functional.jacobian(lambda w: G.synthesis(w[None], noise_mode="none")[0], ws[n].detach())
        # J: [C, H, W, num_ws, w_dim];  J^T y: [num_ws, w_dim]
        jty = torch.einsum("chwij,chw->ij", J, y[n])
        expected = jty.square().sum(1).mean(0).sqrt()
        assert got[n].item() == pytest.approx(expected.item(), rel=1e-4)


def _pl_loss_reference(lengths, pl_mean, decay):
    # NVIDIA's form: a' = lerp(a, mean(l), decay) (not detached); loss = mean((l - a')^2)
    new = pl_mean.lerp(lengths.mean(), decay)
    return (lengths - new).square().mean(), new


def test_path_length_penalty_gradient_and_running_mean():
    torch.manual_seed(0)
    theta = torch.randn(8, requires_grad=True)
    pl_mean = torch.tensor(0.3)
    lengths = theta.square() + 0.1  # any differentiable positive lengths
    pen, new = path_length_penalty(lengths, pl_mean, 0.01)
    ref, ref_new = _pl_loss_reference(theta.square() + 0.1, pl_mean, 0.01)
    assert new.item() == pytest.approx(ref_new.item(), rel=1e-6)
    assert pen.mean().item() == pytest.approx(ref.item(), rel=1e-6)
    g, = torch.autograd.grad(pen.mean(), theta)
    g_ref, = torch.autograd.grad(ref, theta)
    assert torch.allclose(g, g_ref, rtol=1e-5, atol=1e-7)


def test_path_length_penalty_sharded_gradient_equals_full_batch():
    # Two "ranks" with half the batch each and an all-reduced mean reproduce the full-batch gradient.
    torch.manual_seed(0)
    theta = torch.randn(8, requires_grad=True)
    pl_mean = torch.tensor(0.7)
    full_lengths = theta.square() + 0.1
    halves = [full_lengths[0::2], full_lengths[1::2]]

    # Emulate the all-reduce: global means are known in advance.
    m_global = full_lengths.detach().mean()
    new_global = pl_mean.lerp(m_global, 0.01)
    dev_global = (full_lengths.detach() - new_global).mean()
    grads = []
    for half in halves:
        answers = iter([m_global, dev_global])
        pen, new = path_length_penalty(half, pl_mean, 0.01, global_mean=lambda x: next(answers))
        assert new.item() == pytest.approx(new_global.item(), rel=1e-6)
        grads.append(torch.autograd.grad(pen.mean(), theta, retain_graph=True)[0])
    ref, _ = _pl_loss_reference(full_lengths, pl_mean, 0.01)
    g_ref, = torch.autograd.grad(ref, theta)
    assert torch.allclose((grads[0] + grads[1]) / 2, g_ref, rtol=1e-5, atol=1e-7)


def test_style_mixing_cutoff_distribution_and_mixing():
    g = torch.Generator().manual_seed(0)
    num_ws = 6
    cut = style_mixing_cutoff(20000, num_ws, 0.9, g)
    assert cut.min().item() >= 1 and cut.max().item() <= num_ws
    # 10% keep all layers of w1 (cutoff = num_ws); the rest uniform over 1..num_ws-1
    assert (cut == num_ws).float().mean().item() == pytest.approx(0.1, abs=0.01)
    for k in range(1, num_ws):
        assert (cut == k).float().mean().item() == pytest.approx(0.9 / (num_ws - 1), abs=0.01)
    assert (style_mixing_cutoff(10, num_ws, 0.0, g) == num_ws).all()
    ws1, ws2 = torch.zeros(2, num_ws, 3), torch.ones(2, num_ws, 3)
    mixed = mix_styles(ws1, ws2, torch.tensor([2, num_ws]))
    assert mixed[0, :2].eq(0).all() and mixed[0, 2:].eq(1).all() and mixed[1].eq(0).all()


def test_sanitize_gradients():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([float("nan"), float("inf"), -float("inf"), 2.0])
    sanitize_gradients([p])
    assert p.grad.tolist() == [0.0, 1e5, -1e5, 2.0]
