"""BigGAN checkpoints of the two published layouts: parity with the reference code, strictness, safety.

The fixtures in data/ were written by the references' own code (scripts/reference/hf_biggan.py and
biggan_pytorch.py, which say exactly what was built and computed): random-weight networks saved the
way pytorch-pretrained-BigGAN publishes its files (config.json + legacy-format pytorch_model.bin) and
the way BigGAN-PyTorch's utils.save_weights writes a run (G.pth, G_ema.pth, D.pth, state_dict.pth),
and the *_expected.npz outputs their code computes from those files in eval mode, float32 on CPU.
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch

import ganforge
from testkit import run_cli
from ganforge.errors import FormatError
from ganforge.formats import biggan_pytorch, hf_biggan

DATA = os.path.join(os.path.dirname(__file__), "data")
HF = os.path.join(DATA, "hf_biggan_deep_tiny")
BP = os.path.join(DATA, "biggan_pytorch_tiny")
BP_DEEP = os.path.join(DATA, "biggan_deep_pytorch_tiny")
TOL = 1e-4  # float32 with another summation order; measured 1.2e-6 (HF), 3.8e-6 (D logits of size ~20)
TRUNCATIONS = ("0.4", "0.5", "1.0", "0.33", "0.345", "0.14")


def _max_diff(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.abs(a.detach().numpy() - b).max())


def test_pytorch_pretrained_biggan_parity_at_every_truncation():
    ck = ganforge.load(HF)
    ref = np.load(os.path.join(HF + "_expected.npz"))
    G = ck.G_ema
    assert ck.architecture == "biggan-deep" and ck.D is None
    assert (G.img_resolution, G.z_dim, G.c_dim, G.truncation_mode) == (128, 8, 1000, "scale")
    c = torch.from_numpy(ref["one_hot"])
    with torch.no_grad():
        for t in TRUNCATIONS:   # 0.345 sits between rows (their swapped weights); 0.14 is the rounding quirk
            out = G(torch.from_numpy(ref[f"z_t{t}"]), c, truncation=float(t))
            assert _max_diff(out, ref[f"img_t{t}"]) <= TOL, t
        mix = G(torch.from_numpy(ref["z_t0.5"]), torch.from_numpy(ref["class_mix"]), truncation=0.5)
        assert _max_diff(mix, ref["img_mix_t0.5"]) <= TOL
        # the truncation value matters: other statistics give other images
        assert _max_diff(G(torch.from_numpy(ref["z_t0.5"]), c, truncation=0.4), ref["img_t0.5"]) > 1e-2


def test_pytorch_pretrained_biggan_seeds_match_their_truncated_noise_sample():
    from ganforge.models.latents import truncated_z_from_seeds

    ref = np.load(os.path.join(HF + "_expected.npz"))
    for s in range(3):
        z = truncated_z_from_seeds([s], 8, 0.5, "scale").numpy()
        assert np.array_equal(z, ref[f"trunc_noise_seed{s}_t0.5"])


@pytest.mark.parametrize("name", ["biggan_pytorch_tiny", "biggan_deep_pytorch_tiny"])
def test_biggan_pytorch_parity_of_G_G_ema_and_D(name):
    ck = ganforge.load(os.path.join(DATA, name))
    ref = np.load(os.path.join(DATA, name + "_expected.npz"))
    assert ck.architecture == ("biggan" if name == "biggan_pytorch_tiny" else "biggan-deep")
    assert ck.G is not ck.G_ema and ck.D is not None
    z = torch.from_numpy(ref["z"])
    c = torch.nn.functional.one_hot(torch.from_numpy(ref["y"]), ck.G.c_dim).float()
    with torch.no_grad():
        assert _max_diff(ck.G_ema(z, c), ref["img_G_ema"]) <= TOL
        assert _max_diff(ck.G(z, c), ref["img_G"]) <= TOL
        assert _max_diff(ck.D(torch.from_numpy(ref["img_in"]), c), ref["d_logits"]) <= TOL
        assert _max_diff(ck.D(torch.from_numpy(ref["img_G_ema"]), c), ref["d_logits_fake"]) <= TOL
    # BigGAN-PyTorch's spectral norm takes a power step on every forward, eval included; stored vectors
    # alone would give other outputs, so the import must keep that behaviour.
    assert ck.G_ema.init_kwargs["sn_eval_mode"] == "power_step"


def test_every_file_of_a_layout_finds_the_same_network():
    ref = ganforge.load(HF).G_ema.state_dict()
    for p in (os.path.join(HF, "config.json"), os.path.join(HF, "pytorch_model.bin")):
        sd = ganforge.load(p).G_ema.state_dict()
        assert all(torch.equal(sd[k], ref[k]) for k in ref)
    ref = ganforge.load(BP).D.state_dict()
    for f in ("G.pth", "D.pth", "state_dict.pth"):
        sd = ganforge.load(os.path.join(BP, f)).D.state_dict()
        assert all(torch.equal(sd[k], ref[k]) for k in ref)


def test_zip_format_pytorch_model_bin_loads_too(tmp_path):
    d = tmp_path / "hf"
    shutil.copytree(HF, d)
    state = torch.load(d / "pytorch_model.bin", weights_only=True)
    torch.save(state, d / "pytorch_model.bin")  # the newer zip format
    a, b = ganforge.load(HF).G_ema.state_dict(), ganforge.load(d).G_ema.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pytorch_model_bin_without_config_is_one_line_exit_2(tmp_path):
    shutil.copy(os.path.join(HF, "pytorch_model.bin"), tmp_path / "pytorch_model.bin")
    with pytest.raises(FormatError, match="config.json is missing"):
        ganforge.load(tmp_path / "pytorch_model.bin")
    r = run_cli("info", tmp_path / "pytorch_model.bin")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "config.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _hf_copy(tmp_path, edit):
    d = tmp_path / "hf"
    shutil.copytree(HF, d)
    state = torch.load(d / "pytorch_model.bin", weights_only=True)
    edit(state)
    torch.save(state, d / "pytorch_model.bin")
    return d


def test_missing_extra_or_misshapen_tensors_are_named(tmp_path):
    d = _hf_copy(tmp_path / "a", lambda s: s.pop("generator.layers.3.bn_2.scale.weight_orig"))
    with pytest.raises(FormatError, match=r"missing tensor generator\.layers\.3\.bn_2\.scale\.weight_orig"):
        ganforge.load(d)
    d = _hf_copy(tmp_path / "b", lambda s: s.__setitem__("generator.extra.weight", torch.zeros(2)))
    with pytest.raises(FormatError, match=r"unexpected tensor generator\.extra\.weight"):
        ganforge.load(d)
    d = _hf_copy(tmp_path / "c", lambda s: s.__setitem__("generator.layers.0.conv_1.bias", torch.zeros(5)))
    with pytest.raises(FormatError, match=r"generator\.layers\.0\.conv_1\.bias \(as blocks\.0\.conv2\.bias \[5\] != \[16\]\)"):
        ganforge.load(d)


def test_a_layers_list_ganforge_cannot_express_is_refused(tmp_path):
    d = tmp_path / "hf"
    shutil.copytree(HF, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["layers"][0] = [True, 16, 16]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FormatError, match="are not BigGAN-deep's 128-px layout"):
        ganforge.load(d)


def test_biggan_pytorch_run_config_is_read_without_the_real_relu():
    run = biggan_pytorch.read_run_config(BP)
    act = run["config"]["G_activation"]
    assert type(act) is biggan_pytorch._InertModule and not isinstance(act, torch.nn.Module)
    assert act.state["inplace"] is True
    with pytest.raises(Exception, match="ReLU"):
        torch.load(os.path.join(BP, "state_dict.pth"), weights_only=True)   # why a stand-in is needed


def test_biggan_pytorch_without_state_dict_or_with_a_wrong_tensor(tmp_path):
    d = tmp_path / "run"
    shutil.copytree(BP, d)
    os.remove(d / "state_dict.pth")
    with pytest.raises(FormatError, match="no state_dict.pth"):
        ganforge.load(d)
    shutil.copy(os.path.join(BP, "state_dict.pth"), d / "state_dict.pth")
    sd = torch.load(d / "D.pth", weights_only=True)
    sd["blocks.1.0.conv2.weight"] = sd["blocks.1.0.conv2.weight"][:, :3]
    torch.save(sd, d / "D.pth")
    with pytest.raises(FormatError, match=r"D\.pth.*blocks\.1\.0\.conv2\.weight \(as blocks\.1\.conv2\.weight"):
        ganforge.load(d)


def test_the_readers_claim_their_layouts_only():
    assert hf_biggan.sniff(HF) and not biggan_pytorch.sniff(HF)
    assert biggan_pytorch.sniff(BP) and not hf_biggan.sniff(BP)
    assert biggan_pytorch.sniff(os.path.join(BP_DEEP, "G_ema.pth"))
    assert not hf_biggan.sniff(os.path.join(DATA, "rosinality_tiny.pt"))
    assert not biggan_pytorch.sniff(os.path.join(DATA, "rosinality_tiny.pt"))


@pytest.mark.parametrize("src", [HF, BP])
def test_convert_to_native_keeps_the_outputs(tmp_path, src):
    out = tmp_path / "native"
    r = run_cli("convert", src, out)
    assert r.returncode == 0, r.stderr
    a, b = ganforge.load(src), ganforge.load(out)
    assert b.config["architecture"] == a.architecture
    z = torch.randn(2, a.G_ema.z_dim)
    c = torch.eye(a.G_ema.c_dim)[[1, 7]]
    with torch.no_grad():
        assert torch.equal(a.G_ema(z, c, truncation=0.5), b.G_ema(z, c, truncation=0.5))
        if a.D is not None:
            img = torch.rand(2, 3, a.G_ema.img_resolution, a.G_ema.img_resolution) * 2 - 1
            assert torch.equal(a.D(img, c), b.D(img, c))
    assert b.G_ema.init_kwargs == a.G_ema.init_kwargs
    r = run_cli("convert", src, tmp_path / "x.pkl", "--to", "nvidia-pkl")
    assert r.returncode == 2 and "StyleGAN2" in r.stderr and not (tmp_path / "x.pkl").exists()
