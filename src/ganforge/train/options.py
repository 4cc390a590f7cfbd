"""What `ganforge train` accepts, and the rules for continuing a run.

A new run resolves its options into training_options.json (rundir.OPTIONS_NAME). A continued run
(`--resume RUN_DIR`) takes everything from there; the settings that define the model and its optimisation
(FIXED_ON_RESUME) cannot change, the schedule and the hardware can (CHANGEABLE_ON_RESUME), and what
was changed is written back, so a later plain `--resume` goes on with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganforge.errors import UsageError


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
    channels_last: bool | None = None  # feature-map layout: None auto (CPU channels_last), True, False


# Flags that define the run: continuing it with another value would be another run.
FIXED_ON_RESUME = {"cfg": "--cfg", "gamma": "--gamma", "batch": "--batch", "cbase": "--cbase", "cmax": "--cmax",
                   "map_depth": "--map-depth", "mbstd_group": "--mbstd-group", "lr": "--lr",
                   "ema_kimg": "--ema-kimg", "cond": "--cond", "mirror": "--mirror", "fp32": "--fp32",
                   "no_noise": "--no-noise", "run_dir": "--run-dir", "aug": "--aug", "p": "--p",
                   "target": "--target", "augpipe": "--augpipe", "ada_kimg": "--ada-kimg"}
# What a continued run may change (top-level keys of training_options.json; kimg, gpus and batch_gpu
# live in its "config").
CHANGEABLE_ON_RESUME = ("data", "snap", "tick", "threads", "allow_tf32", "channels_last", "metrics")
CHANGEABLE_CONFIG_ON_RESUME = ("kimg", "gpus", "batch_gpu")


def check_fixed_on_resume(opts: TrainOptions, options_name: str) -> None:
    """UsageError naming every FIXED_ON_RESUME flag that was given when continuing a run."""
    given = [flag for key, flag in FIXED_ON_RESUME.items()
             if getattr(opts, key) is not None and getattr(opts, key) is not False]
    if given:
        raise UsageError(f"{', '.join(given)} cannot change when continuing a run (its settings are in "
                         f"{options_name}); to fine-tune with new settings, start a new run with "
                         "--resume <run>/network-snapshot-...")


def changed_on_resume(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'key old -> new' for each changeable setting that differs between two option records."""
    changes = [f"{k} {saved.get(k)!r} -> {new[k]!r}" for k in CHANGEABLE_ON_RESUME if saved.get(k) != new[k]]
    old_cfg = saved.get("config", {})
    changes += [f"{k} {old_cfg.get(k)!r} -> {new['config'][k]!r}" for k in CHANGEABLE_CONFIG_ON_RESUME
                if old_cfg.get(k) != new["config"][k]]
    return changes


__all__ = ["TrainOptions", "FIXED_ON_RESUME", "CHANGEABLE_ON_RESUME", "check_fixed_on_resume", "changed_on_resume"]
