"""The native checkpoint: a directory holding config.json and model.safetensors.

config.json   {"format": "ganforge", "format_version": 1, "architecture": "stylegan2",
               "G_kwargs": {...every constructor argument...}, "D_kwargs": {...} | null,
               "resolution": R, "img_channels": C, "c_dim": K, "has": ["G", "G_ema", "D"],
               "training": {...optional metadata...}}
model.safetensors  tensors only, keys "G.<state-dict key>", "G_ema.<...>", "D.<...>"
                   (mapping.w_avg is one of them). When G and G_ema are the same object only
                   "G_ema." is written.

Loading never unpickles anything. Writing is atomic: files go to a temporary directory beside the
target, are fsynced, and replace the target in one rename, so an interrupted save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganforge.errors import FormatError, UsageError
from ganforge.formats import Checkpoint
from ganforge.fsutil import current_umask, fsync_dir, replace_dir
from ganforge.models import build

FORMAT_NAME = "ganforge"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ROLES = ("G", "G_ema", "D")


def _paths(path: str) -> tuple[str, str]:
    """Accept the directory, or its config.json / model.safetensors."""
    if os.path.isfile(path) and os.path.basename(path) in (CONFIG_NAME, WEIGHTS_NAME):
        path = os.path.dirname(path) or "."
    return os.path.join(path, CONFIG_NAME), os.path.join(path, WEIGHTS_NAME)


def sniff(path: str) -> bool:
    """A ganforge checkpoint: config.json says format 'ganforge'. A damaged config.json beside a
    model.safetensors is claimed too, so that load() says what is wrong with it instead of the caller
    reporting an unknown format."""
    cfg_path, weights_path = _paths(path)
    if not os.path.isfile(cfg_path):
        return False
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return os.path.isfile(weights_path)
    return isinstance(cfg, dict) and cfg.get("format") == FORMAT_NAME


def make_config(ckpt: Checkpoint) -> dict[str, Any]:
    G = ckpt.G_ema if ckpt.G_ema is not None else ckpt.G
    cfg = {k: v for k, v in ckpt.config.items() if k not in ("format", "format_version")}
    cfg.update({
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": ckpt.architecture,
        "G_kwargs": G.init_kwargs,
        "D_kwargs": ckpt.D.init_kwargs if ckpt.D is not None else None,
        "resolution": G.img_resolution,
        "img_channels": G.img_channels,
        "c_dim": G.c_dim,
        "has": [r for r in ROLES if _role_net(ckpt, r) is not None],
    })
    return cfg


def _role_net(ckpt: Checkpoint, role: str):
    if role == "G" and ckpt.G is ckpt.G_ema:
        return None  # one generator: stored once, as G_ema
    return getattr(ckpt, role)


def save(ckpt: Checkpoint, path: str | os.PathLike) -> None:
    """Write `ckpt` as a native checkpoint directory at `path`, atomically."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {parent}: {e.strerror}; choose a writable location") from None
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{path} exists and is not a directory; choose another output path")
    cfg = make_config(ckpt)
    tensors = {}
    for role in ROLES:
        net = _role_net(ckpt, role)
        if net is not None:
            for k, v in net.state_dict().items():
                tensors[f"{role}.{k}"] = v.detach().to("cpu").contiguous()
    try:
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; a checkpoint is an ordinary directory
    except OSError as e:
        raise UsageError(f"cannot write to {parent}: {e.strerror}; choose a writable location") from None
    try:
        save_file(tensors, os.path.join(tmp, WEIGHTS_NAME), metadata={"format": FORMAT_NAME})
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            with open(os.path.join(tmp, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(tmp)
        replace_dir(tmp, path)
        fsync_dir(parent)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"could not write checkpoint {path}: {e.strerror or e}; "
                         "free some disk space or choose another location (nothing was overwritten)") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_config(path: str) -> dict[str, Any]:
    cfg_path, _ = _paths(path)
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise FormatError(f"{cfg_path} is unreadable or not JSON ({e}); the checkpoint is damaged") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT_NAME:
        raise FormatError(f"{cfg_path} is not a ganforge config")
    if int(cfg.get("format_version", 0)) > FORMAT_VERSION:
        raise FormatError(f"{path} was written by a newer ganforge (format {cfg['format_version']}); upgrade ganforge")
    return cfg


# Layout switches that earlier ganforge StyleGAN2 constructors accepted (and ignored); the memory layout is
# now a run-time setting (Generator.set_channels_last), so configs that recorded them drop them on load.
_LEGACY_LAYOUT_KWARGS = ("fp16_channels_last", "channels_last")


def _without_legacy_layout_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in kwargs.items() if k not in _LEGACY_LAYOUT_KWARGS}
    for sub in ("synthesis_kwargs", "block_kwargs", "epilogue_kwargs"):
        if isinstance(out.get(sub), dict):
            out[sub] = {k: v for k, v in out[sub].items() if k not in _LEGACY_LAYOUT_KWARGS}
    return out


def load(path: str | os.PathLike, device="cpu") -> Checkpoint:
    path = os.fspath(path)
    cfg = read_config(path)
    _, weights_path = _paths(path)
    try:
        tensors = load_file(weights_path, device=str(device))
    except (OSError, SafetensorError, ValueError) as e:
        raise FormatError(f"{weights_path} is missing or damaged ({e}); the checkpoint cannot be read") from None
    arch = cfg.get("architecture", "stylegan2")
    nets: dict[str, Any] = {}
    for role in ROLES:
        prefix = f"{role}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            nets[role] = None
            continue
        kwargs = cfg["D_kwargs"] if role == "D" else cfg["G_kwargs"]
        if kwargs is None:
            raise FormatError(f"{path}: weights for {role} but no constructor arguments in config.json")
        if arch == "stylegan2":
            kwargs = _without_legacy_layout_kwargs(kwargs)
        net = build(arch, "D" if role == "D" else "G", kwargs)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise FormatError(f"{path}: stored {role} tensors do not match the declared architecture "
                              f"({' '.join(first[:2])[:300]})") from None
        nets[role] = net.to(device)
    if nets["G"] is None and nets["G_ema"] is None:
        raise FormatError(f"{path} holds no generator weights")
    return Checkpoint(G=nets["G"], G_ema=nets["G_ema"], D=nets["D"], config=cfg)


read = load
