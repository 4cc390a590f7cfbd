"""Speed of the FID Inception feature network, and an honest fid50k time extrapolation.

    python benchmarks/metrics.py [--device cpu|cuda] [--batch 32] [--batches 3] [--res 256]

Compares, in the same run, on the same random weights and inputs:
  naive      FIDInceptionV3 as written (conv + BatchNorm modules, NCHW), under torch.no_grad()
  fused      BatchNorm folded into the convs, torch.inference_mode()
  fused+cl   fused + channels_last memory format (what ganforge.metrics uses)
and prints images/s and the ratios to naive. Weights are random but variance-preserving (no denormals),
so speed is representative. fid50k extrapolation = 50,000 generated images through the network (the
generator's own time is NOT included) + the real set once (cached afterwards) + one 2048x2048 FID.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from ganforge.metrics.fid import frechet_distance  # noqa: E402
from ganforge.metrics.inception import FIDInceptionV3  # noqa: E402


def random_inception(seed=0) -> FIDInceptionV3:
    g = torch.Generator().manual_seed(seed)
    net = FIDInceptionV3()
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("conv.weight"):
                t.copy_(torch.randn(t.shape, generator=g) * math.sqrt(2.0 / np.prod(t.shape[1:])))
            elif name.endswith("bn.weight") or name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("bn.bias") or name.endswith("running_mean"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
    return net


def time_variant(fn, x, batches: int, sync):
    fn(x)  # warm-up (kernel/primitive selection)
    sync()
    t0 = time.perf_counter()
    for _ in range(batches):
        fn(x)
    sync()
    return batches * x.shape[0] / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--res", type=int, default=256, help="input image size (resized to 299 inside)")
    ap.add_argument("--real", type=int, default=70_000, help="real images for the _full extrapolation")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}, "
          f"batch {args.batch} x {args.batches}, input {args.res}px uint8")

    base = random_inception().to(dev)
    x = torch.randint(0, 256, (args.batch, 3, args.res, args.res), dtype=torch.uint8, device=dev)

    naive = base

    def run_naive(imgs):
        with torch.no_grad():
            return naive(imgs, return_features=True)

    fused = copy.deepcopy(base).fuse_()

    def run_fused(imgs):
        with torch.inference_mode():
            return fused(imgs, return_features=True)

    fused_cl = copy.deepcopy(base).fuse_().use_channels_last_()

    def run_fused_cl(imgs):
        with torch.inference_mode():
            return fused_cl(imgs, return_features=True)

    ref = run_naive(x[:4])
    for name, fn in [("fused", run_fused), ("fused+cl", run_fused_cl)]:
        err = (fn(x[:4]) - ref).abs().max().item() / ref.abs().max().item()
        print(f"  {name:9s} max relative difference to naive: {err:.1e}")

    results = {}
    for name, fn in [("naive", run_naive), ("fused", run_fused), ("fused+cl", run_fused_cl)]:
        results[name] = time_variant(fn, x, args.batches, sync)
        print(f"  {name:9s} {results[name]:7.2f} img/s   x{results[name] / results['naive']:.2f} vs naive")

    # FID itself: one 2048x2048 matrix square root (reference path) on this machine.
    rng = np.random.RandomState(0)
    a, b = rng.randn(4096, 2048), rng.randn(4096, 2048)
    s1, s2 = a.T @ a / 4096, b.T @ b / 4096
    t0 = time.perf_counter()
    frechet_distance(np.zeros(2048), s1, np.zeros(2048), s2, method="sqrtm")
    t_sqrtm = time.perf_counter() - t0
    print(f"  FID from 2048-d statistics (scipy sqrtm): {t_sqrtm:.1f} s")

    best = max(results.values())
    gen_only = 50_000 / best
    print(f"fid50k extrapolation on {dev} (Inception only, generator time excluded):")
    print(f"  50k generated images: {gen_only / 3600:.2f} h at {best:.2f} img/s "
          f"(naive: {50_000 / results['naive'] / 3600:.2f} h)")
    print(f"  first run of fid50k_full adds the {args.real} real images once: "
          f"{args.real / best / 3600:.2f} h (cached afterwards)")
    print(f"  + {t_sqrtm:.0f} s for the matrix square root")


if __name__ == "__main__":
    main()
