"""ganforge attribute: was each image made by this network? (StyleGAN2 §5.1, Fig. 9-10.)

    ganforge attribute --network N IMAGES... [--calibrate 200] [--threshold T] [--real DIR] [--steps] [--space]

Projects each image, reports D = distance(image, reprojection) and "made by this network" when D is at
most a threshold calibrated on --calibrate K images the network generates itself (their 0.99 quantile;
see ganforge.projection.attribution). The calibration is saved beside the checkpoint
(<network>.attribution.json; for the bundled demo or a read-only location under
$GANFORGE_CACHE/attribution or ~/.cache/ganforge/attribution) and reused by the next call with the same
network, distance, space, steps, K and seed. --real DIR adds real images: writes attribution_hist.png (the
two histograms) and attribution.json into --outdir, and prints the ROC AUC.
"""

from __future__ import annotations

import json
import os

from ganforge.cli.common import (
    add_network_args,
    class_index,
    default_network,
    load_checkpoint,
    progress,
)
from ganforge.cli.project import add_projection_args, pick_distance
from ganforge.errors import UsageError

NAME = "attribute"
HELP = "tell whether images were made by this network (projection distance vs a calibrated threshold)"


def add_arguments(p):
    add_network_args(p)
    p.add_argument("images", nargs="*", metavar="IMAGE", help="images to attribute")
    p.add_argument("--calibrate", type=int, default=200, metavar="K",
                   help="calibrate the threshold on K images the network generates (default 200)")
    p.add_argument("--threshold", type=float, default=None, help="use this threshold instead of calibrating")
    p.add_argument("--calibration", default=None, metavar="JSON",
                   help="calibration file (default: beside the network, see --help of the module)")
    p.add_argument("--real", default=None, metavar="DIR", help="real images: histograms and ROC AUC vs generated")
    p.add_argument("--real-max", type=int, default=None, metavar="N",
                   help="use the first N images of --real (default: as many as --calibrate)")
    p.add_argument("--batch", type=int, default=64, help="targets per projection batch")
    p.add_argument("--outdir", default="out", help="where --real writes its plot and numbers (default ./out)")
    add_projection_args(p)


def calibration_path(args) -> str:
    from ganforge.models.demo import demo_path

    if args.calibration:
        return args.calibration
    path = os.path.abspath(args.network or default_network())
    demo = demo_path()
    beside = path.rstrip(os.sep) + ".attribution.json"
    parent = os.path.dirname(beside)
    if (demo is None or os.path.abspath(demo) != path) and os.access(parent, os.W_OK):
        return beside
    cache = os.environ.get("GANFORGE_CACHE")
    root = os.path.join(cache, "attribution") if cache else os.path.expanduser("~/.cache/ganforge/attribution")
    name = "demo" if demo is not None and os.path.abspath(demo) == path else os.path.basename(path.rstrip(os.sep))
    return os.path.join(root, f"{name}.attribution.json")


def run(args):
    import numpy as np
    import torch

    from ganforge.projection.attribution import attribute, project_distances, roc_auc
    from ganforge.projection.plot import histogram_png
    from ganforge.projection.projector import check_projectable, check_steps
    from ganforge.projection.targets import check_target_path, image_files, load_targets
    from ganforge.synthesis.images import check_outdir, write_files

    if not args.images and not args.real:
        raise UsageError("give images to attribute (or --real DIR to compare real with generated images)")
    check_steps(args.steps)
    if args.threshold is None and args.calibrate < 1:
        raise UsageError(f"--calibrate {args.calibrate}: give at least 1 image to calibrate on")
    if args.real and args.threshold is not None:
        raise UsageError("--real compares with the calibration images; drop --threshold")
    if args.batch < 1:
        raise UsageError(f"--batch {args.batch}: give at least 1")
    for p in args.images:
        check_target_path(p)
    real_files = []
    if args.real:
        real_files = image_files(args.real)[:args.real_max or args.calibrate]
        check_outdir(args.outdir)
    ckpt = load_checkpoint(args)
    G = ckpt.G_ema
    check_projectable(G)
    cls = class_index(args.class_idx, G)
    images, notes = load_targets(args.images, G.img_resolution, G.img_channels) if args.images else (None, [])
    real = load_targets(real_files, G.img_resolution, G.img_channels)[0] if real_files else None
    device = next(G.parameters()).device
    distance, line = pick_distance(args, device)
    print(line)
    for note in notes:
        print(note)
    cal_path = None if args.threshold is not None else calibration_path(args)

    with progress(None, "attribute", unit="step") as bar:
        ticks = bar
        res = attribute(G, torch.from_numpy(images) if images is not None else torch.zeros(
            [0, G.img_channels, G.img_resolution, G.img_resolution], dtype=torch.uint8),
            threshold=args.threshold, calibrate=args.calibrate, class_idx=cls, space=args.space, steps=args.steps,
            distance=distance, seed=args.seed, device=device, calibration_file=cal_path, batch_size=args.batch,
            progress=ticks)
        cal = res.calibration
        if cal is not None:
            how = "reused" if res.calibration_reused else "calibrated"
            print(f"threshold {res.threshold:.4g}: the {cal.quantile:g} quantile of D over {cal.count} generated images "
                  f"({how}; {cal_path})")
        else:
            print(f"threshold {res.threshold:.4g} (given)")
        for p, d, ok, k in zip(args.images, res.distances, res.made_by_network, res.classes):
            verdict = "made by this network" if ok else "not made by this network"
            sign = "<=" if ok else ">"
            extra = f", class {k}" if k is not None else ""
            print(f"{p}: D {d:.4g} {sign} {res.threshold:.4g}: {verdict} ({res.distance_name}{extra})")
        if real is not None:
            d_real, _ = project_distances(G, torch.from_numpy(real), cls, batch_size=args.batch, space=args.space,
                                          steps=args.steps, distance=distance, seed=args.seed, device=device,
                                          progress=ticks)
            d_gen = np.asarray(cal.distances)
            auc = roc_auc(d_gen, d_real)
            summary = {"distance_name": res.distance_name, "space": args.space, "steps": args.steps,
                       "threshold": res.threshold, "generated": d_gen.tolist(), "real": d_real.tolist(),
                       "real_files": real_files, "roc_auc": auc,
                       "real_above_threshold": float(np.mean(d_real > res.threshold))}
            paths = write_files(args.outdir, [
                ("attribution_hist.png", histogram_png(d_gen, d_real, res.distance_name, res.threshold, auc)),
                ("attribution.json", (json.dumps(summary, indent=1) + "\n").encode())])
            print(f"generated D median {np.median(d_gen):.4g}, real D median {np.median(d_real):.4g}, ROC AUC "
                  f"{auc:.3f} ({len(d_gen)} generated, {len(d_real)} real); wrote {', '.join(paths)}")
