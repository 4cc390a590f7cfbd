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


# describe()'s keys: stable, snake_case, typed (ints, floats, strings, lists, or None where absent), in the order
# the text view prints them, with that view's label.
LABELS = {
    "architecture": "architecture",
    "source_format": "source format",
    "resolution": "resolution",
    "image_channels": "image channels",
    "c_dim": "classes",
    "class_names": "class names",
    "z_dim": "z_dim",
    "w_dim": "w_dim",
    "embed_dim": "embed_dim",
    "num_ws": "num_ws",
    "mapping_layers": "mapping layers",
    "synthesis_architecture": "synthesis",
    "channel_base": "channel_base",
    "channel_max": "channel_max",
    "channel_width": "channel width",
    "attention_resolutions": "attention at",
    "truncation_mode": "truncation",
    "truncation_stat_tables": "truncation tables",
    "sn_eval_mode": "spectral norm in eval",
    "g_parameters": "G parameters",
    "d_parameters": "D parameters",
    "g_gflop_per_image": "G GFLOP per image",
    "trained_kimg": "trained kimg",
}


def describe(ckpt: Any) -> dict[str, Any]:
    """What `ganforge info --json` prints: typed values under the stable keys of LABELS. Keys that do not
    apply to the architecture are left out; values the checkpoint lacks are None (d_parameters without a
    stored D, class_names when the checkpoint records none, trained_kimg when it was not trained by us)."""
    G = ckpt.G_ema
    from ganforge.models import is_style_based

    info: dict[str, Any] = {
        "architecture": ckpt.config.get("architecture", "stylegan2" if is_style_based(G) else "biggan"),
        "source_format": ckpt.config.get("source_format", ckpt.config.get("format", "ganforge")),
        "resolution": int(G.img_resolution),
        "image_channels": int(G.img_channels),
        "c_dim": int(G.c_dim),
        "class_names": _class_names(ckpt),
        "z_dim": int(G.z_dim),
    }
    if is_style_based(G):
        syn_kwargs = G.init_kwargs.get("synthesis_kwargs", {})
        map_kwargs = G.init_kwargs.get("mapping_kwargs", {})
        info.update({
            "w_dim": int(G.w_dim),
            "num_ws": int(G.num_ws),
            "mapping_layers": int(map_kwargs.get("num_layers", 8)),
            "synthesis_architecture": syn_kwargs.get("architecture", "skip"),
            "channel_base": int(syn_kwargs.get("channel_base", 32768)),
            "channel_max": int(syn_kwargs.get("channel_max", 512)),
        })
    else:
        kw = G.init_kwargs
        info.update({
            "embed_dim": kw.get("embed_dim"),
            "channel_width": kw.get("channel_width"),
            "attention_resolutions": [int(r) for r in kw.get("attention") or ()],
            "truncation_mode": G.truncation_mode,
            "truncation_stat_tables": int(kw.get("n_stats", 1)),
            "sn_eval_mode": kw.get("sn_eval_mode", "stored"),
        })
    info.update({
        "g_parameters": count_params(G),
        "d_parameters": count_params(ckpt.D) if ckpt.D is not None else None,
        "g_gflop_per_image": round(generator_flops(G) / 1e9, 3),
        "trained_kimg": (ckpt.config.get("training") or {}).get("kimg"),
    })
    return info


def _class_names(ckpt: Any) -> list[str] | None:
    names = getattr(ckpt, "class_names", None)
    if names:
        return list(names)
    return None


def format_info(info: dict[str, Any]) -> list[str]:
    """The text view of describe(): one 'label: value' line per key, numbers with thousands separators."""
    lines = []
    for key, value in info.items():
        label = LABELS.get(key, key)
        if key == "c_dim":
            text = f"{value} (conditional)" if value else "0 (unconditional)"
            if value == 1000 and not info.get("class_names"):
                text += "; ImageNet: --class also takes names and WordNet ids"
        elif key == "class_names":
            if value is None:
                continue
            text = ", ".join(f"{k} {n}" for k, n in enumerate(value)) + " (--class takes these names)"
        elif key == "attention_resolutions":
            text = ", ".join(str(r) for r in value) or "none"
        elif key == "resolution":
            text = f"{value}x{value}"
        elif key == "d_parameters" and value is None:
            text = "none stored"
        elif key == "trained_kimg" and value is None:
            continue
        elif isinstance(value, int) and not isinstance(value, bool) and key.endswith("parameters"):
            text = f"{value:,}"
        else:
            text = str(value)
        lines.append(f"{label:>22}: {text}")
    return lines
