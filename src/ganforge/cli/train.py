"""ganforge train: train StyleGAN2 on a folder or zip of images (NVIDIA's train.py flags).

With no --data it trains the small preset on the bundled Fashion-MNIST subset, conditional on its
10 classes. `--gpus K` runs the same command under torchrun with K processes; starting it yourself
with `torchrun --nproc_per_node=K -m ganforge train ...` works the same way (and across nodes).
"""

from __future__ import annotations

import os
import sys

from ganforge.errors import UsageError

NAME = "train"
HELP = "train a StyleGAN2 generator (snapshots, exact --resume, multi-GPU via torchrun)"


def _metric_list(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    return [] if names in ([], ["none"]) else names


def add_arguments(p):
    g = p.add_argument_group("data and output")
    g.add_argument("--data", metavar="PATH", help="folder or zip of images (default: bundled Fashion-MNIST, "
                                                  "conditional, --cfg small)")
    g.add_argument("--outdir", default="training-runs", help="runs go to OUTDIR/NNNNN-<desc>/ (default training-runs)")
    g.add_argument("--run-dir", default=None, metavar="DIR", help="use exactly this (new) run directory")
    g.add_argument("--desc", default=None, help="run directory name suffix (default: from cfg, data, batch, gamma)")
    g.add_argument("--cond", action="store_true", help="condition on the dataset.json class labels")
    g.add_argument("--mirror", action="store_true", help="add x-flipped copies of the images")
    g.add_argument("--workers", type=int, default=2, metavar="N", help="data loader worker processes (default 2)")
    t = p.add_argument_group("schedule")
    t.add_argument("--cfg", default=None, help="preset: auto, stylegan2, paper256, paper512, paper1024, cifar, small "
                                               "(default: small for the bundled data, else auto)")
    t.add_argument("--kimg", type=float, default=None, help="train until this many thousand real images were shown")
    t.add_argument("--snap", type=float, default=None, metavar="KIMG", help="snapshot every KIMG (default 4)")
    t.add_argument("--tick", type=float, default=None, metavar="KIMG", help="log line every KIMG (default min(snap, 1))")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", default=None, metavar="RUN_DIR|CKPT",
                   help="continue a run exactly, or fine-tune from a checkpoint (weights only)")
    t.add_argument("--metrics", type=_metric_list, default=None, metavar="LIST",
                   help="metrics at every snapshot, e.g. fid1k,swd256, or none (default none; a continued run "
                        "keeps its own)")
    h = p.add_argument_group("hyper-parameter overrides")
    h.add_argument("--gamma", type=float, default=None, help="R1 weight")
    h.add_argument("--batch", type=int, default=None, help="total batch over all GPUs")
    h.add_argument("--batch-gpu", type=int, default=None, help="per-GPU batch per step (accumulates to --batch)")
    h.add_argument("--cbase", type=int, default=None, help="channel_base (network width)")
    h.add_argument("--cmax", type=int, default=None, help="channel_max")
    h.add_argument("--map-depth", type=int, default=None, help="mapping network layers")
    h.add_argument("--mbstd-group", type=int, default=None, help="minibatch-stddev group size")
    h.add_argument("--lr", type=float, default=None, help="learning rate of G and D")
    h.add_argument("--ema-kimg", type=float, default=None, help="G EMA half-life in kimg")
    h.add_argument("--fp32", action="store_true", help="no mixed precision")
    h.add_argument("--no-noise", action="store_true", help="generator without per-pixel noise inputs")
    a = p.add_argument_group("discriminator augmentation (ADA)")
    a.add_argument("--aug", default=None, choices=["noaug", "ada", "fixed"],
                   help="ada (default): adaptive p; fixed: constant --p; noaug: none")
    a.add_argument("--p", type=float, default=None, help="augmentation probability for --aug fixed")
    a.add_argument("--target", type=float, default=None, help="ADA target for E[sign(D(real))] (default 0.6)")
    a.add_argument("--augpipe", default=None,
                   help="blit, geom, color, filter, noise, cutout, bg, bgc (default), bgcf, bgcfn, bgcfnc")
    a.add_argument("--ada-kimg", type=float, default=None, metavar="KIMG",
                   help="ADA speed: p can move by 1 in KIMG thousand images (default 500; 100 when fine-tuning)")
    r = p.add_argument_group("hardware")
    r.add_argument("--gpus", type=int, default=1, help="processes to launch with torchrun (default 1)")
    r.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    r.add_argument("--threads", type=int, default=None, help="CPU threads per process (torch.set_num_threads)")
    r.add_argument("--channels-last", choices=["auto", "on", "off"], default=None,
                   help="feature-map memory layout: auto (default: channels_last on CPU, NCHW on GPU), on, off; "
                        "values agree to float rounding")
    r.add_argument("--allow-tf32", action="store_true", default=None,
                   help="allow TF32 matmuls and convolutions on Ampere+ GPUs (default off, as NVIDIA's training)")
    r.add_argument("--no-keep-freed-memory", dest="keep_freed_memory", action="store_false",
                   help="leave glibc's malloc at its defaults (by default the CPU trainer keeps freed memory "
                        "for reuse: fewer page faults, the peak heap stays allocated)")


def _precheck(args) -> None:
    """Mistakes worth reporting before any process is launched."""
    if args.data is not None and not os.path.exists(args.data):
        raise UsageError(f"--data {args.data} does not exist; give a folder or zip of images "
                         "(`ganforge dataset` builds one)")
    if args.resume is not None and not os.path.exists(args.resume):
        raise UsageError(f"--resume {args.resume} does not exist; give a run directory or a checkpoint")
    if args.kimg is not None and args.kimg <= 0:
        raise UsageError("--kimg must be positive")
    if args.gpus < 1:
        raise UsageError("--gpus must be at least 1")
    if args.workers < 0:
        raise UsageError("--workers must be >= 0")


def run(args):
    from ganforge.train import distributed

    _precheck(args)
    if args.gpus > 1 and not distributed.launched_by_torchrun():
        return distributed.relaunch_with_torchrun(args.gpus, sys.argv[1:])
    from ganforge.train.loop import TrainOptions, train

    opts = TrainOptions(
        data=args.data, outdir=args.outdir, run_dir=args.run_dir, cfg=args.cfg, cond=args.cond, mirror=args.mirror,
        kimg=args.kimg, snap=args.snap, tick=args.tick, seed=args.seed, resume=args.resume, gpus=args.gpus,
        gamma=args.gamma, batch=args.batch, batch_gpu=args.batch_gpu, cbase=args.cbase, cmax=args.cmax,
        map_depth=args.map_depth, mbstd_group=args.mbstd_group, lr=args.lr, ema_kimg=args.ema_kimg, fp32=args.fp32, no_noise=args.no_noise,
        aug=args.aug, p=args.p, target=args.target, augpipe=args.augpipe, ada_kimg=args.ada_kimg,
        metrics=args.metrics, workers=args.workers, device=args.device, threads=args.threads, desc=args.desc,
        allow_tf32=args.allow_tf32, keep_freed_memory=args.keep_freed_memory,
        channels_last={None: None, "auto": None, "on": True, "off": False}[args.channels_last])
    run_dir = train(opts)
    if not distributed.launched_by_torchrun() or os.environ.get("RANK") == "0":
        print(f"done: {run_dir}")
    return 0
