"""ADA inside the training loop: what D sees, how p follows the real logits, and the option rules."""

import pytest
import torch

from testkit import assert_usage_error, run_cli
from train_helpers import TINY, write_dataset


def _trainer(tmp_path, **kw):
    from ganforge.train.loop import TrainOptions, Trainer

    data = write_dataset(tmp_path / "data", n=16, res=16)
    return Trainer(TrainOptions(data=data, run_dir=str(tmp_path / "run"), cfg="small", cbase=64, cmax=8, batch=4,
                                workers=0, threads=1, kimg=1, **kw))


def _record_d_inputs(T):
    seen = []
    T.D.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    return seen


def test_d_sees_augmented_reals_and_fakes_and_r1_is_on_the_plain_reals(tmp_path):
    T = _trainer(tmp_path, aug="fixed", p=1.0, augpipe="noise")
    seen = _record_d_inputs(T)
    real, c = next(iter(T.loader))
    plain = real.to(torch.float32) / 127.5 - 1
    grads = []
    orig = T.augment_pipe.forward
    T.augment_pipe.forward = lambda x: (grads.append(x.requires_grad), orig(x))[1]
    T.train_step(real, c)  # step 0: Gmain, Greg, Dmain, Dreg
    # D passes: Gmain fakes, Dmain fakes, Dmain reals, Dreg reals; every one went through the pipe.
    assert len(seen) == 4 and len(grads) == 4
    for x in (seen[2], seen[3]):
        assert x.shape == plain.shape and not torch.allclose(x, plain, atol=1e-3)  # noise was added
    # The reals given to R1 require grad before augmentation: the penalty is w.r.t. the plain images.
    assert grads == [True, False, False, True]

    T2 = _trainer(tmp_path / "noaug", aug="noaug")
    seen2 = _record_d_inputs(T2)
    T2.train_step(real, c)
    assert T2.augment_pipe is None and torch.equal(seen2[2], plain)


def test_p_follows_the_sign_of_the_real_logits(tmp_path):
    T = _trainer(tmp_path, aug="ada", target=0.6, ada_kimg=0.5)
    assert T.augment_p == 0.0 and T.ada.kimg == 0.5 and T.ada.target == 0.6
    logits = []
    orig = T.ada.accumulate
    T.ada.accumulate = lambda x: (logits.append(x.detach().clone()), orig(x))[1]
    it = iter(T.loader)
    for _ in range(3):
        T.train_step(*next(it))
    assert T.augment_p == 0.0  # no adjustment before ada.interval (4) minibatches
    T.train_step(*next(it))
    r_t = torch.cat([x.flatten() for x in logits]).sign().mean().item()
    assert len(logits) == 4 + 1  # Dmain x 4 and the R1 pass of step 0
    step = 4 * 4 / (0.5 * 1000)  # batch * interval / (ada_kimg * 1000)
    assert T.augment_p == pytest.approx(max(0.0, step if r_t > 0.6 else -step), abs=1e-7)


def test_ada_is_the_default_and_fixed_p_is_constant(tmp_path):
    T = _trainer(tmp_path)
    # NVIDIA's defaults (paper §3): target 0.6, p adjusted every 4 minibatches, 0 -> 1 in 500 kimg.
    assert T.cfg.aug == "ada" and T.cfg.augpipe == "bgc" and T.cfg.ada_kimg == 500 and T.ada is not None
    assert T.ada.target == 0.6 and T.ada.interval == 4 and T.ada.kimg == 500 and T.augment_p == 0.0
    F = _trainer(tmp_path / "f", aug="fixed", p=0.25)
    it = iter(F.loader)
    for _ in range(5):
        F.train_step(*next(it))
    assert F.ada is None and F.augment_p == 0.25


@pytest.mark.parametrize("kw, message", [
    (dict(aug="fixed"), "--aug fixed needs --p"),
    (dict(p=0.3), "--p can only be given with --aug fixed"),
    (dict(aug="fixed", p=1.5), "--p must be between 0 and 1"),
    (dict(aug="noaug", target=0.5), "--target can only be given with --aug ada"),
    (dict(target=1.2), "--target must be between 0 and 1"),
    (dict(aug="noaug", augpipe="bgc"), "--augpipe cannot be given with --aug noaug"),
    (dict(augpipe="bogus"), "unknown --augpipe 'bogus'"),
    (dict(aug="fixed", p=0.5, ada_kimg=10), "--ada-kimg can only be given with --aug ada"),
])
def test_augmentation_option_rules(kw, message):
    from ganforge.errors import UsageError
    from ganforge.train.presets import resolve_augment

    args = dict(aug=None, p=None, target=None, augpipe=None) | kw
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        resolve_augment(**args)
    assert resolve_augment(None, None, None, None, finetune=True)["ada_kimg"] == 100  # NVIDIA's transfer speed


def test_augmentation_option_error_from_the_cli(tmp_path):
    data = write_dataset(tmp_path / "data", n=8, res=16)
    proc = run_cli("train", "--data", data, "--run-dir", tmp_path / "run", *TINY, "--aug", "fixed")
    assert_usage_error(proc, "--aug fixed needs --p")
    assert not (tmp_path / "run").exists()
