"""Rough edges a new user hits (issue 16): defaults on conditional networks, run directories as --network,
class names, typed `info --json`, one rule for output paths, --threads, and one-line errors."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.formats import Checkpoint
from testkit import run_cli, tiny_D, tiny_G, usage_error_in_process


def _G(path):
    import ganforge

    return ganforge.load(path).G_ema


def test_generate_without_class_on_a_conditional_network_makes_one_row_per_class(tiny_checkpoint, tmp_path):
    proc = run_cli("generate", "--network", tiny_checkpoint, "--seeds", "0-2", "--outdir", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "one grid row per class (0..9)" in proc.stderr
    lat = np.load(tmp_path / "o" / "latents.npz")
    assert lat["classes"].tolist() == [k for k in range(10) for _ in range(3)]
    assert lat["seeds"].tolist() == [0, 1, 2] * 10
    grid = np.asarray(Image.open(tmp_path / "o" / "grid.png"))
    assert grid.shape[:2] == (10 * 16, 3 * 16)
    # The cell of class 3, seed 1 is what --class 3 renders for seed 1.
    assert main(["generate", "--network", str(tiny_checkpoint), "--seeds", "1", "--class", "3",
                 "--outdir", str(tmp_path / "k3")]) == 0
    one = np.asarray(Image.open(tmp_path / "k3" / "seed0001.png"))
    assert (np.asarray(Image.open(tmp_path / "o" / "seed0001-class03.png")) == one).all()
    assert (grid[3 * 16:4 * 16, 16:32] == one).all()


def test_mix_and_video_without_class_use_each_seeds_class(tiny_checkpoint, tmp_path, capsys):
    assert main(["mix", "--network", str(tiny_checkpoint), "--rows", "3", "--cols", "14", "--styles", "0-5",
                 "--outdir", str(tmp_path / "m")]) == 0
    assert "seed s uses class s mod 10" in capsys.readouterr().err
    # styles 0-5 = every layer from the column seed: the cell is seed 14 in class 4 (14 mod 10).
    assert main(["generate", "--network", str(tiny_checkpoint), "--seeds", "14", "--class", "4",
                 "--outdir", str(tmp_path / "g")]) == 0
    cell = np.asarray(Image.open(tmp_path / "m" / "3-14.png")).astype(int)
    ref = np.asarray(Image.open(tmp_path / "g" / "seed0014.png")).astype(int)
    assert np.abs(cell - ref).max() <= 1
    assert main(["video", "--network", str(tiny_checkpoint), "--seeds", "0-3", "--grid", "1x2", "--frames", "2",
                 "--out", str(tmp_path / "v.gif")]) == 0
    assert "cell j uses class j mod 10" in capsys.readouterr().err and (tmp_path / "v.gif").stat().st_size > 0


def _run_dir(tmp_path):
    from ganforge.train import rundir

    run = tmp_path / "00000-run"
    run.mkdir()
    rundir.write_options(str(run), {"data": "x", "cond": False, "mirror": False, "seed": 0, "snap": 1, "tick": 1,
                                    "config": {}})
    G1, G2 = tiny_G(res=16, seed=1), tiny_G(res=16, seed=2)
    rundir.write_snapshot(str(run), 4000, Checkpoint(G=G1, G_ema=G1, D=tiny_D(res=16)), {"version": 0})
    rundir.write_snapshot(str(run), 8000, Checkpoint(G=G2, G_ema=G2, D=tiny_D(res=16)), {"version": 0})
    return run, G2


def test_a_training_run_directory_as_network_means_its_latest_snapshot(tmp_path, capsys):
    run, G2 = _run_dir(tmp_path)
    assert main(["generate", "--network", str(run), "--seeds", "0", "--outdir", str(tmp_path / "o")]) == 0
    assert "network-snapshot-000008" in capsys.readouterr().err
    import ganforge

    G = ganforge.load(run).G_ema
    for a, b in zip(G.state_dict().values(), G2.state_dict().values()):
        assert torch.equal(a, b)
    empty = tmp_path / "00001-empty"
    empty.mkdir()
    (empty / "training_options.json").write_text(json.dumps({}))
    err = usage_error_in_process(capsys, "info", empty)
    assert "without a snapshot yet" in err


@pytest.mark.parametrize("fps", ["0", "-5", "1000"])
def test_video_fps_is_checked_before_any_work(tiny_checkpoint, tmp_path, capsys, fps):
    err = usage_error_in_process(capsys, "video", "--network", tiny_checkpoint, "--class", "1", "--fps", fps,
                                 "--out", tmp_path / "new" / "v.mp4")
    assert "--fps" in err and not (tmp_path / "new").exists()


def test_one_output_rule_for_video_export_and_convert(tiny_checkpoint, tmp_path, capsys):
    # Missing folders are created (as --outdir is) ...
    assert main(["video", "--network", str(tiny_checkpoint), "--class", "1", "--seeds", "0-1", "--frames", "1",
                 "--out", str(tmp_path / "a" / "b" / "v.gif")]) == 0
    first = (tmp_path / "a" / "b" / "v.gif").read_bytes()
    # ... an existing output is kept unless --overwrite, and the refusal comes before the network is read.
    for argv in (["video", "--network", "/nonexistent", "--out", tmp_path / "a" / "b" / "v.gif"],
                 ["export-onnx", "--network", "/nonexistent", "--out", tmp_path / "a" / "b" / "v.gif"],
                 ["convert", "/nonexistent", tmp_path / "a" / "b" / "v.gif", "--to", "rosinality"]):
        err = usage_error_in_process(capsys, *argv)
        assert "exists; pass --overwrite" in err, err
    assert (tmp_path / "a" / "b" / "v.gif").read_bytes() == first
    assert main(["video", "--network", str(tiny_checkpoint), "--class", "2", "--seeds", "0-1", "--frames", "1",
                 "--out", str(tmp_path / "a" / "b" / "v.gif"), "--overwrite"]) == 0
    assert (tmp_path / "a" / "b" / "v.gif").read_bytes() != first
    # A non-empty folder for convert's native output is an existing output too; a file in the way is refused.
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    err = usage_error_in_process(capsys, "convert", tiny_checkpoint, tmp_path / "full")
    assert "not empty; pass --overwrite" in err and (tmp_path / "full" / "mine.txt").read_text() == "keep"
    (tmp_path / "file").write_text("x")
    assert "not a folder" in usage_error_in_process(capsys, "video", "--out", tmp_path / "file" / "v.gif")


def test_convert_refusals_name_the_reason(tmp_path, capsys):
    G = tiny_G()
    Checkpoint(G=G, G_ema=G, D=None).save(tmp_path / "noD")
    err = usage_error_in_process(capsys, "convert", tmp_path / "noD", tmp_path / "x.pkl", "--to", "nvidia-pkl")
    assert "no discriminator" in err and "load_network_pkl requires G, D and G_ema" in err
    Checkpoint(G=G, G_ema=G, D=tiny_D()).save(tmp_path / "withD")
    (tmp_path / "networks.py").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" + os.urandom(64))
    err = usage_error_in_process(capsys, "convert", tmp_path / "withD", tmp_path / "x.pkl", "--to", "nvidia-pkl",
                                 "--nvidia-src", tmp_path / "networks.py")
    assert "is not a text file" in err
    assert not (tmp_path / "x.pkl").exists()


def test_default_threads_leave_room_for_the_load_already_on_the_machine():
    from ganforge.cli.common import default_threads

    assert default_threads(cores=16, load=0.1, torch_default=8) == 8      # idle: PyTorch's own default
    assert default_threads(cores=16, load=12.0, torch_default=16) == 4    # busy: what is left
    assert default_threads(cores=2, load=7.0, torch_default=2) == 1       # oversubscribed: one thread


@pytest.mark.parametrize("command", ["generate", "mix", "video", "project", "attribute", "edit", "metrics",
                                     "export-onnx"])
def test_every_compute_command_takes_threads(command, capsys):
    from ganforge.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    assert "--threads N" in capsys.readouterr().out


def test_threads_sets_torchs_thread_count(tiny_checkpoint, tmp_path):
    code = ("import torch, sys; from ganforge.cli import main; rc = main(sys.argv[1:]); "
            "print('threads', torch.get_num_threads())")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code, "generate", "--network", str(tiny_checkpoint), "--class", "1",
                           "--seeds", "0", "--threads", "1", "--outdir", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "threads 1" in proc.stdout, proc.stderr
    err = subprocess.run([sys.executable, "-m", "ganforge", "generate", "--threads", "0"], capture_output=True,
                         text=True, timeout=120).stderr
    assert "--threads 0: give at least 1" in err
