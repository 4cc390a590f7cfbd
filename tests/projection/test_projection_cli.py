"""`ganforge project` and `ganforge attribute` end to end (real CLI runs), and their one-line errors."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from testkit import run_cli, usage_error_in_process

BIGGAN = os.path.join(os.path.dirname(__file__), "..", "formats", "data", "biggan_pytorch_tiny")


@pytest.fixture
def env(tmp_path):
    """No LPIPS weights anywhere: the pixel fallback, stated."""
    return {"GANFORGE_CACHE": str(tmp_path / "cache"), "GANFORGE_DETECTOR_DIR": ""}


@pytest.fixture(autouse=True)
def _no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_DETECTOR_DIR", raising=False)


def _rgb(path, size=(24, 20), seed=0):
    Image.fromarray((np.random.RandomState(seed).rand(size[1], size[0], 3) * 255).astype(np.uint8)).save(path)
    return path


def test_project_then_generate_reproduces_proj_png(tiny_checkpoint, tmp_path, env):
    target = _rgb(tmp_path / "t.png")  # RGB, 24x20, for a 1-channel 16x16 network
    out = tmp_path / "out"
    p = run_cli("project", "--network", tiny_checkpoint, "--target", target, "--class", 3, "--steps", 4,
                "--outdir", out, "--device", "cpu", "--save-video", env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].startswith("distance: pixel-mse+msssim (LPIPS weights not found") and "--detector" in lines[0]
    assert "converted RGB to greyscale" in lines[1]
    assert sorted(os.listdir(out)) == ["noise.npz", "proj.mp4", "proj.png", "projected_w.npz", "projection.json",
                                       "target.png"]
    tgt = np.asarray(Image.open(out / "target.png"))
    want = Image.open(target).convert("L").crop((2, 0, 22, 20)).resize((16, 16), Image.LANCZOS)  # NVIDIA's crop
    assert tgt.shape == (16, 16) and np.array_equal(tgt, np.asarray(want))
    w = np.load(out / "projected_w.npz")["w"]
    assert w.shape == (1, 6, 16) and w.dtype == np.float32
    noise = np.load(out / "noise.npz")
    assert "synthesis.b16.conv0.noise_const" in noise and noise["synthesis.b16.conv0.noise_const"].shape == (1, 16, 16)
    info = json.loads((out / "projection.json").read_text())
    assert info["distance_name"] == "pixel-mse+msssim" and len(info["distance"]) == 1 and info["class"] == [3]
    g = run_cli("generate", "--network", tiny_checkpoint, "--projected-w", out / "projected_w.npz", "--outdir",
                tmp_path / "gen", "--device", "cpu", env=env)
    assert g.returncode == 0, g.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "gen" / "proj00.png")), np.asarray(Image.open(out / "proj.png")))


def test_several_targets_are_one_batch_with_numbered_files(tiny_checkpoint, tmp_path, capsys):
    from ganforge.cli import main

    a, b = _rgb(tmp_path / "a.png", seed=1), _rgb(tmp_path / "b.png", (16, 16), seed=2)
    assert main(["project", "--network", str(tiny_checkpoint), "--target", str(a), "--target", str(b), "--class", "1",
                 "--steps", "2", "--space", "w+", "--outdir", str(tmp_path / "o")]) == 0
    files = sorted(os.listdir(tmp_path / "o"))
    assert files == ["noise.npz", "proj00.png", "proj01.png", "projected_w.npz", "projection.json", "target00.png",
                     "target01.png"]
    assert np.load(tmp_path / "o" / "projected_w.npz")["w"].shape == (2, 6, 16)


@pytest.mark.parametrize("case", ["missing", "unreadable", "steps", "no-class", "unconditional-class", "biggan",
                                  "directory"])
def test_mistakes_are_one_line_exit_2_and_write_nothing(case, tiny_checkpoint, tmp_path, capsys):
    good = _rgb(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    net = str(tiny_checkpoint)
    argv, frag = {
        "missing": (["--target", str(tmp_path / "nope.png"), "--class", "1"], "no such file"),
        "unreadable": (["--target", str(bad), "--class", "1"], "not a readable image"),
        "steps": (["--target", str(good), "--class", "1", "--steps", "0"], "--steps 0"),
        "no-class": (["--target", str(good)], "conditional (10 classes); pass --class"),
        "unconditional-class": (["--target", str(good), "--class", "1"], "unconditional"),
        "biggan": (["--target", str(good), "--class", "1"], "style-based"),
        "directory": (["--target", str(tmp_path), "--class", "1"], "is a directory"),
    }[case]
    if case == "unconditional-class":
        from testkit import tiny_G

        from ganforge.formats import Checkpoint

        net = str(tmp_path / "uncond")
        Checkpoint(G=tiny_G(res=16), G_ema=tiny_G(res=16)).save(net)
    if case == "biggan":
        net = BIGGAN
    err = usage_error_in_process(capsys, "project", "--network", net, *argv, "--outdir", out)
    assert frag in err, err
    assert not out.exists()


def test_attribute_calibrates_once_then_reuses(tmp_path, env):
    gen = run_cli("generate", "--seeds", "0", "--class", "0", "--outdir", tmp_path / "g", "--device", "cpu", env=env)
    assert gen.returncode == 0, gen.stderr
    img, rgb = tmp_path / "g" / "seed0000.png", _rgb(tmp_path / "rgb.png")
    p = run_cli("attribute", img, rgb, "--class", 0, "--calibrate", 2, "--steps", 3, "--device", "cpu", env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].startswith("distance: pixel-mse+msssim")
    assert lines[2].startswith("threshold ") and "over 2 generated images (calibrated;" in lines[2]
    assert lines[3].startswith(f"{img}: D ") and "this network (pixel-mse+msssim, class 0)" in lines[3]
    assert lines[4].startswith(f"{rgb}: D ") and len(lines) == 5
    cal = os.path.join(env["GANFORGE_CACHE"], "attribution", "demo.attribution.json")
    assert os.path.isfile(cal)
    again = run_cli("attribute", img, "--class", 0, "--calibrate", 2, "--steps", 3, "--device", "cpu", env=env)
    assert again.returncode == 0 and "(reused;" in again.stdout and lines[2].split(":")[0] in again.stdout


def test_attribute_with_real_images_writes_the_histograms_and_auc(tmp_path, capsys):
    from ganforge.cli import main

    real = tmp_path / "real"
    real.mkdir()
    for i in range(2):
        _rgb(real / f"r{i}.png", (28, 28), seed=i)
    out = tmp_path / "o"
    assert main(["attribute", "--real", str(real), "--calibrate", "2", "--steps", "2", "--class", "0",
                 "--outdir", str(out), "--device", "cpu"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "ROC AUC" in last and "2 generated, 2 real" in last
    data = json.loads((out / "attribution.json").read_text())
    assert len(data["generated"]) == 2 and len(data["real"]) == 2 and 0 <= data["roc_auc"] <= 1
    assert Image.open(out / "attribution_hist.png").size == (640, 400)


def test_attribute_mistakes(tmp_path, capsys):
    assert "give images" in usage_error_in_process(capsys, "attribute")
    assert "no such file" in usage_error_in_process(capsys, "attribute", str(tmp_path / "x.png"))
    assert "--calibrate 0" in usage_error_in_process(capsys, "attribute", "--real", str(tmp_path), "--calibrate", "0")
    img = _rgb(tmp_path / "i.png")
    assert "style-based" in usage_error_in_process(capsys, "attribute", "--network", BIGGAN, str(img))
    (tmp_path / "empty").mkdir()
    assert "no image files" in usage_error_in_process(capsys, "attribute", "--real", str(tmp_path / "empty"))
