"""Flags and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os

from ganforge.errors import UsageError


def add_network_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--network", metavar="PATH|URL|NAME", required=required,
                   help="checkpoint: ganforge directory, training run directory (its latest snapshot), NVIDIA "
                        ".pkl, TensorFlow .pkl, rosinality .pt, pytorch-pretrained-BigGAN or BigGAN-PyTorch weights "
                        "folder; an http(s) URL or a name from `ganforge networks`"
                        + ("" if required else " (default: the bundled demo model)"))
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps or auto (default)")
    add_threads_arg(p)


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for PyTorch (default: the cores this process may use minus the load other "
                        "processes already put on them, at least 1, so a busy machine is not oversubscribed)")


def default_threads(cores: int | None = None, load: float | None = None, torch_default: int | None = None) -> int:
    """CPU threads for a command that was not given --threads: the cores this process may run on
    (sched_getaffinity), less the 1-minute load average of the machine (work other processes are already
    doing; oversubscribed threads made `generate` 7x slower on a busy machine), at most PyTorch's own
    default (the physical cores) and at least 1."""
    import torch

    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (OSError, AttributeError):
            load = 0.0
    torch_default = torch_default or torch.get_num_threads()
    return max(1, min(int(cores), int(torch_default), int(round(cores - load))))


def apply_threads(threads: int | None) -> int:
    """torch.set_num_threads(--threads, or default_threads()); returns the count. One-line error for N < 1."""
    import torch

    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads}: give at least 1")
    n = threads if threads is not None else default_threads()
    torch.set_num_threads(n)
    return n


def add_sampling_args(p: argparse.ArgumentParser, biggan: bool = True) -> None:
    p.add_argument("--trunc", type=float, default=None, metavar="T",
                   help="truncation. StyleGAN2: psi toward the average w (default 1: none). BigGAN: in (0, 2], the "
                        "threshold or scale of --trunc-mode (default: none for resample, 1 for scale)")
    p.add_argument("--trunc-cutoff", type=int, default=None, metavar="N",
                   help="StyleGAN2: truncate only the first N layers' w (default: all)")
    if biggan:
        p.add_argument("--trunc-mode", choices=["resample", "scale"], default=None,
                       help="BigGAN: 'resample' redraws every z component with |z_i| > T (the paper's truncation "
                            "trick); 'scale' draws T * truncnorm(-2, 2) and picks the batch-norm statistics for T "
                            "(TF-Hub / pytorch-pretrained-BigGAN). Default: the one the network was trained for: "
                            "scale for networks from pytorch-pretrained-BigGAN, resample otherwise")
    p.add_argument("--class", dest="class_idx", default=None, metavar="K",
                   help="class of a conditional network: an index, or for 1000-class ImageNet networks a name "
                        "(\"golden retriever\") or WordNet id (n02099601)")
    p.add_argument("--noise-mode", choices=["const", "random", "none"], default="const",
                   help="per-pixel noise: stored constants (default), fresh random, or none")


def class_index(text: str | None, G) -> int | None:
    """--class K for network G: an index, or (1000-class ImageNet networks) a class name or WordNet id."""
    if text is None:
        return None
    text = str(text).strip()
    if G.c_dim == 0:
        raise UsageError("this network is unconditional (c_dim=0); drop --class")
    from ganforge.data.imagenet import resolve_class

    return resolve_class(text, G.c_dim, names=getattr(G, "class_names", None))


def class_list(text: str | None, G) -> list[int]:
    """--classes a,b,c: indices or names, comma-separated (names may contain spaces)."""
    if not text:
        return []
    return [class_index(part, G) for part in text.split(",") if part.strip()]


def psi(args) -> float:
    """StyleGAN2's truncation psi from --trunc (None: 1, no truncation)."""
    return 1.0 if args.trunc is None else args.trunc


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

    import os
    import sys

    from ganforge.formats import run_dir_snapshot

    device = pick_device(getattr(args, "device", "auto"))
    path = args.network or default_network()
    if os.path.isdir(path):
        snap = run_dir_snapshot(path)
        if snap != path:
            print(f"using {snap} (the run's latest snapshot)", file=sys.stderr)
    return ganforge.load(path, device=device)


def progress(total: int, desc: str, unit: str = "img"):
    """A tqdm bar on stderr, drawn when ganforge.progress.progress_enabled() says so."""
    from tqdm import tqdm

    from ganforge.progress import progress_enabled

    disable = not progress_enabled()
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)
