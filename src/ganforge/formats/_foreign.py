"""Helpers shared by the readers/writers of other tools' formats (NVIDIA, TensorFlow, rosinality).

- `pickle_kind(path)`: what a file is, from its first bytes and its first global name, found by
  walking opcodes with `pickletools.genops` (which parses and never executes).
- `build_network(role, kwargs, state, source)`: construct ganforge's network and load the tensors
  strictly, turning any mismatch into one clear FormatError line.
"""

from __future__ import annotations

import os
import pickletools
import zipfile
from typing import Any

import torch

from ganforge.errors import FormatError
from ganforge.formats.statedict import state_dict_mismatch
from ganforge.models import build

ZIP_MAGIC = b"PK\x03\x04"
TF_NETWORK = ("dnnlib.tflib.network", "Network")


def _first_global(f, max_ops: int = 5000) -> tuple[str, str] | None:
    """(module, name) of the first GLOBAL/STACK_GLOBAL/INST in a pickle stream, or None."""
    strings: list[str] = []
    try:
        for i, (op, arg, _pos) in enumerate(pickletools.genops(f)):
            if i >= max_ops or op.name == "STOP":
                return None
            if op.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                return module, name
            if op.name == "STACK_GLOBAL":
                return (strings[-2], strings[-1]) if len(strings) >= 2 else None
            if isinstance(arg, str) and "UNICODE" in op.name:
                strings.append(arg)
    except Exception:  # damaged stream: the reader that claims it reports the error
        return None
    return None


def _parses_to_stop(f, max_ops: int = 1_000_000) -> bool:
    try:
        for i, (op, _arg, _pos) in enumerate(pickletools.genops(f)):
            if op.name == "STOP":
                return True
            if i >= max_ops:
                return False
    except Exception:
        return False
    return False


def pickle_kind(path: str) -> str | None:
    """'zip' (torch.save archive), 'legacy-torch' (pre-1.6 torch.save), 'tf' (TensorFlow StyleGAN
    pickle), 'pickle' (any other pickle, e.g. NVIDIA's PyTorch pickles), or None."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if head.startswith(ZIP_MAGIC):
                return "zip"
            if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
                # protocol 0/1 pickles have no header: call it a pickle if it names a global and parses to STOP
                f.seek(0)
                first = _first_global(f)
                f.seek(0)
                if first is None or not _parses_to_stop(f):
                    return None
                return "tf" if first == TF_NETWORK else "pickle"
            # legacy torch.save: pickle(magic number 0x1950a86a20f9469cfc6c) first
            if head[2:4] == b"\x8a\x0a" and int.from_bytes(head[4:14], "little") == 0x1950A86A20F9469CFC6C:
                return "legacy-torch"
            f.seek(0)
            return "tf" if _first_global(f) == TF_NETWORK else "pickle"
    except OSError:
        return None


def plain(obj: Any) -> Any:
    """Recorded kwargs -> JSON-friendly Python values (EasyDict -> dict, numpy scalars -> numbers)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    return obj


def torch_file_strings(path: str, max_ops: int = 400) -> set[str]:
    """The strings among the first `max_ops` opcodes of a torch.save file's object pickle (the data.pkl of
    a zip archive, or the fourth pickle of a legacy file): the first keys of a saved state dict. An
    opcode walk (pickletools.genops): nothing is executed; an unreadable file gives an empty set."""
    found: set[str] = set()

    def scan(f):
        for i, (op, arg, _) in enumerate(pickletools.genops(f)):
            if i > max_ops or op.name == "STOP":
                return
            if isinstance(arg, str):
                found.add(arg)

    try:
        kind = pickle_kind(path)
        if kind == "zip":
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                if name is not None:
                    with z.open(name) as f:
                        scan(f)
        elif kind == "legacy-torch":
            with open(path, "rb") as f:
                for _ in range(3):  # magic number, protocol version, system info
                    for op, _arg, _pos in pickletools.genops(f):
                        if op.name == "STOP":
                            break
                scan(f)
    except Exception:  # damaged or foreign: not ours to claim
        return set()
    return found


def build_network(role: str, kwargs: dict, state: dict[str, torch.Tensor], source: str,
                  device="cpu", what: str | None = None, architecture: str = "stylegan2",
                  origin: dict[str, str] | None = None) -> torch.nn.Module:
    """ganforge's `architecture` network `role` ('G'/'D') from constructor kwargs, with `state` loaded strictly.
    `origin` maps ganforge's key -> the file's own name of the tensor, so errors name what the user's file holds."""
    what = what or role
    try:
        net = build(architecture, role, kwargs)
    except (TypeError, ValueError, AssertionError, KeyError) as e:
        raise FormatError(f"{source}: {what} has an architecture ganforge does not support ({e})") from None
    missing, unexpected, wrong = state_dict_mismatch(net.state_dict(), state)
    if origin:
        unexpected = [origin.get(k, k) for k in unexpected]
        wrong = [f"{origin[w.split(' ', 1)[0]]} (as {w})" if w.split(" ", 1)[0] in origin else w for w in wrong]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"stored shape differs from declared: {', '.join(wrong[:3])}")
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}")
        raise FormatError(f"{source}: {what} tensors do not match its declared architecture ({'; '.join(parts)})")
    with torch.no_grad():
        net.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()},
                            strict=True)
    return net.to(device).eval().requires_grad_(False)
