"""The StyleGAN2 training loop (Karras et al. 2020; the phase structure of NVIDIA's
stylegan2-ada-pytorch training_loop, written anew).

Each minibatch runs the phases whose interval divides the step index:

    Gmain  every step          non-saturating logistic G loss (with style mixing)
    Greg   every pl_interval   path length penalty * pl_weight * pl_interval   (lazy regularization)
    Dmain  every step          logistic D loss on fakes and reals
    Dreg   every r1_interval   R1 penalty * r1_interval                         (lazy regularization)

then updates G_ema. Every random draw of a step comes from generators reseeded from (seed, step),
so a run resumed from a snapshot continues bit-for-bit, and the latents of the global batch are drawn
identically on every rank and sliced (rank r takes samples r, r+R, ...), and so is each synthesis
layer's per-pixel noise, so K processes with per-process batch B/K compute the same update as one
process with batch B (up to float rounding). Only the augmentations (ADA) are drawn per rank, from
the global RNG, as in NVIDIA's code.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.train import distributed as dist_utils
from ganforge.train import rundir
from ganforge.train.ema import ema_beta, ema_half_life_nimg, update_ema
from ganforge.train.loss import (PL_BATCH_SHRINK, PL_DECAY, discriminator_logistic_loss, generator_logistic_loss,
                                 mix_styles, path_length_noise, path_length_penalty, path_lengths, r1_penalty,
                                 sanitize_gradients, style_mixing_cutoff)
from ganforge.train.optim import make_adam
from ganforge.models.stylegan2 import noise_source
from ganforge.train.augment import AdaController, build_augment_pipe
from ganforge.train.presets import ResolvedConfig, resolve, resolve_augment

GRID_COLS = 8
PL_NOISE_STREAM = 1 << 32  # _step_seed stream of the path-length noise (0: latents; 1 + rank: global streams)


@dataclass
class TrainOptions:
    """Everything `ganforge train` accepts (see `ganforge train --help`)."""

    data: str | None = None          # folder / zip; None: the bundled Fashion-MNIST, conditional, cfg small
    outdir: str = "training-runs"
    run_dir: str | None = None       # exact run directory instead of <outdir>/<NNNNN>-<desc>
    cfg: str | None = None           # preset; default 'small' for the bundled data, else 'auto'
    cond: bool = False
    mirror: bool = False
    kimg: float | None = None
    snap: float | None = None        # snapshot interval in kimg (default 4; a resumed run keeps its own)
    tick: float | None = None        # log interval in kimg (default min(snap, 1))
    seed: int = 0
    resume: str | None = None        # run directory (continue exactly) or checkpoint (fine-tune)
    gpus: int = 1
    gamma: float | None = None
    batch: int | None = None
    batch_gpu: int | None = None
    cbase: int | None = None
    cmax: int | None = None
    map_depth: int | None = None
    mbstd_group: int | None = None
    lr: float | None = None
    ema_kimg: float | None = None
    fp32: bool = False
    no_noise: bool = False           # G without per-pixel noise inputs (use_noise=False)
    fused_d_pass: bool | None = None  # D on fakes+reals in one pass; None: on CUDA only (no gain measured on CPU)
    aug: str | None = None           # noaug | ada (default) | fixed
    p: float | None = None           # augmentation probability for --aug fixed
    target: float | None = None      # ADA target for r_t (default 0.6)
    augpipe: str | None = None       # augmentation pipeline (default bgc)
    ada_kimg: float | None = None    # ADA speed: kimg for p to move by 1 (default 500; 100 when fine-tuning)
    metrics: list[str] | None = None  # metrics at every snapshot; None: none (a continued run: its own)
    workers: int = 2
    device: str = "auto"
    threads: int | None = None
    desc: str | None = None
    allow_tf32: bool | None = None   # TF32 matmul/conv on Ampere+ GPUs; None: off (NVIDIA), or the run's own
    keep_freed_memory: bool = False  # glibc malloc keeps freed blocks (process-wide; the CLI turns it on)


# -- helpers ---------------------------------------------------------------------------------------

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


def set_tf32(allow: bool) -> None:
    """TF32 for float32 matmuls and convolutions on Ampere and newer GPUs (PyTorch's defaults allow it
    for cuDNN convolutions). NVIDIA's training loop turns both off (--allow-tf32 turns them on): off,
    R1/path-length gradients, parity with the reference and FID comparisons keep full float32."""
    torch.backends.cuda.matmul.allow_tf32 = bool(allow)
    torch.backends.cudnn.allow_tf32 = bool(allow)


def _step_seed(seed: int, step: int, stream: int) -> int:
    """A distinct 63-bit seed per (run seed, step, stream); stream 0 is shared by all ranks."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(step) * 0xBF58476D1CE4E5B9 + int(stream) * 0x94D049BB133111EB)
    x &= (1 << 64) - 1
    x ^= x >> 31
    return x & ((1 << 63) - 1)


def seed_global_streams(seed: int) -> None:
    """Seed the global RNG streams (torch CPU and CUDA, numpy, Python's random) at the start of a step.

    ganforge draws its own latents and noise from explicit generators; the global streams serve what
    draws from them (ADA's augmentations, a user's dataset or callback). Reseeding them from
    (run seed, step, rank) makes each step's draws a function of the step alone, so a run killed at
    any moment and resumed from its last snapshot draws exactly what the uninterrupted run drew."""
    torch.manual_seed(seed)
    np.random.seed(seed % (1 << 32))
    random.seed(seed)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": torch.tensor(py_state[1], dtype=torch.int64),
                   "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _open_dataset(path: str, cond: bool, mirror: bool, seed: int):
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


