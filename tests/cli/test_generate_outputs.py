"""`ganforge generate` checks the whole request before it computes anything, and writes its outputs
(PNGs, grid.png, latents.npz) all or nothing: never a half-written file under a final name, never a
damaged file from an earlier run. In process (the CLI's `main`) so failures can be simulated."""

import errno
import os
import stat
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from testkit import usage_error_in_process
from ganforge.cli import main
from ganforge.models.latents import class_labels, to_uint8, z_from_seeds
from ganforge.synthesis.images import grid_shape, make_grid

NAMES = ["grid.png", "latents.npz", "seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]


def generate_args(ckpt, outdir, *extra):
    return ["generate", "--network", str(ckpt), "--outdir", str(outdir), *map(str, extra)]


def contents(d):
    """{name: bytes} of everything in d, hidden files included (None if d does not exist)."""
    return {p.name: p.read_bytes() for p in d.iterdir()} if d.exists() else None


def earlier_run(tmp_path):
    """An output directory holding the files of an earlier run (and one foreign file)."""
    d = tmp_path / "earlier"
    d.mkdir()
    (d / "seed0001.png").write_bytes(b"an earlier seed0001.png")
    (d / "latents.npz").write_bytes(b"an earlier latents.npz")
    (d / "notes.txt").write_text("mine")
    return d


# -- the grid rule --------------------------------------------------------------------------------

def test_grid_shape_rule():
    assert grid_shape(4) == (2, 2) and grid_shape(5) == (2, 3) and grid_shape(1) == (1, 1)
    assert grid_shape(10, cols=4) == (3, 4) and grid_shape(10, rows=3) == (3, 4)
    assert grid_shape(4, 2, 3) == (2, 3)  # last row part-filled: fine
    for rows, cols in [(3, 3), (2, 1), (1, 5), (4, 4)]:  # a whole row or column empty, or too few cells
        with pytest.raises(ganforge.UsageError, match=f"--grid {rows}x{cols}"):
            grid_shape(4, rows, cols)
    # make_grid lays out by the same rule: 5 images of 2x3 px -> 2 rows x 3 columns, blank last cell.
    imgs = np.arange(5, dtype=np.uint8)[:, None, None, None].repeat(2, 2).repeat(3, 3) + 1
    grid = make_grid(imgs)
    assert grid.shape == (4, 9) and grid[2, 3] == 5 and grid[3, 8] == 255


# -- everything is checked before anything is written -----------------------------------------------

@pytest.mark.parametrize("grid", ["3x3", "2x1", "1x5"])
def test_grid_mismatch_is_one_error_and_writes_nothing(tiny_checkpoint, tmp_path, capsys, grid):
    # 4 seeds: 3x3 leaves a row empty, 2x1 cannot hold them, 1x5 leaves a column empty.
    new = tmp_path / "new" / "out"
    err = usage_error_in_process(capsys, *generate_args(tiny_checkpoint, new, "--seeds", "0-3", "--class", 1,
                                                        "--grid", grid))
    assert f"--grid {grid}" in err
    assert not (tmp_path / "new").exists()  # not even the output directory
    old = earlier_run(tmp_path)
    before = contents(old)
    usage_error_in_process(capsys, *generate_args(tiny_checkpoint, old, "--seeds", "0-3", "--class", 1,
                                                  "--grid", grid))
    assert contents(old) == before


@pytest.mark.parametrize("extra,fragment", [
    (["--seeds", "0-3", "--class", 10], "out of range"),
    (["--seeds", "0-3", "--class", 1, "--trunc-cutoff", 99], "--trunc-cutoff 99"),
    (["--seeds", "0-3", "--class", 1, "--trunc", "nan"], "finite"),
    (["--seeds", "0-3", "--class", 1, "--batch", 0], "--batch"),
    (["--projected-w", "W", "--seeds", "0-3"], "not both"),
    (["--projected-w", "W", "--class", 1], "drop --class"),
    (["--projected-w", "BAD"], "this network needs"),
])
def test_request_errors_write_nothing(tiny_checkpoint, tmp_path, capsys, extra, fragment):
    np.savez(tmp_path / "w.npz", w=np.zeros([2, 6, 16], np.float32))   # tiny net: 6 ws of 16
    np.savez(tmp_path / "bad.npz", w=np.zeros([2, 3, 5], np.float32))
    extra = [{"W": tmp_path / "w.npz", "BAD": tmp_path / "bad.npz"}.get(a, a) for a in extra]
    new = tmp_path / "new" / "out"
    err = usage_error_in_process(capsys, *generate_args(tiny_checkpoint, new, *extra))
    assert fragment in err
    assert not (tmp_path / "new").exists()


# -- a failure part-way leaves nothing partial -------------------------------------------------------

@pytest.mark.parametrize("failure", ["disk full", "bug"])
def test_failure_while_encoding_leaves_nothing_partial(tiny_checkpoint, tmp_path, capsys, monkeypatch, failure):
    # The third PNG fails half-way through being written: the disk fills, or a bug raises.
    real_save = Image.Image.save
    calls = []

    def failing_save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) < 3:
            return real_save(self, fp, *args, **kwargs)
        if isinstance(fp, (str, os.PathLike)):
            with open(fp, "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n half of a PNG")
        else:
            fp.write(b"\x89PNG\r\n\x1a\n half of a PNG")
        if failure == "disk full":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise RuntimeError("a bug in the encoder")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    for out in (earlier_run(tmp_path), tmp_path / "new" / "out"):
        before = contents(out)
        calls.clear()
        args = generate_args(tiny_checkpoint, out, "--seeds", "0-3", "--class", 1)
        if failure == "disk full":  # the user's disk: one line, exit 2
            err = usage_error_in_process(capsys, *args)
            assert "No space left on device" in err and "nothing was written" in err
        else:  # a bug keeps its traceback
            with pytest.raises(RuntimeError, match="a bug"):
                main(args)
        assert len(calls) == 3
        assert contents(out) == before  # no new, partial or temporary file; the earlier files intact
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("fail_at", [1, 3, 6])  # 4 PNGs, then grid.png (5), then latents.npz (6)
def test_disk_full_at_any_file_leaves_nothing_partial(tiny_checkpoint, tmp_path, capsys, monkeypatch, fail_at):
    real_fsync = os.fsync
    files = []

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            files.append(fd)
            if len(files) == fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = earlier_run(tmp_path)
    before = contents(out)
    err = usage_error_in_process(capsys, *generate_args(tiny_checkpoint, out, "--seeds", "0-3", "--class", 1))
    assert "No space left on device" in err
    if fail_at == 6:
        assert "latents.npz" in err
    assert contents(out) == before


