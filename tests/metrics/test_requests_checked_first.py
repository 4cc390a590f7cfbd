"""`ganforge metrics`: every request is checked before any image is generated or any feature computed
(issue 16: a conditional network on an unlabelled dataset raised `c must be [batch, 10]`, a network of another
resolution `cannot reshape tensor of 0 elements`, and `swd` ran 148 s before "dataset has only 490")."""

import json
import time

import numpy as np
import pytest
from PIL import Image

from ganforge.formats import Checkpoint
from testkit import tiny_G, usage_error_in_process


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "reals"
    d.mkdir()
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, [16, 16], dtype=np.uint8)).save(d / f"{i:02d}.png")
    return d


def _net(tmp_path, name, **kw):
    G = tiny_G(**kw)
    Checkpoint(G=G, G_ema=G).save(tmp_path / name)
    return tmp_path / name


def _metrics(capsys, *args):
    t0 = time.perf_counter()
    err = usage_error_in_process(capsys, "metrics", "--device", "cpu", *args)
    return err, time.perf_counter() - t0


def test_a_conditional_network_on_an_unlabelled_dataset(tmp_path, folder, capsys):
    net = _net(tmp_path, "cond", res=16, img_channels=1, c_dim=10)
    err, _ = _metrics(capsys, "--network", net, "--data", folder, "--metrics", "swd16")
    assert "conditional on 10 classes" in err and "no labels" in err
    (folder / "dataset.json").write_text(json.dumps({"labels": [[f"{i:02d}.png", i % 3] for i in range(20)]}))
    err, _ = _metrics(capsys, "--network", net, "--data", folder, "--metrics", "swd16")
    assert "labels of size 3" in err


@pytest.mark.parametrize("kw,fragment", [(dict(res=32, img_channels=1), "32x32 1-channel"),
                                         (dict(res=16, img_channels=3), "16x16 3-channel")])
def test_a_network_that_does_not_match_the_dataset(tmp_path, folder, capsys, kw, fragment):
    err, _ = _metrics(capsys, "--network", _net(tmp_path, "n", **kw), "--data", folder, "--metrics", "swd16")
    assert fragment in err and "16x16 1-channel ones" in err


def test_swd_on_a_small_dataset_names_the_sized_variant_at_once(tmp_path, folder, capsys):
    net = _net(tmp_path, "n", res=16, img_channels=1)
    err, seconds = _metrics(capsys, "--network", net, "--data", folder, "--metrics", "swd")
    assert "has only 20" in err and "--metrics swd16" in err
    assert seconds < 5, seconds  # refused up front, not after generating 16,384 images


def test_missing_feature_weights_are_found_before_other_metrics_run(tmp_path, folder, capsys, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("GANFORGE_DETECTOR_DIR", str(tmp_path / "no-detectors"))
    net = _net(tmp_path, "n", res=16, img_channels=1)
    err, _ = _metrics(capsys, "--network", net, "--data", folder, "--metrics", "swd16,fid1k",
                      "--cache-dir", tmp_path / "feature-cache")
    assert "inception" in err.lower()
    assert not (tmp_path / "feature-cache").exists()  # SWD's real features were never computed


def test_help_lists_the_sized_variants(capsys):
    from ganforge.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["metrics", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in ("fid2k", "kid500", "swd256", "pr2k3", "fid20k_full"):
        assert name in out
