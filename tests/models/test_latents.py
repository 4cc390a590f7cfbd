"""Style mixing and slerp (ganforge.models.latents) against their definitions: naive per-layer loops for
mixing, and the geometry of the great circle (endpoints, unit norm, angles, plane) for slerp."""

import math

import pytest
import torch

from ganforge.models.latents import cutoff_mask, layer_mask, mix_styles, slerp


def _ws(seed, n=5, num_ws=8, w_dim=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn([n, num_ws, w_dim], generator=g, dtype=torch.float64)


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def _angle(x, y):
    return torch.acos((_unit(x) * _unit(y)).sum(dim=-1).clamp(-1, 1))


# -- style mixing ---------------------------------------------------------------------------------------

def test_cutoff_mixing_takes_layers_from_the_cutoff_on_from_the_second_latent():
    # StyleGAN §3.1 mixing regularization: layers [0, cutoff[n]) from ws_a, [cutoff[n], num_ws) from ws_b.
    ws_a, ws_b = _ws(0), _ws(1)
    cutoff = torch.tensor([0, 1, 4, 7, 8])
    mixed = mix_styles(ws_a, ws_b, cutoff)
    for n in range(5):
        for layer in range(8):
            src = ws_b if layer >= int(cutoff[n]) else ws_a
            assert torch.equal(mixed[n, layer], src[n, layer])


def test_layer_set_mixing_takes_exactly_the_listed_layers_from_the_second_latent():
    ws_a, ws_b = _ws(2), _ws(3)
    layers = [0, 3, 6]
    mixed = mix_styles(ws_a, ws_b, layers)
    for layer in range(8):
        src = ws_b if layer in layers else ws_a
        assert torch.equal(mixed[:, layer], src[:, layer])
    assert torch.equal(mix_styles(ws_a, ws_b, []), ws_a)
    assert torch.equal(mix_styles(ws_a, ws_b, range(8)), ws_b)


def test_the_three_forms_of_the_layer_choice_agree():
    ws_a, ws_b = _ws(4), _ws(5)
    # A cutoff c for every sample is the layer set {c, ..., num_ws - 1}; the masks are what both build.
    assert torch.equal(mix_styles(ws_a, ws_b, torch.full([5], 3)), mix_styles(ws_a, ws_b, [3, 4, 5, 6, 7]))
    assert torch.equal(cutoff_mask(3, 8), layer_mask(range(3, 8), 8))
    mask = torch.rand([5, 8], generator=torch.Generator().manual_seed(6)) < 0.5
    mixed = mix_styles(ws_a, ws_b, mask)
    assert torch.equal(mixed, torch.where(mask[:, :, None], ws_b, ws_a))
    assert cutoff_mask(torch.tensor([2, 5]), 8).shape == (2, 8) and layer_mask([1], 8).shape == (1, 8)


def test_mixing_sends_gradients_only_to_the_entries_it_takes():
    ws_a, ws_b = _ws(7).requires_grad_(), _ws(8).requires_grad_()
    cutoff = torch.tensor([2, 8, 0, 5, 1])
    mix_styles(ws_a, ws_b, cutoff).sum().backward()
    take_b = (torch.arange(8)[None, :] >= cutoff[:, None])[:, :, None].expand_as(ws_a)
    assert torch.equal(ws_b.grad, take_b.double()) and torch.equal(ws_a.grad, (~take_b).double())


def test_mixing_rejects_a_bare_int_and_float_tensors():
    ws = _ws(9)
    with pytest.raises(TypeError, match="cutoff_mask"):
        mix_styles(ws, ws, 3)
    with pytest.raises(TypeError):
        mix_styles(ws, ws, torch.tensor([1.0, 2.0]))


def test_training_and_synthesis_use_the_one_mix_styles():
    from ganforge.synthesis import mixing
    from ganforge.train import loss

    assert loss.mix_styles is mix_styles and mixing.mix_styles is mix_styles


# -- slerp -----------------------------------------------------------------------------------------------

def _pairs(seed, n=64, d=16):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn([n, d], generator=g, dtype=torch.float64) * 3
    b = torch.randn([n, d], generator=g, dtype=torch.float64) * 0.5
    t = torch.rand([n, 1], generator=g, dtype=torch.float64)
    return a, b, t


def test_slerp_endpoints_are_the_input_directions():
    a, b, _ = _pairs(0)
    assert torch.allclose(slerp(a, b, 0.0), _unit(a), atol=1e-12)
    assert torch.allclose(slerp(a, b, 1.0), _unit(b), atol=1e-12)


def test_slerp_is_a_unit_vector_at_angle_t_theta_from_a_and_1_minus_t_theta_from_b():
    a, b, t = _pairs(1)
    s = slerp(a, b, t)
    theta = _angle(a, b)
    assert torch.allclose(s.norm(dim=-1), torch.ones(64, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(_angle(a, s), t[:, 0] * theta, atol=1e-7)
    assert torch.allclose(_angle(s, b), (1 - t[:, 0]) * theta, atol=1e-7)


def test_slerp_stays_in_the_plane_of_a_and_b_and_ignores_their_norms():
    a, b, t = _pairs(2)
    s = slerp(a, b, t)
    basis, _ = torch.linalg.qr(torch.stack([a, b], dim=2))           # [N, d, 2], orthonormal span{a, b}
    in_plane = (basis @ (basis.transpose(1, 2) @ s[:, :, None]))[:, :, 0]
    assert torch.allclose(in_plane, s, atol=1e-12)
    assert torch.allclose(slerp(7 * a, 0.1 * b, t), s, atol=1e-12)


def test_slerp_midpoint_of_orthogonal_vectors_is_their_normalised_sum():
    a = torch.tensor([[2.0, 0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0, 5.0]], dtype=torch.float64)
    expected = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64) / math.sqrt(2)
    assert torch.allclose(slerp(a, b, 0.5), expected, atol=1e-15)


def test_slerp_of_parallel_inputs_is_their_direction_not_nan():
    a, _, t = _pairs(3)
    s = slerp(a, 2 * a, t)
    assert torch.isfinite(s).all() and torch.allclose(s, _unit(a), atol=1e-6)


def test_ppl_and_the_video_loop_use_the_one_slerp():
    from ganforge.metrics import ppl
    from ganforge.synthesis import interpolate

    assert ppl.slerp is slerp and interpolate.slerp is slerp
