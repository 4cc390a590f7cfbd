"""Style mixing (StyleGAN §3.1): take some layers' w from one latent and the rest from another.

The mixing itself is `ganforge.models.latents.mix_styles` (re-exported here); this module builds the
multi-way split and the paper's mixing figure on it.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.models.latents import layer_mask, mix_styles
from ganforge.synthesis.generate import check_class, seed_classes, seeds_to_ws, synthesize
from ganforge.synthesis.images import prepare_outdir, save_png, to_hwc


def mix_at(ws_list: Sequence[torch.Tensor], cutoffs: Sequence[int]) -> torch.Tensor:
    """Generate from two or more w's split at layer indices: layers [cutoffs[i-1], cutoffs[i]) use ws_list[i].

    ws_list: k tensors [N, num_ws, w_dim]; cutoffs: k-1 increasing layer indices -> [N, num_ws, w_dim]
    """
    if len(cutoffs) != len(ws_list) - 1 or list(cutoffs) != sorted(cutoffs):
        raise ValueError("need one increasing cutoff between each pair of w's")
    out = ws_list[0].clone()
    for ws, start in zip(ws_list[1:], cutoffs):
        out = mix_styles(out, ws, range(out.shape[1])[start:])  # layers start.. (Python slice rules)
    return out


def style_mixing_figure(G, outdir: str, row_seeds: Sequence[int], col_seeds: Sequence[int], styles: Sequence[int],
                        truncation_psi: float = 1, class_idx: int | None = None, noise_mode: str = "const") -> dict:
    """The paper's mixing figure: top row = column seeds, left column = row seeds, each cell the row
    seed's w with the `styles` layers taken from the column seed. Writes {row}-{col}.png and grid.png.
    class_idx None on a conditional network: each seed's w from its own class (`seed_classes`)."""
    check_class(G, class_idx if class_idx is not None or not G.c_dim else 0)
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad:
        raise UsageError(f"--styles {bad} out of range: this network has layers 0..{G.num_ws - 1}")
    prepare_outdir(outdir)
    seeds = list(dict.fromkeys(list(row_seeds) + list(col_seeds)))
    _, ws = seeds_to_ws(G, seeds, seed_classes(G, seeds, class_idx), truncation_psi)
    w_of = {s: ws[i:i + 1] for i, s in enumerate(seeds)}
    images = {s: img for s, img in zip(seeds, synthesize(G, ws, noise_mode=noise_mode))}
    pairs = [(r, c) for r in row_seeds for c in col_seeds]
    take = layer_mask(styles, G.num_ws)
    mixed_ws = torch.cat([mix_styles(w_of[r], w_of[c], take) for r, c in pairs])
    mixed = synthesize(G, mixed_ws, noise_mode=noise_mode)
    paths = []
    for (r, c), img in zip(pairs, mixed):
        path = os.path.join(outdir, f"{r}-{c}.png")
        save_png(to_hwc(img), path)
        paths.append(path)
        images[(r, c)] = img
    ch, h, w = mixed.shape[1:]
    canvas = np.full([(len(row_seeds) + 1) * h, (len(col_seeds) + 1) * w, ch], 255, dtype=np.uint8)
    for j, c in enumerate(col_seeds):
        canvas[0:h, (j + 1) * w:(j + 2) * w] = images[c].numpy().transpose(1, 2, 0)
    for i, r in enumerate(row_seeds):
        canvas[(i + 1) * h:(i + 2) * h, 0:w] = images[r].numpy().transpose(1, 2, 0)
        for j, c in enumerate(col_seeds):
            canvas[(i + 1) * h:(i + 2) * h, (j + 1) * w:(j + 2) * w] = images[(r, c)].numpy().transpose(1, 2, 0)
    grid_path = os.path.join(outdir, "grid.png")
    save_png(canvas[:, :, 0] if ch == 1 else canvas, grid_path)
    return {"images": paths, "grid": grid_path}
