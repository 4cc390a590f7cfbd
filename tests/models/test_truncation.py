"""BigGAN's truncation trick from seeds (ganforge.models.latents.truncated_z_from_seed[s]) against its
definitions: "resample" is N(0, 1) conditioned on |z_i| <= t (a KS test against truncnorm(-t, t)), and
"scale" is pytorch-pretrained-BigGAN's truncated_noise_sample, bit for bit."""

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.models.latents import (
    RESAMPLE_MIN_THRESHOLD,
    TRUNCATION_MODES,
    truncated_z_from_seed,
    truncated_z_from_seeds,
    z_from_seed,
    z_from_seeds,
)


def _pretrained_biggan_truncated_noise_sample(batch_size=1, dim_z=128, truncation=1.0, seed=None):
    # pytorch-pretrained-BigGAN, pytorch_pretrained_biggan/utils.py, verbatim but for the name.
    state = None if seed is None else np.random.RandomState(seed)
    values = stats.truncnorm.rvs(-2, 2, size=(batch_size, dim_z), random_state=state).astype(np.float32)
    return truncation * values


@pytest.mark.parametrize("mode", TRUNCATION_MODES)
@pytest.mark.parametrize("t", [0.04, 0.3, 1.0, 1.7, 2.0])
def test_no_component_outside_the_threshold(mode, t):
    bound = t if mode == "resample" else 2 * t  # "scale": t * truncnorm(-2, 2)
    z = np.stack([truncated_z_from_seed(s, 128, t, mode) for s in range(200)])
    assert z.shape == (200, 128) and z.dtype == np.float64
    assert np.abs(z).max() <= bound
    assert np.abs(z).max() > 0.9 * bound  # the range is used, not shrunk


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0])
def test_resample_is_the_normal_conditioned_on_the_threshold(t):
    # BigGAN §3.1: redrawing every |z_i| > t until it falls inside gives N(0, 1) restricted to [-t, t].
    # 200k pooled values from fixed seeds; the test is deterministic. Under the hypothesis the p-value is
    # uniform, so p > 1e-3 is a one-in-a-thousand bar for a correct sampler (these seeds give p ~ 0.25-0.32,
    # KS statistic ~ 0.0022). Wrong samplers fail it by far: clipping to [-t, t] instead of redrawing
    # (statistic 0.02-0.3, p < 1e-80), redrawing from uniform(-t, t) (statistic ~ 0.006-0.011, p < 3e-6).
    z = np.concatenate([truncated_z_from_seed(s, 200, t, "resample") for s in range(1000)])
    assert z.size == 200_000
    result = stats.kstest(z, stats.truncnorm(-t, t).cdf)
    assert result.pvalue > 1e-3, result
    assert result.statistic < 0.005, result
    # and not merely symmetric-and-bounded: the untruncated normal is far off
    assert stats.kstest(z, stats.norm.cdf).pvalue < 1e-20


def test_resample_components_are_independent_of_their_neighbours():
    # the redraws take fresh numbers from the stream, so neighbouring components stay uncorrelated
    z = np.stack([truncated_z_from_seed(s, 64, 0.5, "resample") for s in range(2000)])
    r = np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1]
    assert abs(r) < 0.01


@pytest.mark.parametrize("mode", TRUNCATION_MODES)
def test_same_seed_same_z_other_seed_other_z(mode):
    a = truncated_z_from_seed(7, 120, 0.4, mode)
    assert np.array_equal(a, truncated_z_from_seed(7, 120, 0.4, mode))
    assert not np.array_equal(a, truncated_z_from_seed(8, 120, 0.4, mode))
    batch = truncated_z_from_seeds([7, 8, 7], 120, 0.4, mode)
    assert batch.dtype == torch.float32 and batch.shape == (3, 120)
    assert torch.equal(batch[0], torch.from_numpy(a).float()) and torch.equal(batch[0], batch[2])


