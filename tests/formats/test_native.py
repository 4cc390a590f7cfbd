import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import ganforge
from testkit import tiny_D, tiny_G
from ganforge.errors import FormatError, UsageError
from ganforge.formats import Checkpoint


def test_round_trip_is_bit_exact(tmp_path):
    G, G_ema, D = tiny_G(c_dim=2, seed=0), tiny_G(c_dim=2, seed=5), tiny_D(c_dim=2)
    G_ema.mapping.w_avg.normal_()
    Checkpoint(G=G, G_ema=G_ema, D=D, config={"training": {"kimg": 12.5}}).save(tmp_path / "ck")
    ck = ganforge.load(tmp_path / "ck")
    for a, b in ((G, ck.G), (G_ema, ck.G_ema), (D, ck.D)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    z, c = torch.randn(2, 16), torch.eye(2)
    with torch.no_grad():
        assert torch.equal(G_ema.eval()(z, c, noise_mode="const"), ck.G_ema(z, c, noise_mode="const"))
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["format"] == "ganforge" and cfg["architecture"] == "stylegan2" and cfg["c_dim"] == 2
    assert cfg["training"] == {"kimg": 12.5}
    assert cfg["G_kwargs"]["synthesis_kwargs"]["channel_base"] == 256
    assert ck.G_ema.mapping.w_avg.abs().sum() > 0
    assert "G_ema.mapping.w_avg" in load_file(tmp_path / "ck" / "model.safetensors")


def test_single_generator_is_stored_once(tmp_path):
    G = tiny_G()
    Checkpoint(G=G, G_ema=G, D=None).save(tmp_path / "one")
    keys = load_file(tmp_path / "one" / "model.safetensors").keys()
    assert not any(k.startswith("G.") for k in keys)
    ck = ganforge.load(tmp_path / "one" / "config.json")  # the config file path works too
    assert ck.G is ck.G_ema and ck.D is None


def test_overwrite_replaces_atomically_and_failed_save_keeps_old(tmp_path, monkeypatch):
    path = tmp_path / "ck"
    Checkpoint(G=tiny_G(seed=0), G_ema=None).save(path)
    first = (path / "model.safetensors").read_bytes()
    import ganforge.formats.native as native

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(native, "save_file", boom)
    with pytest.raises(UsageError, match="No space left"):
        Checkpoint(G=tiny_G(seed=1), G_ema=None).save(path)
    assert (path / "model.safetensors").read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary left behind


def test_mismatched_shapes_and_damaged_files_are_clear_errors(tmp_path):
    path = tmp_path / "ck"
    Checkpoint(G=tiny_G(), G_ema=None).save(path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["G_kwargs"]["synthesis_kwargs"]["channel_max"] = 64
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FormatError, match="do not match the declared architecture"):
        ganforge.load(path)
    (path / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(FormatError, match="damaged"):
        ganforge.load(path)
    (tmp_path / "junk.bin").write_bytes(os.urandom(100))
    with pytest.raises(FormatError, match="not a checkpoint"):
        ganforge.load(tmp_path / "junk.bin")


def test_a_damaged_config_is_named_not_reported_as_an_unknown_format(tmp_path, capsys):
    # A checkpoint directory whose config.json was cut short: the error names that file and the damage.
    from testkit import tiny_G, usage_error_in_process

    from ganforge.formats import Checkpoint

    G = tiny_G(res=8)
    ckpt_dir = tmp_path / "ckpt"
    Checkpoint(G=G, G_ema=G, D=None).save(str(ckpt_dir))
    text = (ckpt_dir / "config.json").read_text()
    (ckpt_dir / "config.json").write_text(text[: len(text) // 2])
    err = usage_error_in_process(capsys, "info", ckpt_dir)
    assert "config.json is unreadable or not JSON" in err and "damaged" in err, err
