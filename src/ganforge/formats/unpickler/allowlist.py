"""The allow-list of the restricted unpickler: every global a checkpoint may name, and what it becomes.

Allowed class names become inert records (`PersistentObject`, `EasyDict`, `TFNetworkStub`, markers,
storage stand-ins); allowed callables become the stand-ins below, which check their arguments and
raise `FormatError` on anything unexpected. `NETWORK_GLOBALS` is the outer allow-list (network
pickles), `STORAGE_GLOBALS` the inner one (the pickles inside a legacy torch storage blob).
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ganforge.errors import FormatError

# ------------------------------------------------------------------------------------------------
# Records: what the allowed class names become.


@dataclass
class PersistentObject:
    """An object saved by NVIDIA's `torch_utils.persistence` (every StyleGAN2-ADA network module).

    `module_src` is kept as text only; it is never executed. `state` is the module's `__dict__`
    (`_parameters`, `_buffers`, `_modules`, `_init_args`, `_init_kwargs`, plain attributes).
    """

    class_name: str
    module_src: str
    state: dict
    version: int = 6

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args", ()))

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs", {}))


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict`: a dict whose items read as attributes (no code)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class TFNetworkStub(dict):
    """Stand-in for `dnnlib.tflib.network.Network` (TensorFlow StyleGAN2 pickles).

    The pickled state (`version`, `name`, `static_kwargs`, `components`, `build_module_src`,
    `build_func_name`, `variables`) is stored as dict items; `build_module_src` stays text.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _Marker:
    """A name the stream may mention but never call (e.g. `torch.Tensor` inside a rebuild)."""

    def __init__(self, qualname: str):
        self.qualname = qualname

    def __repr__(self):
        return f"<{self.qualname}>"


@dataclass
class _StorageType:
    """`torch.FloatStorage` and friends inside a legacy torch.save blob."""

    name: str
    dtype: torch.dtype

    @property
    def itemsize(self) -> int:
        return torch.empty((), dtype=self.dtype).element_size()


@dataclass
class _Storage:
    """A flat tensor standing in for a torch storage."""

    data: torch.Tensor  # 1-D


_STORAGE_TYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}

# ------------------------------------------------------------------------------------------------
# Stand-ins for allowed callables. Each checks its arguments; a bad argument is a FormatError.


def _bad(msg: str):
    raise FormatError(msg)


def _check_ints(name: str, values, *, nonneg=True) -> tuple:
    if not isinstance(values, (tuple, list)) or not all(type(v) is int for v in values):
        _bad(f"{name} must be a tuple of ints, got {values!r:.80}")
    if nonneg and any(v < 0 for v in values):
        _bad(f"{name} has a negative entry: {values!r:.80}")
    return tuple(values)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """torch._utils._rebuild_tensor(_v2): a strided view of a storage, bounds-checked, copied."""
    if not isinstance(storage, _Storage):
        _bad(f"a tensor refers to {type(storage).__name__!s} instead of a tensor storage")
    if type(storage_offset) is not int or storage_offset < 0:
        _bad(f"bad tensor storage offset {storage_offset!r:.40}")
    size, stride = _check_ints("tensor size", size), _check_ints("tensor stride", stride)
    if len(size) != len(stride):
        _bad(f"tensor size {size} and stride {stride} differ in length")
    numel = storage.data.numel()
    if all(s > 0 for s in size):
        last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
        if last >= numel:
            _bad(f"a tensor of size {list(size)} reaches past its storage ({numel} elements)")
    return torch.as_strided(storage.data, size, stride, storage_offset).clone()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        _bad(f"a parameter holds {type(data).__name__} instead of a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter):
        _bad("a tensor asks to be rebuilt by an unexpected function")
    if not isinstance(new_type, _Marker) or new_type.qualname not in ("torch.Tensor", "torch.nn.parameter.Parameter"):
        _bad(f"a tensor asks for the type {new_type!r:.60}")
    if not isinstance(args, tuple):
        _bad("bad tensor rebuild arguments")
    return func(*args)


def _np_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        _bad(f"a numpy array asks for the type {_describe(subtype)}")
    _check_ints("array shape", shape if isinstance(shape, (tuple, list)) else (shape,))
    if not isinstance(dtype, (bytes, str)):
        _bad("bad numpy array dtype")
    return np.ndarray.__new__(np.ndarray, shape, "b")


def _np_dtype(obj, align=False, copy=False):
    if not isinstance(obj, str) or not obj or obj[0] in "OV" or len(obj) > 8:
        _bad(f"numpy dtype {obj!r:.40} is not a plain number type")
    dt = np.dtype(obj, align=bool(align), copy=bool(copy))
    if dt.hasobject or dt.fields is not None:
        _bad(f"numpy dtype {obj!r:.40} is not a plain number type")
    return dt


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        _bad("a numpy scalar has an unexpected dtype")
    if isinstance(data, str):
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        _bad("a numpy scalar has malformed data")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _np_frombuffer(buf, dtype, shape, order="C"):
    """numpy._core.numeric._frombuffer: how NumPy 2 pickles arrays under protocol 5."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        _bad("a numpy array has an unexpected dtype")
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf.raw())
    shape = _check_ints("array shape", shape if isinstance(shape, (tuple, list)) else (shape,))
    if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F") or \
            len(buf) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        _bad("numpy array data does not match its shape")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


def _ordered_dict(*args):
    if args and (len(args) > 1 or not isinstance(args[0], (list, tuple))):
        _bad("bad OrderedDict arguments")
    return OrderedDict(*args)


def _make_set(*args):
    if args and (len(args) > 1 or not isinstance(args[0], (list, tuple, set))):
        _bad("bad set arguments")
    return set(*args)


def _make_frozenset(*args):
    return frozenset(_make_set(*args))


def _codecs_encode(obj, encoding="utf-8"):
    """Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, 'latin1')."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        _bad("bad bytes encoding")
    return obj.encode(encoding)