@pytest.mark.parametrize("seed", [0, 1, 42, 123456, 2 ** 32 - 1])
@pytest.mark.parametrize("t", [0.4, 1.0, 0.123456789])
def test_scale_is_pytorch_pretrained_biggans_truncated_noise_sample_bit_for_bit(seed, t):
    ref = _pretrained_biggan_truncated_noise_sample(batch_size=1, dim_z=128, truncation=t, seed=seed)
    assert ref.dtype == np.float32
    ours = truncated_z_from_seeds([seed], 128, t, "scale")
    assert torch.equal(ours, torch.from_numpy(ref))
    assert np.array_equal(truncated_z_from_seed(seed, 128, t, "scale"), ref[0])


def test_scale_rounds_the_draw_to_float32_before_multiplying():
    # t * float32(x) in float32 differs from float32(t * x) in the last bit for some entries; they do the former
    t = 0.123456789
    x = stats.truncnorm.rvs(-2, 2, size=(1, 4096), random_state=np.random.RandomState(3))[0]
    ours = truncated_z_from_seed(3, 4096, t, "scale")
    assert np.array_equal(ours, np.float32(t) * x.astype(np.float32))
    assert not np.array_equal(ours, (t * x).astype(np.float32))


def test_large_threshold_is_plain_z_from_seed():
    # nothing above t: no redraws, the very numbers of the untruncated z (and the same random stream)
    for seed in (0, 5, 99):
        z = z_from_seed(seed, 512)
        assert np.array_equal(truncated_z_from_seed(seed, 512, np.abs(z).max(), "resample"), z)
        assert np.array_equal(truncated_z_from_seed(seed, 512, 1e6, "resample"), z)
    # one component above t changes only that component: the redraw takes the stream's next number
    z = z_from_seed(0, 16)
    t = np.sort(np.abs(z))[-2]
    i = int(np.argmax(np.abs(z)))
    zt = truncated_z_from_seed(0, 16, t, "resample")
    rs = np.random.RandomState(0)
    rs.randn(16)
    redraws = rs.randn(64)
    expected = z.copy()
    expected[i] = redraws[np.argmax(np.abs(redraws) <= t)]
    assert np.array_equal(zt, expected)


def test_no_truncation():
    assert torch.equal(truncated_z_from_seeds([0, 3], 64, None, "resample"), z_from_seeds([0, 3], 64))
    assert torch.equal(truncated_z_from_seeds([0, 3], 64, None, "scale"),
                       truncated_z_from_seeds([0, 3], 64, 1.0, "scale"))
    assert np.array_equal(truncated_z_from_seed(3, 64, None, "resample"), z_from_seed(3, 64))
    assert truncated_z_from_seeds([], 64, 0.5, "scale").shape == (0, 64)


@pytest.mark.parametrize("mode, t, match", [
    ("resample", 0.0, "finite number >="), ("resample", -1.0, "finite number >="),
    ("resample", RESAMPLE_MIN_THRESHOLD / 2, "finite number >="),
    ("resample", float("inf"), "finite"), ("resample", float("nan"), "finite"),
    ("scale", 0.0, r"\(0, 2\]"), ("scale", 2.5, r"\(0, 2\]"), ("scale", float("nan"), r"\(0, 2\]"),
    ("clip", 0.5, "resample, scale"), ("Resample", 0.5, "resample, scale"),
])
def test_bad_truncation_or_mode(mode, t, match):
    with pytest.raises(ValueError, match=match):
        truncated_z_from_seed(0, 8, t, mode)
    with pytest.raises(ValueError, match=match):
        truncated_z_from_seeds([0], 8, t, mode)
    with pytest.raises(ValueError, match=match):
        truncated_z_from_seeds([], 8, t, mode)  # checked even with no seeds


def test_bad_mode_with_no_truncation_and_bad_seed():
    with pytest.raises(ValueError, match="resample, scale"):
        truncated_z_from_seed(0, 8, None, "none")
    for mode in TRUNCATION_MODES:
        with pytest.raises(ValueError, match="seed"):
            truncated_z_from_seed(-1, 8, 0.5, mode)
        with pytest.raises(ValueError, match="seed"):
            truncated_z_from_seed(2 ** 32, 8, 0.5, mode)
