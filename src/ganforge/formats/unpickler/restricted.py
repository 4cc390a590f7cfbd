"""`RestrictedUnpickler`: Python's pure-Python unpickler with every code-running path replaced, and
`load_pickle`, its entry point for files (see the package docstring for the three locks)."""

from __future__ import annotations

import os
import pickle
import struct
from collections import OrderedDict
from typing import Any, BinaryIO, Callable

import numpy as np

from ganforge.errors import FormatError
from ganforge.formats.unpickler.allowlist import (_INSTANTIABLE, _PY2_MODULES, NETWORK_GLOBALS, EasyDict,
                                                  TFNetworkStub, _bad, _describe, _dtype_setstate,
                                                  _ndarray_setstate, _qualname)


class _Refused(FormatError):
    pass


class RestrictedUnpickler(pickle._Unpickler):
    """Python's pure-Python unpickler with every code-running path replaced (see ganforge.formats.unpickler).

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


__all__ = ["RestrictedUnpickler", "load_pickle", "looks_like_pickle"]