# -- what a successful run leaves ------------------------------------------------------------------

def test_outputs_are_complete_and_replace_an_earlier_run(tiny_checkpoint, tmp_path, capsys):
    out = earlier_run(tmp_path)
    assert main(generate_args(tiny_checkpoint, out, "--seeds", "0-3", "--class", 1, "--trunc", 0.5,
                              "--grid", "2x2")) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES + ["notes.txt"])  # no temporary files left
    assert (out / "notes.txt").read_text() == "mine"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "seed0001.png").stat().st_mode) == 0o666 & ~umask  # an ordinary file
    with zipfile.ZipFile(out / "latents.npz") as z:
        assert z.testzip() is None and sorted(z.namelist()) == ["seeds.npy", "w.npy", "z.npy"]
    G = ganforge.load(tiny_checkpoint).G_ema
    with np.load(out / "latents.npz") as lat:
        assert list(lat["seeds"]) == [0, 1, 2, 3]
        assert np.array_equal(lat["z"], z_from_seeds([0, 1, 2, 3], G.z_dim).numpy())
        w_ref = G.mapping(z_from_seeds([0, 1, 2, 3], G.z_dim), class_labels(1, G.c_dim, 4), truncation_psi=0.5)
        assert np.allclose(lat["w"], w_ref.detach().numpy(), atol=1e-6)
    with torch.no_grad():
        ref = to_uint8(G.synthesis(w_ref, noise_mode="const"))
    assert np.array_equal(np.asarray(Image.open(out / "seed0001.png")), ref[1, 0].numpy())
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape == (32, 32) and np.array_equal(grid[16:, :16], ref[2, 0].numpy())
