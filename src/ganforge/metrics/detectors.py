"""Build the feature networks from their weight files (see `weights` for lookup and verification).

`get_detector(kind, ...)` returns (module, identity): a module with NVIDIA's detector call convention
(`inception.FIDInceptionV3`, `vgg.VGG16` or a TorchScript module) and a string naming the exact weights
(their SHA-256s), which keys the on-disk statistics cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ganforge.errors import FormatError
from ganforge.formats.statedict import state_dict_mismatch
from ganforge.metrics import weights as W
from ganforge.metrics.inception import FIDInceptionV3
from ganforge.metrics.vgg import LPIPSHeads, VGG16


@dataclass
class DetectorOptions:
    """Where the weight files are and how to treat them (one per metrics run)."""

    files: list = field(default_factory=list)  # explicit --detector paths (kind sniffed from content)
    dirs: list = field(default_factory=list)  # extra --detector-dir directories
    verify: bool = True  # SHA-256 must match a published file
    fast: bool = True  # fold BatchNorm into convs, channels_last (same numbers within float rounding)


def _load_strict(module: torch.nn.Module, sd: dict, path, what: str, assign: bool = False):
    """load_state_dict(strict=True) with a one-line FormatError naming the first differences.
    assign=True adopts the file's tensors (the module may then be built on the meta device)."""
    missing, unexpected, wrong = state_dict_mismatch(module.state_dict(), sd)
    if missing or unexpected or wrong:
        raise FormatError(f"{path}: not the {what} layout (missing {missing[:3]}, unexpected {unexpected[:3]}, "
                          f"wrong shape {wrong[:3]})")
    module.load_state_dict(sd, strict=True, assign=assign)


def build_inception(sd: dict, path="<state dict>", fast: bool = True) -> FIDInceptionV3:
    """FIDInceptionV3 from a state dict with pytorch-fid's key layout (num_batches_tracked optional)."""
    net = FIDInceptionV3()
    sd = dict(sd)
    for k in net.state_dict():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros((), dtype=torch.long)
    _load_strict(net, sd, path, "pt_inception-2015-12-05 (pytorch-fid)")
    if fast:
        net.fuse_().use_channels_last_()
    return net


def build_vgg16(sd: dict, path="<state dict>", lpips_sd: dict | None = None, lpips_path="<lpips>",
                with_classifier: bool = True) -> VGG16:
    """VGG16 from a torchvision-layout state dict; optional LPIPS v0.1 heads (lin0..4.model.1.weight)."""
    with torch.device("meta"):  # no 138M-parameter random init: the file's tensors are adopted
        net = VGG16(with_classifier=with_classifier)
    if not with_classifier:
        sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    _load_strict(net, {k: v.float() for k, v in sd.items()}, path, "torchvision vgg16", assign=True)
    if lpips_sd is not None:
        heads = LPIPSHeads()
        _load_strict(heads, {k: v.float() for k, v in lpips_sd.items()}, lpips_path, "lpips v0.1 vgg.pth")
        net.lpips = heads
    return net


_LOADED: dict = {}


def _load_file(kind: str, opts: DetectorOptions):
    path = W.find_detector(kind, opts.files, opts.dirs)
    digest = W.verify_detector(path, kind, opts.verify)
    return path, digest, W.is_torchscript(path)


def get_detector(kind: str, opts: DetectorOptions | None = None, device="cpu"):
    """(module, identity) for kind in {'inception', 'vgg16', 'lpips'}; modules are cached per process.

    'vgg16' needs only the trunk + classifier; 'lpips' needs the trunk convs plus the LPIPS heads, unless
    the VGG16 file is NVIDIA's TorchScript vgg16.pt, which embeds them.
    """
    opts = opts or DetectorOptions()
    device = torch.device(device)
    if kind == "inception":
        path, digest, script = _load_file("inception", opts)
        key = ("inception", digest, str(device), opts.fast)
        if key not in _LOADED:
            if script:
                net = torch.jit.load(str(path), map_location=device).eval()
            else:
                net = build_inception(W.read_state_dict(path), path, fast=opts.fast).to(device)
            _LOADED[key] = net
        return _LOADED[key], f"inception:{digest[:16]}"
    if kind in ("vgg16", "lpips"):
        path, digest, script = _load_file("vgg16", opts)
        if script:
            key = ("vgg16-script", digest, str(device))
            if key not in _LOADED:
                _LOADED[key] = torch.jit.load(str(path), map_location=device).eval()
            return _LOADED[key], f"vgg16:{digest[:16]}"
        if kind == "vgg16":
            key = ("vgg16", digest, str(device))
            if key not in _LOADED:
                _LOADED[key] = build_vgg16(W.read_state_dict(path), path).to(device)
            return _LOADED[key], f"vgg16:{digest[:16]}"
        lpath, ldigest, _ = _load_file("lpips", opts)
        key = ("lpips", digest, ldigest, str(device))
        if key not in _LOADED:
            _LOADED[key] = build_vgg16(W.read_state_dict(path), path, W.read_state_dict(lpath), lpath,
                                       with_classifier=False).to(device)
        return _LOADED[key], f"vgg16:{digest[:16]}+lpips:{ldigest[:16]}"
    raise ValueError(f"unknown detector kind {kind!r}")
