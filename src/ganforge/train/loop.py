"""The training loop: one run (one process of it) from set-up to its last snapshot.

The Trainer owns the run directory, snapshots and exact resume, the RNG streams (rng.py), DDP under
torchrun, the progress bar, stats.jsonl / TensorBoard and metrics at snapshots; the four phases of a
StyleGAN2 iteration are in phases.py, set-up steps in setup.py, options and resume rules in options.py.

Every random draw of a step comes from generators reseeded from (seed, step), so a run resumed from a
snapshot continues bit-for-bit, and the latents of the global batch are drawn identically on every rank
and sliced (rank r takes samples r, r+R, ...), and so is each synthesis layer's per-pixel noise, so K
processes with per-process batch B/K compute the same update as one process with batch B (up to float
rounding). Only the augmentations (ADA) are drawn per rank, from the global streams, as in NVIDIA's code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import torch

from ganforge.errors import UsageError
from ganforge.models.latents import mix_styles
from ganforge.progress import progress_enabled
from ganforge.train import distributed as dist_utils
from ganforge.train import phases, rundir, setup
from ganforge.train.ema import ema_beta, ema_half_life_nimg, update_ema
from ganforge.train.loss import sanitize_gradients, style_mixing_cutoff
from ganforge.train.optim import make_adam
from ganforge.train.options import TrainOptions, changed_on_resume, check_fixed_on_resume
from ganforge.train.presets import ResolvedConfig, resolve, resolve_augment
from ganforge.train.rng import (GLOBAL_STREAM_BASE, LATENT_STREAM, LAYER_NOISE_BASE, rng_state, seed_global_streams,
                                set_rng_state, step_seed)
from ganforge.train.setup import keep_freed_memory_for_reuse, set_tf32
from ganforge.train.rundir import render_grid


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
        saved, resume_state, resume_ckpt = self._read_resume()
        if saved is not None:  # continue a run: its own options, with a few allowed overrides
            check_fixed_on_resume(opts, rundir.OPTIONS_NAME)
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
        self.data_path, bundled = setup.resolve_data_path(data)
        if bundled and saved is None:
            self.cond = True  # the bundled Fashion-MNIST trains conditional on its 10 classes
        if self.metrics:
            from ganforge.metrics.registry import parse_metric_list

            parse_metric_list(self.metrics)  # unknown names: one clear error before any training
        if self.snap <= 0 or self.tick <= 0:
            raise UsageError("--snap and --tick must be positive (in kimg)")
        self.dataset = ds = setup.open_dataset(self.data_path, self.cond, self.mirror, self.seed)
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
        if resume_ckpt is not None:
            setup.check_finetune(resume_ckpt, opts.resume, res, channels, c_dim)
        G, D, G_ema = setup.build_networks(cfg, self.seed, resume_ckpt, resume=opts.resume, is_main=info.is_main)
        self.G = G.to(self.device).train().requires_grad_(False)
        self.D = D.to(self.device).train().requires_grad_(False)
        self.G_ema = G_ema.to(self.device).eval().requires_grad_(False)
        self.channels_last = opts.channels_last if opts.channels_last is not None else (saved or {}).get(
            "channels_last")
        for net in (self.G, self.D, self.G_ema):  # memory layout only; saved so that a resume reduces alike
            net.set_channels_last(self.channels_last)
        self.pl_mean = torch.zeros([], device=self.device)
        self.G_opt = make_adam(self.G.parameters(), cfg.lr, cfg.pl_interval)
        self.D_opt = make_adam(self.D.parameters(), cfg.lr, cfg.r1_interval)
        self.augment_pipe, self.ada = setup.build_augmentation(cfg, self.device)

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
        self.sampler.load_state_dict(sampler_state if sampler_state is not None
                                     else self.sampler.state_dict(num_consumed=0))
        self.loader = setup.build_loader(ds, self.sampler, self.batch_rank, opts.workers, self.device)
        self.all_labels = setup.all_labels(ds, c_dim)

        # DDP wrappers: mapping and synthesis separately (the path length term needs ws), and D.
        self.G_mapping = dist_utils.wrap(self.G.mapping, info) if info.enabled else self.G.mapping
        self.G_synthesis = dist_utils.wrap(self.G.synthesis, info) if info.enabled else self.G.synthesis
        self.D_ddp = dist_utils.wrap(self.D, info) if info.enabled else self.D
        self._noise_layer_ids = {id(m): i for i, m in enumerate(self.G.synthesis.modules())}

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
        self.tb = setup.open_tensorboard(self.run_dir) if info.is_main else None

    def _read_resume(self):
        """(saved options, latest snapshot, checkpoint): a run directory to continue (options, and its
        latest snapshot or None when it stopped before its first), a checkpoint to fine-tune, or nothing."""
        opts = self.opts
        if opts.resume is None:
            return None, None, None
        if not os.path.exists(opts.resume):
            raise UsageError(f"--resume {opts.resume} does not exist; give a run directory or a checkpoint")
        if rundir.is_run_dir(opts.resume):
            saved = rundir.read_options(opts.resume)
            snap = rundir.latest_snapshot(opts.resume)
            if snap is None and self.info.is_main:  # stopped before its first snapshot
                print(f"note: {opts.resume} has no snapshot yet; starting it again from the beginning", flush=True)
            return saved, snap, None
        from ganforge.formats import load as load_ckpt

        try:
            return None, None, load_ckpt(opts.resume, device="cpu")
        except UsageError:
            if os.path.isdir(opts.resume):
                raise UsageError(f"--resume {opts.resume} is neither a ganforge run directory (it has no "
                                 f"{rundir.OPTIONS_NAME}) nor a checkpoint") from None
            raise

    def _adapt_to_processes(self, batch_gpu: int | None) -> None:
        """Continue a run on another number of processes (or another --batch-gpu): the global batch,
        the data stream (a global position) and the latents and noise (drawn for the global batch)
        stay the same, so the run continues as it would have, up to float rounding."""
        cfg, world = self.cfg, self.info.world_size
        per_rank, bg = dist_utils.split_batch(cfg.batch, world, batch_gpu if batch_gpu is not None else
                                              min(cfg.batch_gpu, max(cfg.batch // world, 1)),
                                              what="this run's global batch")
        if world != cfg.gpus and self.info.is_main:
            print(f"note: continuing a run of {cfg.gpus} process(es) on {world}: same global batch {cfg.batch}, "
                  f"{per_rank} per process", file=sys.stderr)
        cfg.gpus, cfg.batch_gpu = world, bg

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
        rundir.save_reals(self.dataset, os.path.join(self.run_dir, "reals.png"))
        render_grid(self.G_ema, os.path.join(self.run_dir, "fakes_init.png"))

    def _options_record(self, resume_from) -> dict[str, Any]:
        """What training_options.json holds: everything a plain --resume needs to go on as before."""
        return {"data": self.data_path, "cond": self.cond, "mirror": self.mirror, "seed": self.seed,
                "snap": self.snap, "tick": self.tick, "threads": self.threads, "allow_tf32": self.allow_tf32,
                "channels_last": self.channels_last,
                "metrics": self.metrics, "resume_from": resume_from, "config": self.cfg.to_dict(),
                "dataset_len": len(self.dataset)}

    def _save_changed_options(self, saved: dict[str, Any]) -> None:
        """A continued run keeps what was changed for it (options.CHANGEABLE_ON_RESUME): training_options.json
        is rewritten, so a later plain --resume goes on with the new settings; the log says what changed."""
        new = self._options_record(resume_from=saved.get("resume_from"))
        changes = changed_on_resume(saved, new)
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
        self.tick_idx = int(state["tick"]) + 1   # a snapshot closes its tick (run() writes it at a tick's end)
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        aug_state = state.get("augment")
        if self.ada is not None and aug_state is not None:
            self.ada.load_state_dict(aug_state)
        elif self.augment_pipe is not None and aug_state is not None:
            self.augment_pipe.p.fill_(float(aug_state["p"]))
        set_rng_state(state["rng"])
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
        return tuple(self._to_device(x) for x in (self._slice(z), self._slice(z2), self._slice(c), cutoff))

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A host tensor on the training device without waiting for it (pinned memory, non-blocking)."""
        if self.device.type != "cuda":
            return x.to(self.device)
        return x.pin_memory().to(self.device, non_blocking=True)

    def _global_noise(self, phase: int, n_global: int, rows: slice):
        """A noise source (ganforge.models.stylegan2.NoiseSource) for one G pass over `rows` of this
        rank's part of a global batch of n_global samples in `phase`: each layer's noise is drawn for the
        whole global batch from a generator seeded by (seed, step, phase, layer) and this rank's rows are
        taken, so the noise of a sample does not depend on the number of processes or on --batch-gpu."""
        cache = self._noise_cache
        names = self._noise_layer_ids

        def source(layer, batch, res, device):
            key = (phase, id(layer))
            if key not in cache:
                gen = torch.Generator(device=device)
                gen.manual_seed(step_seed(self.seed, self.step, LAYER_NOISE_BASE + 100 * phase + names[id(layer)]))
                full = torch.randn([n_global, 1, res, res], generator=gen, device=device)
                cache[key] = self._slice(full)
            return cache[key][rows]

        return source

    def _run_G(self, z, z2, c, cutoff, sync: bool, noise=None):
        """Style-mixed generator pass: ws = mix(mapping(z, c), mapping(z2, c), cutoff); img = synthesis(ws)
        with the per-pixel noise from `noise` (a _global_noise source). Also updates w_avg with the global
        batch mean of w (what the mapping network does in training)."""
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
        with dist_utils.ddp_sync(self.G_synthesis, sync):
            img = self.G_synthesis(ws, noise=noise)
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
        cfg = self.cfg
        gen = torch.Generator().manual_seed(step_seed(self.seed, self.step, LATENT_STREAM))
        self._noise_cache: dict = {}
        seed_global_streams(step_seed(self.seed, self.step, GLOBAL_STREAM_BASE + self.info.rank))  # ADA, per rank
        real_img = phases.to_float_images(real_img, self.device)
        real_c = real_c.to(self.device, non_blocking=True)
        mb = phases.Minibatch(gen, list(zip(real_img.split(cfg.batch_gpu), real_c.split(cfg.batch_gpu))))

        phases.generator_main(self, mb)
        if cfg.pl_weight > 0 and self.step % cfg.pl_interval == 0:
            phases.generator_path_length(self, mb)
        phases.discriminator_main(self, mb)
        if cfg.gamma > 0 and self.step % cfg.r1_interval == 0:
            phases.discriminator_r1(self, mb)

        ema_nimg = ema_half_life_nimg(cfg.ema_kimg, self.cur_nimg, cfg.ema_rampup)
        update_ema(self.G_ema, self.G, ema_beta(cfg.batch, ema_nimg))
        self.cur_nimg += cfg.batch
        self.step += 1
        if self.ada is not None:
            self.ada.step()  # every ada.interval minibatches: p += sign(r_t - target) * ...
        return mb.stats

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
            "rng": rng_state(), "elapsed_s": self.elapsed(), "seed": self.seed,
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
        quiet_bar = not progress_enabled()
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


__all__ = ["TrainOptions", "Trainer", "train", "render_grid", "keep_freed_memory_for_reuse"]
