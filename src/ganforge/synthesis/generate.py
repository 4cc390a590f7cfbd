"""Images from seeds (or from saved w's): PNG per image, a grid, and the latents."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.models.latents import class_labels, to_uint8, z_from_seeds
from ganforge.synthesis.images import make_grid, prepare_outdir, save_png, to_hwc


def check_class(G, class_idx: int | None) -> None:
    """Conditional networks need a class, unconditional ones refuse one (one clear line either way)."""
    if G.c_dim == 0 and class_idx is not None:
        raise UsageError("this network is unconditional (c_dim=0); drop --class")
    if G.c_dim > 0 and class_idx is None:
        raise UsageError(f"this network is conditional on {G.c_dim} classes; pass --class 0..{G.c_dim - 1}")
    if G.c_dim > 0 and not 0 <= class_idx < G.c_dim:
        raise UsageError(f"--class {class_idx} is out of range; this network has classes 0..{G.c_dim - 1}")


@torch.no_grad()
def seeds_to_ws(G, seeds: Sequence[int], class_idx: int | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(z [N, z_dim], ws [N, num_ws, w_dim]) for the seeds, on G's device."""
    device = next(G.parameters()).device
    z = z_from_seeds(seeds, G.z_dim).to(device)
    ws = []
    for i in range(0, len(seeds), batch_size):
        zb = z[i:i + batch_size]
        c = class_labels(class_idx, G.c_dim, len(zb)).to(device)
        ws.append(G.mapping(zb, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff))
    return z, torch.cat(ws) if ws else torch.zeros([0, G.num_ws, G.w_dim], device=device)


@torch.no_grad()
def synthesize(G, ws: torch.Tensor, noise_mode: str = "const", batch_size: int = 16, progress=None) -> torch.Tensor:
    """uint8 images [N, C, H, W] (on the CPU) from ws [N, num_ws, w_dim]."""
    out = []
    for i in range(0, len(ws), batch_size):
        out.append(to_uint8(G.synthesis(ws[i:i + batch_size], noise_mode=noise_mode)).cpu())
        if progress is not None:
            progress.update(len(out[-1]))
    return torch.cat(out)


def load_projected_w(path: str, G) -> torch.Tensor:
    """ws from an .npz written by `ganforge project` or NVIDIA's projector (key 'w': [N, num_ws, w_dim])."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "w" not in data:
                raise UsageError(f"{path} has no array named 'w'; expected a projected_w.npz")
            w = data["w"]
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if w.ndim == 2:
        w = w[:, None, :].repeat(G.num_ws, axis=1)
    if w.ndim != 3 or w.shape[1:] != (G.num_ws, G.w_dim):
        raise UsageError(f"{path}: w has shape {list(w.shape)}, this network needs [N, {G.num_ws}, {G.w_dim}]")
    return torch.from_numpy(w.astype(np.float32)).to(next(G.parameters()).device)


def generate_images(G, outdir: str, seeds: Sequence[int] | None = None, truncation_psi: float = 1,
                    truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
                    grid: tuple[int, int] | None = None, projected_w: str | None = None,
                    batch_size: int = 16, progress=None) -> dict:
    """Write seedNNNN.png per seed (projNN.png per saved w), grid.png and latents.npz into outdir.

    Returns {"images": [paths], "grid": path, "latents": path}.
    """
    prepare_outdir(outdir)
    if projected_w is not None:
        ws = load_projected_w(projected_w, G)
        names = [f"proj{i:02d}.png" for i in range(len(ws))]
        z = None
    else:
        if not seeds:
            raise UsageError("no seeds given; pass --seeds like 0-35")
        check_class(G, class_idx)
        z, ws = seeds_to_ws(G, seeds, class_idx, truncation_psi, truncation_cutoff)
        names = [f"seed{s:04d}.png" for s in seeds]
    images = synthesize(G, ws, noise_mode=noise_mode, batch_size=batch_size, progress=progress)
    paths = []
    for img, name in zip(images, names):
        path = os.path.join(outdir, name)
        save_png(to_hwc(img), path)
        paths.append(path)
    rows, cols = grid if grid is not None else (None, None)
    if grid is not None and rows * cols < len(images):
        raise UsageError(f"--grid {rows}x{cols} holds {rows * cols} images but there are {len(images)}; "
                         "enlarge the grid or pass fewer seeds")
    grid_path = os.path.join(outdir, "grid.png")
    save_png(make_grid(images, rows, cols), grid_path)
    lat_path = os.path.join(outdir, "latents.npz")
    arrays = {"w": ws.cpu().numpy()}
    if z is not None:
        arrays.update(z=z.cpu().numpy(), seeds=np.asarray(seeds, dtype=np.int64))
    np.savez(lat_path, **arrays)
    return {"images": paths, "grid": grid_path, "latents": lat_path}
