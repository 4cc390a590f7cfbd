"""`ganforge edit` end to end on the bundled demo (32 px, 10 classes, w_dim 64, 8 w's), and the mistakes
that must be one line, exit 2, nothing written."""

import os

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from testkit import run_cli, usage_error_in_process
from ganforge.cli import main
from ganforge.editing import edit_ws, ganspace_directions, sefa_directions
from ganforge.models.demo import demo_path
from ganforge.synthesis.generate import seeds_to_ws

BIGGAN = os.path.join(os.path.dirname(__file__), "..", "formats", "data", "biggan_pytorch_tiny")


@pytest.fixture(scope="module")
def demo_G():
    return ganforge.load(demo_path()).G_ema.eval()


def cells(path, rows, cols, res=32):
    fig = np.asarray(Image.open(path)).astype(int)
    assert fig.shape == (rows * res, cols * res)
    return [fig[r * res:(r + 1) * res, c * res:(c + 1) * res] for r in range(rows) for c in range(cols)]


def test_sefa_edit_end_to_end_and_the_edited_ws_replay(tmp_path, demo_G, capsys):
    out = tmp_path / "edit"
    proc = run_cli("edit", "--seeds", "0-1", "--class", "3", "--trunc", "0.7", "--method", "sefa", "--layers", "coarse",
                   "--directions", "0-2", "--strength", "-2:2:3", "--video", "gif", "--frames", "4", "--outdir", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == ["directions.npz", "edit-seed0000.png", "edit-seed0001.png", "edit.gif",
                                       "edited_w.npz"]
    G = demo_G
    d = np.load(out / "directions.npz")
    assert str(d["method"]) == "sefa" and list(d["layers"]) == [0, 1, 2] and list(d["chosen"]) == [0, 1, 2]
    ref_dirs, ref_vals = sefa_directions(G, [0, 1, 2])
    np.testing.assert_allclose(d["directions"], ref_dirs.numpy(), atol=1e-6)
    np.testing.assert_allclose(d["eigenvalues"], ref_vals.numpy(), rtol=1e-6)
    # edited w = w(seed, class 3, psi 0.7) + strength * direction on the coarse layers, in (seed, dir, strength) order
    e = np.load(out / "edited_w.npz")
    assert e["w"].shape == (2 * 3 * 3, G.num_ws, G.w_dim)
    _, ws = seeds_to_ws(G, [0, 1], 3, 0.7)
    expect = torch.cat([edit_ws(ws[s:s + 1], ref_dirs[k], st, [0, 1, 2]) for s in range(2) for k in range(3)
                        for st in (-2.0, 0.0, 2.0)])
    np.testing.assert_allclose(e["w"], expect.numpy(), atol=1e-5)
    # The figure's cells are what `generate --projected-w` renders from the saved w's.
    capsys.readouterr()
    assert main(["generate", "--projected-w", str(out / "edited_w.npz"), "--outdir", str(tmp_path / "gen")]) == 0
    figure_cells = cells(out / "edit-seed0000.png", 3, 3) + cells(out / "edit-seed0001.png", 3, 3)
    for i, cell in enumerate(figure_cells):
        replay = np.asarray(Image.open(tmp_path / "gen" / f"proj{i:02d}.png")).astype(int)
        assert np.array_equal(cell, replay), i
    gif = imageio.mimread(out / "edit.gif")
    assert len(gif) == 3 * 4 and np.asarray(gif[0]).shape[:2] == (32, 64)  # 2 seeds side by side


def test_ganspace_edit_in_standard_deviations_from_projected_ws(tmp_path, demo_G, capsys):
    G = demo_G
    _, ws = seeds_to_ws(G, [5], 1)
    np.savez(tmp_path / "w.npz", w=ws.numpy())
    out = tmp_path / "gs"
    assert main(["edit", "--projected-w", str(tmp_path / "w.npz"), "--method", "ganspace", "--samples", "2000",
                 "--layers", "3-4", "--directions", "1", "--strength", "0:2:2", "--outdir", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["directions.npz", "edit-proj00.png", "edited_w.npz"]
    d = np.load(out / "directions.npz")
    comp, var, mean = ganspace_directions(G, num_samples=2000, seed=1)      # pooled classes: no --class given
    np.testing.assert_allclose(d["directions"], comp.numpy(), atol=1e-5)
    np.testing.assert_allclose(d["explained_variance"], var.numpy(), rtol=1e-5)
    np.testing.assert_allclose(d["scale"], [np.sqrt(var[1].item())], rtol=1e-5)
    e = np.load(out / "edited_w.npz")["w"]
    step = 2 * np.sqrt(var[1].item()) * comp[1].numpy()
    np.testing.assert_allclose(e[1] - ws[0].numpy(), np.where(np.isin(np.arange(8), [3, 4])[:, None], step, 0),
                               atol=1e-5)
    assert cells(out / "edit-proj00.png", 1, 2)[0].shape == (32, 32)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0", "--class", "1", "--strength", "3"], "LO:HI:N"),
    (["--seeds", "0", "--class", "1", "--strength", "a:b:3"], "LO:HI:N"),
    (["--seeds", "0", "--class", "1", "--strength", "-3:3:1"], "2..1000"),
    (["--seeds", "0", "--class", "1", "--strength", "3:-3:5"], "LO must be below HI"),
    (["--seeds", "0", "--class", "1", "--directions", "60-64"], "64 is out of range"),
    (["--seeds", "0", "--class", "1", "--layers", "8"], "8 is out of range"),
    (["--seeds", "0", "--class", "1", "--layers", "fine"], "no fine layers"),
    (["--seeds", "0", "--class", "1", "--layers", "top"], "coarse, middle, fine"),
    (["--seeds", "0"], "pass --class"),
    (["--class", "1"], "--seeds"),
    (["--seeds", "0", "--class", "1", "--samples", "100"], "for --method ganspace"),
    (["--seeds", "0", "--class", "1", "--network", BIGGAN], "style-based"),
])
def test_mistakes_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    err = usage_error_in_process(capsys, "edit", *argv, "--outdir", out)
    assert message in err, err
    assert not out.exists()


def test_projected_w_of_another_network_is_refused(tmp_path, capsys):
    np.savez(tmp_path / "w6.npz", w=np.zeros([1, 6, 64], np.float32))     # a 16-px network's 6 w's
    out = tmp_path / "out"
    err = usage_error_in_process(capsys, "edit", "--projected-w", tmp_path / "w6.npz", "--outdir", out)
    assert "[N, 8, 64]" in err and not out.exists()


def test_an_outdir_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    err = usage_error_in_process(capsys, "edit", "--seeds", "0", "--class", "1", "--outdir", tmp_path / "taken")
    assert "not a directory" in err and (tmp_path / "taken").read_text() == "mine"
