"""ganforge export-onnx: the generator (mapping + synthesis, const noise) as an ONNX graph."""

from __future__ import annotations

from ganforge.errors import UsageError

NAME = "export-onnx"
HELP = "export a generator to ONNX (z [, c] -> image) and check it with onnxruntime"
TOLERANCE = 1e-4  # float32 max abs difference accepted between onnxruntime and PyTorch


def add_arguments(p):
    p.add_argument("--network", metavar="PATH|URL|NAME", required=True,
                   help="checkpoint: ganforge directory, run directory, NVIDIA .pkl, TensorFlow .pkl, rosinality .pt, "
                        "pytorch-pretrained-BigGAN or BigGAN-PyTorch weights folder, URL or `ganforge networks` name")
    p.add_argument("--out", metavar="FILE", required=True, help="ONNX file to write, e.g. g.onnx")
    p.add_argument("--trunc", type=float, default=1.0, metavar="PSI", help="StyleGAN2: truncation psi baked in (default 1). BigGAN "
                   "networks with per-truncation batch-norm statistics: the truncation whose statistics are baked in")
    p.add_argument("--trunc-cutoff", type=int, default=None, metavar="N", help="truncate only the first N ws")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    from ganforge.cli.common import add_threads_arg

    add_threads_arg(p)


def run(args):
    import ganforge
    from ganforge.formats.onnx_export import check_onnx, export_onnx

    from ganforge.fsutil import check_output_path, make_parent_dirs

    check_output_path(args.out, "--out", overwrite=args.overwrite)
    G = ganforge.load(args.network, device="cpu").G_ema
    make_parent_dirs(args.out, "--out")
    export_onnx(G, args.out, args.trunc, args.trunc_cutoff)
    if args.no_check:
        print(f"wrote {args.out}")
        return
    diff = check_onnx(G, args.out, args.trunc, args.trunc_cutoff)
    if diff > TOLERANCE:
        raise UsageError(f"{args.out} was written but onnxruntime differs from PyTorch by {diff:.3g} "
                         f"(> {TOLERANCE}); do not use it")
    print(f"wrote {args.out}; onnxruntime matches PyTorch (max abs diff {diff:.2e})")
