"""BigGAN networks through the real CLI: generate (class names, both truncation modes, interpolation
sheets), video, info, export-onnx, and the user mistakes that must be one line, exit 2, nothing written."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from testkit import run_cli
from ganforge.cli import main
from ganforge.models.latents import truncated_z_from_seeds

DATA = os.path.join(os.path.dirname(__file__), "..", "formats", "data")
BP = os.path.join(DATA, "biggan_pytorch_tiny")        # BigGAN 32 px, 10 classes, trained for resample
HF = os.path.join(DATA, "hf_biggan_deep_tiny")       # BigGAN-deep 128 px, 1000 classes, scale + 51 BN rows


def test_generate_by_class_name_uses_scale_truncation_for_pytorch_pretrained_networks(tmp_path):
    out = tmp_path / "out"
    assert main(["generate", "--network", HF, "--class", "golden retriever", "--seeds", "3,4", "--trunc", "0.4",
                 "--outdir", str(out), "--device", "cpu"]) == 0
    lat = np.load(out / "latents.npz")
    assert str(lat["truncation_mode"]) == "scale" and float(lat["truncation"]) == pytest.approx(0.4)
    assert np.array_equal(lat["z"], truncated_z_from_seeds([3, 4], 8, 0.4, "scale").numpy())
    assert lat["c"].argmax(1).tolist() == [207, 207] and lat["c"].sum() == 2
    # The PNG is exactly G(z, c, truncation=0.4) (the truncation also picks the BN statistics).
    G = ganforge.load(HF).G_ema
    with torch.no_grad():
        img = G(torch.from_numpy(lat["z"]), torch.from_numpy(lat["c"]), truncation=0.4)
    expected = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(out / "seed0003.png")), expected)


def test_generate_resample_is_the_default_for_biggan_pytorch_networks(tmp_path):
    out = tmp_path / "out"
    assert main(["generate", "--network", BP, "--class", "3", "--seeds", "0-3", "--trunc", "0.5",
                 "--outdir", str(out)]) == 0
    lat = np.load(out / "latents.npz")
    assert str(lat["truncation_mode"]) == "resample"
    assert np.abs(lat["z"]).max() <= 0.5
    assert np.array_equal(lat["z"], truncated_z_from_seeds([0, 1, 2, 3], 20, 0.5, "resample").numpy())
    assert Image.open(out / "grid.png").size == (64, 64)
    # no --trunc: untruncated z, exactly NVIDIA-style seeds
    out2 = tmp_path / "out2"
    assert main(["generate", "--network", BP, "--class", "3", "--seeds", "0", "--outdir", str(out2)]) == 0
    assert np.array_equal(np.load(out2 / "latents.npz")["z"][0],
                          np.random.RandomState(0).randn(20).astype(np.float32))
    # the other mode on request
    out3 = tmp_path / "out3"
    assert main(["generate", "--network", BP, "--class", "3", "--seeds", "0", "--trunc", "0.5", "--trunc-mode",
                 "scale", "--outdir", str(out3)]) == 0
    assert np.abs(np.load(out3 / "latents.npz")["z"]).max() <= 1.0 + 1e-6


def test_interpolation_sheets(tmp_path):
    out = tmp_path / "sheet"
    assert main(["generate", "--network", BP, "--interp", "class", "--classes", "1,4,7", "--seeds", "0,1",
                 "--interp-steps", "3", "--outdir", str(out)]) == 0
    lat = np.load(out / "interp-class.npz")
    assert Image.open(out / "interp-class.png").size == (5 * 32, 2 * 32)   # 2 segments x 3 steps, shared end
    c = lat["c"][:5]
    assert np.allclose(c[:, [1, 4, 7]], [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]])
    assert np.array_equal(lat["z"][0], lat["z"][4]) and not np.array_equal(lat["z"][0], lat["z"][5])  # z fixed per row
    out = tmp_path / "zsheet"
    assert main(["generate", "--network", BP, "--interp", "lerp-z", "--class", "2", "--seeds", "0,1",
                 "--interp-steps", "5", "--outdir", str(out)]) == 0
    lat = np.load(out / "interp-lerp-z.npz")
    z0, z1 = (truncated_z_from_seeds([s], 20, None, "resample").numpy()[0] for s in (0, 1))
    assert np.allclose(lat["z"][2], 0.5 * z0 + 0.5 * z1, atol=1e-6)
    assert (lat["c"].argmax(1) == 2).all()


def test_class_interpolation_video(tmp_path):
    out = tmp_path / "v.gif"
    r = run_cli("video", "--network", BP, "--interp", "class", "--classes", "1,4,7", "--seeds", "0",
                "--frames", "4", "--out", out)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.size == (32, 32) and im.n_frames >= 2


@pytest.mark.parametrize("argv, message", [
    (["--network", BP, "--class", "10"], "out of range"),
    (["--network", BP, "--class", "dog"], "class names are known only for 1000-class"),
    (["--network", HF, "--class", "golden retreiver"], "nearest names: 207 'golden retriever'"),
    (["--network", HF, "--class", "crane"], "ambiguous"),
    (["--network", BP, "--class", "1", "--trunc", "0"], "outside (0, 2]"),
    (["--network", BP, "--class", "1", "--trunc", "2.5"], "outside (0, 2]"),
    (["--network", BP, "--class", "1", "--trunc", "nan"], "outside (0, 2]"),
    (["--network", HF, "--class", "1", "--trunc", "1.5"], "statistics for truncation values in (0, 1]"),
    (["--network", BP, "--class", "1", "--trunc-cutoff", "2"], "--trunc-cutoff applies to StyleGAN2"),
    (["--network", BP, "--interp", "class", "--classes", "1"], "at least 2 classes"),
])
def test_mistakes_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["generate", *argv, "--seeds", "0", "--outdir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_style_mixing_of_a_biggan_is_refused(tmp_path, capsys):
    assert main(["mix", "--network", BP, "--rows", "1", "--cols", "2", "--outdir", str(tmp_path / "m")]) == 2
    assert "style-based" in capsys.readouterr().err


def test_info_reports_classes_and_truncation(capsys):
    assert main(["info", HF, "--json"]) == 0
    out = capsys.readouterr().out
    info = json.loads(out)
    assert info["architecture"] == "biggan-deep" and info["c_dim"] == 1000 and info["truncation_stat_tables"] == 51
    assert main(["info", BP]) == 0
    out = capsys.readouterr().out
    assert "D parameters" in out and "10 (conditional)" in out and "resample" in out


def test_onnx_export_of_biggan(tmp_path, capsys):
    # BigGAN-PyTorch's network: the per-forward power step of its spectral norm is part of the graph.
    # (The 128-px BigGAN-deep fixture exports too, in 40 s: too slow for the suite.)
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnxscript", reason="onnxscript (torch's ONNX exporter) is not installed")
    assert main(["export-onnx", "--network", BP, "--out", str(tmp_path / "g.onnx")]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out
