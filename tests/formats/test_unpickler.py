"""The restricted unpickler refuses code-running pickles before anything runs.

Every payload below would create `sentinel` if it ran; each test asserts the refusal names the
global and that the sentinel is still absent. `test_payload_runs_under_stock_pickle` shows the
sentinel mechanism does detect a payload that runs.
"""

import io
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

import ganforge
from testkit import assert_usage_error, run_cli
from ganforge.errors import FormatError
from ganforge.formats import nvidia_pkl
from ganforge.formats.unpickler import (PersistentObject, RestrictedUnpickler, TFNetworkStub,
                                        load_pickle, read_legacy_storage_blob)


class Reduce:
    """Pickles as REDUCE(func, args) for whatever func/args it is given."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.fixture
def sentinel(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a payload ran"


def _refused(tmp_path, data: bytes, *names, name="evil.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(FormatError) as e:
        ganforge.load(path)
    msg = str(e.value)
    assert f"refusing to load {name}" in msg or "refusing" in msg, msg
    for n in names:
        assert n in msg, msg
    return msg


def test_payload_runs_under_stock_pickle(tmp_path):
    # Control: the same bytes do run under pickle (in a child process), so the sentinel checks are meaningful.
    target = tmp_path / "ran"
    data = pickle.dumps(Reduce(os.system, f"touch {target}"))
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=data, check=True)
    assert target.exists()


def test_os_system_via_reduce(tmp_path, sentinel):
    # os.system pickles as posix.system on Linux
    _refused(tmp_path, pickle.dumps(Reduce(os.system, f"touch {sentinel}")), "posix.system", "never runs")


def test_os_system_protocol0_global(tmp_path, sentinel):
    data = f"cos\nsystem\n(S'touch {sentinel}'\ntR.".encode()
    _refused(tmp_path, data, "os.system")


def test_eval_and_exec(tmp_path, sentinel):
    code = f"__import__('os').system('touch {sentinel}')"
    _refused(tmp_path, pickle.dumps(Reduce(eval, code)), "builtins.eval")
    _refused(tmp_path, pickle.dumps(Reduce(exec, code)), "builtins.exec")


def test_getattr_import_chain(tmp_path, sentinel):
    # getattr(__import__('os'), 'system')('touch ...') written by hand (protocol 0)
    data = (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'touch "
            + str(sentinel).encode() + b"'\ntR.")
    _refused(tmp_path, data, "builtins.getattr")


def test_subprocess_popen(tmp_path, sentinel):
    _refused(tmp_path, pickle.dumps(Reduce(subprocess.Popen, ["touch", str(sentinel)])), "subprocess.Popen")


def test_python2_builtin_name(tmp_path, sentinel):
    data = f"c__builtin__\neval\n(S'__import__(\"os\").system(\"touch {sentinel}\")'\ntR.".encode()
    _refused(tmp_path, data, "builtins.eval")


def test_inst_opcode(tmp_path, sentinel):
    data = f"(S'touch {sentinel}'\nios\nsystem\n.".encode()
    _refused(tmp_path, data, "os.system")


def test_payload_nested_in_a_network_record(tmp_path, sentinel):
    """A snapshot that looks like NVIDIA's, with the payload deep inside a module's state."""
    state = {"_parameters": {"weight": Reduce(os.system, f"touch {sentinel}")}, "_buffers": {}, "_modules": {}}
    record = nvidia_pkl._PersistentRecord(dict(type="class", version=6, module_src="", class_name="Generator",
                                               state=state))
    buf = io.BytesIO()
    nvidia_pkl._NvidiaPickler(buf, protocol=4).dump({"G_ema": record, "G": record, "D": None})
    _refused(tmp_path, buf.getvalue(), "posix.system")


def _legacy_blob(root_pickle: bytes, keys=("0",), payload=b"") -> bytes:
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    return head + root_pickle + pickle.dumps(list(keys), protocol=2) + payload


def test_payload_inside_a_storage_blob(tmp_path, sentinel):
    import torch.storage

    blob = _legacy_blob(pickle.dumps(Reduce(os.system, f"touch {sentinel}"), protocol=2))
    msg = _refused(tmp_path, pickle.dumps(Reduce(torch.storage._load_from_bytes, blob)), "posix.system")
    assert "tensor storage" in msg


class _PidPickler(pickle.Pickler):
    def __init__(self, f, pid):
        super().__init__(f, protocol=2)
        self.pid = pid

    def persistent_id(self, obj):
        return self.pid if isinstance(obj, Reduce) else None


def test_persistent_id_attacks(tmp_path, sentinel):
    import torch.storage

    # outer pickle: persistent ids are never accepted
    buf = io.BytesIO()
    _PidPickler(buf, ("storage", "x")).dump({"G_ema": Reduce(print)})
    _refused(tmp_path, buf.getvalue(), "persistent id")
    # inside a storage blob: the storage type must be a torch storage type, not a callable
    buf = io.BytesIO()
    _PidPickler(buf, ("storage", os.system, f"touch {sentinel}", "cpu", 1)).dump(Reduce(print))
    blob = _legacy_blob(buf.getvalue())
    _refused(tmp_path, pickle.dumps(Reduce(torch.storage._load_from_bytes, blob)), "posix.system")
    # a well-typed id with the wrong tag
    buf = io.BytesIO()
    _PidPickler(buf, ("module", torch.FloatStorage, "0", "cpu", 1)).dump(Reduce(print))
    _refused(tmp_path, pickle.dumps(Reduce(torch.storage._load_from_bytes, _legacy_blob(buf.getvalue()))),
             "unexpected persistent id")


def test_allowed_callables_reject_unexpected_use(tmp_path, sentinel):
    from collections import OrderedDict

    # REDUCE on an allowed class that is only a marker/subtype (numpy.ndarray) is not a call we make
    _refused(tmp_path, pickle.dumps(Reduce(np.ndarray, (10 ** 12,))), "a call of")
    # numpy _reconstruct with a subtype other than ndarray
    data = pickle.dumps(Reduce(np._core.multiarray._reconstruct, OrderedDict, (0,), b"b"))
    _refused(tmp_path, data, "numpy array asks for the type collections.OrderedDict")
    # object arrays carry arbitrary objects: refused
    _refused(tmp_path, pickle.dumps(np.array([1, "x"], dtype=object)), "not a plain number type")
    # copyreg._reconstructor on a class that is not a ganforge record
    import copyreg
    _refused(tmp_path, pickle.dumps(Reduce(copyreg._reconstructor, OrderedDict, object, None), protocol=2),
             "collections.OrderedDict")


def test_build_never_calls_setstate(tmp_path, sentinel):
    """A TF Network stub whose state tries to plant a __setstate__ (then a second BUILD to trigger it)."""
    from collections import OrderedDict

    ns = TFNetworkStub.__new__(TFNetworkStub)
    # NEWOBJ stub; BUILD {'__setstate__': OrderedDict}; BUILD {'version': 4}
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)
    p.dump(OrderedDict)  # just to make sure the global is allowed by itself
    stream = (b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81}X\x0c\x00\x00\x00__setstate__"
              b"ccollections\nOrderedDict\nsb}X\x07\x00\x00\x00versionK\x04sb.")
    obj = RestrictedUnpickler(io.BytesIO(stream), "stub.pkl").load()
    assert isinstance(obj, TFNetworkStub) and obj["version"] == 4
    assert "__setstate__" not in type(obj).__dict__ and obj.__dict__ == {}
    assert ns == {}
    # and with a code-running value the global itself is refused
    bad = stream.replace(b"ccollections\nOrderedDict\n", b"cos\nsystem\n")
    with pytest.raises(FormatError, match="os.system"):
        RestrictedUnpickler(io.BytesIO(bad), "stub.pkl").load()


def test_ext_codes_and_setitem_on_tensors_refused(tmp_path):
    import copyreg

    copyreg.add_extension("posix", "system", 0x7A)
    try:
        data = pickle.dumps(Reduce(os.system, "true"), protocol=2)
    finally:
        copyreg.remove_extension("posix", "system", 0x7A)
    assert b"\x82" in data  # EXT1 opcode
    _refused(tmp_path, data, "extension")
    # SETITEM on something that is not a plain dict (here a rebuilt tensor)
    t = pickle.dumps(torch.zeros(3))[:-1]  # drop STOP
    data = t + b"K\x00K\x07s."  # tensor[0] = 7
    _refused(tmp_path, data, "item assignment")


def test_cli_refusal_is_one_line_exit_2(tmp_path, sentinel):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Reduce(os.system, f"touch {sentinel}")))
    proc = run_cli("info", tmp_path / "evil.pkl")
    assert_usage_error(proc, "refusing to load evil.pkl", "posix.system")


def test_tensors_and_numpy_round_trip_through_the_allow_list():
    """What real checkpoints contain loads, bit-exact, under every protocol."""
    import collections

    t = torch.randn(3, 4)
    data = {"t": t, "view": t[1:, ::2], "p": torch.nn.Parameter(torch.arange(6.0).reshape(2, 3), requires_grad=False),
            "h": torch.randn(5).half(), "i": torch.arange(4), "od": collections.OrderedDict(a=1), "s": {1, 2},
            "np": np.arange(6, dtype=np.float32).reshape(2, 3), "f64": np.float64(0.125), "dt": np.dtype("<i8")}
    for proto in range(0, 6):
        out = load_pickle(io.BytesIO(pickle.dumps(data, protocol=proto)))
        assert torch.equal(out["t"], t) and torch.equal(out["view"], t[1:, ::2])
        assert torch.equal(out["p"], data["p"]) and out["h"].dtype == torch.float16 and torch.equal(out["h"], data["h"])
        assert torch.equal(out["i"], data["i"]) and out["od"] == {"a": 1} and out["s"] == {1, 2}
        assert np.array_equal(out["np"], data["np"]) and out["f64"] == 0.125 and out["dt"] == np.dtype("<i8")


def test_legacy_blob_bounds_are_checked():
    import torch.storage

    good = pickle.dumps(torch.arange(4.0))
    assert torch.equal(load_pickle(io.BytesIO(good)), torch.arange(4.0))
    import pickletools

    blob = bytearray(next(arg for op, arg, _ in pickletools.genops(good) if op.name == "BINBYTES"))
    # declare 4 elements, store 3
    idx = len(blob) - 16 - 8
    assert struct.unpack("<q", bytes(blob[idx:idx + 8]))[0] == 4
    truncated = bytes(blob[:-4])
    with pytest.raises(FormatError, match="truncated|ends early"):
        read_legacy_storage_blob(truncated)
    # a tensor that claims more elements than its storage holds
    class Big:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (Reduce(torch.storage._load_from_bytes, bytes(blob)), 0,
                                                       (100,), (1,), False, {}))
    with pytest.raises(FormatError, match="reaches past its storage"):
        load_pickle(io.BytesIO(pickle.dumps(Big())))


def test_persistent_object_is_an_inert_record():
    state = {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_kwargs": {"z_dim": 3}}
    record = nvidia_pkl._PersistentRecord(dict(type="class", version=6, module_src="raise SystemExit('ran')",
                                               class_name="Generator", state=state))
    buf = io.BytesIO()
    nvidia_pkl._NvidiaPickler(buf, protocol=3).dump(record)
    obj = load_pickle(io.BytesIO(buf.getvalue()))
    assert isinstance(obj, PersistentObject) and obj.module_src == "raise SystemExit('ran')"
    assert obj.init_kwargs == {"z_dim": 3}
