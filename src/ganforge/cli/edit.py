"""ganforge edit: latent directions without extra data (SeFa, GANSpace) and figures of their edits.

Writes into --outdir, all or nothing:
  edit-seedNNNN.png (edit-projNN.png for --projected-w)  one figure per seed: row k = the k-th of
                      --directions, columns = the --strength values from the lowest to the highest
  directions.npz      directions [k, w_dim] (unit rows, all of them), eigenvalues (SeFa) or
                      explained_variance, explained_variance_ratio and mean (GANSpace), layers, method,
                      chosen (the --directions indices), strengths, scale (what one unit of --strength is
                      along each chosen direction)
  edited_w.npz        w [S*K*M, num_ws, w_dim]: every cell's w, in (seed, direction, strength) order, as
                      `ganforge generate --projected-w edited_w.npz` reads it; plus sample/direction/strength
  edit.mp4 | edit.gif with --video: every seed (a grid) walking each direction in turn, 0 -> max -> min -> 0

--strength is in the direction's own unit: SeFa's unit eigenvectors (SeFa's distances, default -3..3),
GANSpace's standard deviations along the component (GANSpace's --sigma). The edit is added to the w's of
--layers only, after truncation.
"""

from __future__ import annotations

import math
import re

from ganforge.cli.common import add_network_args, add_sampling_args, class_index, load_checkpoint, progress, psi
from ganforge.errors import UsageError
from ganforge.synthesis.seeds import parse_range

NAME = "edit"
HELP = "edit w's along SeFa or GANSpace directions: a figure per seed, the directions and the edited w's"

METHODS = ("sefa", "ganspace")
VIDEO_FORMATS = ("mp4", "gif")
MAX_CELLS = 100_000  # seeds x directions x strengths: beyond this a figure is no longer a figure


# argparse reads a value that starts with '-' as an option unless it looks like a negative number; let it
# also take '-3:3:7' (a negative LO) as a value, so `--strength -3:3:7` works as well as `--strength=-3:3:7`.
_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d*\.?\d*(e-?\d+)?:")


def add_arguments(p):
    if hasattr(p, "_negative_number_matcher"):
        p._negative_number_matcher = _NEGATIVE_VALUE
    add_network_args(p)
    p.add_argument("--seeds", default=None, help="seeds to edit, e.g. 0-3 (or use --projected-w)")
    p.add_argument("--projected-w", default=None, metavar="NPZ",
                   help="edit saved w's instead: an .npz with an array 'w' [N, num_ws, w_dim] (projected_w.npz)")
    p.add_argument("--method", choices=METHODS, default="sefa",
                   help="sefa: eigenvectors of the style weights (Shen & Zhou 2021); ganspace: principal components "
                        "of sampled w (Härkönen et al. 2020). Default sefa")
    p.add_argument("--layers", default="all",
                   help="w indices to factorise (SeFa) and to edit: all (default), coarse (4-8 px), middle (16-32 px), "
                        "fine (64-1024 px) or indices like 0-3")
    p.add_argument("--directions", default="0-4", help="which directions, by rank (0 = strongest), e.g. 0-4 (default)")
    p.add_argument("--strength", default="-3:3:7", metavar="LO:HI:N",
                   help="N strengths evenly from LO to HI, both included (default -3:3:7); in the direction's unit: "
                        "SeFa unit vectors, GANSpace standard deviations")
    add_sampling_args(p, biggan=False)
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="GANSpace: w samples for the PCA (default 300000, as GANSpace)")
    p.add_argument("--sample-seed", type=int, default=None, metavar="S",
                   help="GANSpace: seed of the PCA samples (default 1, GANSpace's SEED_SAMPLING)")
    p.add_argument("--video", nargs="?", const="mp4", default=None, choices=VIDEO_FORMATS,
                   help="also write the walk as a loop: edit.mp4 (default) or, with --video gif, edit.gif")
    p.add_argument("--frames", type=int, default=60, help="--video: frames per direction (default 60)")
    p.add_argument("--fps", type=int, default=30, help="--video: frames per second (default 30)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass")
    p.add_argument("--outdir", default="out", help="output directory (default ./out)")


