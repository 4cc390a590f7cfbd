"""Model registry: architecture name -> (Generator class, Discriminator class)."""

from __future__ import annotations

from typing import Any

from torch import nn


def _stylegan2():
    from ganforge.models import stylegan2

    return stylegan2.Generator, stylegan2.Discriminator


ARCHITECTURES = {"stylegan2": _stylegan2}


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


__all__ = ["ARCHITECTURES", "build"]
