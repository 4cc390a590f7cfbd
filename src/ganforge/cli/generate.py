"""ganforge generate: images from seeds (like NVIDIA's generate.py).

Everything asked for is checked before anything is computed; the outputs are written all or nothing.
"""

from ganforge.cli.common import add_network_args, add_sampling_args, load_checkpoint, progress
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
    with progress(len(seeds) if seeds is not None else None, "generate") as bar:
        out = generate_images(G, args.outdir, seeds=seeds, truncation_psi=args.trunc,
                              truncation_cutoff=args.trunc_cutoff, class_idx=args.class_idx,
                              noise_mode=args.noise_mode, grid=grid, projected_w=args.projected_w,
                              batch_size=args.batch, progress=bar)
    print(f"wrote {len(out['images'])} images, {out['grid']} and {out['latents']}")
