"""The sampling commands end to end, in a subprocess, as a user runs them."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from testkit import assert_usage_error, run_cli, tiny_G, usage_error_in_process
from ganforge.cli import main
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


def _load_G(path):
    G = ganforge.load(path).G_ema.eval()
    assert (G.img_resolution, G.img_channels, G.c_dim, G.z_dim) == (16, 1, 10, 16)  # the tiny_checkpoint fixture
    return G


@torch.no_grad()
def _images(G, ws):
    """uint8 [N, H, W] (greyscale) of G.synthesis(ws) with const noise, as int for differences."""
    return to_uint8(G.synthesis(ws, noise_mode="const"))[:, 0].numpy().astype(int)


def test_mix_cells_are_synthesis_of_the_mixed_ws(tiny_checkpoint, tmp_path):
    # NVIDIA's style_mixing.py: cell (row r, col c) = synthesis of w(r) with the --styles layers from w(c); the grid
    # has the column seeds' images on top, the row seeds' on the left, a white corner.
    rows, cols, styles = [1, 2], [3, 4, 5], [0, 1, 2]
    proc = run_cli("mix", "--network", tiny_checkpoint, "--rows", "1,2", "--cols", "3,4,5", "--styles", "0-2",
                   "--class", "1", "--outdir", tmp_path / "mix")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "mix"
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{r}-{c}.png" for r in rows for c in cols] + ["grid.png"])
    G = _load_G(tiny_checkpoint)
    seeds = rows + cols
    with torch.no_grad():
        ws = G.mapping(z_from_seeds(seeds, 16), class_labels(1, 10, len(seeds)))
    w_of = dict(zip(seeds, ws))
    plain = dict(zip(seeds, _images(G, ws)))
    grid = np.asarray(Image.open(out / "grid.png")).astype(int)
    assert grid.shape == (3 * 16, 4 * 16)
    assert (grid[:16, :16] == 255).all()
    for j, c in enumerate(cols):
        assert np.abs(grid[:16, (j + 1) * 16:(j + 2) * 16] - plain[c]).max() <= 1, c
    for i, r in enumerate(rows):
        assert np.abs(grid[(i + 1) * 16:(i + 2) * 16, :16] - plain[r]).max() <= 1, r
        for j, c in enumerate(cols):
            mixed = torch.stack([w_of[c][l] if l in styles else w_of[r][l] for l in range(G.num_ws)])
            ref = _images(G, mixed[None])[0]
            cell = np.asarray(Image.open(out / f"{r}-{c}.png")).astype(int)
            assert cell.shape == (16, 16)
            assert np.abs(cell - ref).max() <= 1 and (cell == ref).mean() > 0.98, (r, c)
            assert np.abs(grid[(i + 1) * 16:(i + 2) * 16, (j + 1) * 16:(j + 2) * 16] - ref).max() <= 1, (r, c)
            # The comparison can tell: the unmixed images and the mix the other way round are far off.
            other_way = torch.stack([w_of[r][l] if l in styles else w_of[c][l] for l in range(G.num_ws)])
            for wrong in (plain[r], plain[c], _images(G, other_way[None])[0]):
                assert np.abs(cell - wrong).max() > 8, (r, c)


def _eased(i, frames):
    """The video's schedule, written out: frame i is between keyframes i // frames and the next (mod the count),
    at t = (1 - cos(pi s)) / 2 with s = (i mod frames) / frames (ease in and out, no kink at a keyframe)."""
    s = (i % frames) / frames
    return (1 - np.cos(np.pi * s)) / 2


def _slerp(a, b, t):
    """Independent slerp (Shoemake): sin((1-t) theta)/sin theta u + sin(t theta)/sin theta v, u, v unit."""
    u, v = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    theta = torch.acos((u * v).sum(-1, keepdim=True).clamp(-1, 1))
    return (torch.sin((1 - t) * theta) * u + torch.sin(t * theta) * v) / torch.sin(theta)


@torch.no_grad()
def _video_reference(G, seeds, rows, cols, frames, interp, class_idx):
    """[total, rows*16, cols*16] int: cell j of the grid visits seeds j, j + cells, ... and loops back to seed j."""
    cells = rows * cols
    nkeys = len(seeds) // cells
    z = z_from_seeds(seeds, G.z_dim).reshape(nkeys, cells, G.z_dim)
    c = class_labels(class_idx, G.c_dim, cells)
    w = torch.stack([G.mapping(z[k], c) for k in range(nkeys)])
    out = []
    for i in range(nkeys * frames):
        a = (i // frames) % nkeys
        b = (a + 1) % nkeys
        t = _eased(i, frames)
        if interp == "lerp-w":
            ws = w[a] + t * (w[b] - w[a])
        else:
            ws = G.mapping(_slerp(z[a], z[b], t) * G.z_dim ** 0.5, c)
        imgs = _images(G, ws)
        out.append(np.block([[imgs[r * cols + q] for q in range(cols)] for r in range(rows)]))
    return np.stack(out)


def _gif_frames(path):
    from PIL import ImageSequence

    gif = Image.open(path)
    frames = [np.asarray(f.convert("L")).astype(int) for f in ImageSequence.Iterator(gif)]
    return gif, np.stack(frames)


@pytest.mark.parametrize("interp,seeds,grid,frames", [("lerp-w", "0-7", (2, 2), 3), ("slerp-z", "4-6", (1, 1), 4)])
def test_video_gif_frames_follow_the_interpolation(tiny_checkpoint, tmp_path, interp, seeds, grid, frames):
    # A greyscale network: GIF's 256-entry palette holds every grey level, so the frames come back exactly.
    seed_list = list(range(int(seeds.split("-")[0]), int(seeds.split("-")[1]) + 1))
    proc = run_cli("video", "--network", tiny_checkpoint, "--seeds", seeds, "--grid", f"{grid[0]}x{grid[1]}",
                   "--frames", frames, "--interp", interp, "--fps", 10, "--class", 2, "--out", tmp_path / "loop.gif")
    assert proc.returncode == 0, proc.stderr
    total = len(seed_list) // (grid[0] * grid[1]) * frames
    gif, got = _gif_frames(tmp_path / "loop.gif")
    assert gif.size == (grid[1] * 16, grid[0] * 16) and gif.info.get("loop") == 0
    assert gif.info["duration"] == 100  # --fps 10
    ref = _video_reference(_load_G(tiny_checkpoint), seed_list, grid[0], grid[1], frames, interp, 2)
    assert got.shape == ref.shape == (total, grid[0] * 16, grid[1] * 16)
    for k in range(total):
        assert np.abs(got[k] - ref[k]).max() <= 1 and (got[k] == ref[k]).mean() > 0.98, k
        for wrong in {(k - 1) % total, (k + 1) % total}:  # the neighbouring frames' latents are far off
            assert np.abs(got[k] - ref[wrong]).max() > 4, (k, wrong)


def test_video_mp4_frames_follow_the_interpolation(tiny_checkpoint, tmp_path):
    # H.264 (yuv420p) is lossy (mean error 5-10 levels on these 16x16 frames): each decoded frame must be close to
    # its own latent's image, and clearly closer to it than to any other frame's (2 frames per transition: t = 0, 0.5).
    import imageio.v2 as imageio

    proc = run_cli("video", "--network", tiny_checkpoint, "--seeds", "0-5", "--frames", "2", "--class", "2",
                   "--interp", "slerp-z", "--out", tmp_path / "loop.mp4")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "loop.mp4").read_bytes()[4:8] == b"ftyp"
    got = np.stack([f.astype(int).mean(-1) if f.ndim == 3 else f.astype(int)
                    for f in imageio.mimread(tmp_path / "loop.mp4", format="FFMPEG")])
    ref = _video_reference(_load_G(tiny_checkpoint), list(range(6)), 1, 1, 2, "slerp-z", 2)
    assert got.shape == ref.shape == (12, 16, 16)
    err = np.abs(got[:, None] - ref[None]).mean(axis=(2, 3))  # [decoded frame, reference frame]
    others = np.where(np.eye(12, dtype=bool), np.inf, err).min(1)
    assert (err.diagonal() < 12).all() and (err.diagonal() < 0.7 * others).all(), err.round(1)  # seen: <= 9.5, 0.55


def test_info_of_a_tiny_checkpoint(tiny_checkpoint):
    proc = run_cli("info", tiny_checkpoint, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    G = _load_G(tiny_checkpoint)
    assert info["resolution"] == 16 and info["c_dim"] == 10 and info["num_ws"] == G.num_ws
    assert info["g_parameters"] == sum(p.numel() for p in G.parameters())
    assert info["image_channels"] == 1 and (info["z_dim"], info["w_dim"]) == (16, 16) and info["mapping_layers"] == 2


def test_info_and_class_use_the_class_names_the_checkpoint_stores(tmp_path, capsys):
    # The bundled demo records its dataset's class names (config.json training.class_names).
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["class_names"][3] == "Dress" and len(info["class_names"]) == info["c_dim"] == 10
    assert main(["info"]) == 0
    assert "3 Dress" in capsys.readouterr().out
    for spelling in ("Dress", "dress", "3"):
        assert main(["generate", "--class", spelling, "--seeds", "0", "--outdir", str(tmp_path / spelling)]) == 0
    by_name = np.asarray(Image.open(tmp_path / "Dress" / "seed0000.png"))
    assert (by_name == np.asarray(Image.open(tmp_path / "3" / "seed0000.png"))).all()
    assert (by_name == np.asarray(Image.open(tmp_path / "dress" / "seed0000.png"))).all()
    err = usage_error_in_process(capsys, "generate", "--class", "Dres", "--outdir", tmp_path / "x")
    assert "no class named 'Dres'" in err and "3 'Dress'" in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("args,fragment", [
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
