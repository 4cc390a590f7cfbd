"""Facts about a network: parameter counts and FLOPs per image."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def count_params(net: nn.Module | None) -> int:
    return 0 if net is None else sum(p.numel() for p in net.parameters())


@torch.no_grad()
def generator_flops(G: nn.Module) -> int:
    """Floating-point operations (multiply and add counted separately) to make one image with G, counted
    by PyTorch's FlopCounterMode on a batch of 1 (matrix products and convolutions): for StyleGAN2
    mapping + synthesis with constant noise (the FIR filters included), for BigGAN the whole G(z, c)
    in eval mode (the spectral-norm matrix-vector products included)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ganforge.models import is_style_based

    device = next(G.parameters()).device
    z = torch.zeros([1, G.z_dim], device=device)
    c = torch.zeros([1, G.c_dim], device=device)
    if G.c_dim:
        c[:, 0] = 1
    was_training = G.training
    G.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        if is_style_based(G):
            G(z, c, noise_mode="const", fused_modconv=False)
        else:
            G(z, c)
    G.train(was_training)
    return int(counter.get_total_flops())


def describe(ckpt: Any) -> dict[str, Any]:
    G = ckpt.G_ema
    from ganforge.models import is_style_based

    if not is_style_based(G):
        return _describe_biggan(ckpt)
    syn_kwargs = G.init_kwargs.get("synthesis_kwargs", {})
    map_kwargs = G.init_kwargs.get("mapping_kwargs", {})
    flops = generator_flops(G)
    info = {
        "architecture": ckpt.config.get("architecture", "stylegan2"),
        "source format": ckpt.config.get("source_format", ckpt.config.get("format", "ganforge")),
        "resolution": f"{G.img_resolution}x{G.img_resolution}",
        "image channels": G.img_channels,
        "conditioning": f"{G.c_dim} classes" if G.c_dim else "unconditional",
        "z_dim / w_dim": f"{G.z_dim} / {G.w_dim}",
        "num_ws": G.num_ws,
        "mapping layers": map_kwargs.get("num_layers", 8),
        "synthesis": f"{syn_kwargs.get('architecture', 'skip')}, channel_base {syn_kwargs.get('channel_base', 32768)}, "
                     f"channel_max {syn_kwargs.get('channel_max', 512)}",
        "G parameters": f"{count_params(G):,}",
        "D parameters": f"{count_params(ckpt.D):,}" if ckpt.D is not None else "none stored",
        "G GFLOP per image": round(flops / 1e9, 3),
    }
    training = ckpt.config.get("training") or {}
    if "kimg" in training:
        info["trained kimg"] = training["kimg"]
    return info


def _describe_biggan(ckpt: Any) -> dict[str, Any]:
    G = ckpt.G_ema
    kw = G.init_kwargs
    n_stats = kw.get("n_stats", 1)
    info = {
        "architecture": ckpt.config.get("architecture", "biggan"),
        "source format": ckpt.config.get("source_format", ckpt.config.get("format", "ganforge")),
        "resolution": f"{G.img_resolution}x{G.img_resolution}",
        "image channels": G.img_channels,
        "conditioning": f"{G.c_dim} classes" + (" (ImageNet; --class also takes names)" if G.c_dim == 1000 else ""),
        "z_dim / embed_dim": f"{G.z_dim} / {kw.get('embed_dim')}",
        "channel width": kw.get("channel_width"),
        "attention at": ", ".join(str(r) for r in kw.get("attention") or ()) or "none",
        "truncation": (f"{G.truncation_mode} (default)"
                       + (f"; batch-norm statistics for {n_stats} truncation values" if n_stats > 1 else "")),
        "spectral norm in eval": kw.get("sn_eval_mode", "stored"),
        "G parameters": f"{count_params(G):,}",
        "D parameters": f"{count_params(ckpt.D):,}" if ckpt.D is not None else "none stored",
        "G GFLOP per image": round(generator_flops(G) / 1e9, 3),
    }
    training = ckpt.config.get("training") or {}
    if "kimg" in training:
        info["trained kimg"] = training["kimg"]
    return info
