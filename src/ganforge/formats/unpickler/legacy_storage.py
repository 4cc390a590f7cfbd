"""The legacy `torch.save` storage blob (what `torch.storage._load_from_bytes` receives), read without
torch.load: its inner pickles go through `RestrictedUnpickler` with the storage-only allow-list."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import torch

from ganforge.errors import FormatError
from ganforge.formats.unpickler.allowlist import STORAGE_GLOBALS, _bad, _Storage, _StorageType
from ganforge.formats.unpickler.restricted import RestrictedUnpickler

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


@dataclass
class _StorageRef:
    key: str
    stype: _StorageType
    numel: int
    storage: _Storage | None = None


def read_legacy_storage_blob(blob: bytes, source: str = "a tensor storage") -> _Storage:
    """Parse `torch.save(storage, f, _use_new_zipfile_serialization=False)` without torch.load.

    Layout: pickle(magic) pickle(protocol=1001) pickle(sys_info) pickle(root) pickle([keys]),
    then per key: int64 little-endian element count, raw little-endian element bytes.
    The root refers to its storage by persistent id
    ('storage', <torch.XStorage>, key, location, numel[, view_metadata]).
    """
    f = io.BytesIO(blob)
    refs: dict[str, _StorageRef] = {}

    def persistent(pid):
        if (not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[3], str) or type(pid[4]) is not int or pid[4] < 0
                or (len(pid) == 6 and pid[5] is not None)):
            raise FormatError(f"refusing to load {source}: unexpected persistent id {pid!r:.80}")
        ref = refs.setdefault(pid[2], _StorageRef(pid[2], pid[1], pid[4]))
        return ref

    def inner():
        return RestrictedUnpickler(f, source, allowed=STORAGE_GLOBALS, persistent=persistent).load()

    if inner() != LEGACY_MAGIC:
        _bad(f"{source}: not a torch storage (bad magic number)")
    if inner() != LEGACY_PROTOCOL:
        _bad(f"{source}: unsupported torch storage protocol")
    sys_info = inner()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        _bad(f"{source}: big-endian or malformed torch storage header")
    root = inner()
    keys = inner()
    if not isinstance(root, _StorageRef):
        _bad(f"{source}: expected a single storage")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or set(keys) != set(refs):
        _bad(f"{source}: storage key list does not match the storages it names")
    for key in keys:
        ref = refs[key]
        head = f.read(8)
        if len(head) != 8:
            _bad(f"{source}: ends early (truncated)")
        (count,) = struct.unpack("<q", head)
        if count != ref.numel:
            _bad(f"{source}: storage declares {ref.numel} elements but stores {count}")
        nbytes = count * ref.stype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            _bad(f"{source}: ends early (truncated)")
        data = torch.frombuffer(bytearray(raw), dtype=ref.stype.dtype) if nbytes else torch.empty(0, dtype=ref.stype.dtype)
        ref.storage = _Storage(data)
    return root.storage


__all__ = ["LEGACY_MAGIC", "LEGACY_PROTOCOL", "read_legacy_storage_blob"]
