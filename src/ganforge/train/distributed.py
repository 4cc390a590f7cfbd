"""Data-parallel training with PyTorch's own engine: torchrun + DistributedDataParallel.

`torchrun --nproc_per_node=K -m ganforge train ...` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; `init()` reads them and joins the process group (NCCL on CUDA, gloo on
CPU). `--gpus K` re-executes the same command line under `torch.distributed.run` (torchrun).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ganforge.errors import UsageError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def init(device_name: str = "auto") -> DistInfo:
    """Join the process group when started by torchrun; pick this rank's device."""
    if launched_by_torchrun():
        rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    else:
        rank, world, local = 0, 1, 0
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device_name)
    except RuntimeError:
        raise UsageError(f"--device {device_name!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda but PyTorch sees no CUDA GPU here; use --device cpu")
        device = torch.device("cuda", local if world > 1 else (device.index or 0))
        torch.cuda.set_device(device)
    elif device.type != "cpu" and world > 1:
        raise UsageError(f"multi-process training runs on CUDA (NCCL) or CPU (gloo), not {device.type}")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, device)


def split_batch(batch: int, world: int, batch_gpu: int | None, what: str = "--batch") -> tuple[int, int]:
    """The global batch over `world` processes -> (per-process batch, per-step batch batch_gpu).

    Each process takes batch / world samples of every minibatch, in rounds of batch_gpu samples whose
    gradients accumulate (batch_gpu None: one round). `what` names the batch in the error messages."""
    if batch < 1 or batch % world:
        raise UsageError(f"{what} {batch} cannot be split over {world} processes; use a multiple of {world} "
                         f"(or a number of processes that divides {batch})")
    per_rank = batch // world
    bg = per_rank if batch_gpu is None else batch_gpu
    if bg < 1 or per_rank % bg:
        raise UsageError(f"--batch-gpu {bg} must divide the per-process batch {per_rank} "
                         f"(global batch {batch} over {world} process(es))")
    return per_rank, bg


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of a (detached) tensor over all ranks; identity on one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / dist.get_world_size()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap(module: torch.nn.Module, info: DistInfo):
    """DistributedDataParallel around `module` (identity on one process)."""
    if not info.enabled:
        return module
    import inspect

    params = inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters
    # Buffers (w_avg, noise constants) are not synced each forward: w_avg is updated identically on
    # every rank from the all-reduced batch mean.
    kwargs = dict(forward_sync_buffers=False) if "forward_sync_buffers" in params else dict(broadcast_buffers=False)
    if info.device.type == "cuda":
        kwargs["device_ids"] = [info.device]
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(True)  # DDP registers only parameters that require grad at construction
    try:
        return torch.nn.parallel.DistributedDataParallel(module, **kwargs)
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


@contextlib.contextmanager
def ddp_sync(module, sync: bool):
    """Skip DDP's gradient all-reduce unless `sync` (gradient accumulation rounds, and networks
    that are only evaluated in another network's phase)."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel) and not sync:
        with module.no_sync():
            yield
    else:
        yield


def broadcast_object(obj, info: DistInfo):
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def relaunch_with_torchrun(nproc: int, argv: list[str]) -> int:
    """Run `python -m ganforge <argv>` under PyTorch's launcher (torch.distributed.run, i.e.
    torchrun --standalone --nproc_per_node=nproc) and return its exit code."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ganforge", *argv]
    return subprocess.call(cmd)


__all__ = ["DistInfo", "init", "split_batch", "shutdown", "all_mean", "barrier", "wrap", "ddp_sync", "broadcast_object",
           "relaunch_with_torchrun", "launched_by_torchrun"]