def parse_strengths(text: str) -> list[float]:
    """'LO:HI:N' -> N evenly spaced strengths from LO to HI, both included ('-3:3:7' -> -3, -2, ..., 3)."""
    parts = (text or "").split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise UsageError(f"--strength {text!r}: write it as LO:HI:N, e.g. -3:3:7 (7 strengths from -3 to 3)") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UsageError(f"--strength {text!r}: LO and HI must be finite numbers")
    if n < 2 or n > 1000:
        raise UsageError(f"--strength {text!r}: N is the number of columns, 2..1000")
    if not lo < hi:
        raise UsageError(f"--strength {text!r}: LO must be below HI, e.g. -3:3:7")
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def run(args):
    import numpy as np
    import torch

    from ganforge.models import is_style_based

    # Everything that needs no network, then everything that needs one, then the work.
    strengths = parse_strengths(args.strength)
    chosen = parse_range(args.directions, "directions", max_value=1_000_000)
    if len(set(chosen)) != len(chosen):
        raise UsageError(f"--directions {args.directions}: a direction is listed twice")
    seeds = parse_range(args.seeds, "seeds") if args.seeds is not None else None
    if (seeds is None) == (args.projected_w is None):
        raise UsageError("pass either --seeds (e.g. --seeds 0-3) or --projected-w FILE.npz")
    if args.method == "sefa" and (args.samples is not None or args.sample_seed is not None):
        raise UsageError("--samples and --sample-seed are for --method ganspace; SeFa reads only the weights")
    if args.samples is not None and args.samples < 2:
        raise UsageError(f"--samples {args.samples}: GANSpace needs at least 2 w samples (default 300000)")
    if args.sample_seed is not None and not 0 <= args.sample_seed < 2 ** 32 - 1:
        raise UsageError(f"--sample-seed {args.sample_seed} is out of range 0..{2 ** 32 - 2}")
    if args.frames < 1 or args.fps < 1:
        raise UsageError("--frames and --fps must be at least 1")
    if args.batch < 1:
        raise UsageError(f"--batch {args.batch}: give at least 1 image per forward pass")

    G = load_checkpoint(args).G_ema
    if not is_style_based(G):
        raise UsageError("latent editing needs a style-based network (StyleGAN2); this one has no mapping network "
                         "or per-layer styles")
    G.eval()
    from ganforge.editing.layers import parse_layers
    from ganforge.models.stylegan2 import NOISE_MODES
    from ganforge.synthesis.generate import check_class, check_seeds, check_truncation, load_projected_w, seeds_to_ws
    from ganforge.synthesis.images import check_outdir, encode_png, write_files

    layers = parse_layers(args.layers, G)
    bad = [k for k in chosen if k >= G.w_dim]
    if bad:
        raise UsageError(f"--directions: {bad[0]} is out of range; {args.method} gives {G.w_dim} directions for this "
                         f"network (w_dim {G.w_dim}), so use 0-{G.w_dim - 1}")
    if args.noise_mode not in NOISE_MODES:
        raise UsageError(f"--noise-mode {args.noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
    class_idx = class_index(args.class_idx, G)
    if args.projected_w is not None:
        if class_idx is not None or args.trunc is not None or args.trunc_cutoff is not None:
            raise UsageError("--class, --trunc and --trunc-cutoff do not apply to --projected-w (the saved w's are "
                             "used as they are); drop them")
        ws = load_projected_w(args.projected_w, G)
        names = [f"edit-proj{i:02d}.png" for i in range(len(ws))]
    else:
        check_seeds(seeds)
        check_class(G, class_idx)
        check_truncation(G, psi(args), args.trunc_cutoff)
        names = [f"edit-seed{s:04d}.png" for s in seeds]
    cells = len(names) * len(chosen) * len(strengths)
    if cells > MAX_CELLS:
        raise UsageError(f"{len(names)} seeds x {len(chosen)} directions x {len(strengths)} strengths = {cells} images; "
                         f"keep it under {MAX_CELLS}")
    check_outdir(args.outdir)

    if seeds is not None:
        _, ws = seeds_to_ws(G, seeds, class_idx, psi(args), args.trunc_cutoff)
    arrays = {"method": np.str_(args.method), "layers": np.asarray(layers, dtype=np.int64),
              "chosen": np.asarray(chosen, dtype=np.int64), "strengths": np.asarray(strengths, dtype=np.float32)}
    if args.method == "sefa":
        from ganforge.editing.sefa import sefa_directions

        directions, eigenvalues = sefa_directions(G, layers)
        scale = torch.ones(len(chosen))
        arrays.update(eigenvalues=eigenvalues.numpy())
    else:
        from ganforge.editing.ganspace import GANSPACE_NUM_SAMPLES, GANSPACE_SEED, ganspace_directions

        n = args.samples or GANSPACE_NUM_SAMPLES
        seed = GANSPACE_SEED if args.sample_seed is None else args.sample_seed
        with progress(n, "ganspace samples", unit="w") as bar:
            directions, variance, mean = ganspace_directions(G, num_samples=n, seed=seed, class_idx=class_idx,
                                                             progress=bar)
        scale = variance[chosen].sqrt()
        arrays.update(explained_variance=variance.numpy(),
                      explained_variance_ratio=(variance / variance.sum()).numpy(), mean=mean.numpy(),
                      samples=np.int64(n), sample_seed=np.int64(seed))
    arrays.update(directions=directions.numpy(), scale=scale.numpy().astype(np.float32))
    steps = (directions[chosen] * scale[:, None]).to(ws)

    from ganforge.editing.apply import edit_figures

    with progress(cells, "edit") as bar:
        figures, edited = edit_figures(G, ws, steps, strengths, layers, noise_mode=args.noise_mode,
                                       batch_size=args.batch, progress=bar)
    S, K, M = len(names), len(chosen), len(strengths)
    index = np.indices((S, K, M)).reshape(3, -1)
    edited_w = {"w": edited.cpu().numpy(), "sample": index[0], "direction": np.asarray(chosen)[index[1]],
                "strength": np.asarray(strengths, dtype=np.float32)[index[2]]}
    video = _video_bytes(G, ws, steps, layers, strengths, args) if args.video else None

    def files():
        for name, fig in zip(names, figures):
            yield name, encode_png(fig)
        yield "directions.npz", _npz_bytes(arrays)
        yield "edited_w.npz", _npz_bytes(edited_w)
        if video is not None:
            yield f"edit.{args.video}", video

    write_files(args.outdir, files())
    print(f"wrote {len(figures)} edit figures ({K} directions x {M} strengths, {args.method}, layers "
          f"{_span(layers)}), directions.npz, edited_w.npz" + (f" and edit.{args.video}" if video else "")
          + f" to {args.outdir}")
    return 0


def _video_bytes(G, ws, steps, layers, strengths, args) -> bytes:
    """The walk rendered into a temporary file and read back, so that it joins the all-or-nothing write."""
    import os
    import tempfile

    from ganforge.editing.apply import edit_walk_frames
    from ganforge.synthesis.interpolate import write_video

    total = args.frames * len(steps)
    with tempfile.TemporaryDirectory(prefix="ganforge-edit-") as tmp, progress(total, "video", unit="frame") as bar:
        out = os.path.join(tmp, f"edit.{args.video}")
        frames = edit_walk_frames(G, ws, steps, layers, min(strengths), max(strengths), args.frames,
                                  noise_mode=args.noise_mode, batch_size=args.batch, progress=bar)
        write_video(frames, out, fps=args.fps)
        with open(out, "rb") as f:
            return f.read()


def _npz_bytes(arrays) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _span(layers) -> str:
    if list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])
    return ",".join(map(str, layers))
