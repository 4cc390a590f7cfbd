"""ganforge info: what a checkpoint holds."""

import json

from ganforge.cli.common import load_checkpoint

NAME = "info"
HELP = "architecture, resolution, parameters, FLOPs per image and conditioning of a checkpoint"


def add_arguments(p):
    p.add_argument("network", nargs="?", default=None, help="checkpoint path (default: the bundled demo model)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args):
    from ganforge.models.summary import describe

    args.device = "cpu"
    ckpt = load_checkpoint(args)
    info = describe(ckpt)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    for k, v in info.items():
        print(f"{k:>22}: {v}")
