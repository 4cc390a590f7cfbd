"""ganforge video: a looping latent-interpolation video (MP4 or GIF)."""

import sys

from ganforge.cli.common import (add_network_args, add_sampling_args, class_index, class_list, load_checkpoint,
                                 progress, psi)
from ganforge.errors import UsageError
from ganforge.synthesis.seeds import parse_grid, parse_range

NAME = "video"
HELP = "looping interpolation video through seeds, one loop per grid cell"


def add_arguments(p):
    add_network_args(p)
    p.add_argument("--seeds", default="0-7", help="keyframe seeds; cell j gets seeds j, j+cells, ... (default 0-7)")
    p.add_argument("--grid", default="1x1", metavar="RxC", help="rows x columns of loops (default 1x1)")
    p.add_argument("--frames", type=int, default=60, help="frames per transition between keyframes (default 60)")
    p.add_argument("--interp", choices=("slerp-z", "lerp-w", "class", "lerp-z"), default=None,
                   help="StyleGAN2: slerp in Z or lerp in W (default lerp-w). BigGAN: 'class' (each cell keeps its "
                        "seed's z and loops through --classes) or 'lerp-z' (linear in z at one class; the default)")
    p.add_argument("--classes", default=None, metavar="K,K,...",
                   help="BigGAN --interp class: the classes to loop through (indices or names), e.g. 1,207,980")
    p.add_argument("--fps", type=int, default=30, help="frames per second, 1..240 (default 30)")
    add_sampling_args(p)
    p.add_argument("--out", default="out/video.mp4", help="output .mp4 or .gif (default out/video.mp4)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (only once the new one is complete)")


def run(args):
    seeds = parse_range(args.seeds, "seeds")
    grid = parse_grid(args.grid)
    from ganforge.synthesis.interpolate import (biggan_interpolation_frames, check_video_out, interpolation_frames,
                                                write_video)

    check_video_out(args.out, args.fps, overwrite=args.overwrite)
    G = load_checkpoint(args).G_ema
    from ganforge.models import is_style_based

    cells = grid[0] * grid[1]
    if is_style_based(G):
        if args.classes is not None or args.trunc_mode is not None:
            raise UsageError("--classes and --trunc-mode are for BigGAN networks; drop them")
        interp = args.interp or "lerp-w"
        if G.c_dim and args.class_idx is None:
            print(f"no --class given: grid cell j uses class j mod {G.c_dim}; pass --class K for one class",
                  file=sys.stderr)
        total = (len(seeds) // max(cells, 1)) * args.frames
        frames = interpolation_frames(G, seeds, grid, args.frames, interp=interp, truncation_psi=psi(args),
                                      class_idx=class_index(args.class_idx, G), noise_mode=args.noise_mode)
    else:
        interp = args.interp or "lerp-z"
        if interp == "class":
            if args.class_idx is not None:
                raise UsageError("--interp class loops through --classes; drop --class")
            classes = class_list(args.classes, G)
            total = len(classes) * args.frames
        else:
            if args.classes is not None:
                raise UsageError("--classes is for --interp class; pass one --class for --interp lerp-z")
            classes = [] if args.class_idx is None else [class_index(args.class_idx, G)]
            total = (len(seeds) // max(cells, 1)) * args.frames
        frames = biggan_interpolation_frames(G, seeds, classes, grid, args.frames, interp=interp,
                                             truncation=args.trunc, truncation_mode=args.trunc_mode)
    with progress(total, "video", unit="frame") as bar:
        write_video(_counted(frames, bar), args.out, fps=args.fps, overwrite=args.overwrite)
    print(f"wrote {args.out} ({total} frames)")


def _counted(frames, bar):
    for frame in frames:
        yield frame
        bar.update(1)
