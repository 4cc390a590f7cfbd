"""Comparing a state dict with what a module expects, for one-line errors that name the differences."""

from __future__ import annotations

from typing import Mapping


def state_dict_mismatch(expected: Mapping, given: Mapping) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, 'key given-shape != expected-shape' entries) of `given`
    against `expected` (both name -> tensor); three empty lists when they match."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [f"{k} {list(given[k].shape)} != {list(v.shape)}" for k, v in expected.items()
             if k in given and tuple(given[k].shape) != tuple(v.shape)]
    return missing, unexpected, wrong


__all__ = ["state_dict_mismatch"]
