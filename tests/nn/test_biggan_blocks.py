"""BigGAN's building blocks against their equations: spectral norm, self-attention, conditional BN,
truncation-indexed statistics, orthogonal init."""

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.nn.attention import SelfAttention
from ganforge.nn.batchnorm import BatchNorm2d, ConditionalBatchNorm2d, truncation_statistics
from ganforge.nn.init import orthogonal_init_
from ganforge.nn.spectral_norm import SNConv2d, SNEmbedding, SNLinear, power_iteration


def test_spectral_norm_converges_to_the_top_singular_value():
    torch.manual_seed(0)
    conv = SNConv2d(6, 10, kernel_size=3)
    sv = torch.linalg.svdvals(conv.weight.detach().reshape(10, -1))
    x = torch.randn(2, 6, 5, 5)
    conv.train()
    with torch.no_grad():
        for _ in range(200):   # one power iteration per training forward
            conv(x)
    assert conv.sigma.item() == pytest.approx(sv[0].item(), rel=1e-4)
    w_sn = conv.normalized_weight().detach().reshape(10, -1)
    assert torch.linalg.svdvals(w_sn)[0].item() == pytest.approx(1.0, rel=1e-4)
    # The vectors are the top singular pair (up to sign).
    U, S, Vh = torch.linalg.svd(conv.weight.detach().reshape(10, -1))
    assert abs(torch.dot(conv.u, U[:, 0]).item()) == pytest.approx(1.0, abs=1e-4)
    assert abs(torch.dot(conv.v, Vh[0]).item()) == pytest.approx(1.0, abs=1e-4)


def test_one_power_iteration_per_training_forward_and_none_in_eval():
    torch.manual_seed(1)
    lin = SNLinear(7, 5)
    W = lin.weight.detach()
    u0 = lin.u.clone()
    lin.train()
    lin(torch.randn(3, 7))
    v1 = F.normalize(W.t() @ u0, dim=0, eps=1e-12)
    u1 = F.normalize(W @ v1, dim=0, eps=1e-12)
    assert torch.allclose(lin.u, u1, atol=1e-6) and torch.allclose(lin.v, v1, atol=1e-6)
    assert lin.sigma.item() == pytest.approx(torch.dot(u1, W @ v1).item(), rel=1e-6)

    x = torch.randn(3, 7)
    lin.eval()
    before = (lin.u.clone(), lin.v.clone(), lin.sigma.clone())
    y = lin(x)
    assert all(torch.equal(a, b) for a, b in zip(before, (lin.u, lin.v, lin.sigma)))
    sigma = torch.dot(lin.u, W @ lin.v)       # "stored": sigma from the stored vectors
    assert torch.allclose(y, x @ (W / sigma).t() + lin.bias, atol=1e-6)

    lin.sn_eval_mode = "power_step"            # BigGAN-PyTorch: a power step every forward, not stored
    y2 = lin(x)
    u2, v2 = power_iteration(W, lin.u)
    assert torch.allclose(y2, x @ (W / torch.dot(u2, W @ v2)).t() + lin.bias, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, (lin.u, lin.v, lin.sigma)))


def test_spectral_norm_gradient_flows_through_sigma():
    # d/dW of L(W / (u^T W v)) with u, v held constant, against an explicit autograd of the formula.
    torch.manual_seed(2)
    lin = SNLinear(4, 3, bias=False).train()
    x = torch.randn(5, 4)
    lin(x)  # settle one step so the next forward's u, v are known
    u_prev = lin.u.clone()
    lin.weight.grad = None
    lin(x).square().sum().backward()
    W = lin.weight.detach().clone().requires_grad_(True)
    v = F.normalize(W.detach().t() @ u_prev, dim=0)
    u = F.normalize(W.detach() @ v, dim=0)
    (x @ (W / torch.dot(u, W @ v)).t()).square().sum().backward()
    assert torch.allclose(lin.weight.grad, W.grad, atol=1e-5)


def test_sn_embedding_projects_one_hot_rows():
    torch.manual_seed(3)
    emb = SNEmbedding(6, 4).eval()
    c = torch.eye(6)[[1, 4]]
    E = emb.weight.detach()
    sigma = torch.dot(emb.u, E @ emb.v)
    assert torch.allclose(emb(c), E[[1, 4]] / sigma, atol=1e-6)
    assert emb.u.shape == (6,) and emb.v.shape == (4,)


