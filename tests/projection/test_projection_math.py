"""The projector's math: schedules, noise regularization, renormalisation, distances, AUC (StyleGAN2 App. D)."""

import math

import numpy as np
import pytest
import torch

from ganforge.projection import schedule as S
from ganforge.projection.attribution import roc_auc
from ganforge.projection.distance import pixel_distance, ssim
from ganforge.projection.noise_reg import noise_regularization, renormalize_noise_


@pytest.mark.parametrize("step", [0, 1, 25, 49, 50, 51, 400, 749, 750, 751, 900, 999])
def test_learning_rate_follows_the_rampup_and_cosine_rampdown(step):
    # App. D: max lr 0.1, linear ramp-up over the first 50 of 1000 steps, cosine ramp-down over the last 250.
    t = step / 1000
    if step < 50:
        want = 0.1 * step / 50
    elif step <= 750:
        want = 0.1
    else:
        want = 0.1 * (1 - math.cos(math.pi * (1000 - step) / 250)) / 2
    assert S.learning_rate(t) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("step", [0, 100, 375, 600, 749, 750, 999])
def test_latent_noise_decays_quadratically_to_zero_at_75_percent(step):
    t, w_std = step / 1000, 2.5
    want = 0.05 * w_std * (1 - step / 750) ** 2 if step < 750 else 0.0
    assert S.latent_noise_scale(t, w_std) == pytest.approx(want, abs=1e-12)


def _direct_penalty(n: np.ndarray) -> float:
    """Sum over pyramid levels (2x2 means down to 8x8) of the squared lag-1 circular autocorrelations,
    by explicit index loops (App. D: n(x,y) n(x-1,y) and n(x,y) n(x,y-1))."""
    total = 0.0
    while True:
        h, w = n.shape
        ax = sum(n[y, x] * n[y, (x - 1) % w] for y in range(h) for x in range(w)) / (h * w)
        ay = sum(n[y, x] * n[(y - 1) % h, x] for y in range(h) for x in range(w)) / (h * w)
        total += ax ** 2 + ay ** 2
        if h <= 8:
            return total
        n = n.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def test_noise_regularization_equals_a_direct_computation_per_target():
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, 4, 4, generator=g), torch.randn(2, 32, 32, generator=g)]
    maps[1][1] = maps[1][1].cumsum(1) / 4  # a correlated map: a large penalty, only for target 1
    reg = noise_regularization(maps)
    for i in range(2):
        want = sum(_direct_penalty(m[i].double().numpy()) for m in maps)
        assert reg[i].item() == pytest.approx(want, rel=1e-4)
    assert reg[1] > 5 * reg[0]


def test_renormalisation_gives_zero_mean_unit_variance_per_target():
    maps = [torch.randn(3, 16, 16) * torch.tensor([0.1, 3.0, 7.0]).view(3, 1, 1) + torch.tensor([5., -2., 0.]).view(3, 1, 1)]
    renormalize_noise_(maps)
    m = maps[0]
    assert torch.allclose(m.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(m.square().mean(dim=(1, 2)), torch.ones(3), atol=1e-5)  # population variance


def test_pixel_distance_is_zero_for_equal_images_and_grows_with_the_difference():
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert torch.allclose(pixel_distance(x, x), torch.zeros(2), atol=1e-5)
    near, far = pixel_distance(x, (x + 0.05).clamp(0, 1)), pixel_distance(x, torch.rand(2, 3, 32, 32))
    assert (near < far).all()


def test_roc_auc_is_the_probability_that_a_real_image_lies_farther():
    rng = np.random.RandomState(0)
    gen, real = rng.rand(30).round(1), rng.rand(25).round(1) + 0.2  # rounded: ties
    direct = np.mean([(r > g) + 0.5 * (r == g) for g in gen for r in real])
    assert roc_auc(gen, real) == pytest.approx(direct, abs=1e-12)
    assert roc_auc([0, 0.1], [1, 2]) == 1.0 and roc_auc([1, 2], [0, 0.1]) == 0.0
