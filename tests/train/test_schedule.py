"""Lazy regularization intervals, the Adam correction, EMA half-life math and the preset table."""

import pytest
import torch

from ganforge.errors import UsageError
from ganforge.train.ema import ema_beta, ema_half_life_nimg, update_ema
from ganforge.train.optim import lazy_regularization_adam, make_adam
from ganforge.train.presets import PRESETS, resolve
from train_helpers import write_dataset


def test_lazy_regularization_adam_correction():
    lr, betas = lazy_regularization_adam(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.002 * 16 / 17)
    assert betas[0] == 0.0 and betas[1] == pytest.approx(0.99 ** (16 / 17))
    lr, betas = lazy_regularization_adam(0.0025, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.002) and betas[1] == pytest.approx(0.99 ** 0.8)
    assert lazy_regularization_adam(0.01, (0.5, 0.9), None) == (0.01, (0.5, 0.9))
    opt = make_adam([torch.nn.Parameter(torch.zeros(1))], 0.0025, 4)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.002)
    assert opt.param_groups[0]["betas"][1] == pytest.approx(0.99 ** 0.8)
    assert opt.param_groups[0]["eps"] == 1e-8


def test_ema_half_life():
    # After ema_nimg images (ema_nimg / batch steps) an old weight keeps exactly half its influence.
    for batch, kimg in [(32, 10), (64, 20), (4, 1.25)]:
        beta = ema_beta(batch, kimg * 1000)
        assert beta ** (kimg * 1000 / batch) == pytest.approx(0.5, rel=1e-9)
    # Rampup: half-life min(ema_kimg * 1000, cur_nimg * rampup); none without rampup.
    assert ema_half_life_nimg(10, 20_000, 0.05) == 1000
    assert ema_half_life_nimg(10, 1_000_000, 0.05) == 10_000
    assert ema_half_life_nimg(10, 0, None) == 10_000
    assert ema_beta(32, ema_half_life_nimg(10, 0, 0.05)) == 0.0  # at the start G_ema = G


def test_update_ema_formula_and_buffers():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    a.register_buffer("w_avg", torch.zeros(2))
    b.register_buffer("w_avg", torch.ones(2))
    old = [p.detach().clone() for p in a.parameters()]
    update_ema(a, b, 0.75)
    for p_ema, p_old, p in zip(a.parameters(), old, b.parameters()):
        assert torch.allclose(p_ema, p.detach() + 0.75 * (p_old - p.detach()), atol=1e-7)
    assert a.w_avg.eq(1).all()  # buffers are copied


def test_auto_preset_matches_nvidia_worked_examples():
    r = resolve("auto", 256, 3, 0, gpus=1)
    assert (r.batch, r.mbstd_group, r.lr, r.ema_kimg) == (16, 4, 0.0025, 5.0)
    assert r.gamma == pytest.approx(0.8192)
    assert r.G_kwargs["synthesis_kwargs"]["channel_base"] == 16384 and r.G_kwargs["mapping_kwargs"]["num_layers"] == 2
    r = resolve("auto", 1024, 3, 0, gpus=1)
    assert (r.batch, r.lr, r.ema_kimg) == (4, 0.002, 1.25) and r.gamma == pytest.approx(52.4288)
    assert r.G_kwargs["synthesis_kwargs"]["channel_base"] == 32768
    r = resolve("auto", 1024, 3, 0, gpus=8)
    assert r.batch == 32 and r.batch_gpu == 4 and r.gamma == pytest.approx(6.5536)


def test_fixed_presets_have_nvidia_numbers():
    r = resolve("stylegan2", 1024, 3, 0, gpus=1)
    assert (r.batch, r.batch_gpu, r.lr, r.gamma, r.ema_kimg, r.ema_rampup) == (32, 4, 0.002, 10.0, 10.0, None)
    assert r.G_kwargs["mapping_kwargs"]["num_layers"] == 8 and r.pl_weight == 2 and r.style_mixing_prob == 0.9
    assert (r.r1_interval, r.pl_interval) == (16, 4)
    r = resolve("paper256", 256, 3, 0)
    assert (r.batch, r.mbstd_group, r.gamma, r.ema_kimg) == (64, 8, 1.0, 20.0)
    r = resolve("cifar", 32, 3, 10)
    assert (r.batch, r.gamma, r.ema_kimg, r.pl_weight, r.style_mixing_prob) == (64, 0.01, 500.0, 0, 0)
    assert r.D_kwargs["architecture"] == "orig" and r.kimg == 100000
    assert set(PRESETS) == {"auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar", "small"}
    with pytest.raises(UsageError, match="256x256"):
        resolve("paper256", 128, 3, 0)
    with pytest.raises(UsageError, match="multiple"):
        resolve("small", 32, 1, 0, gpus=3)


def test_lazy_intervals_in_the_loop(tmp_path):
    # R1 runs on steps 0, 16, 32, ...; path length on 0, 4, 8, ...; main losses every step.
    from ganforge.train.loop import TrainOptions, Trainer

    data = write_dataset(tmp_path / "data", n=16, res=8)
    T = Trainer(TrainOptions(data=data, run_dir=str(tmp_path / "run"), cfg="small", cbase=32, cmax=4, batch=4,
                             workers=0, kimg=1))
    it = iter(T.loader)
    seen = {"pl": [], "r1": []}
    for step in range(17):
        stats = T.train_step(*next(it))
        assert "loss/G" in stats and "loss/D" in stats
        if "loss/pl_penalty" in stats:
            seen["pl"].append(step)
        if "loss/r1_penalty" in stats:
            seen["r1"].append(step)
    assert seen == {"pl": [0, 4, 8, 12, 16], "r1": [0, 16]}
    assert T.cur_nimg == 17 * 4


def test_fused_discriminator_pass_keeps_minibatch_stddev_groups(tmp_path):
    # One D pass over fakes+reals must give the logits of two separate passes (groups stay pure).
    import torch

    from ganforge.train.loop import TrainOptions, Trainer

    data = write_dataset(tmp_path / "data", n=16, res=8)
    T = Trainer(TrainOptions(data=data, cond=True, run_dir=str(tmp_path / "run"), cfg="small", cbase=32, cmax=4,
                             batch=8, workers=0, kimg=1))
    torch.manual_seed(0)
    fake, real = torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8)
    c = T.all_labels[:8]
    T.opts.fused_d_pass = True
    fused = T._run_D_pair(fake, c, real, c.flip(0), sync=True)
    separate = (T.D(fake, c), T.D(real, c.flip(0)))
    for a, b in zip(fused, separate):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    # ... and not those of a pass that mixes fakes and reals in one group.
    mixed = T.D(torch.cat([fake, real]), torch.cat([c, c.flip(0)]))[:8]
    assert not torch.allclose(mixed, separate[0], atol=1e-4)
