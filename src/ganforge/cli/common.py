"""Flags and helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from ganforge.errors import UsageError


def add_network_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--network", metavar="PATH", required=required,
                   help="checkpoint: ganforge directory, NVIDIA .pkl, TensorFlow .pkl or rosinality .pt"
                        + ("" if required else " (default: the bundled demo model)"))
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps or auto (default)")


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trunc", type=float, default=1.0, metavar="PSI", help="truncation psi (default 1: none)")
    p.add_argument("--trunc-cutoff", type=int, default=None, metavar="N",
                   help="truncate only the first N layers' w (default: all)")
    p.add_argument("--class", dest="class_idx", type=int, default=None, metavar="K",
                   help="class label for conditional networks")
    p.add_argument("--noise-mode", choices=["const", "random", "none"], default="const",
                   help="per-pixel noise: stored constants (default), fresh random, or none")


def pick_device(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a device; use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but PyTorch sees no CUDA GPU here; use --device cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps but MPS is not available here; use --device cpu")
    return dev


def default_network() -> str:
    from ganforge.models.demo import demo_path

    path = demo_path()
    if path is None:
        raise UsageError("no --network given and this install has no bundled demo model; pass --network PATH")
    return path


def load_checkpoint(args):
    """Checkpoint for --network (or the bundled demo) on --device."""
    import ganforge

    device = pick_device(getattr(args, "device", "auto"))
    path = args.network or default_network()
    return ganforge.load(path, device=device)


def progress(total: int, desc: str, unit: str = "img"):
    """A tqdm bar on stderr, drawn when ganforge.progress.progress_enabled() says so."""
    from tqdm import tqdm

    from ganforge.progress import progress_enabled

    disable = not progress_enabled()
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)
