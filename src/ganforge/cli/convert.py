"""ganforge convert: rewrite a checkpoint in another format (the input format is detected by content)."""

from __future__ import annotations

import os

from ganforge.errors import UsageError

NAME = "convert"
HELP = ("convert a checkpoint to ganforge's format (from any format it reads) or a StyleGAN2 one to NVIDIA .pkl / "
        "rosinality .pt")
TARGETS = ("native", "nvidia-pkl", "rosinality")


def add_arguments(p):
    p.add_argument("input", metavar="IN", help="checkpoint: ganforge directory, NVIDIA .pkl, TensorFlow .pkl, rosinality .pt, "
                        "pytorch-pretrained-BigGAN or BigGAN-PyTorch weights folder")
    p.add_argument("output", metavar="OUT", help="where to write (a directory for native, a file otherwise)")
    p.add_argument("--to", choices=TARGETS, default="native", help="output format (default: native)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (only once the new one is complete)")
    p.add_argument("--nvidia-src", metavar="NETWORKS_PY", default=None,
                   help="with --to nvidia-pkl: NVIDIA's training/networks.py to embed as the classes' source, as "
                        "NVIDIA's own snapshots do; without it the pickle imports training.networks, so load it "
                        "with NVIDIA's repository on the Python path")


def convert(src: str, dst: str, to: str = "native", nvidia_src: str | None = None, overwrite: bool = False) -> None:
    """Read `src` (any supported format) and write it to `dst` in format `to`."""
    import ganforge

    if to not in TARGETS:
        raise UsageError(f"unknown output format {to!r}; choose one of {', '.join(TARGETS)}")
    if nvidia_src is not None and to != "nvidia-pkl":
        raise UsageError("--nvidia-src only applies to --to nvidia-pkl")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise UsageError("IN and OUT are the same path; choose another output")
    if to != "native" and os.path.isdir(dst):
        raise UsageError(f"{dst} is a directory; --to {to} writes a file")
    from ganforge.fsutil import check_output_path, make_parent_dirs

    check_output_path(dst, "OUT", overwrite=overwrite, kind="dir" if to == "native" else "file")
    ckpt = ganforge.load(src, device="cpu")
    make_parent_dirs(dst, "OUT")
    if to != "native" and ckpt.architecture != "stylegan2":
        raise UsageError(f"--to {to} writes StyleGAN2 networks; {src} is {ckpt.architecture}: convert it with "
                         "--to native")
    if to == "native":
        ckpt.save(dst)
    elif to == "nvidia-pkl":
        from ganforge.formats import nvidia_pkl

        nvidia_pkl.write(ckpt, dst, nvidia_src=nvidia_src)
    else:
        from ganforge.formats import rosinality

        rosinality.write(ckpt, dst)


def run(args):
    convert(args.input, args.output, args.to, args.nvidia_src, overwrite=args.overwrite)
    print(f"wrote {args.output} ({args.to})")
