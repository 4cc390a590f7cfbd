"""Checkpoints: the native format and readers/writers of other tools' formats.

`load(path)` detects the format by content (never by extension): each reader module in READERS
exposes `sniff(path) -> bool` and `read(path, device) -> Checkpoint`; the first that recognises
the file reads it. Nothing here ever executes code from a file.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ganforge.errors import FormatError, UsageError

READERS = ["native", "nvidia_pkl", "tf_pkl", "hf_biggan", "biggan_pytorch", "rosinality"]


@dataclass
class Checkpoint:
    """Networks of one training snapshot. G_ema is what you sample from; D is None when absent."""

    G: nn.Module | None
    G_ema: nn.Module | None
    D: nn.Module | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.G_ema is None:
            self.G_ema = self.G
        if self.G is None:
            self.G = self.G_ema

    @property
    def architecture(self) -> str:
        return self.config.get("architecture", "stylegan2")

    @property
    def class_names(self) -> list[str] | None:
        """The classes' names when the checkpoint stores them (config "class_names", or the training
        dataset's, recorded by `ganforge train`), one per class of G; else None (ImageNet networks get
        their names from ganforge.data.imagenet instead)."""
        names = self.config.get("class_names")
        if names is None:
            names = (self.config.get("training") or {}).get("class_names")
        c_dim = getattr(self.G_ema, "c_dim", 0)
        if isinstance(names, list) and c_dim and len(names) == c_dim:
            return [str(n) for n in names]
        return None

    def save(self, path: str | os.PathLike) -> None:
        from ganforge.formats import native

        native.save(self, path)

    def to(self, device) -> "Checkpoint":
        for net in {id(n): n for n in (self.G, self.G_ema, self.D) if n is not None}.values():
            net.to(device)
        return self


def _reader(name: str):
    """The reader module ganforge.formats.<name>; every name in READERS must import (a missing one is a bug)."""
    return importlib.import_module(f"ganforge.formats.{name}")


def run_dir_snapshot(path: str) -> str:
    """A training run directory (it holds training_options.json) -> its latest complete snapshot, as
    `train --resume RUN_DIR` picks it; any other path is returned as is."""
    from ganforge.train import rundir

    if not (os.path.isdir(path) and rundir.is_run_dir(path)):
        return path
    snap = rundir.latest_snapshot(path)
    if snap is None:
        raise UsageError(f"{path} is a training run directory without a snapshot yet; wait for the first "
                         "snapshot or pass a checkpoint")
    return snap


def load(path: str | os.PathLike, device="cpu") -> Checkpoint:
    """Read a checkpoint of any supported format -> Checkpoint (networks in eval mode on `device`)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{path} does not exist; pass a checkpoint directory or file with --network")
    if os.path.isfile(path) and not os.access(path, os.R_OK):
        raise UsageError(f"{path} is not readable (check its permissions)")
    path = run_dir_snapshot(path)
    for name in READERS:
        reader = _reader(name)
        if reader.sniff(path):
            ckpt = reader.read(path, device=device)
            for net in (ckpt.G, ckpt.G_ema, ckpt.D):
                if net is not None:
                    net.eval().requires_grad_(False)
            for net in (ckpt.G, ckpt.G_ema):  # so that --class NAME resolves with the network alone
                if net is not None and ckpt.class_names:
                    net.class_names = ckpt.class_names
            return ckpt
    known = ", ".join(READERS)
    raise FormatError(f"{path} is not a checkpoint ganforge can read (known formats: {known}); "
                      "use a ganforge directory (config.json + model.safetensors), a published StyleGAN2 file, a "
                      "pytorch-pretrained-BigGAN folder (config.json + pytorch_model.bin) or a BigGAN-PyTorch weights "
                      "folder (G.pth, D.pth, state_dict.pth)")


__all__ = ["Checkpoint", "load", "READERS"]
