"""`ganforge metrics`: FID, KID, IS, precision/recall, PPL and SWD of a network, or between two folders.

    ganforge metrics --network run/network-snapshot-000100 --data ffhq.zip --metrics fid50k_full,kid50k_full
    ganforge metrics --folders real_dir fake_dir --metrics fid            (no network, like pytorch-fid)

Feature-network weights are never downloaded: put them in ~/.cache/ganforge/detectors (or
$GANFORGE_DETECTOR_DIR, --detector-dir), or name them with --detector PATH.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ganforge.errors import UsageError
from ganforge.progress import progress_enabled

NAME = "metrics"
HELP = "quality metrics (FID, KID, IS, precision/recall, PPL, SWD) of a network or between two image folders"


def add_arguments(p):
    p.add_argument("--network", metavar="PATH|URL|NAME", help="checkpoint to evaluate (its G_ema): a path, a training "
                   "run directory (its latest snapshot), an http(s) URL or a name from `ganforge networks`")
    p.add_argument("--data", metavar="DATASET", help="real images: folder or zip (the training dataset)")
    p.add_argument("--folders", nargs=2, metavar=("REAL", "FAKE"),
                   help="compare two folders/zips of images instead of a network")
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated names, e.g. fid50k_full,kid50k_full,pr50k3_full,ppl2_wend,is50k,swd "
                        "(default: fid50k_full with --network, fid with --folders). Sized variants at any count: "
                        "fidN / fidN_full, kidN, prNk3, isN, swdN, with N like 500 or 2k (fid2k, kid500, swd256, "
                        "pr2k3, fid20k_full); --folders mode: fid, kid, pr3, is, swd_all")
    p.add_argument("--detector", action="append", default=[], metavar="PATH",
                   help="a feature-network weight file (Inception, VGG16 or LPIPS; recognised by content); "
                        "repeatable")
    p.add_argument("--detector-dir", action="append", default=[], metavar="DIR",
                   help="directory holding the weight files under their standard names; repeatable")
    p.add_argument("--no-verify-detector", action="store_true",
                   help="accept weight files whose SHA-256 is not the published one (numbers not comparable)")
    p.add_argument("--gpus", type=int, default=1, metavar="K", help="number of processes/GPUs (default 1)")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    from ganforge.cli.common import add_threads_arg

    add_threads_arg(p)
    p.add_argument("--out", metavar="FILE",
                   help="append results (JSON lines) here (default: metric-<name>.jsonl next to the network)")
    p.add_argument("--cache-dir", metavar="DIR", help="real-data feature cache (default ~/.cache/ganforge/gan-metrics)")
    p.add_argument("--seed", type=int, default=0, help="seed of latents, subsets and projections (default 0)")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="images per batch (default 32)")
    p.add_argument("--fid-method", choices=["sqrtm", "eigh"], default="sqrtm",
                   help="matrix square root for FID: scipy sqrtm (reference) or symmetric eigh (faster)")


def _validate(args):
    from ganforge.metrics.registry import parse_metric_list

    if bool(args.network) == bool(args.folders):
        raise UsageError("give either --network PATH (with --data DATASET) or --folders REAL FAKE")
    specs = parse_metric_list(args.metrics or ("fid" if args.folders else "fid50k_full"))
    if args.gpus < 1:
        raise UsageError(f"--gpus must be >= 1, got {args.gpus}")
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {args.batch}")
    paths = list(args.folders or []) + ([args.data] if args.data else []) + list(args.detector)
    for path in paths:
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file or folder")
    for spec in specs:
        if args.folders and spec.needs_generator:
            raise UsageError(f"{spec.name} needs a network; it cannot be computed between two folders")
        if args.network and spec.num_gen is None:
            raise UsageError(f"{spec.name} is for --folders mode; with --network use a sized metric such as "
                             "fid50k_full, kid50k_full, pr50k3_full, is50k or swd")
        if args.network and spec.needs_real and not args.data:
            raise UsageError(f"{spec.name} compares with real images: pass --data DATASET")
    return specs


def _compute(args, rank: int, num_gpus: int, device):
    from ganforge.metrics import DetectorOptions, compute_metrics

    opts = DetectorOptions(files=list(args.detector), dirs=list(args.detector_dir),
                           verify=not args.no_verify_detector)
    names = args.metrics or ("fid" if args.folders else "fid50k_full")
    G = None
    if args.network:
        import ganforge

        G = ganforge.load(args.network, device=device).G_ema
    real, fake = (args.folders if args.folders else (args.data, None))
    return compute_metrics(names, G=G, dataset_path=real, fake_path=fake, device=device, rank=rank,
                           num_gpus=num_gpus, cache_dir=args.cache_dir, detectors=opts, seed=args.seed,
                           batch_size=args.batch, fid_method=args.fid_method,
                           progress=progress_enabled())


def _worker(rank: int, args, num_gpus: int, tmp: str):
    import torch

    from ganforge.cli.common import pick_device

    device = pick_device(args.device)
    backend = "gloo"
    if device.type == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    torch.distributed.init_process_group(backend, init_method=f"file://{tmp}/init", rank=rank,
                                         world_size=num_gpus)
    try:
        records = _compute(args, rank, num_gpus, device)
        if rank == 0:
            Path(tmp, "results.json").write_text(json.dumps(records))
    finally:
        torch.distributed.destroy_process_group()


def run(args):
    from ganforge.cli.common import pick_device
    from ganforge.metrics import write_jsonl

    _validate(args)
    device = pick_device(args.device)
    if args.gpus > 1 and device.type == "cuda" and args.gpus > __import__("torch").cuda.device_count():
        raise UsageError(f"--gpus {args.gpus} but only {__import__('torch').cuda.device_count()} GPUs are visible")
    if args.gpus == 1:
        records = _compute(args, 0, 1, device)
    else:
        import torch.multiprocessing as mp

        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(_worker, args=(args, args.gpus, tmp), nprocs=args.gpus, join=True)
            records = json.loads(Path(tmp, "results.json").read_text())
    for name, rec in records.items():
        vals = ", ".join(f"{k} {v:.6g}" for k, v in rec["results"].items())
        print(f"{name}: {vals}  ({rec['total_time_str']})")
    # Like NVIDIA's calc_metrics: without --out, results go beside the network only when it sits in a
    # training run directory (never into an installed package or a folder of downloads).
    in_run_dir = bool(args.network) and (Path(args.network).resolve().parent / "training_options.json").exists()
    if args.out or in_run_dir:
        files = write_jsonl(records, path=args.out, network=args.network)
        print(f"results appended to {', '.join(sorted({str(f) for f in files}))}")
    return 0
