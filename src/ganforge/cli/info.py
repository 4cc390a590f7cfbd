"""ganforge info: what a checkpoint holds."""

import json

from ganforge.cli.common import load_checkpoint

NAME = "info"
HELP = "architecture, resolution, parameters, FLOPs per image and conditioning of a checkpoint"


def add_arguments(p):
    p.add_argument("network", nargs="?", default=None, metavar="NETWORK",
                   help="checkpoint path, run directory, URL or `ganforge networks` name (default: the bundled demo)")
    p.add_argument("--json", action="store_true", help="print JSON (typed values under stable snake_case keys) instead of text")


def run(args):
    from ganforge.models.summary import describe, format_info

    args.device = "cpu"
    ckpt = load_checkpoint(args)
    info = describe(ckpt)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print("\n".join(format_info(info)))