def test_self_attention_is_identity_at_gain_zero_and_matches_the_naive_formula():
    torch.manual_seed(4)
    att = SelfAttention(16).eval()
    x = torch.randn(2, 16, 6, 4)
    assert att.gamma.item() == 0
    assert torch.equal(att(x), x)
    with torch.no_grad():
        att.gamma.fill_(0.7)
    y = att(x)
    # Naive loop over query positions (SAGAN eq. 1-2 with 2x2-pooled keys/values).
    theta = att.theta(x).flatten(2)                       # [N, 2, 24]
    phi = F.max_pool2d(att.phi(x), 2).flatten(2)          # [N, 2, 6]
    g = F.max_pool2d(att.g(x), 2).flatten(2)              # [N, 8, 6]
    o = torch.zeros(2, 8, 24)
    for n in range(2):
        for i in range(24):
            beta = torch.softmax(theta[n, :, i] @ phi[n], dim=0)  # [6]
            o[n, :, i] = g[n] @ beta
    expected = x + 0.7 * att.o(o.reshape(2, 8, 6, 4))
    assert torch.allclose(y, expected, atol=1e-5)


def test_conditional_batch_norm_equals_the_formula():
    torch.manual_seed(5)
    bn = ConditionalBatchNorm2d(4, cond_dim=3, eps=1e-4)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(4))
        bn.running_var.copy_(torch.rand(4) + 0.5)
    x, h = torch.randn(2, 4, 3, 3), torch.randn(2, 3)
    bn.eval()
    gain = 1 + bn.gain(h)
    bias = bn.bias(h)
    expected = ((x - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + 1e-4)
                * gain[:, :, None, None] + bias[:, :, None, None])
    assert torch.allclose(bn(x, h), expected, atol=1e-5)

    # Training: the batch's (biased) moments normalise; running stats move by momentum 0.1 towards
    # the batch mean and the unbiased batch variance.
    bn.train()
    bn.gain.eval(), bn.bias.eval()   # hold the SN vectors still so gain/bias below are the ones used
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    y = bn(x, h)
    mu = x.mean([0, 2, 3])
    var_b = x.var([0, 2, 3], unbiased=False)
    expected = ((x - mu[None, :, None, None]) / torch.sqrt(var_b[None, :, None, None] + 1e-4)
                * (1 + bn.gain(h))[:, :, None, None] + bn.bias(h)[:, :, None, None])
    assert torch.allclose(y, expected, atol=1e-5)
    assert torch.allclose(bn.running_mean, 0.9 * rm + 0.1 * mu, atol=1e-6)
    assert torch.allclose(bn.running_var, 0.9 * rv + 0.1 * x.var([0, 2, 3], unbiased=True), atol=1e-6)


def test_batch_norm_gain_and_bias():
    torch.manual_seed(6)
    bn = BatchNorm2d(3).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 0.5, -1.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = torch.randn(2, 3, 4, 4)
    assert torch.allclose(bn(x), F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                              False, 0.0, bn.eps), atol=1e-6)


def test_truncation_statistics_follow_the_published_arithmetic():
    means = torch.arange(51, dtype=torch.float64)[:, None].repeat(1, 2)
    vars_ = means + 100
    m, v = truncation_statistics(means, vars_, 0.5)                     # 0.5 / 0.02 = 25 exactly
    assert m.tolist() == [25.0, 25.0] and v.tolist() == [125.0, 125.0]
    m, _ = truncation_statistics(means, vars_, 1.0)
    assert m.tolist() == [50.0, 50.0]
    t = 0.33                                                            # 16.5 steps: coef 0.5
    coef, k = math.modf(t / 0.02)
    m, _ = truncation_statistics(means, vars_, t)
    assert m[0].item() == pytest.approx(k * coef + (k + 1) * (1 - coef))
    t = 0.31                                                            # coef weights the lower row
    coef, k = math.modf(t / 0.02)
    m, _ = truncation_statistics(means, vars_, t)
    assert m[0].item() == pytest.approx(15 * coef + 16 * (1 - coef))    # 15.5 steps -> 15*0.5 + 16*0.5
    # float rounding: 0.14 / 0.02 = 7.000000000000001 -> coef ~ 1e-15: almost all of row 8
    m, _ = truncation_statistics(means, vars_, 0.14)
    assert m[0].item() == pytest.approx(8.0, abs=1e-9)
    with pytest.raises(ValueError):
        truncation_statistics(means, vars_, 1.5)


def test_truncation_indexed_batch_norm_selects_rows_in_eval():
    bn = BatchNorm2d(2, n_stats=51, eps=1e-4).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.linspace(0, 1, 51)[:, None].repeat(1, 2))
    x = torch.ones(1, 2, 1, 1)
    assert bn(x, truncation=0.5)[0, :, 0, 0].tolist() == pytest.approx([0.5 / math.sqrt(1 + 1e-4)] * 2)
    assert bn(x, truncation=1.0)[0, :, 0, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_orthogonal_init():
    torch.manual_seed(7)
    net = torch.nn.Sequential(SNConv2d(8, 4, 3), SNLinear(6, 20), SNEmbedding(5, 3))
    orthogonal_init_(net)
    w = net[0].weight.reshape(4, -1)
    assert torch.allclose(w @ w.t(), torch.eye(4), atol=1e-5)      # wide: orthonormal rows
    w = net[1].weight
    assert torch.allclose(w.t() @ w, torch.eye(6), atol=1e-5)      # tall: orthonormal columns
