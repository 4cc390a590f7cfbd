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

The package, one module per lock:
  allowlist       the allow-lists (NETWORK_GLOBALS, STORAGE_GLOBALS) and the records and stand-ins
                  that allowed names become
  restricted      RestrictedUnpickler, load_pickle, looks_like_pickle
  legacy_storage  the reader of legacy torch storage blobs (read_legacy_storage_blob)
"""

from ganforge.formats.unpickler.allowlist import (NETWORK_GLOBALS, STORAGE_GLOBALS, EasyDict, PersistentObject,
                                                  TFNetworkStub)
from ganforge.formats.unpickler.legacy_storage import read_legacy_storage_blob
from ganforge.formats.unpickler.restricted import RestrictedUnpickler, load_pickle, looks_like_pickle

__all__ = ["RestrictedUnpickler", "PersistentObject", "TFNetworkStub", "EasyDict", "load_pickle",
           "read_legacy_storage_blob", "looks_like_pickle", "NETWORK_GLOBALS", "STORAGE_GLOBALS"]
