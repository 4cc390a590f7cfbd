"""ganforge video: a looping latent-interpolation video (MP4 or GIF)."""

from ganforge.cli.common import add_network_args, add_sampling_args, load_checkpoint, progress
from ganforge.synthesis.seeds import parse_grid, parse_range

NAME = "video"
HELP = "looping interpolation video through seeds, one loop per grid cell"


def add_arguments(p):
    add_network_args(p)
    p.add_argument("--seeds", default="0-7", help="keyframe seeds; cell j gets seeds j, j+cells, ... (default 0-7)")
    p.add_argument("--grid", default="1x1", metavar="RxC", help="rows x columns of loops (default 1x1)")
    p.add_argument("--frames", type=int, default=60, help="frames per transition between keyframes (default 60)")
    p.add_argument("--interp", choices=("slerp-z", "lerp-w"), default="lerp-w", help="slerp in Z or lerp in W")
    p.add_argument("--fps", type=int, default=30)
    add_sampling_args(p)
    p.add_argument("--out", default="out/video.mp4", help="output .mp4 or .gif (default out/video.mp4)")


def run(args):
    seeds = parse_range(args.seeds, "seeds")
    grid = parse_grid(args.grid)
    from ganforge.synthesis.interpolate import interpolation_frames, write_video

    G = load_checkpoint(args).G_ema
    cells = grid[0] * grid[1]
    total = (len(seeds) // max(cells, 1)) * args.frames
    with progress(total, "video", unit="frame") as bar:
        frames = interpolation_frames(G, seeds, grid, args.frames, interp=args.interp, truncation_psi=args.trunc,
                                      class_idx=args.class_idx, noise_mode=args.noise_mode, progress=bar)
        write_video(frames, args.out, fps=args.fps)
    print(f"wrote {args.out} ({total} frames)")
