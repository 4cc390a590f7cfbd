"""Which w index drives which layer of a StyleGAN2 synthesis network, and the StyleGAN paper's
coarse / middle / fine layer groups.

NVIDIA's layout (SynthesisNetwork.block_ws): w index 0 drives b4.conv1; index 2k-1 drives b{4*2^k}.conv0
(and b{2^(k+1)}.torgb, which shares its w with the next conv0); index 2k drives b{4*2^k}.conv1; the last
index drives only the final ToRGB. For each w index the *modulated layer* is the synthesis conv that
reads it, or for the last index the final ToRGB: these are the layers genforce/sefa factorises
(its `layer{i}` and `output{last}`), and their resolution is the resolution the index feeds.
"""

from __future__ import annotations

import math

from torch import nn

from ganforge.errors import UsageError
from ganforge.synthesis.seeds import parse_range

# Karras et al. 2019 (StyleGAN) §3.1, "Style mixing": coarse = 4^2-8^2, middle = 16^2-32^2, fine = 64^2-1024^2.
LAYER_GROUPS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, math.inf)}


def modulated_layers(G) -> list[tuple[str, nn.Module, int]]:
    """For each w index i (0..num_ws-1): (name, layer, resolution) of the layer whose style affine reads
    w[:, i] and which SeFa factorises: the SynthesisLayer reading it, else (the last index) the final
    ToRGBLayer. Intermediate ToRGBs (architecture 'skip') share an index with the next conv0 and are
    left out, as genforce/sefa leaves them out."""
    syn = G.synthesis
    out: list[tuple[str, nn.Module, int] | None] = [None] * G.num_ws
    w_idx = 0
    for res in syn.block_resolutions:
        block = getattr(syn, f"b{res}")
        convs = ([] if block.in_channels == 0 else ["conv0"]) + ["conv1"]
        for k, name in enumerate(convs):
            out[w_idx + k] = (f"synthesis.b{res}.{name}", getattr(block, name), res)
        if block.num_torgb and out[w_idx + block.num_conv] is None and w_idx + block.num_conv < G.num_ws:
            out[w_idx + block.num_conv] = (f"synthesis.b{res}.torgb", block.torgb, res)
        w_idx += block.num_conv
    assert all(o is not None for o in out), "every w index drives a layer"
    return out  # type: ignore[return-value]


def w_resolutions(G) -> list[int]:
    """[num_ws] the resolution each w index feeds (that of its modulated layer)."""
    return [res for _, _, res in modulated_layers(G)]


def layer_group(G, name: str) -> list[int]:
    """The w indices of LAYER_GROUPS[name] for this network (may be empty for a small network)."""
    lo, hi = LAYER_GROUPS[name]
    return [i for i, r in enumerate(w_resolutions(G)) if lo <= r <= hi]


def describe_groups(G) -> str:
    parts = []
    for name in LAYER_GROUPS:
        idx = layer_group(G, name)
        if idx:
            parts.append(f"{name} ({idx[0]}-{idx[-1]})" if len(idx) > 1 else f"{name} ({idx[0]})")
    return ", ".join(parts)


def parse_layers(text: str, G) -> list[int]:
    """--layers: 'all', a group name (coarse, middle, fine) or w indices like '0-3,5' -> sorted unique
    indices in 0..num_ws-1; anything else is a UsageError."""
    text = (text or "").strip().lower()
    if text == "all":
        return list(range(G.num_ws))
    if text in LAYER_GROUPS:
        idx = layer_group(G, text)
        if not idx:
            lo, hi = LAYER_GROUPS[text]
            span = f"{lo}^2-1024^2" if hi == math.inf else f"{lo}^2-{hi}^2"
            raise UsageError(f"--layers {text}: this {G.img_resolution}-px network has no {text} layers ({span}); "
                             f"use {describe_groups(G)}, all, or indices 0-{G.num_ws - 1}")
        return idx
    if text and not text[0].isdigit():
        raise UsageError(f"--layers {text!r}: use all, coarse, middle, fine or w indices like 0-3")
    idx = parse_range(text, "layers")
    bad = [i for i in idx if i >= G.num_ws]
    if bad:
        raise UsageError(f"--layers: {bad[0]} is out of range; this network has {G.num_ws} layers of w (0-{G.num_ws - 1})")
    return sorted(set(idx))
