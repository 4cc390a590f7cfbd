"""ganforge generate: images from seeds (like NVIDIA's generate.py).

Everything asked for is checked before anything is computed; the outputs are written all or nothing.
"""

import sys

from ganforge.cli.common import add_network_args, add_sampling_args, class_index, class_list, load_checkpoint, progress
from ganforge.errors import UsageError
from ganforge.synthesis.seeds import parse_grid, parse_range

NAME = "generate"
HELP = "write one PNG per seed, an image grid and the latents (z, w)"


def add_arguments(p):
    add_network_args(p)
    p.add_argument("--seeds", default=None, help="seeds, e.g. 0-35,100 (default 0-15)")
    add_sampling_args(p)
    p.add_argument("--grid", default=None, metavar="RxC", help="grid layout, rows x columns (default: square)")
    p.add_argument("--projected-w", default=None, metavar="NPZ",
                   help="generate from saved w's instead of seeds: an .npz with an array 'w' "
                        "(NVIDIA's projected_w.npz)")
    p.add_argument("--interp", choices=["class", "lerp-z"], default=None,
                   help="BigGAN: write an interpolation sheet instead: 'class' (rows = seeds at fixed z, columns walk "
                        "--classes) or 'lerp-z' (rows = --classes, columns walk z linearly through the seeds)")
    p.add_argument("--classes", default=None, metavar="K,K,...",
                   help="classes of the interpolation sheet (indices or names), e.g. 1,207,980")
    p.add_argument("--interp-steps", type=int, default=8, metavar="N",
                   help="images per segment of the interpolation, both ends included (default 8)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass")
    p.add_argument("--outdir", default="out", help="output directory (default ./out)")


def run(args):
    if args.seeds is not None:
        seeds = parse_range(args.seeds, "seeds")
    else:
        seeds = None if args.projected_w else parse_range("0-15", "seeds")
    grid = parse_grid(args.grid) if args.grid else None
    from ganforge.synthesis.generate import generate_images

    ckpt = load_checkpoint(args)
    G = ckpt.G_ema
    if args.interp is not None:
        return _interpolation_sheet(args, G, seeds)
    if args.classes is not None:
        raise UsageError("--classes is for --interp sheets; pass one --class for plain images")
    class_idx = class_index(args.class_idx, G)
    if G.c_dim and class_idx is None and args.projected_w is None:
        from ganforge.synthesis.generate import default_class_note

        print(default_class_note(G), file=sys.stderr)
    total = None if seeds is None else len(seeds)
    if G.c_dim and class_idx is None and seeds is not None:
        from ganforge.synthesis.generate import default_class_plan

        total = len(default_class_plan(G, seeds)[0])
    with progress(total, "generate") as bar:
        out = generate_images(G, args.outdir, seeds=seeds, truncation_psi=args.trunc,
                              truncation_cutoff=args.trunc_cutoff, class_idx=class_idx,
                              noise_mode=args.noise_mode, grid=grid, projected_w=args.projected_w,
                              batch_size=args.batch, progress=bar, truncation_mode=args.trunc_mode)
    n = len(out["images"])
    print(f"wrote {n} image{'s' if n != 1 else ''}, {out['grid']} and {out['latents']}")


def _interpolation_sheet(args, G, seeds):
    from ganforge.models import is_style_based
    from ganforge.synthesis.generate import write_interpolation_sheet

    if is_style_based(G):
        raise UsageError("--interp sheets are for BigGAN networks; for StyleGAN2 use `ganforge video` or `mix`")
    if args.projected_w or args.grid or args.trunc_cutoff is not None:
        raise UsageError("--interp writes one sheet: drop --projected-w, --grid and --trunc-cutoff")
    if args.interp == "class":
        if args.class_idx is not None:
            raise UsageError("--interp class walks --classes; drop --class")
        classes = class_list(args.classes, G)
    else:
        if args.classes is not None and args.class_idx is not None:
            raise UsageError("pass --class or --classes for --interp lerp-z, not both")
        if args.classes is not None:
            classes = class_list(args.classes, G)
        else:
            classes = [] if args.class_idx is None else [class_index(args.class_idx, G)]
    out = write_interpolation_sheet(G, args.outdir, args.interp, seeds, classes, args.interp_steps, args.trunc,
                                    args.trunc_mode, batch_size=args.batch)
    print(f"wrote {out['sheet']} and {out['latents']}")
