"""rosinality/stylegan2-pytorch checkpoints: parity with rosinality's code, round trips, safety.

data/rosinality_tiny.pt was written by ganforge's rosinality writer from a 16x16 network built with
random weights by rosinality's model.py (its fixed channel table divided by 64 so the file stays
small; the math is unchanged); data/rosinality_tiny_expected.npz holds what rosinality's own
Generator/Discriminator compute after load_state_dict(strict=True) of that file, CPU float32,
randomize_noise=False, truncation_latent=latent_avg; scripts/reference/rosinality.py regenerates it.
"""

import argparse
import os

import numpy as np
import pytest
import torch

import ganforge
from testkit import tiny_D, tiny_G
from ganforge.errors import FormatError, UsageError
from ganforge.formats import Checkpoint, rosinality

DATA = os.path.join(os.path.dirname(__file__), "data")
TOL = 1e-4  # float32, different summation order; measured ~2e-6


def test_parity_with_rosinality_reference_outputs():
    ck = ganforge.load(os.path.join(DATA, "rosinality_tiny.pt"))
    ref = np.load(os.path.join(DATA, "rosinality_tiny_expected.npz"))
    z, img = torch.from_numpy(ref["z"]), torch.from_numpy(ref["img"])
    G = ck.G_ema
    assert (G.img_resolution, G.z_dim, G.mapping.num_layers) == (16, 8, 2)
    with torch.no_grad():
        for psi in (1.0, 0.5):
            out = G(z, None, truncation_psi=psi, noise_mode="const").numpy()
            assert np.abs(out - ref[f"img_psi{psi}"]).max() <= TOL
        assert np.abs(ck.D(img, None).numpy() - ref["d_logits"]).max() <= TOL


# The smallest widths rosinality's Generator/Discriminator can express: 512 channels up to 32x32.
ROSINALITY_WIDTHS = dict(res=8, channel_base=4096, channel_max=512)


def _checkpoint():
    G, G_ema, D = tiny_G(seed=0, **ROSINALITY_WIDTHS), tiny_G(seed=3, **ROSINALITY_WIDTHS), tiny_D(**ROSINALITY_WIDTHS)
    with torch.no_grad():
        G_ema.mapping.w_avg.normal_()
        for n in (G, G_ema, D):
            for p in n.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    return Checkpoint(G=G, G_ema=G_ema, D=D)


def test_round_trip_native_rosinality_native_is_bit_exact(tmp_path):
    ck = _checkpoint()
    ck.save(tmp_path / "a")
    rosinality.write(ganforge.load(tmp_path / "a"), tmp_path / "b.pt")
    data = torch.load(tmp_path / "b.pt", weights_only=True)
    assert set(data) == {"g", "g_ema", "d", "latent_avg", "g_latent_avg"}
    assert data["g_ema"]["conv1.conv.weight"].shape == (1, 512, 512, 3, 3)
    assert data["g_ema"]["noises.noise_0"].shape == (1, 1, 4, 4)
    assert torch.equal(data["latent_avg"], ck.G_ema.mapping.w_avg)
    ganforge.load(tmp_path / "b.pt").save(tmp_path / "c")
    final = ganforge.load(tmp_path / "c")
    for role in ("G", "G_ema", "D"):
        a, b = getattr(ck, role).state_dict(), getattr(final, role).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), role


def test_training_checkpoint_with_args_and_no_latent_avg(tmp_path):
    ck = _checkpoint()
    rosinality.write(ck, tmp_path / "b.pt")
    data = torch.load(tmp_path / "b.pt", weights_only=True)
    del data["latent_avg"]
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))])
    data.update(args=argparse.Namespace(size=8, channel_multiplier=2), g_optim=opt.state_dict(), ada_aug_p=0.1)
    torch.save(data, tmp_path / "train.pt")
    G = ganforge.load(tmp_path / "train.pt").G_ema
    with torch.no_grad():  # w_avg re-estimated as the mean of mapping(z), as rosinality's scripts do
        w = G.mapping(torch.randn(20000, 16), None)[:, 0]
    assert torch.allclose(G.mapping.w_avg, w.mean(0), atol=0.05)


def test_unrepresentable_networks_are_refused(tmp_path):
    with pytest.raises(UsageError, match="conditional"):
        rosinality.write(Checkpoint(G=tiny_G(c_dim=2), G_ema=None), tmp_path / "x.pt")
    with pytest.raises(UsageError, match="architecture is 'resnet'"):
        rosinality.write(Checkpoint(G=tiny_G(architecture="resnet"), G_ema=None), tmp_path / "x.pt")
    with pytest.raises(UsageError, match="discriminator architecture"):
        rosinality.write(Checkpoint(G=tiny_G(**ROSINALITY_WIDTHS), G_ema=None,
                                    D=tiny_D(architecture="skip", **ROSINALITY_WIDTHS)), tmp_path / "x.pt")
    with pytest.raises(UsageError, match="channel widths .* are not rosinality's"):
        rosinality.write(Checkpoint(G=tiny_G(), G_ema=None), tmp_path / "x.pt")   # 32 channels at 4x4
    with pytest.raises(UsageError, match="discriminator's channel widths"):
        rosinality.write(Checkpoint(G=tiny_G(**ROSINALITY_WIDTHS), G_ema=None, D=tiny_D(res=8)), tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_rosinality_channel_table():
    # rosinality model.py: {4..32: 512, 64: 256*m, 128: 128*m, 256: 64*m, 512: 32*m, 1024: 16*m}
    assert [rosinality.rosinality_channels(r, 2) for r in (4, 32, 64, 256, 1024)] == [512, 512, 512, 128, 32]
    rosinality.need_rosinality_channels(1024, 32768, 512, "generator")   # NVIDIA's config F is m = 2
    rosinality.need_rosinality_channels(256, 16384, 512, "generator")    # m = 1
    with pytest.raises(UsageError):
        rosinality.need_rosinality_channels(256, 16384, 256, "generator")


def test_channel_layout_inference():
    # rosinality's table for channel_multiplier 2 is NVIDIA's channel_base 32768 / channel_max 512
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}
    assert rosinality.channel_layout(table, "x") == (32768, 512)
    with pytest.raises(FormatError, match="do not follow"):
        rosinality.channel_layout({4: 64, 8: 16, 16: 32}, "x")


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def test_malicious_torch_save_is_refused(tmp_path):
    sentinel = tmp_path / "PWNED"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(1)}, "latent_avg": _Evil(sentinel)}, tmp_path / "evil.pt")
    with pytest.raises(FormatError, match="refusing or unable to load evil.pt"):
        ganforge.load(tmp_path / "evil.pt")
    assert not sentinel.exists()
    # the legacy (pre-zip) torch.save layout goes through the same weights-only loader
    torch.save({"g_ema": _Evil(sentinel)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(FormatError, match="refusing or unable to load old.pt"):
        ganforge.load(tmp_path / "old.pt")
    assert not sentinel.exists()


def test_other_torch_files_are_not_rosinality(tmp_path):
    torch.save({"model": torch.zeros(2)}, tmp_path / "m.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(FormatError, match="not a rosinality StyleGAN2 checkpoint"):
        ganforge.load(tmp_path / "m.pt")
    torch.save({"model": torch.zeros(2)}, tmp_path / "z.pt")  # zip archive without g/g_ema: not claimed
    with pytest.raises(FormatError, match="not a checkpoint ganforge can read"):
        ganforge.load(tmp_path / "z.pt")
