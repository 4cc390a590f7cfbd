"""ganforge export-onnx: the generator (mapping + synthesis, const noise) as an ONNX graph."""

from __future__ import annotations

from ganforge.errors import UsageError

NAME = "export-onnx"
HELP = "export a generator to ONNX (z [, c] -> image) and check it with onnxruntime"
TOLERANCE = 1e-4  # float32 max abs difference accepted between onnxruntime and PyTorch


def add_arguments(p):
    p.add_argument("--network", metavar="PATH", required=True,
                   help="checkpoint: ganforge directory, NVIDIA .pkl, TensorFlow .pkl, rosinality .pt, "
                        "pytorch-pretrained-BigGAN or BigGAN-PyTorch weights folder")
    p.add_argument("--out", metavar="FILE", required=True, help="ONNX file to write, e.g. g.onnx")
    p.add_argument("--trunc", type=float, default=1.0, metavar="PSI", help="StyleGAN2: truncation psi baked in (default 1). BigGAN "
                   "networks with per-truncation batch-norm statistics: the truncation whose statistics are baked in")
    p.add_argument("--trunc-cutoff", type=int, default=None, metavar="N", help="truncate only the first N ws")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")


def run(args):
    import ganforge
    from ganforge.formats.onnx_export import check_onnx, export_onnx

    G = ganforge.load(args.network, device="cpu").G_ema
    export_onnx(G, args.out, args.trunc, args.trunc_cutoff)
    if args.no_check:
        print(f"wrote {args.out}")
        return
    diff = check_onnx(G, args.out, args.trunc, args.trunc_cutoff)
    if diff > TOLERANCE:
        raise UsageError(f"{args.out} was written but onnxruntime differs from PyTorch by {diff:.3g} "
                         f"(> {TOLERANCE}); do not use it")
    print(f"wrote {args.out}; onnxruntime matches PyTorch (max abs diff {diff:.2e})")
