"""ganforge mix: the style-mixing figure (like NVIDIA's style_mixing.py)."""

import sys

from ganforge.cli.common import add_network_args, add_sampling_args, class_index, load_checkpoint, psi
from ganforge.errors import UsageError
from ganforge.synthesis.seeds import parse_range

NAME = "mix"
HELP = "style-mixing grid: row seeds' images with some layers' styles from column seeds"


def add_arguments(p):
    add_network_args(p)
    p.add_argument("--rows", required=True, help="row seeds, e.g. 85,100,75")
    p.add_argument("--cols", required=True, help="column seeds, e.g. 55,821,1789")
    p.add_argument("--styles", default="0-6", help="layers taken from the column seed (default 0-6: coarse)")
    add_sampling_args(p, biggan=False)
    p.add_argument("--outdir", default="out", help="output directory (default ./out)")


def run(args):
    rows = parse_range(args.rows, "rows")
    cols = parse_range(args.cols, "cols")
    styles = parse_range(args.styles, "styles", max_value=10_000)
    from ganforge.synthesis.mixing import style_mixing_figure

    G = load_checkpoint(args).G_ema
    from ganforge.models import is_style_based

    if not is_style_based(G):
        raise UsageError("style mixing needs a style-based network (StyleGAN2); this one has no mapping network "
                         "or per-layer styles")
    if G.c_dim and args.class_idx is None:
        print(f"no --class given: seed s uses class s mod {G.c_dim}; pass --class K for one class", file=sys.stderr)
    out = style_mixing_figure(G, args.outdir, rows, cols, styles, truncation_psi=psi(args),
                              class_idx=class_index(args.class_idx, G), noise_mode=args.noise_mode)
    print(f"wrote {len(out['images'])} mixed images and {out['grid']}")