def _reconstruct_persistent_obj(meta):
    """torch_utils.persistence._reconstruct_persistent_obj -> PersistentObject (no exec)."""
    if not isinstance(meta, dict):
        _bad("a persistent object's record is not a dict")
    if meta.get("type") != "class":
        _bad(f"persistent object of type {meta.get('type')!r:.40} (expected 'class')")
    cls, src, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if not isinstance(cls, str) or not isinstance(src, str) or not isinstance(state, dict):
        _bad("a persistent object's record lacks class_name/module_src/state")
    return PersistentObject(class_name=cls, module_src=src, state=dict(state), version=meta.get("version", 0))


def _copyreg_reconstructor(cls, base, state):
    """copyreg._reconstructor(cls, object, None), used by protocol 0/1 for plain classes."""
    if cls not in (EasyDict, TFNetworkStub) or base is not _OBJECT_MARKER or state is not None:
        _bad(f"an object asks to be built from {_describe(cls)}")
    return cls()


_OBJECT_MARKER = _Marker("builtins.object")

# Inner allow-list: the torch storage types of a legacy torch.save blob, and nothing else.
STORAGE_GLOBALS: dict[tuple[str, str], Any] = {("torch", n): _StorageType(n, dt) for n, dt in _STORAGE_TYPES.items()}

def _load_from_bytes(blob):
    """torch.storage._load_from_bytes(b) -> _Storage, parsed by `read_legacy_storage_blob`."""
    if not isinstance(blob, (bytes, bytearray)):
        _bad("a tensor storage is not stored as bytes")
    # The blob holds pickles of its own, read by RestrictedUnpickler (which imports this module):
    # the reader is imported when a storage is met, not when the allow-list is built.
    from ganforge.formats.unpickler.legacy_storage import read_legacy_storage_blob

    return read_legacy_storage_blob(bytes(blob))


# Outer allow-list: (module, name) -> stand-in. Keys use the names written by the code bases involved.
NETWORK_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _Marker("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): _Marker("torch.nn.parameter.Parameter"),
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): _ordered_dict,
    ("builtins", "set"): _make_set,
    ("builtins", "frozenset"): _make_frozenset,
    ("builtins", "object"): _OBJECT_MARKER,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetworkStub,
}
for _np_mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    NETWORK_GLOBALS[(_np_mod, "_reconstruct")] = _np_reconstruct
    NETWORK_GLOBALS[(_np_mod, "scalar")] = _np_scalar
for _np_mod in ("numpy.core.numeric", "numpy._core.numeric"):
    NETWORK_GLOBALS[(_np_mod, "_frombuffer")] = _np_frombuffer
NETWORK_GLOBALS[("numpy", "dtype")] = _np_dtype
NETWORK_GLOBALS[("numpy", "ndarray")] = np.ndarray  # only accepted as _reconstruct's subtype

# Python 2 module names (protocol < 3 pickles).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

# Classes that NEWOBJ / OBJ / INST may instantiate (with no arguments).
_INSTANTIABLE = (EasyDict, TFNetworkStub)


def _qualname(module: str, name: str) -> str:
    return f"{module}.{name}"


def _describe(obj) -> str:
    """The global name a stand-in was allowed under (for messages), else the object's type."""
    for (module, name), value in NETWORK_GLOBALS.items():
        if value is obj:
            return _qualname(module, name)
    if isinstance(obj, _Marker):
        return obj.qualname
    return f"a {type(obj).__name__}"


def _ndarray_setstate(arr: np.ndarray, state, source: str):
    """ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata)) for number dtypes only."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        _bad(f"{source}: malformed numpy array state")
    version, shape, dtype, fortran, raw = (1,) + state if len(state) == 4 else state
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        _bad(f"{source}: a numpy array of objects is not checkpoint data")
    shape = _check_ints("array shape", shape)
    if isinstance(raw, str):
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        _bad(f"{source}: numpy array data does not match its shape {list(shape)}")
    arr.__setstate__((version, shape, dtype, bool(fortran), bytes(raw)))


def _dtype_setstate(dt: np.dtype, state, source: str):
    # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
    if (not isinstance(state, tuple) or len(state) not in (8, 9) or state[2] is not None
            or state[3] is not None or state[4] is not None or (len(state) == 9 and state[8] is not None)):
        _bad(f"{source}: unexpected numpy dtype state")
    dt.__setstate__(state)


__all__ = ["PersistentObject", "EasyDict", "TFNetworkStub", "NETWORK_GLOBALS", "STORAGE_GLOBALS"]