def _to_float_images(img: torch.Tensor, device) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 in [-1, 1] (NVIDIA: x / 127.5 - 1)."""
    return img.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1


def _grid_spec(G) -> tuple[list[int], torch.Tensor]:
    """Fixed seeds and labels of the snapshot grid: one row per class (first 16) or an 8x8 grid."""
    cols = GRID_COLS if G.img_resolution <= 256 else 4
    if G.c_dim > 0:
        rows = min(G.c_dim, 16)
        seeds = list(range(cols)) * rows
        c = torch.zeros([rows * cols, G.c_dim])
        for r in range(rows):
            c[r * cols:(r + 1) * cols, r] = 1
    else:
        rows = cols
        seeds = list(range(rows * cols))
        c = torch.zeros([rows * cols, 0])
    return seeds, c


@torch.no_grad()
def render_grid(G, path: str, batch: int = 32) -> None:
    from ganforge.models.latents import to_uint8, z_from_seeds
    from ganforge.synthesis.images import make_grid

    seeds, c = _grid_spec(G)
    device = next(G.parameters()).device
    z = z_from_seeds(seeds, G.z_dim)
    imgs = []
    for i in range(0, len(seeds), batch):
        imgs.append(to_uint8(G(z[i:i + batch].to(device), c[i:i + batch].to(device), noise_mode="const")).cpu())
    grid = make_grid(torch.cat(imgs), cols=GRID_COLS if G.img_resolution <= 256 else 4)
    _save_png_atomic(grid, path)


def _save_png_atomic(arr: np.ndarray, path: str) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB").save(buf, format="PNG")
    rundir.atomic_write_bytes(path, buf.getvalue())


def _save_reals(ds, path: str) -> None:
    from ganforge.synthesis.images import make_grid

    if ds.has_labels and ds.label_dim > 0:
        rows = min(ds.label_dim, 16)
        picked: dict[int, list[int]] = {r: [] for r in range(rows)}
        for i in range(len(ds)):
            k = ds.get_class(i)
            if k is None:
                break
            if k < rows and len(picked[k]) < GRID_COLS:
                picked[k].append(i)
            if all(len(v) == GRID_COLS for v in picked.values()):
                break
        idx = [i for r in range(rows) for i in picked[r]]
    else:
        rnd = np.random.RandomState(0)
        idx = rnd.permutation(len(ds))[:GRID_COLS * GRID_COLS].tolist()
    if not idx:
        return
    imgs = np.stack([ds[i][0] for i in idx])
    _save_png_atomic(make_grid(imgs, cols=GRID_COLS), path)


# -- the trainer -----------------------------------------------------------------------------------

class Trainer:
    """One training run (one process of it). Construct, then `run()`."""

    def __init__(self, opts: TrainOptions):
        self.opts = opts
        self.info = dist_utils.init(opts.device)
        saved = (rundir.read_options(opts.resume) if opts.resume is not None and rundir.is_run_dir(opts.resume)
                 else {})
        threads = opts.threads if opts.threads is not None else saved.get("threads")  # same reduction order
        if threads:
            torch.set_num_threads(int(threads))
        self.threads = threads
        self.allow_tf32 = bool(opts.allow_tf32 if opts.allow_tf32 is not None else saved.get("allow_tf32", False))
        set_tf32(self.allow_tf32)
        self.device = self.info.device
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        elif opts.keep_freed_memory:
            keep_freed_memory_for_reuse()
        self._setup()

    # .. setup ....................................................................................
    def _setup(self) -> None:
        opts, info = self.opts, self.info
        resume_state = None
        resume_ckpt = None
        saved = None
        if opts.resume is not None:
            if not os.path.exists(opts.resume):
                raise UsageError(f"--resume {opts.resume} does not exist; give a run directory or a checkpoint")
            if rundir.is_run_dir(opts.resume):
                saved = rundir.read_options(opts.resume)
                resume_state = rundir.latest_snapshot(opts.resume)
                if resume_state is None and info.is_main:  # stopped before its first snapshot
                    print(f"note: {opts.resume} has no snapshot yet; starting it again from the beginning",
                          flush=True)
            else:
                from ganforge.formats import load as load_ckpt

                try:
                    resume_ckpt = load_ckpt(opts.resume, device="cpu")
                except UsageError as e:
                    if os.path.isdir(opts.resume):
                        raise UsageError(f"--resume {opts.resume} is neither a ganforge run directory (it has no "
                                         f"{rundir.OPTIONS_NAME}) nor a checkpoint") from None
                    raise e

        if saved is not None:  # continue a run: its own options, with a few allowed overrides
            fixed = {"--cfg": opts.cfg, "--gamma": opts.gamma, "--batch": opts.batch,
                     "--cbase": opts.cbase, "--cmax": opts.cmax, "--map-depth": opts.map_depth,
                     "--mbstd-group": opts.mbstd_group, "--lr": opts.lr, "--ema-kimg": opts.ema_kimg,
                     "--cond": opts.cond or None, "--mirror": opts.mirror or None, "--fp32": opts.fp32 or None,
                     "--no-noise": opts.no_noise or None, "--run-dir": opts.run_dir, "--aug": opts.aug,
                     "--p": opts.p, "--target": opts.target, "--augpipe": opts.augpipe,
                     "--ada-kimg": opts.ada_kimg}
            given = [k for k, v in fixed.items() if v is not None]
            if given:
                raise UsageError(f"{', '.join(given)} cannot change when continuing a run (its settings are in "
                                 f"{rundir.OPTIONS_NAME}); to fine-tune with new settings, start a new run with "
                                 "--resume <run>/network-snapshot-...")
            self.run_dir = os.path.abspath(opts.resume)
            data = opts.data or saved["data"]
            self.cond, self.mirror, self.seed = saved["cond"], saved["mirror"], saved["seed"]
            self.cfg = ResolvedConfig(**saved["config"])
            if opts.kimg is not None:
                self.cfg.kimg = float(opts.kimg)
            self.snap = opts.snap if opts.snap is not None else saved["snap"]
            self.tick = opts.tick if opts.tick is not None else saved["tick"]
            self.metrics = list(opts.metrics if opts.metrics is not None else saved.get("metrics", []))
            self._adapt_to_processes(opts.batch_gpu)
        else:
            self.run_dir = None
            data = opts.data
            self.cond, self.mirror, self.seed = opts.cond, opts.mirror, opts.seed
            self.snap = opts.snap if opts.snap is not None else 4.0
            self.tick = opts.tick if opts.tick is not None else min(self.snap, 1.0)
            self.metrics = list(opts.metrics or [])
        if data is None:
            from ganforge.data import bundled_path

            data = bundled_path("fashion-mnist")
            if saved is None:
                self.cond = True
        self.data_path = os.path.abspath(data)
        if self.metrics:
            from ganforge.metrics.registry import parse_metric_list

            parse_metric_list(self.metrics)  # unknown names: one clear error before any training
        if self.snap <= 0 or self.tick <= 0:
            raise UsageError("--snap and --tick must be positive (in kimg)")
        self.dataset = _open_dataset(self.data_path, self.cond, self.mirror, self.seed)
        ds = self.dataset
        res, channels = ds.resolution, ds.num_channels
        c_dim = ds.label_dim if self.cond else 0

        if saved is None:
            cfg_name = opts.cfg or ("small" if opts.data is None else "auto")
            self.cfg = resolve(cfg_name, res, channels, c_dim, info.world_size, gamma=opts.gamma, kimg=opts.kimg,
                               batch=opts.batch, batch_gpu=opts.batch_gpu, channel_base=opts.cbase,
                               channel_max=opts.cmax, map_layers=opts.map_depth, mbstd_group=opts.mbstd_group,
                               lr=opts.lr, ema_kimg=opts.ema_kimg, fp32=opts.fp32)
            if opts.no_noise:
                self.cfg.G_kwargs["synthesis_kwargs"]["use_noise"] = False
            for k, v in resolve_augment(opts.aug, opts.p, opts.target, opts.augpipe,
                                        finetune=resume_ckpt is not None, ada_kimg=opts.ada_kimg).items():
                setattr(self.cfg, k, v)
        cfg = self.cfg
        if (cfg.resolution, cfg.img_channels, cfg.c_dim) != (res, channels, c_dim):
            raise UsageError(f"the dataset {self.data_path} has {res}x{res}x{channels} images and {c_dim} labels, "
                             f"but the run was trained on {cfg.resolution}x{cfg.resolution}x{cfg.img_channels} with "
                             f"{cfg.c_dim} labels; resume with the run's own dataset")

        # Networks (identical initialisation on every rank: same seed; DDP also broadcasts rank 0's).
        from ganforge.models import build

        torch.manual_seed(self.seed)
        if resume_ckpt is not None:
            self._check_finetune(resume_ckpt, res, channels, c_dim)
            G = copy.deepcopy(resume_ckpt.G)
            G_ema = copy.deepcopy(resume_ckpt.G_ema)
            cfg.G_kwargs = G.init_kwargs
            cfg.ema_rampup = None  # as NVIDIA does when resuming: keep the checkpoint's G_ema from the start
            if resume_ckpt.D is not None:
                D = copy.deepcopy(resume_ckpt.D)
                cfg.D_kwargs = D.init_kwargs
            else:
                D = build("stylegan2", "D", cfg.D_kwargs)
                if info.is_main:
                    print(f"note: {opts.resume} has no discriminator; training a new one", file=sys.stderr)
        else:
            G = build("stylegan2", "G", cfg.G_kwargs)
            D = build("stylegan2", "D", cfg.D_kwargs)
            G_ema = copy.deepcopy(G)
        self.G = G.to(self.device).train().requires_grad_(False)
        self.D = D.to(self.device).train().requires_grad_(False)
        self.G_ema = G_ema.to(self.device).eval().requires_grad_(False)
        self.pl_mean = torch.zeros([], device=self.device)

        self.G_opt = make_adam(self.G.parameters(), cfg.lr, cfg.pl_interval)
        self.D_opt = make_adam(self.D.parameters(), cfg.lr, cfg.r1_interval)

        # Augmentation of everything D sees (ADA): a pipe when p can be non-zero, the controller for 'ada'.
        self.augment_pipe = None
        self.ada = None
        if cfg.aug == "ada" or (cfg.aug == "fixed" and cfg.aug_p > 0):
            self.augment_pipe = build_augment_pipe(cfg.augpipe, p=cfg.aug_p).to(self.device)
            if cfg.img_channels not in (1, 3) and self.augment_pipe.colour:
                raise UsageError(f"--augpipe {cfg.augpipe} has colour transforms, which need 1- or 3-channel "
                                 f"images (the dataset has {cfg.img_channels}); use --augpipe bg or --aug noaug")
            if cfg.aug == "ada":
                self.ada = AdaController(self.augment_pipe, batch_size=cfg.batch, target=cfg.ada_target,
                                         kimg=cfg.ada_kimg)

        self.cur_nimg = 0
        self.step = 0
        self.tick_idx = 0
        self.elapsed_before = 0.0
        sampler_state = None
        if resume_state is not None:
            self._load_snapshot(resume_state)
            sampler_state = self._resume_training_state["sampler"]
        self.resume_nimg = self.cur_nimg

        # Data: endless sharded sampler whose position is part of the training state.
        from ganforge.data.sampler import InfiniteSampler

        self.batch_rank = cfg.batch // info.world_size
        self.rounds = self.batch_rank // cfg.batch_gpu
        self.sampler = InfiniteSampler(len(ds), rank=info.rank, num_replicas=info.world_size, seed=self.seed)
        if sampler_state is not None:
            self.sampler.load_state_dict(sampler_state)
        else:
            self.sampler.load_state_dict(self.sampler.state_dict(num_consumed=0))
        loader_kwargs = dict(sampler=self.sampler, batch_size=self.batch_rank, num_workers=max(int(opts.workers), 0),
                             pin_memory=self.device.type == "cuda")
        if loader_kwargs["num_workers"] > 0:
            loader_kwargs["prefetch_factor"] = 2
        self.loader = torch.utils.data.DataLoader(ds, **loader_kwargs)

        if c_dim > 0:
            self.all_labels = torch.from_numpy(np.stack([ds.get_label(i) for i in range(len(ds))]))
        else:
            self.all_labels = torch.zeros([len(ds), 0])

        # DDP wrappers: mapping and synthesis separately (the path length term needs ws), and D.
        self.G_mapping = dist_utils.wrap(self.G.mapping, info) if info.enabled else self.G.mapping
        self.G_synthesis = dist_utils.wrap(self.G.synthesis, info) if info.enabled else self.G.synthesis
        self.D_ddp = dist_utils.wrap(self.D, info) if info.enabled else self.D
        self._noise_layer_ids = {id(m): i for i, m in enumerate(self.G.synthesis.modules())}
        self._noise = None

        if info.is_main:
            if self.run_dir is None:
                self._create_run_dir()
            else:
                rundir.clean_staging(self.run_dir)
                self._save_changed_options(saved)
                if resume_state is None:
                    self._write_start_images()
        self.run_dir = dist_utils.broadcast_object(self.run_dir, info)
        self.stats_path = os.path.join(self.run_dir, "stats.jsonl")
        self.tb = None
        if info.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                print(f"note: no TensorBoard log ({e.name or 'tensorboard'} is not installed: pip install "
                      "tensorboard); stats.jsonl has every value", flush=True)
            else:
                try:
                    self.tb = SummaryWriter(self.run_dir)
                except Exception as e:  # a broken TensorBoard install must not stop training; say so
                    print(f"warning: no TensorBoard log ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                          "stats.jsonl has every value", file=sys.stderr, flush=True)

    def _adapt_to_processes(self, batch_gpu: int | None) -> None:
        """Continue a run on another number of processes (or another --batch-gpu): the global batch,
        the data stream (a global position) and the latents and noise (drawn for the global batch)
        stay the same, so the run continues as it would have, up to float rounding."""
        cfg, world = self.cfg, self.info.world_size
        if cfg.batch % world:
            raise UsageError(f"this run's global batch {cfg.batch} cannot be split over {world} processes; "
                             f"continue it on a number of processes that divides {cfg.batch}")
        per_rank = cfg.batch // world
        bg = batch_gpu if batch_gpu is not None else min(cfg.batch_gpu, per_rank)
        if bg < 1 or per_rank % bg:
            raise UsageError(f"--batch-gpu {bg} must divide the per-process batch {per_rank} "
                             f"(global batch {cfg.batch} over {world} process(es))")
        if world != cfg.gpus and self.info.is_main:
            print(f"note: continuing a run of {cfg.gpus} process(es) on {world}: same global batch {cfg.batch}, "
                  f"{per_rank} per process", file=sys.stderr)
        cfg.gpus, cfg.batch_gpu = world, bg

    def _check_finetune(self, ckpt, res: int, channels: int, c_dim: int) -> None:
        G = ckpt.G_ema
        if (G.img_resolution, G.img_channels) != (res, channels):
            raise UsageError(f"--resume network makes {G.img_resolution}x{G.img_resolution}x{G.img_channels} images "
                             f"but the dataset has {res}x{res}x{channels}; use a matching dataset "
                             f"(`ganforge dataset --resolution {G.img_resolution}`)")
        if G.c_dim != c_dim:
            raise UsageError(f"--resume network has c_dim={G.c_dim} but the dataset gives {c_dim} labels; "
                             + ("add --cond" if G.c_dim else "drop --cond"))

    def _create_run_dir(self) -> None:
        opts, cfg = self.opts, self.cfg
        if opts.run_dir is not None:
            self.run_dir = os.path.abspath(opts.run_dir)
            if os.path.exists(self.run_dir) and (not os.path.isdir(self.run_dir) or [
                    n for n in os.listdir(self.run_dir) if not n.startswith(".tmp-")]):
                hint = " (it is a run: continue it with --resume)" if rundir.is_run_dir(self.run_dir) else ""
                raise UsageError(f"--run-dir {self.run_dir} exists and is not empty{hint}; choose a new directory")
        else:
            desc = opts.desc or (f"{cfg.cfg}-{self.dataset.name}-gpus{cfg.gpus}-batch{cfg.batch}-gamma{cfg.gamma:g}"
                                 + ("-cond" if self.cond else "") + ("-mirror" if self.mirror else ""))
            self.run_dir = rundir.next_run_dir(opts.outdir, desc)
        try:
            os.makedirs(self.run_dir, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create run directory {self.run_dir}: {e.strerror}") from None
        rundir.write_options(self.run_dir, self._options_record(resume_from=self.opts.resume))
        self._write_start_images()

    def _write_start_images(self) -> None:
        """reals.png (a grid of training images) and fakes_init.png (the initial G_ema's snapshot grid)."""
        _save_reals(self.dataset, os.path.join(self.run_dir, "reals.png"))
        render_grid(self.G_ema, os.path.join(self.run_dir, "fakes_init.png"))

    def _options_record(self, resume_from) -> dict[str, Any]:
        """What training_options.json holds: everything a plain --resume needs to go on as before."""
        return {"data": self.data_path, "cond": self.cond, "mirror": self.mirror, "seed": self.seed,
                "snap": self.snap, "tick": self.tick, "threads": self.threads, "allow_tf32": self.allow_tf32,
                "metrics": self.metrics, "resume_from": resume_from, "config": self.cfg.to_dict(),
                "dataset_len": len(self.dataset)}

    def _save_changed_options(self, saved: dict[str, Any]) -> None:
        """A continued run keeps what was changed for it (--kimg, --snap, --tick, --metrics, --threads,
        --allow-tf32, --data, processes / --batch-gpu): training_options.json is rewritten, so a later
        plain --resume goes on with the new settings; the log says what changed."""
        new = self._options_record(resume_from=saved.get("resume_from"))
        changes = []
        for key in ("data", "snap", "tick", "threads", "allow_tf32", "metrics"):
            if saved.get(key) != new[key]:
                changes.append(f"{key} {saved.get(key)!r} -> {new[key]!r}")
        old_cfg = saved.get("config", {})
        for key in ("kimg", "gpus", "batch_gpu"):
            if old_cfg.get(key) != new["config"][key]:
                changes.append(f"{key} {old_cfg.get(key)!r} -> {new['config'][key]!r}")
        if changes:
            rundir.write_options(self.run_dir, {**saved, **new})
            print(f"note: continuing with {', '.join(changes)} (saved in {rundir.OPTIONS_NAME})", flush=True)

    def _load_snapshot(self, snap: str) -> None:
        from ganforge.formats import native

        ckpt = native.load(snap, device="cpu")
        for name, net in (("G", self.G), ("G_ema", self.G_ema), ("D", self.D)):
            src = getattr(ckpt, name)
            if src is None:
                raise UsageError(f"snapshot {snap} lacks {name}; it cannot be resumed exactly")
            try:
                net.load_state_dict(src.state_dict(), strict=True)
            except RuntimeError:
                raise UsageError(f"snapshot {snap} does not match this run's {name} architecture") from None
        state = rundir.read_training_state(snap)
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])
        self.pl_mean.copy_(state["pl_mean"])
        self.cur_nimg = int(state["cur_nimg"])
        self.step = int(state["step"])
        self.tick_idx = int(state["tick"])
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        aug_state = state.get("augment")
        if self.ada is not None and aug_state is not None:
            self.ada.load_state_dict(aug_state)
        elif self.augment_pipe is not None and aug_state is not None:
            self.augment_pipe.p.fill_(float(aug_state["p"]))
        _set_rng_state(state["rng"])
        self._resume_training_state = state

    @property
    def augment_p(self) -> float:
        return float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0

    # .. one minibatch ............................................................................
    def _aug(self, img: torch.Tensor) -> torch.Tensor:
        """What D sees: the augmented images (identity without a pipe; the gradient flows through)."""
        return img if self.augment_pipe is None else self.augment_pipe(img)

    def _slice(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's part of a globally drawn batch: samples rank, rank+R, rank+2R, ..."""
        return x[self.info.rank::self.info.world_size]

    def _draw_latents(self, gen: torch.Generator, n_global: int):
        """z, z2 [n, z_dim], c [n, c_dim], mixing cutoff [n] for this rank, drawn globally."""
        G = self.G
        z = torch.randn([n_global, G.z_dim], generator=gen)
        z2 = torch.randn([n_global, G.z_dim], generator=gen)
        idx = torch.randint(len(self.dataset), [n_global], generator=gen)
        c = self.all_labels[idx]
        cutoff = self._slice(style_mixing_cutoff(n_global, G.num_ws, self.cfg.style_mixing_prob, gen))
        self._mixing = bool((cutoff < G.num_ws).any())  # decided on the host: no device sync per pass
        dev = self.device
        return self._slice(z).to(dev), self._slice(z2).to(dev), self._slice(c).to(dev), cutoff.to(dev)

    def _global_noise(self, phase: int, n_global: int, rows: slice):
        """A noise source (ganforge.models.stylegan2.noise_source) for one G pass over `rows` of this
        rank's part of a global batch of n_global samples in `phase`: each layer's noise is drawn for the
        whole global batch from a generator seeded by (seed, step, phase, layer) and this rank's rows are
        taken, so the noise of a sample does not depend on the number of processes or on --batch-gpu."""
        cache = self._noise_cache
        names = self._noise_layer_ids

        def source(layer, batch, res, device):
            key = (phase, id(layer))
            if key not in cache:
                gen = torch.Generator(device=device)
                gen.manual_seed(_step_seed(self.seed, self.step, 1000 + 100 * phase + names[id(layer)]))
                full = torch.randn([n_global, 1, res, res], generator=gen, device=device)
                cache[key] = self._slice(full)
            return cache[key][rows]

        return source

    def _run_G(self, z, z2, c, cutoff, sync: bool):
        """Style-mixed generator pass: ws = mix(mapping(z, c), mapping(z2, c), cutoff); img = synthesis(ws).
        Also updates w_avg with the global batch mean of w (what the mapping network does in training)."""
        n = z.shape[0]
        mixing = self._mixing and self.cfg.style_mixing_prob > 0
        with dist_utils.ddp_sync(self.G_mapping, sync):
            if mixing:
                ws_all = self.G_mapping(torch.cat([z, z2]), torch.cat([c, c]), update_emas=False)
                ws = mix_styles(ws_all[:n], ws_all[n:], cutoff)
                w_first = ws_all[:n, 0]
            else:
                ws = self.G_mapping(z, c, update_emas=False)
                w_first = ws[:, 0]
        mapping = self.G.mapping
        if mapping.w_avg_beta is not None:
            with torch.no_grad():
                batch_mean = dist_utils.all_mean(w_first.detach().mean(dim=0))
                mapping.w_avg.copy_(batch_mean.lerp(mapping.w_avg, mapping.w_avg_beta))
        with dist_utils.ddp_sync(self.G_synthesis, sync), noise_source(self._noise):
            img = self.G_synthesis(ws)
        return img, ws

    def _fused_d(self, n_fake: int, n_real: int) -> bool:
        """Whether D sees fakes and reals in one pass (see _run_D_pair): on CUDA by default."""
        fused = self.opts.fused_d_pass if self.opts.fused_d_pass is not None else self.device.type == "cuda"
        mbstd = getattr(self.D.b4, "mbstd", None)
        g = None if mbstd is None else mbstd.group_size
        return bool(fused) and g is not None and g <= n_fake and n_fake % g == 0 and n_real == n_fake

    def _run_D_pair(self, fake, fake_c, real, real_c, sync: bool):
        """D on fakes and on reals in ONE forward pass, with the minibatch-stddev groups kept pure.

        Minibatch stddev puts sample i of an n-batch in group i mod (n/g). Laying fakes and reals out as
        [g, n/g] blocks side by side, [g, 2n/g], gives the 2n-batch whose group m holds exactly fake
        group m (m < n/g) or real group m - n/g, so the logits equal those of two separate calls.
        """
        n = fake.shape[0]
        if not self._fused_d(n, real.shape[0]):
            with dist_utils.ddp_sync(self.D_ddp, False):
                fake_logits = self.D_ddp(fake, fake_c)
            with dist_utils.ddp_sync(self.D_ddp, sync):
                real_logits = self.D_ddp(real, real_c)
            return fake_logits, real_logits
        g = self.D.b4.mbstd.group_size
        k = n // g

        def pair(a, b):
            return torch.cat([a.reshape(g, k, *a.shape[1:]), b.reshape(g, k, *b.shape[1:])], dim=1).reshape(
                2 * n, *a.shape[1:])

        with dist_utils.ddp_sync(self.D_ddp, sync):
            logits = self.D_ddp(pair(fake, real), pair(fake_c, real_c)).reshape(g, 2 * k, -1)
        return logits[:, :k].reshape(n, -1), logits[:, k:].reshape(n, -1)

    def _optimizer_step(self, net, opt) -> None:
        sanitize_gradients(net.parameters())
        opt.step()
        opt.zero_grad(set_to_none=True)

    def train_step(self, real_img: torch.Tensor, real_c: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the phases of minibatch `self.step` on this rank's real images; returns detached stats."""
        cfg, info = self.cfg, self.info
        gen = torch.Generator().manual_seed(_step_seed(self.seed, self.step, 0))
        self._noise_cache: dict = {}
        seed_global_streams(_step_seed(self.seed, self.step, 1 + info.rank))  # augmentations (per rank)
        B, R, rounds, bg = cfg.batch, info.world_size, self.rounds, cfg.batch_gpu
        stats: dict[str, torch.Tensor] = {}
        real_img = _to_float_images(real_img, self.device)
        real_c = real_c.to(self.device)
        reals = list(zip(real_img.split(bg), real_c.split(bg)))

        # Gmain: maximise log D(G(z)).
        z, z2, c, cut = self._draw_latents(gen, B)
        self.G.requires_grad_(True)
        total = 0.0
        for r in range(rounds):
            s = slice(r * bg, (r + 1) * bg)
            self._noise = self._global_noise(0, B, s)
            img, _ = self._run_G(z[s], z2[s], c[s], cut[s], sync=(r == rounds - 1))
            with dist_utils.ddp_sync(self.D_ddp, False):
                logits = self.D_ddp(self._aug(img), c[s])
            loss = generator_logistic_loss(logits).mean() / rounds
            loss.backward()
            total = total + loss.detach()
        self._optimizer_step(self.G, self.G_opt)
        stats["loss/G"] = total

        # Greg: path length regularization, lazily.
        if cfg.pl_weight > 0 and self.step % cfg.pl_interval == 0:
            pl_bg = max(bg // PL_BATCH_SHRINK, 1)
            n_pl = pl_bg * rounds * R
            z, z2, c, cut = self._draw_latents(gen, n_pl)
            res, ch = self.G.img_resolution, self.G.img_channels
            pl_gen = torch.Generator(device=self.device).manual_seed(_step_seed(self.seed, self.step, PL_NOISE_STREAM))
            noise = self._slice(path_length_noise(torch.empty([n_pl, ch, res, res], device=self.device),
                                                  generator=pl_gen))
            total = 0.0
            pen_total = 0.0
            for r in range(rounds):
                s = slice(r * pl_bg, (r + 1) * pl_bg)
                self._noise = self._global_noise(1, n_pl, s)
                img, ws = self._run_G(z[s], z2[s], c[s], cut[s], sync=(r == rounds - 1))
                lengths = path_lengths(img, ws, noise[s])
                penalty, new_mean = path_length_penalty(lengths, self.pl_mean, PL_DECAY, dist_utils.all_mean)
                self.pl_mean.copy_(new_mean)
                loss = (img[:, 0, 0, 0] * 0 + penalty * cfg.pl_weight).mean() * (cfg.pl_interval / rounds)
                loss.backward()
                pen_total = pen_total + penalty.detach().mean() / rounds
            self._optimizer_step(self.G, self.G_opt)
            stats["loss/pl_penalty"] = pen_total
            stats["pl_mean"] = self.pl_mean.detach().clone()
        self.G.requires_grad_(False)

        # Dmain: minimise softplus(D(G(z))) + softplus(-D(x)).
        z, z2, c, cut = self._draw_latents(gen, B)
        self.D.requires_grad_(True)
        total = 0.0
        real_score = 0.0
        fake_score = 0.0
        for r in range(rounds):
            s = slice(r * bg, (r + 1) * bg)
            with torch.no_grad():
                self._noise = self._global_noise(2, B, s)
                img, _ = self._run_G(z[s], z2[s], c[s], cut[s], sync=False)
            x, xc = reals[r]
            if self._fused_d(img.shape[0], x.shape[0]):
                fake_logits, real_logits = self._run_D_pair(self._aug(img), c[s], self._aug(x), xc,
                                                            sync=(r == rounds - 1))
                loss_fake, loss_real = discriminator_logistic_loss(fake_logits, real_logits)
                loss = (loss_fake.mean() + loss_real.mean()) / rounds
                loss.backward()
            else:  # two passes, each freeing its graph before the next (faster on CPUs)
                with dist_utils.ddp_sync(self.D_ddp, False):
                    fake_logits = self.D_ddp(self._aug(img), c[s])
                loss_fake, _ = discriminator_logistic_loss(fake_logits, None)
                (loss_fake.mean() / rounds).backward()
                with dist_utils.ddp_sync(self.D_ddp, r == rounds - 1):
                    real_logits = self.D_ddp(self._aug(x), xc)
                _, loss_real = discriminator_logistic_loss(None, real_logits)
                (loss_real.mean() / rounds).backward()
                loss = (loss_fake.mean() + loss_real.mean()).detach() / rounds
            total = total + loss.detach()
            if self.ada is not None:
                self.ada.accumulate(real_logits)
            real_score = real_score + real_logits.detach().mean() / rounds
            fake_score = fake_score + fake_logits.detach().mean() / rounds
        self._optimizer_step(self.D, self.D_opt)
        stats["loss/D"] = total
        stats["scores/real"] = real_score
        stats["scores/fake"] = fake_score

        # Dreg: R1 on reals, lazily.
        if cfg.gamma > 0 and self.step % cfg.r1_interval == 0:
            pen_total = 0.0
            for r in range(rounds):
                x, xc = reals[r]
                x = x.detach().requires_grad_(True)
                with dist_utils.ddp_sync(self.D_ddp, r == rounds - 1):
                    logits = self.D_ddp(self._aug(x), xc)  # R1 is taken w.r.t. the reals before augmentation
                if self.ada is not None:
                    self.ada.accumulate(logits)
                penalty = r1_penalty(logits, x, cfg.gamma)
                loss = (logits[:, 0] * 0 + penalty).mean() * (cfg.r1_interval / rounds)
                loss.backward()
                pen_total = pen_total + penalty.detach().mean() / rounds
            self._optimizer_step(self.D, self.D_opt)
            stats["loss/r1_penalty"] = pen_total
        self.D.requires_grad_(False)

        # G_ema.
        ema_nimg = ema_half_life_nimg(cfg.ema_kimg, self.cur_nimg, cfg.ema_rampup)
        update_ema(self.G_ema, self.G, ema_beta(B, ema_nimg))
        self.cur_nimg += B
        self.step += 1
        if self.ada is not None:
            self.ada.step()  # every ada.interval minibatches: p += sign(r_t - target) * ...
        return stats

    # .. snapshots and logs ........................................................................
    def training_state(self) -> dict[str, Any]:
        return {
            "version": rundir.STATE_VERSION,
            "cur_nimg": self.cur_nimg, "kimg": self.cur_nimg / 1000, "step": self.step, "tick": self.tick_idx,
            "G_opt": self.G_opt.state_dict(), "D_opt": self.D_opt.state_dict(),
            "pl_mean": self.pl_mean.detach().cpu().clone(), "augment_p": float(self.augment_p),
            "augment": (self.ada.state_dict() if self.ada is not None
                        else {"p": self.augment_p} if self.augment_pipe is not None else None),
            "sampler": self.sampler.state_dict(num_consumed=self.step * self.batch_rank),
            "rng": _rng_state(), "elapsed_s": self.elapsed(), "seed": self.seed,
        }

    def elapsed(self) -> float:
        return self.elapsed_before + (time.time() - self.start_time)

    def snapshot(self) -> str:
        """Grid PNG + checkpoint + training state (rank 0 writes; the others wait). Returns the
        snapshot's path on every rank."""
        path = os.path.join(self.run_dir, rundir.snapshot_name(self.cur_nimg))
        if self.ada is not None:
            self.ada.synchronize()  # collective: rank 0's state then holds every rank's pending signs
        if self.info.is_main:
            from ganforge.formats import Checkpoint

            name = rundir.snapshot_name(self.cur_nimg)
            kimg_tag = name[len(rundir.SNAPSHOT_PREFIX):]
            with torch.random.fork_rng(devices=[]):
                render_grid(self.G_ema, os.path.join(self.run_dir, f"fakes{kimg_tag}.png"))
            ckpt = Checkpoint(G=self.G, G_ema=self.G_ema, D=self.D,
                              config={"training": {"kimg": self.cur_nimg / 1000, "cur_nimg": self.cur_nimg,
                                                   "cfg": self.cfg.cfg, "dataset": self.data_path,
                                                   "class_names": getattr(self.dataset, "class_names", None)}})
            rundir.write_snapshot(self.run_dir, self.cur_nimg, ckpt, self.training_state())
        dist_utils.barrier()
        return path

    def _metrics(self, snap_path: str) -> dict[str, float]:
        """The requested metrics of G_ema at a snapshot. Every rank calls this: the work is split over
        the ranks and the features are all-gathered (collectives), as in NVIDIA's training loop. Rank 0
        appends each result to <run>/metric-<name>.jsonl (NVIDIA's file name)."""
        if not self.metrics:
            return {}
        from ganforge.metrics.runner import compute_metrics, write_jsonl

        try:
            with torch.random.fork_rng(devices=[]):
                results = compute_metrics(self.metrics, G=self.G_ema, dataset_path=self.data_path,
                                          device=self.device, rank=self.info.rank, num_gpus=self.info.world_size,
                                          progress=False)
        except UsageError as e:  # a metric that cannot run here must not end a long training run
            self.G_ema.eval().requires_grad_(False)
            if self.info.is_main:
                print(f"warning: metrics skipped at {os.path.basename(snap_path)}: {e}", file=sys.stderr, flush=True)
            return {"metrics_error": str(e)}
        self.G_ema.eval().requires_grad_(False)
        out = {}
        for name, rec in (results or {}).items():
            values = rec.get("results", rec) if isinstance(rec, dict) else {name: rec}
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    out[f"metrics/{k}"] = float(v)
        if self.info.is_main and results:
            write_jsonl(results, network=os.path.basename(snap_path), run_dir=self.run_dir)
        return out

    def _log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        rundir.append_line(self.stats_path, json.dumps(record))
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("kimg", "tick"):
                    self.tb.add_scalar(k, v, global_step=int(self.cur_nimg / 1000))
            self.tb.flush()

    # .. the loop .................................................................................
    def run(self) -> str:
        cfg, info = self.cfg, self.info
        total_nimg = int(round(cfg.kimg * 1000))
        snap_nimg = max(int(round(self.snap * 1000)), 1)
        tick_nimg = max(int(round(self.tick * 1000)), 1)
        self.start_time = time.time()
        bar = None
        quiet_bar = not (sys.stderr.isatty() or os.environ.get("GANFORGE_PROGRESS") == "1")
        if info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=round(total_nimg / 1000, 3), initial=round(self.cur_nimg / 1000, 3), unit="kimg",
                       desc="train", disable=quiet_bar, dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} kimg [{elapsed}<{remaining}{postfix}]")
            print(f"run directory: {self.run_dir}", flush=True)
        next_snap = (self.cur_nimg // snap_nimg + 1) * snap_nimg
        next_tick = (self.cur_nimg // tick_nimg + 1) * tick_nimg
        acc: dict[str, list] = {}
        sec_per_kimg = float("nan")
        tick_start_nimg, tick_start_time = self.cur_nimg, time.time()
        data_iter = iter(self.loader)
        try:
            while self.cur_nimg < total_nimg:
                real_img, real_c = next(data_iter)
                stats = self.train_step(real_img, real_c)
                for k, v in stats.items():
                    acc.setdefault(k, []).append(v)
                done = self.cur_nimg >= total_nimg
                if bar is not None and not quiet_bar:  # reading the losses waits for the device: only for a bar
                    bar.n = round(self.cur_nimg / 1000, 3)
                    bar.set_postfix_str(f"{sec_per_kimg:.1f} s/kimg, G {float(stats['loss/G']):.3f} "
                                        f"D {float(stats['loss/D']):.3f}", refresh=True)
                if self.cur_nimg >= next_tick or self.cur_nimg >= next_snap or done:
                    now = time.time()
                    dt_kimg = max((self.cur_nimg - tick_start_nimg) / 1000, 1e-9)
                    record = {"kimg": self.cur_nimg / 1000, "tick": self.tick_idx, "step": self.step,
                              "time_s": round(self.elapsed(), 3), "sec_per_kimg": (now - tick_start_time) / dt_kimg,
                              "images_per_s": (self.cur_nimg - tick_start_nimg) / max(now - tick_start_time, 1e-9),
                              "lr": cfg.lr, "augment_p": self.augment_p}
                    record.update({k: float(torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in v]).mean())
                                   for k, v in acc.items()})
                    if self.device.type == "cuda":
                        record["gpu_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2 ** 30
                    if self.cur_nimg >= next_snap or done:
                        path = self.snapshot()
                        record["snapshot"] = os.path.basename(path)
                        record.update(self._metrics(path))
                        next_snap = (self.cur_nimg // snap_nimg + 1) * snap_nimg
                    self._log(record)
                    if bar is not None and quiet_bar:
                        print(f"kimg {record['kimg']:.3f}  sec/kimg {record['sec_per_kimg']:.2f}  "
                              f"G {record.get('loss/G', 0):.3f}  D {record.get('loss/D', 0):.3f}"
                              + (f"  snapshot {record['snapshot']}" if record.get("snapshot") else ""), flush=True)
                    sec_per_kimg = record["sec_per_kimg"]
                    self.tick_idx += 1
                    next_tick = (self.cur_nimg // tick_nimg + 1) * tick_nimg
                    acc = {}
                    tick_start_nimg, tick_start_time = self.cur_nimg, time.time()
        finally:
            if bar is not None:
                bar.close()
            if self.tb is not None:
                self.tb.close()
            del data_iter
        return self.run_dir


def train(opts: TrainOptions) -> str:
    """Train (or continue) a run; returns its directory."""
    trainer = Trainer(opts)
    try:
        return trainer.run()
    finally:
        dist_utils.shutdown()


__all__ = ["TrainOptions", "Trainer", "train", "render_grid"]
