"""Images from seeds (or from saved w's): PNG per image, a grid, and the latents."""

from __future__ import annotations

import io
import math
import zipfile
from typing import Sequence

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.models import is_style_based
from ganforge.models.latents import (RESAMPLE_MIN_THRESHOLD, TRUNCATION_MODES, class_labels,
                                     statistics_truncation, to_uint8, truncated_z_from_seeds, z_from_seeds)
from ganforge.models.stylegan2 import NOISE_MODES
from ganforge.synthesis.images import check_outdir, encode_png, grid_shape, make_grid, to_hwc, write_files

MAX_SEED = 2 ** 32 - 1  # seeds seed numpy's RandomState (NVIDIA's convention), which takes 32 bits


def check_class(G, class_idx) -> None:
    """Conditional networks need a class (one, or one per image), unconditional ones refuse one (one clear
    line either way)."""
    if G.c_dim == 0 and class_idx is not None:
        raise UsageError("this network is unconditional (c_dim=0); drop --class")
    if G.c_dim > 0 and class_idx is None:
        raise UsageError(f"this network is conditional on {G.c_dim} classes; pass --class 0..{G.c_dim - 1}")
    for k in (class_idx if isinstance(class_idx, (list, tuple)) else [class_idx]) if G.c_dim else []:
        if not 0 <= k < G.c_dim:
            raise UsageError(f"--class {k} is out of range; this network has classes 0..{G.c_dim - 1}")


ROWS_PER_CLASS_MAX = 32  # generate without --class: one grid row per class up to this many classes


def seed_classes(G, seeds: Sequence[int], class_idx: int | None) -> list[int] | int | None:
    """The class of each seed's image: `class_idx` when given; for a conditional network without one,
    seed s gets class s mod c_dim (ganforge's default for mix and video, so that they work on a
    conditional network without --class; NVIDIA's scripts refuse). Unconditional networks: None."""
    if class_idx is not None or G.c_dim == 0:
        return class_idx
    return [int(s) % G.c_dim for s in seeds]


def default_class_plan(G, seeds: Sequence[int]) -> tuple[list[int], list[int], tuple[int, int] | None]:
    """`generate` on a conditional network without --class: (seeds, classes, grid) per image. Up to
    ROWS_PER_CLASS_MAX classes, every seed in every class, one grid row per class (rows x len(seeds));
    more classes (ImageNet), seed s in class s mod c_dim, as `seed_classes`."""
    if G.c_dim <= ROWS_PER_CLASS_MAX:
        pairs = [(s, k) for k in range(G.c_dim) for s in seeds]
        return [s for s, _ in pairs], [k for _, k in pairs], (G.c_dim, len(seeds))
    return list(seeds), seed_classes(G, seeds, None), None


def default_class_note(G) -> str:
    if G.c_dim <= ROWS_PER_CLASS_MAX:
        return f"no --class given: one grid row per class (0..{G.c_dim - 1}); pass --class K for one class"
    return f"no --class given: seed s uses class s mod {G.c_dim}; pass --class K for one class"


BIGGAN_MAX_TRUNCATION = 2.0   # --trunc for BigGAN: a threshold (resample) or a scale (scale) in (0, 2]


def check_biggan_truncation(G, truncation: float | None, mode: str | None) -> tuple[str, float | None]:
    """A BigGAN sampling request -> (mode, truncation): mode defaults to the one the network was trained
    for (G.truncation_mode); truncation None means none ("resample") or 1 ("scale"). Networks whose
    batch norms store statistics per truncation value (pytorch-pretrained-BigGAN) have them for (0, 1]."""
    mode = mode or G.truncation_mode
    if mode not in TRUNCATION_MODES:
        raise UsageError(f"--trunc-mode {mode!r}: use one of {', '.join(TRUNCATION_MODES)}")
    if truncation is None:
        return mode, None
    t = float(truncation)
    if not (math.isfinite(t) and 0 < t <= BIGGAN_MAX_TRUNCATION):
        raise UsageError(f"--trunc {truncation} is outside (0, {BIGGAN_MAX_TRUNCATION:g}]; for BigGAN it is the "
                         f"threshold (--trunc-mode resample) or the scale (--trunc-mode scale), e.g. --trunc 0.5")
    if mode == "resample" and t < RESAMPLE_MIN_THRESHOLD:
        raise UsageError(f"--trunc {t:g} is too small to resample to (at least {RESAMPLE_MIN_THRESHOLD:g})")
    if mode == "scale" and t > 1 and G.init_kwargs.get("n_stats", 1) > 1:
        raise UsageError(f"--trunc {t:g}: this network's batch norms have statistics for truncation values in "
                         "(0, 1] only; use --trunc 0.02..1")
    return mode, t


