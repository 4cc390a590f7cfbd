"""The sampling commands end to end, in a subprocess, as a user runs them."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from testkit import assert_usage_error, run_cli, tiny_G
from ganforge.formats import Checkpoint
from ganforge.models.latents import class_labels, to_uint8, z_from_seeds


def test_generate_writes_pngs_grid_and_latents(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("generate", "--network", tiny_checkpoint, "--seeds", "0-2,7", "--class", "3", "--trunc", "0.7",
                   "--grid", "2x2", "--outdir", out)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png", "latents.npz", "seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    img = np.asarray(Image.open(out / "seed0007.png"))
    assert img.shape == (16, 16) and img.dtype == np.uint8  # greyscale net -> L PNG
    assert np.asarray(Image.open(out / "grid.png")).shape == (32, 32)
    # The PNG is exactly G_ema(z(seed 7), class 3, psi 0.7, const noise).
    G = ganforge.load(tiny_checkpoint).G_ema
    with torch.no_grad():
        ref = to_uint8(G(z_from_seeds([7], 16), class_labels(3, 10, 1), truncation_psi=0.7, noise_mode="const"))
    assert np.array_equal(img, ref[0, 0].numpy())
    lat = np.load(out / "latents.npz")
    assert lat["z"].shape == (4, 16) and lat["w"].shape == (4, G.num_ws, 16)
    assert list(lat["seeds"]) == [0, 1, 2, 7]
    # Regenerate from the saved w's.
    np.savez(tmp_path / "w.npz", w=lat["w"][3:4])
    proc = run_cli("generate", "--network", tiny_checkpoint, "--projected-w", tmp_path / "w.npz",
                   "--outdir", tmp_path / "proj")
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "proj" / "proj00.png")), img)


def test_mix_and_video_and_info(tiny_checkpoint, tmp_path):
    proc = run_cli("mix", "--network", tiny_checkpoint, "--rows", "1,2", "--cols", "3,4,5", "--styles", "0-2",
                   "--class", "1", "--outdir", tmp_path / "mix")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mix" / "2-5.png").exists()
    assert np.asarray(Image.open(tmp_path / "mix" / "grid.png")).shape == (3 * 16, 4 * 16)

    proc = run_cli("video", "--network", tiny_checkpoint, "--seeds", "0-7", "--grid", "2x2", "--frames", "3",
                   "--class", "2", "--out", tmp_path / "loop.gif")
    assert proc.returncode == 0, proc.stderr
    gif = Image.open(tmp_path / "loop.gif")
    assert gif.n_frames == 6 and gif.size == (32, 32)

    proc = run_cli("video", "--network", tiny_checkpoint, "--seeds", "0-3", "--frames", "4", "--class", "2",
                   "--interp", "slerp-z", "--out", tmp_path / "loop.mp4")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "loop.mp4").read_bytes()[4:8] == b"ftyp"

    proc = run_cli("info", tiny_checkpoint, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["resolution"] == "16x16" and info["conditioning"] == "10 classes"
    assert info["G GFLOP per image"] > 0


@pytest.mark.parametrize("args,fragment", [
    (["--seeds", "0-3"], "pass --class 0..9"),
    (["--seeds", "0-3", "--class", "10"], "out of range"),
    (["--seeds", "3-1", "--class", "1"], "runs backwards"),
    (["--seeds", "a-b", "--class", "1"], "not a number"),
    (["--seeds", "0", "--class", "1", "--grid", "3"], "ROWSxCOLS"),
])
def test_generate_user_errors(tiny_checkpoint, tmp_path, args, fragment):
    proc = run_cli("generate", "--network", tiny_checkpoint, "--outdir", tmp_path / "o", *args)
    assert_usage_error(proc, fragment)


def test_network_and_outdir_errors(tmp_path):
    G = tiny_G()
    Checkpoint(G=G, G_ema=None).save(tmp_path / "uncond")
    assert_usage_error(run_cli("generate", "--network", tmp_path / "uncond", "--class", "1", "--outdir", tmp_path),
                       "unconditional", "drop --class")
    assert_usage_error(run_cli("generate", "--network", tmp_path / "missing"), "does not exist")
    (tmp_path / "garbage.pkl").write_bytes(b"not a network at all")
    assert_usage_error(run_cli("generate", "--network", tmp_path / "garbage.pkl"), "garbage.pkl")
    (tmp_path / "file").write_text("x")
    assert_usage_error(run_cli("generate", "--network", tmp_path / "uncond", "--outdir", tmp_path / "file" / "sub"),
                       "output directory")
    assert_usage_error(run_cli("video", "--network", tmp_path / "uncond", "--seeds", "0-2", "--grid", "2x2"),
                       "needs a multiple of 4 seeds")
    assert_usage_error(run_cli("generate", "--bogus-flag"), "unrecognized arguments")
