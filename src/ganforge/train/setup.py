"""Setting up a training run: process settings, the dataset, the networks, augmentation, the data
stream and the log writers. Each function does one of these; `Trainer` (loop.py) calls them in order.
"""

from __future__ import annotations

import copy
import os
import sys

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.train.augment import AdaController, build_augment_pipe


# -- process-wide settings (each an explicit Trainer option) ---------------------------------------

def set_tf32(allow: bool) -> None:
    """TF32 for float32 matmuls and convolutions on Ampere and newer GPUs (PyTorch's defaults allow it
    for cuDNN convolutions). NVIDIA's training loop turns both off (--allow-tf32 turns them on): off,
    R1/path-length gradients, parity with the reference and FID comparisons keep full float32."""
    torch.backends.cuda.matmul.allow_tf32 = bool(allow)
    torch.backends.cudnn.allow_tf32 = bool(allow)


def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc's malloc to keep freed blocks below 32 MB in the heap instead of returning them to the
    kernel. A training step frees and re-allocates the same activation-sized tensors hundreds of times;
    with glibc's defaults many of them come back as fresh zero-filled pages (page faults: 5-8% of a CPU
    step's time here). The process keeps its peak heap instead. This changes the whole process, so it
    runs only when asked (TrainOptions.keep_freed_memory; `ganforge train` asks unless
    --no-keep-freed-memory). No-op (False) off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1
        return ok and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):
        return False


# -- data ------------------------------------------------------------------------------------------

def open_dataset(path: str, cond: bool, mirror: bool, seed: int):
    """The training images (ImageFolderDataset): square, power-of-two, with labels when `cond`."""
    from ganforge.data.dataset import ImageFolderDataset

    ds = ImageFolderDataset(path, use_labels=cond, xflip=mirror, random_seed=seed)
    if cond and not ds.has_labels:
        raise UsageError(f"--cond needs class labels, but {path} has no dataset.json labels; drop --cond or "
                         "build the dataset with `ganforge dataset` from class sub-folders")
    h, w = ds.image_shape[1:]
    if h != w or h < 4 or (h & (h - 1)) != 0:
        raise UsageError(f"dataset {path} has {w}x{h} images; training needs square power-of-two images "
                         f"(rebuild with `ganforge dataset --source {path} --dest OUT.zip --resolution 64`)")
    return ds


def all_labels(ds, c_dim: int) -> torch.Tensor:
    """Every item's label [len(ds), c_dim] (G's labels are drawn from the dataset's, as NVIDIA does)."""
    if c_dim == 0:
        return torch.zeros([len(ds), 0])
    return torch.from_numpy(np.stack([ds.get_label(i) for i in range(len(ds))]))


def build_loader(ds, sampler, batch_rank: int, workers: int, device: torch.device):
    """The DataLoader over the endless sampler: one minibatch of this rank's batch_rank images per step."""
    kwargs = dict(sampler=sampler, batch_size=batch_rank, num_workers=max(int(workers), 0),
                  pin_memory=device.type == "cuda")
    if kwargs["num_workers"] > 0:
        kwargs["prefetch_factor"] = 2
    return torch.utils.data.DataLoader(ds, **kwargs)


# -- networks and augmentation ---------------------------------------------------------------------

def check_finetune(ckpt, resume: str, res: int, channels: int, c_dim: int) -> None:
    """A checkpoint to fine-tune must make the dataset's images and take its labels."""
    G = ckpt.G_ema
    if (G.img_resolution, G.img_channels) != (res, channels):
        raise UsageError(f"--resume network makes {G.img_resolution}x{G.img_resolution}x{G.img_channels} images "
                         f"but the dataset has {res}x{res}x{channels}; use a matching dataset "
                         f"(`ganforge dataset --resolution {G.img_resolution}`)")
    if G.c_dim != c_dim:
        raise UsageError(f"--resume network has c_dim={G.c_dim} but the dataset gives {c_dim} labels; "
                         + ("add --cond" if G.c_dim else "drop --cond"))


def build_networks(cfg, seed: int, finetune_from=None, *, resume: str | None = None, is_main: bool = True):
    """G, D and G_ema: new ones from cfg's kwargs (identical on every rank: seeded with the run's seed),
    or copies of a checkpoint's to fine-tune (cfg's kwargs then follow the checkpoint's)."""
    from ganforge.models import build

    torch.manual_seed(seed)
    if finetune_from is None:
        G = build("stylegan2", "G", cfg.G_kwargs)
        D = build("stylegan2", "D", cfg.D_kwargs)
        return G, D, copy.deepcopy(G)
    G = copy.deepcopy(finetune_from.G)
    G_ema = copy.deepcopy(finetune_from.G_ema)
    cfg.G_kwargs = G.init_kwargs
    cfg.ema_rampup = None  # as NVIDIA does when resuming: keep the checkpoint's G_ema from the start
    if finetune_from.D is not None:
        D = copy.deepcopy(finetune_from.D)
        cfg.D_kwargs = D.init_kwargs
    else:
        D = build("stylegan2", "D", cfg.D_kwargs)
        if is_main:
            print(f"note: {resume} has no discriminator; training a new one", file=sys.stderr)
    return G, D, G_ema


def build_augmentation(cfg, device: torch.device):
    """Augmentation of everything D sees (ADA): (pipe, controller). A pipe when p can be non-zero, the
    adaptive controller for --aug ada; (None, None) for noaug."""
    if not (cfg.aug == "ada" or (cfg.aug == "fixed" and cfg.aug_p > 0)):
        return None, None
    pipe = build_augment_pipe(cfg.augpipe, p=cfg.aug_p).to(device)
    if cfg.img_channels not in (1, 3) and pipe.colour:
        raise UsageError(f"--augpipe {cfg.augpipe} has colour transforms, which need 1- or 3-channel "
                         f"images (the dataset has {cfg.img_channels}); use --augpipe bg or --aug noaug")
    ada = (AdaController(pipe, batch_size=cfg.batch, target=cfg.ada_target, kimg=cfg.ada_kimg)
           if cfg.aug == "ada" else None)
    return pipe, ada


# -- logs ------------------------------------------------------------------------------------------

def open_tensorboard(run_dir: str):
    """A TensorBoard SummaryWriter on the run directory, or None with one line saying why not."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        print(f"note: no TensorBoard log ({e.name or 'tensorboard'} is not installed: pip install "
              "tensorboard); stats.jsonl has every value", flush=True)
        return None
    try:
        return SummaryWriter(run_dir)
    except Exception as e:  # noqa: BLE001  a broken TensorBoard install must not stop training; say so
        print(f"warning: no TensorBoard log ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
              "stats.jsonl has every value", file=sys.stderr, flush=True)
        return None


def resolve_data_path(data: str | None) -> tuple[str, bool]:
    """(absolute dataset path, whether it is the bundled default): no --data means the bundled
    Fashion-MNIST subset."""
    if data is not None:
        return os.path.abspath(data), False
    from ganforge.data import bundled_path

    return os.path.abspath(bundled_path("fashion-mnist")), True


__all__ = ["set_tf32", "keep_freed_memory_for_reuse", "open_dataset", "all_labels", "build_loader",
           "check_finetune", "build_networks", "build_augmentation", "open_tensorboard", "resolve_data_path"]