@torch.no_grad()
def biggan_images(G, z: torch.Tensor, c: torch.Tensor, truncation: float | None = None, batch_size: int = 16,
                  progress=None) -> torch.Tensor:
    """uint8 images [N, C, H, W] (on the CPU) from BigGAN latents z [N, z_dim] and labels c [N, c_dim]
    (one-hot or mixtures); `truncation` picks the batch-norm statistics (statistics_truncation)."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        img = G(z[i:i + batch_size].to(device), c[i:i + batch_size].to(device), truncation=truncation)
        out.append(to_uint8(img).cpu())
        if progress is not None:
            progress.update(len(out[-1]))
    if not out:
        return torch.zeros([0, G.img_channels, G.img_resolution, G.img_resolution], dtype=torch.uint8)
    return torch.cat(out)


def check_truncation(G, truncation_psi: float, truncation_cutoff: int | None) -> None:
    """psi must be a finite number; the cutoff (truncate w of layers [0, cutoff)) one of 0..num_ws."""
    if not math.isfinite(truncation_psi):
        raise UsageError(f"--trunc {truncation_psi} is not a finite number; use e.g. --trunc 0.7")
    if truncation_cutoff is not None and not 0 <= truncation_cutoff <= G.num_ws:
        raise UsageError(f"--trunc-cutoff {truncation_cutoff} is out of range; this network has {G.num_ws} "
                         f"layers of w, so use 0..{G.num_ws}")


@torch.no_grad()
def seeds_to_ws(G, seeds: Sequence[int], class_idx: int | Sequence[int] | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(z [N, z_dim], ws [N, num_ws, w_dim]) for the seeds, on G's device; class_idx: one class for all
    seeds, or one per seed."""
    device = next(G.parameters()).device
    z = z_from_seeds(seeds, G.z_dim).to(device)
    ws = []
    for i in range(0, len(seeds), batch_size):
        zb = z[i:i + batch_size]
        kb = class_idx[i:i + batch_size] if isinstance(class_idx, (list, tuple)) else class_idx
        c = class_labels(kb, G.c_dim, len(zb)).to(device)
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
    """ws [N, num_ws, w_dim] from an .npz with an array 'w' ([N, num_ws, w_dim], or [N, w_dim] for one w
    broadcast to every layer): NVIDIA's projector's projected_w.npz, or any tool that writes key 'w'."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise UsageError(f"{path} is a single .npy array, not an .npz; expected a projected_w.npz "
                             "with an array named 'w'")
        with data:
            if "w" not in data:
                raise UsageError(f"{path} has no array named 'w'; expected a projected_w.npz")
            w = data["w"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if w.dtype.kind not in "fiu":
        raise UsageError(f"{path}: w holds {w.dtype} values; expected real numbers (float32)")
    if w.ndim == 2:
        w = w[:, None, :].repeat(G.num_ws, axis=1)
    if w.ndim != 3 or w.shape[1:] != (G.num_ws, G.w_dim) or w.shape[0] == 0:
        raise UsageError(f"{path}: w has shape {list(w.shape)}, this network needs [N, {G.num_ws}, {G.w_dim}] "
                         "with N >= 1")
    if not np.isfinite(w).all():
        raise UsageError(f"{path}: w contains NaN or infinite values")
    return torch.from_numpy(w.astype(np.float32)).to(next(G.parameters()).device)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def generate_images(G, outdir: str, seeds: Sequence[int] | None = None, truncation_psi: float | None = None,
                    truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
                    grid: tuple[int, int] | None = None, projected_w: str | None = None,
                    batch_size: int = 16, progress=None, truncation_mode: str | None = None) -> dict:
    """Write seedNNNN.png per seed (projNN.png per saved w), grid.png and latents.npz into outdir.

    The whole request (seeds or saved w's, class, truncation, grid shape, output directory) is checked
    before anything is computed or written; a mistake is a UsageError and leaves the disk untouched.
    The files are then written all or nothing (`write_files`): an error part-way (a full disk, an
    interrupt) leaves no file half-written and the files already in outdir as they were.
    grid: (rows, cols) as `grid_shape` accepts it; None -> square. latents.npz holds w [N, num_ws, w_dim]
    and, from seeds, z [N, z_dim] and seeds [N].

    StyleGAN2: truncation_psi (None = 1) and truncation_cutoff truncate w. BigGAN (no mapping network):
    truncation_psi is the truncation of z, `truncation_mode` how it is applied (check_biggan_truncation),
    and latents.npz holds z [N, z_dim], c [N, c_dim], seeds [N] and the truncation used.

    Returns {"images": [paths], "grid": path, "latents": path}.
    """
    if batch_size < 1:
        raise UsageError(f"--batch {batch_size}: give at least 1 image per forward pass")
    if not is_style_based(G):
        return _generate_biggan(G, outdir, seeds, truncation_psi, truncation_cutoff, class_idx, grid, projected_w,
                                batch_size, progress, truncation_mode)
    if truncation_mode is not None:
        raise UsageError("--trunc-mode applies to BigGAN networks; StyleGAN2 truncates w with --trunc PSI")
    if truncation_psi is None:
        truncation_psi = 1
    if noise_mode not in NOISE_MODES:
        raise UsageError(f"--noise-mode {noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
    if projected_w is not None:
        if seeds is not None:
            raise UsageError("pass either --seeds or --projected-w, not both")
        if class_idx is not None:
            raise UsageError("--class does not apply to --projected-w (the saved w's already hold their class); "
                             "drop --class")
        if truncation_psi != 1 or truncation_cutoff is not None:
            raise UsageError("--trunc and --trunc-cutoff do not apply to --projected-w (the saved w's are used "
                             "as they are); drop them")
        ws = load_projected_w(projected_w, G)
        names = [f"proj{i:02d}.png" for i in range(len(ws))]
    else:
        check_seeds(seeds)
        if G.c_dim and class_idx is None:
            seeds, class_idx, default_grid = default_class_plan(G, seeds)
            grid = grid if grid is not None else default_grid
        check_class(G, class_idx)
        check_truncation(G, truncation_psi, truncation_cutoff)
        names = image_names(seeds, class_idx)
    rows, cols = grid_shape(len(names), *(grid if grid is not None else (None, None)))
    check_outdir(outdir)

    if projected_w is not None:
        arrays = {"w": ws.cpu().numpy()}
    else:
        z, ws = seeds_to_ws(G, seeds, class_idx, truncation_psi, truncation_cutoff)
        arrays = {"w": ws.cpu().numpy(), "z": z.cpu().numpy(), "seeds": np.asarray(seeds, dtype=np.int64)}
        if isinstance(class_idx, list):
            arrays["classes"] = np.asarray(class_idx, dtype=np.int64)
    images = synthesize(G, ws, noise_mode=noise_mode, batch_size=batch_size, progress=progress)

    return _write_images(outdir, images, names, rows, cols, arrays)


def _write_images(outdir: str, images: torch.Tensor, names: Sequence[str], rows: int, cols: int,
                  arrays: dict[str, np.ndarray]) -> dict:
    """One PNG per image, grid.png and latents.npz into outdir, all or nothing (write_files)."""
    def files():
        for img, name in zip(images, names):
            yield name, encode_png(to_hwc(img))
        yield "grid.png", encode_png(make_grid(images, rows, cols))
        yield "latents.npz", _npz_bytes(arrays)

    paths = write_files(outdir, files())
    return {"images": paths[:-2], "grid": paths[-2], "latents": paths[-1]}


def image_names(seeds: Sequence[int], classes) -> list[str]:
    """seedNNNN.png per image; seedNNNN-classKK.png when each image has its own class."""
    if isinstance(classes, list):
        return [f"seed{s:04d}-class{k:02d}.png" for s, k in zip(seeds, classes)]
    return [f"seed{s:04d}.png" for s in seeds]


def check_seeds(seeds: Sequence[int] | None) -> None:
    if seeds is None or len(seeds) == 0:
        raise UsageError("no seeds given; pass --seeds like 0-35")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise UsageError(f"seed {bad[0]} is out of range; seeds are 0..{MAX_SEED}")


def _generate_biggan(G, outdir, seeds, truncation, truncation_cutoff, class_idx, grid, projected_w, batch_size,
                     progress, truncation_mode) -> dict:
    if projected_w is not None:
        raise UsageError("--projected-w needs a style-based network (StyleGAN2); this BigGAN samples from z and a class")
    if truncation_cutoff is not None:
        raise UsageError("--trunc-cutoff applies to StyleGAN2's w layers; BigGAN truncates z: drop it")
    check_seeds(seeds)
    if G.c_dim and class_idx is None:
        seeds, class_idx, default_grid = default_class_plan(G, seeds)
        grid = grid if grid is not None else default_grid
    check_class(G, class_idx)
    mode, t = check_biggan_truncation(G, truncation, truncation_mode)
    names = image_names(seeds, class_idx)
    rows, cols = grid_shape(len(names), *(grid if grid is not None else (None, None)))
    check_outdir(outdir)

    z = truncated_z_from_seeds(seeds, G.z_dim, t, mode)
    c = class_labels(class_idx, G.c_dim, len(seeds))
    images = biggan_images(G, z, c, statistics_truncation(t, mode), batch_size=batch_size, progress=progress)
    arrays = {"z": z.numpy(), "c": c.numpy(), "seeds": np.asarray(seeds, dtype=np.int64),
              "truncation": np.float32(np.nan if t is None else t), "truncation_mode": np.str_(mode)}

    return _write_images(outdir, images, names, rows, cols, arrays)


def write_interpolation_sheet(G, outdir: str, kind: str, seeds: Sequence[int], classes: Sequence[int], steps: int,
                              truncation: float | None = None, truncation_mode: str | None = None,
                              batch_size: int = 16) -> dict:
    """Write interp-<kind>.png (biggan_interpolation_sheet) and interp-<kind>.npz (its z, c, seeds, classes)
    into outdir, checked first and written all or nothing like generate_images."""
    from ganforge.synthesis.interpolate import biggan_interpolation_sheet

    if batch_size < 1:
        raise UsageError(f"--batch {batch_size}: give at least 1 image per forward pass")
    check_seeds(seeds)
    check_outdir(outdir)
    sheet, latents = biggan_interpolation_sheet(G, kind, seeds, classes, steps, truncation, truncation_mode,
                                                batch_size=batch_size)
    paths = write_files(outdir, [(f"interp-{kind}.png", encode_png(sheet)), (f"interp-{kind}.npz", _npz_bytes(latents))])
    return {"sheet": paths[0], "latents": paths[1]}
