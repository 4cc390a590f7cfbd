"""Training presets, as data: NVIDIA's `--cfg` table of stylegan2-ada-pytorch (train.py cfg_specs)
plus 'small', sized to learn something on a CPU in minutes.

A Preset fixes the network size and the optimisation hyper-parameters; `resolve()` turns it into
concrete numbers for a dataset resolution and a number of GPUs (needed by 'auto', whose values are
formulas). Numbers are from shared/reference/nvlabs.md §1.4.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ganforge.errors import UsageError
from ganforge.train.distributed import split_batch
from ganforge.train.loss import PL_INTERVAL, PL_WEIGHT, R1_INTERVAL, STYLE_MIXING_PROB


@dataclass(frozen=True)
class Preset:
    """One row of the --cfg table. `None` in ref_gpus / batch / gamma / ... means 'formula' (auto)."""

    name: str
    description: str
    ref_gpus: int | None            # GPUs the preset was tuned for (batch_gpu = batch // ref_gpus)
    kimg: float
    batch: int | None               # total minibatch
    mbstd_group: int | None         # minibatch-stddev group size (per GPU)
    channel_base: int | None
    channel_max: int = 512
    lr: float | None = 0.0025       # same for G and D
    gamma: float | None = 1.0       # R1 weight
    ema_kimg: float | None = 10.0   # EMA half-life
    ema_rampup: float | None = None
    map_layers: int = 8
    z_dim: int = 512
    w_dim: int = 512
    pl_weight: float = PL_WEIGHT
    style_mixing_prob: float = STYLE_MIXING_PROB
    d_architecture: str = "resnet"
    g_architecture: str = "skip"
    resolution: int | None = None   # the resolution the preset is named for (checked), None: any
    num_fp16_res: int = 4           # mixed precision on the last 4 resolutions (CUDA only; CPU runs fp32)
    conv_clamp: float | None = 256
    r1_interval: int = R1_INTERVAL
    pl_interval: int = PL_INTERVAL


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("auto", "NVIDIA's default: batch, gamma, width and EMA from resolution and GPU count",
           ref_gpus=None, kimg=25000, batch=None, mbstd_group=None, channel_base=None, lr=None, gamma=None,
           ema_kimg=None, ema_rampup=0.05, map_layers=2),
    Preset("stylegan2", "StyleGAN2 config F (paper setup, 8 GPUs, mixed precision)",
           ref_gpus=8, kimg=25000, batch=32, mbstd_group=4, channel_base=32768, lr=0.002, gamma=10,
           ema_kimg=10, ema_rampup=None, map_layers=8),
    Preset("paper256", "StyleGAN2-ADA paper, 256x256", ref_gpus=8, kimg=25000, batch=64, mbstd_group=8,
           channel_base=16384, lr=0.0025, gamma=1, ema_kimg=20, ema_rampup=None, map_layers=8, resolution=256),
    Preset("paper512", "StyleGAN2-ADA paper, 512x512", ref_gpus=8, kimg=25000, batch=64, mbstd_group=8,
           channel_base=32768, lr=0.0025, gamma=0.5, ema_kimg=20, ema_rampup=None, map_layers=8, resolution=512),
    Preset("paper1024", "StyleGAN2-ADA paper, 1024x1024", ref_gpus=8, kimg=25000, batch=32, mbstd_group=4,
           channel_base=32768, lr=0.002, gamma=2, ema_kimg=10, ema_rampup=None, map_layers=8, resolution=1024),
    Preset("cifar", "StyleGAN2-ADA paper, CIFAR-10 32x32", ref_gpus=2, kimg=100000, batch=64, mbstd_group=32,
           channel_base=32768, lr=0.0025, gamma=0.01, ema_kimg=500, ema_rampup=0.05, map_layers=2,
           pl_weight=0, style_mixing_prob=0, d_architecture="orig", resolution=32),
    Preset("small", "ganforge's CPU preset: a 32x32-sized net that learns Fashion-MNIST in minutes",
           ref_gpus=1, kimg=1000, batch=32, mbstd_group=4, channel_base=2048, channel_max=64, lr=0.0025,
           gamma=0.1, ema_kimg=1.0, ema_rampup=0.05, map_layers=2, z_dim=64, w_dim=64,
           num_fp16_res=0, conv_clamp=None),
]}


@dataclass
class ResolvedConfig:
    """Concrete training hyper-parameters (everything the loop reads), JSON-serialisable."""

    cfg: str
    resolution: int
    img_channels: int
    c_dim: int
    gpus: int
    kimg: float
    batch: int                 # global batch
    batch_gpu: int             # per-GPU batch per accumulation round
    mbstd_group: int
    lr: float
    gamma: float
    ema_kimg: float
    ema_rampup: float | None
    pl_weight: float
    style_mixing_prob: float
    r1_interval: int
    pl_interval: int
    G_kwargs: dict[str, Any] = field(default_factory=dict)
    D_kwargs: dict[str, Any] = field(default_factory=dict)
    # Discriminator augmentation (Karras et al. 2020, ADA). Runs saved before these fields existed
    # continue without augmentation, as they were trained.
    aug: str = "noaug"         # noaug | ada | fixed
    augpipe: str = "bgc"       # ganforge.train.augment.AUGPIPE_SPECS
    aug_p: float = 0.0         # initial p (fixed: the constant p)
    ada_target: float = 0.6    # ADA: target of r_t = E[sign(D(real))]
    ada_kimg: float = 500      # ADA: p can move from 0 to 1 in this many kimg (100 when fine-tuning)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


AUG_MODES = ("noaug", "ada", "fixed")


def resolve_augment(aug: str | None, p: float | None, target: float | None, augpipe: str | None,
                    finetune: bool = False, ada_kimg: float | None = None) -> dict[str, Any]:
    """NVIDIA's --aug/--p/--target/--augpipe rules (train.py), as ResolvedConfig fields.

    aug 'ada' (default): p starts at 0 and follows the overfitting heuristic towards `target` (0.6);
    'fixed': p is the constant --p (required); 'noaug': D sees the images as they are.
    --p only with fixed, --target only with ada, --augpipe not with noaug. Fine-tuning from a
    pretrained network lets p move 5x faster (ada_kimg 100 instead of 500), as NVIDIA's --resume does;
    `ada_kimg` overrides either.
    """
    from ganforge.train.augment import ADA_KIMG, ADA_KIMG_TRANSFER, ADA_TARGET, AUGPIPE_SPECS, DEFAULT_AUGPIPE

    aug = aug or "ada"
    if aug not in AUG_MODES:
        raise UsageError(f"unknown --aug {aug!r}; choose one of {', '.join(AUG_MODES)}")
    if p is not None and aug != "fixed":
        raise UsageError("--p can only be given with --aug fixed")
    if aug == "fixed" and p is None:
        raise UsageError("--aug fixed needs --p (the constant augmentation probability, 0..1)")
    if p is not None and not 0 <= p <= 1:
        raise UsageError(f"--p must be between 0 and 1, got {p}")
    if target is not None and aug != "ada":
        raise UsageError("--target can only be given with --aug ada")
    if target is not None and not 0 <= target <= 1:
        raise UsageError(f"--target must be between 0 and 1, got {target}")
    if augpipe is not None and aug == "noaug":
        raise UsageError("--augpipe cannot be given with --aug noaug")
    if ada_kimg is not None and aug != "ada":
        raise UsageError("--ada-kimg can only be given with --aug ada")
    if ada_kimg is not None and not ada_kimg > 0:
        raise UsageError(f"--ada-kimg must be positive, got {ada_kimg}")
    augpipe = augpipe or DEFAULT_AUGPIPE
    if augpipe not in AUGPIPE_SPECS:
        raise UsageError(f"unknown --augpipe {augpipe!r}; choose one of {', '.join(AUGPIPE_SPECS)}")
    return {"aug": aug, "augpipe": augpipe, "aug_p": float(p or 0.0),
            "ada_target": float(ADA_TARGET if target is None else target),
            "ada_kimg": float(ada_kimg if ada_kimg is not None else ADA_KIMG_TRANSFER if finetune else ADA_KIMG)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UsageError(f"unknown --cfg {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def resolve(name: str, resolution: int, img_channels: int, c_dim: int, gpus: int = 1, *,
            gamma: float | None = None, kimg: float | None = None, batch: int | None = None,
            batch_gpu: int | None = None, channel_base: int | None = None, channel_max: int | None = None,
            map_layers: int | None = None, mbstd_group: int | None = None, lr: float | None = None,
            ema_kimg: float | None = None, fp32: bool = False) -> ResolvedConfig:
    """Concrete numbers for preset `name` on a dataset of `resolution` with `gpus` ranks, with the
    command line's overrides (None: the preset's value)."""
    p = get_preset(name)
    if p.resolution is not None and resolution != p.resolution:
        raise UsageError(f"--cfg {name} is for {p.resolution}x{p.resolution} images but the dataset is "
                         f"{resolution}x{resolution}; use --cfg auto (or stylegan2/small), or rebuild the "
                         f"dataset with `ganforge dataset --resolution {p.resolution}`")
    if gpus < 1:
        raise UsageError("--gpus must be at least 1")
    if p.name == "auto":
        res = resolution
        mb = max(min(gpus * min(4096 // res, 32), 64), gpus)
        ref_gpus = gpus
        mbstd = min(mb // gpus, 4)
        cbase = 32768 if res >= 512 else 16384
        p_lr = 0.002 if res >= 1024 else 0.0025
        p_gamma = 0.0002 * (res ** 2) / mb
        p_ema = mb * 10 / 32
    else:
        mb, ref_gpus, mbstd, cbase = p.batch, p.ref_gpus, p.mbstd_group, p.channel_base
        p_lr, p_gamma, p_ema = p.lr, p.gamma, p.ema_kimg
    total = batch if batch is not None else mb
    if batch is None and batch_gpu is None:
        batch_gpu = max(mb // ref_gpus, 1)      # NVIDIA: the preset's per-GPU batch; accumulate to `mb`
        batch_gpu = min(batch_gpu, total // gpus) if total >= gpus else batch_gpu
    per_gpu, batch_gpu = split_batch(total, gpus, batch_gpu)
    mbstd = mbstd_group if mbstd_group is not None else mbstd
    mbstd = min(mbstd, batch_gpu)
    if batch_gpu % mbstd != 0:
        raise UsageError(f"the per-GPU batch {batch_gpu} must be a multiple of the minibatch-stddev group "
                         f"size {mbstd}; change --batch-gpu or --mbstd-group")
    cbase = channel_base if channel_base is not None else cbase
    cmax = channel_max if channel_max is not None else p.channel_max
    layers = map_layers if map_layers is not None else p.map_layers
    fp16 = 0 if fp32 else p.num_fp16_res
    clamp = None if fp32 else p.conv_clamp
    G_kwargs = dict(z_dim=p.z_dim, c_dim=c_dim, w_dim=p.w_dim, img_resolution=resolution, img_channels=img_channels,
                    mapping_kwargs=dict(num_layers=layers),
                    synthesis_kwargs=dict(channel_base=cbase, channel_max=cmax, num_fp16_res=fp16, conv_clamp=clamp,
                                          architecture=p.g_architecture))
    D_kwargs = dict(c_dim=c_dim, img_resolution=resolution, img_channels=img_channels, architecture=p.d_architecture,
                    channel_base=cbase, channel_max=cmax, num_fp16_res=fp16, conv_clamp=clamp,
                    epilogue_kwargs=dict(mbstd_group_size=mbstd))
    return ResolvedConfig(
        cfg=name, resolution=resolution, img_channels=img_channels, c_dim=c_dim, gpus=gpus,
        kimg=float(kimg if kimg is not None else p.kimg), batch=total, batch_gpu=batch_gpu, mbstd_group=mbstd,
        lr=float(lr if lr is not None else p_lr), gamma=float(gamma if gamma is not None else p_gamma),
        ema_kimg=float(ema_kimg if ema_kimg is not None else p_ema), ema_rampup=p.ema_rampup,
        pl_weight=p.pl_weight, style_mixing_prob=p.style_mixing_prob, r1_interval=p.r1_interval,
        pl_interval=p.pl_interval, G_kwargs=G_kwargs, D_kwargs=D_kwargs)


__all__ = ["AUG_MODES", "resolve_augment", "Preset", "PRESETS", "ResolvedConfig", "get_preset", "resolve"]
