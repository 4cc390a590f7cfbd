"""`ganforge dataset`: build a training dataset (zip or folder of PNGs + dataset.json, NVIDIA's layout)."""

from __future__ import annotations

NAME = "dataset"
HELP = "build a training dataset (zip of PNGs + dataset.json) from a folder, zip, fashion-mnist or emoji"


def _resolution(text: str) -> int:
    from ganforge.errors import UsageError

    t = text.lower()
    if "x" in t:  # accept NVIDIA sg3's WxH as long as it is square
        w, _, h = t.partition("x")
        if w != h:
            raise UsageError(f"--resolution {text}: only square outputs are supported; use --transform "
                             "center-crop-wide for wide images")
        t = w
    try:
        return int(t)
    except ValueError:
        raise UsageError(f"--resolution {text!r} is not a number (e.g. --resolution 64)") from None


def add_arguments(parser):
    from ganforge.data.transforms import RESIZE_FILTERS, TRANSFORMS

    parser.add_argument("--source", required=True, metavar="SRC",
                        help="folder (recursive; labels from sub-folder names or dataset.json), .zip, "
                             "an IDX *-images-idx3-ubyte.gz file, fashion-mnist, fashion-mnist-test "
                             "(Debian dataset-fashion-mnist), emoji (all 3,926 bitmaps of Debian fonts-noto-color-emoji) "
                             "or emoji-base (its 1,446 single-code-point emoji)")
    parser.add_argument("--dest", required=True, metavar="OUT",
                        help="output .zip, or a new/empty folder")
    parser.add_argument("--resolution", type=_resolution, default=None, metavar="N",
                        help="output size N x N, a power of two (default: the size of the inputs)")
    parser.add_argument("--transform", choices=TRANSFORMS, default=None,
                        help="how to make inputs N x N: center-crop, center-crop-wide (4:3 strip, "
                             "letterboxed), resize (stretch) or pad (black borders, no resampling when it "
                             "fits); default: none, except pad for fashion-mnist and resize for emoji")
    parser.add_argument("--resize-filter", choices=list(RESIZE_FILTERS), default="lanczos",
                        help="resampling filter (default lanczos)")
    parser.add_argument("--max-images", type=int, default=None, metavar="N",
                        help="stop after writing N images")
    parser.add_argument("--no-labels", action="store_true",
                        help="write labels: null even if sub-folders or dataset.json give labels")
    parser.add_argument("--compress-level", type=int, default=0, metavar="0-9",
                        help="PNG compression level (default 0, uncompressed like NVIDIA's tool)")


def run(args):
    from ganforge.data.tool import convert_dataset

    report = convert_dataset(args.source, args.dest, resolution=args.resolution, transform=args.transform,
                             max_images=args.max_images, resize_filter=args.resize_filter,
                             no_labels=args.no_labels, compress_level=args.compress_level)
    print(report)
    return 0
