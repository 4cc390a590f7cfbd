"""Model registry: architecture name -> (Generator class, Discriminator class)."""

from __future__ import annotations

from typing import Any

from torch import nn


def _stylegan2():
    from ganforge.models import stylegan2

    return stylegan2.Generator, stylegan2.Discriminator


def _biggan():
    from ganforge.models import biggan

    return biggan.Generator, biggan.Discriminator


def _biggan_deep():
    from ganforge.models import biggan_deep

    return biggan_deep.Generator, biggan_deep.Discriminator


ARCHITECTURES = {"stylegan2": _stylegan2, "biggan": _biggan, "biggan-deep": _biggan_deep}


def is_style_based(G: nn.Module) -> bool:
    """Whether G samples through a mapping network and w's (StyleGAN2) rather than straight from (z, c)
    (BigGAN): style mixing, w truncation and projected w's apply only to the former."""
    return hasattr(G, "mapping") and hasattr(G, "synthesis")


def build(architecture: str, role: str, kwargs: dict[str, Any]) -> nn.Module:
    """Construct `role` ('G' or 'D') of `architecture` from its constructor kwargs."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    G_cls, D_cls = ARCHITECTURES[architecture]()
    if role == "G":
        return G_cls(**kwargs)
    if role == "D":
        return D_cls(**kwargs)
    raise ValueError(f"role must be 'G' or 'D', got {role!r}")


__all__ = ["ARCHITECTURES", "build", "is_style_based"]
