"""A pickle reader that never runs code from the file.

Network pickles from NVIDIA's StyleGAN2 code bases are plain `pickle.dump` output: loading them
with `pickle.load` imports and *executes* whatever the file names (NVIDIA's own loader `exec`s
the `module_src` text stored in the file). This module reads them with Python's pure-Python
unpickler under three locks:

1. `find_class` (GLOBAL / STACK_GLOBAL / INST / EXT*) only resolves an explicit allow-list of
   names, each mapped to a stand-in written here: record classes that keep state as inert data,
   and rebuild functions that check their arguments. Anything else raises `FormatError` naming
   the refused global, *before* anything is called.
2. Opcodes that call or mutate objects (REDUCE, NEWOBJ, OBJ, INST, BUILD, SETITEM(S),
   APPEND(S), ADDITEMS, persistent ids, extension codes) only act on those stand-ins or on
   plain containers; `__setstate__` is never looked up on an object from the stream.
3. Tensor storages (`torch.storage._load_from_bytes`) are parsed by our own reader of the legacy
   `torch.save` blob, whose inner pickles go through the same class with an allow-list that holds
   only the torch storage types.

    obj = load_pickle(path)                     # -> plain dicts/lists/tensors/arrays + records
    obj = RestrictedUnpickler(f, name).load()   # the same on an open binary file
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

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


@dataclass
class _StorageRef:
    key: str
    stype: _StorageType
    numel: int
    storage: _Storage | None = None


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


class _Refused(FormatError):
    pass


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


class RestrictedUnpickler(pickle._Unpickler):
    """Python's pure-Python unpickler with every code-running path replaced (see module doc).

    allowed: {(module, name): stand-in}; persistent: None (refuse persistent ids) or a callable
    `pid -> object` that validates the id itself.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: BinaryIO, source: str = "file", *, allowed: dict | None = None,
                 persistent: Callable[[Any], Any] | None = None):
        super().__init__(file, encoding="latin1")
        self.source = source
        self.allowed = NETWORK_GLOBALS if allowed is None else allowed
        self._callables = {id(v) for v in self.allowed.values() if callable(v) and not isinstance(v, type)}
        self._persistent = persistent

    # --- names ---------------------------------------------------------------------------------
    def refuse(self, what: str):
        raise _Refused(
            f"refusing to load {self.source}: it asks for {what}, which ganforge never runs; "
            "a checkpoint may hold only tensors, arrays, containers and inert records of the "
            "network classes of the formats ganforge reads")

    def find_class(self, module, name):
        module = _PY2_MODULES.get(module, module)
        key = (module, name)
        if key not in self.allowed:
            self.refuse(_qualname(module, name))
        return self.allowed[key]

    def persistent_load(self, pid):
        if self._persistent is None:
            self.refuse(f"a persistent id {pid!r:.60}")
        return self._persistent(pid)

    # --- opcodes that call or mutate -----------------------------------------------------------
    def _call(self, func, args, kwargs=None):
        if not callable(func) or isinstance(func, type) or id(func) not in self._callables:
            self.refuse(f"a call of {_describe(func)}")
        if not isinstance(args, tuple):
            _bad(f"{self.source}: malformed call arguments")
        return func(*args, **(kwargs or {}))

    def load_reduce(self):
        stack = self.stack
        args = stack.pop()
        stack[-1] = self._call(stack[-1], args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def _new(self, cls, args, kwargs=None):
        if cls not in _INSTANTIABLE:
            self.refuse(f"an instance of {getattr(cls, '__name__', repr(cls))!s:.60}")
        if args or kwargs:
            _bad(f"{self.source}: unexpected constructor arguments for {cls.__name__}")
        return cls()

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, kwargs))

    def _instantiate(self, klass, args):
        self.append(self._new(klass, tuple(args)))

    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_obj(self):
        args = self.pop_mark()
        cls = args.pop(0)
        self._instantiate(cls, args)

    dispatch[pickle.OBJ[0]] = load_obj

    def load_inst(self):
        module = self.readline()[:-1].decode("ascii")
        name = self.readline()[:-1].decode("ascii")
        self._instantiate(self.find_class(module, name), self.pop_mark())

    dispatch[pickle.INST[0]] = load_inst

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, (EasyDict, TFNetworkStub)):
            if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
                state = state[0]
            if state is None:
                return
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                _bad(f"{self.source}: malformed object state")
            dict.update(inst, state)  # items only; no attribute or __setstate__ is touched
        elif type(inst) is np.ndarray:
            _ndarray_setstate(inst, state, self.source)
        elif isinstance(inst, np.dtype):
            _dtype_setstate(inst, state, self.source)
        else:
            self.refuse(f"setting the state of a {type(inst).__name__}")

    dispatch[pickle.BUILD[0]] = load_build

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._dict_target()[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._dict_target()
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def _dict_target(self):
        target = self.stack[-1]
        if type(target) not in (dict, OrderedDict, EasyDict, TFNetworkStub):
            self.refuse(f"item assignment on a {type(target).__name__}")
        return target

    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_append(self):
        value = self.stack.pop()
        self._list_target().append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._list_target().extend(items)

    def _list_target(self):
        target = self.stack[-1]
        if type(target) is not list:
            self.refuse(f"appending to a {type(target).__name__}")
        return target

    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_additems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            self.refuse(f"adding items to a {type(target).__name__}")
        target.update(items)

    dispatch[pickle.ADDITEMS[0]] = load_additems

    def _refuse_ext(self):
        self.refuse("a registered pickle extension code")

    for _op in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = _refuse_ext
    del _op

    # --- entry ---------------------------------------------------------------------------------
    def load(self):
        try:
            return super().load()
        except _Refused:
            raise
        except FormatError as e:  # a stand-in rejected its arguments
            raise _Refused(f"refusing to load {self.source}: {e}") from None
        except RecursionError:
            raise FormatError(f"{self.source} is nested too deeply to be a checkpoint") from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError,
                AttributeError, UnicodeDecodeError, struct.error, OverflowError, MemoryError,
                RuntimeError) as e:
            early = isinstance(e, EOFError) or any(w in str(e) for w in ("exhausted", "truncated", "ran out of input"))
            msg = "ends early (truncated)" if early else f"is not a readable pickle ({type(e).__name__}: {e})"
            raise FormatError(f"{self.source} {msg:.200}") from None


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


# ------------------------------------------------------------------------------------------------
# Legacy torch.save blob (what torch.storage._load_from_bytes receives).

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


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


# ------------------------------------------------------------------------------------------------


def load_pickle(path_or_file, source: str | None = None, allowed: dict | None = None) -> Any:
    """Read a pickle file with `RestrictedUnpickler` (network allow-list by default)."""
    if isinstance(path_or_file, (str, os.PathLike)):
        name = source or os.path.basename(os.fspath(path_or_file))
        try:
            with open(path_or_file, "rb") as f:
                return RestrictedUnpickler(f, name, allowed=allowed).load()
        except OSError as e:
            raise FormatError(f"cannot read {path_or_file}: {e.strerror}") from None
    return RestrictedUnpickler(path_or_file, source or "file", allowed=allowed).load()


def looks_like_pickle(path) -> bool:
    """Cheap content sniff: a protocol-2+ pickle starts with 0x80 <protocol>."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


__all__ = ["RestrictedUnpickler", "PersistentObject", "TFNetworkStub", "EasyDict", "load_pickle",
           "read_legacy_storage_blob", "looks_like_pickle", "NETWORK_GLOBALS", "STORAGE_GLOBALS"]
