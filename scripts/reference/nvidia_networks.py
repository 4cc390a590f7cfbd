#!/usr/bin/env python3
"""Regenerate the NVIDIA network fixtures of tests/formats/data/ with NVIDIA's stylegan2-ada-pytorch.

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /tmp/ref/nvidia
    git -C /tmp/ref/nvidia checkout d72cc7d041b42ec8e806021a205ed9349f87c6a4
    python scripts/reference/nvidia_networks.py --ref /tmp/ref/nvidia --out tests/formats/data
    python scripts/reference/nvidia_networks.py --ref /tmp/ref/nvidia --out tests/formats/data --check

Everything runs on the CPU in float32 (NVIDIA's custom ops fall back to their reference code there;
nothing needs patching on torch 2.x). It writes:

nvidia_tiny_cond_expected.npz
    What NVIDIA's code computes from the committed nvidia_tiny_cond.pkl (a 16x16 conditional net,
    c_dim 2, D 'resnet', written by ganforge's writer with the import-shim module_src; its random
    weights are an input here, not regenerated), loaded with NVIDIA's legacy.load_network_pkl:
      rs = np.random.RandomState(7); z = rs.randn(2, 8); c = eye(2)[rs.randint(2, size=2)];
      img = rs.randn(2, 3, 16, 16)                                       (all cast to float32)
      img_psi1.0, img_psi0.5 = G_ema(z, c, truncation_psi=psi, noise_mode='const')
      ws_psi0.5 = G_ema.mapping(z, c, truncation_psi=0.5);  d_logits = D(img, c)

nvidia_snapshot_tiny.pkl  (+ nvidia_snapshot_tiny_expected.npz)
    A training snapshot pickled by NVIDIA's own code path: the networks are built the way train.py
    and training/training_loop.py build them (EasyDict kwargs, dnnlib.util.construct_class_by_name,
    G_ema = deepcopy(G), ADA pipe 'bgc' with p = 0.25, a training_set_kwargs dict), with
    training-like weights (fixed seed: random offsets on every parameter, w_avg tracked over 64
    mapping batches, G moved away from G_ema), then
        snapshot = dict(training_set_kwargs=..., G=..., D=..., G_ema=..., augment_pipe=...)  (each
        deepcopy(module).eval().requires_grad_(False)), pickle.dump(snapshot, f)
    exactly like the training loop's snapshot. NVIDIA's persistence stores the full text of
    training/networks.py and training/augment.py in every object's `module_src`; that text must not
    enter this repository, so the pickle is then rewritten object by object (a restricted unpickler
    with an explicit allow-list of globals, re-dumped with the same protocol) with each module_src
    replaced by a one-line comment naming the file it stood for (PLACEHOLDERS below). Nothing else
    changes: the script checks that the rewritten opcode stream equals the original one except for
    those strings (and the torch storage blobs' bytes), and that no line of NVIDIA's sources is left.
    The expected outputs come from NVIDIA's legacy.load_network_pkl of the original, unmodified
    pickle:
      rs = np.random.RandomState(5); z = rs.randn(2, 16); img = 2 * rs.randn(4, 3, 32, 32)
      img_psi1.0, img_psi0.5 = G_ema(z, None, truncation_psi=psi, noise_mode='const', force_fp32=True)
      img_noise_none = G_ema(z, None, noise_mode='none', force_fp32=True)
      ws_psi0.5 = G_ema.mapping(z, None, truncation_psi=0.5)
      g_img = G(z, None, noise_mode='const', force_fp32=True);  d_logits = D(img, None, force_fp32=True)
    --check also loads the committed, rewritten pickle with NVIDIA's loader (an import hook puts the
    checkout's source text back in place of the placeholders) and compares its tensors with a fresh
    build.
"""

from __future__ import annotations

import collections
import copy
import io
import os
import pickle
import pickletools
import sys

import numpy as np
import torch

import _common

NAME, COMMIT, BLOBS = _common.NVIDIA_NAME, _common.NVIDIA_COMMIT, _common.NVIDIA_BLOBS

# module_src of each persistent class -> what the committed pickle holds instead
PLACEHOLDERS = {
    mod: f"# NVIDIA source removed: {mod.replace('.', '/')}.py of {NAME} at {COMMIT} "
         f"(see ganforge's scripts/reference/nvidia_networks.py)\n"
    for mod in ("training.networks", "training.augment")
}

# The training snapshot fixture: small, unconditional, 32x32, mixed precision as train.py sets it up.
SNAPSHOT_SEED = 2024
SNAPSHOT = dict(
    resolution=32, img_channels=3, c_dim=0, z_dim=16, w_dim=16, map_layers=2,
    channel_base=256, channel_max=16,    # 16 channels at 4..16 px, 8 at 32 px
    num_fp16_res=2, conv_clamp=256, mbstd_group_size=2,
    augpipe=dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                 brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),   # train.py's 'bgc'
    augment_p=0.25,
)
TRAINING_SET_KWARGS = dict(class_name="training.dataset.ImageFolderDataset", path="~/datasets/tiny-32.zip",
                           use_labels=False, max_size=100, xflip=False, resolution=32)


# ------------------------------------------------------------------------------------------------
# The ganforge-written conditional fixture


def cond_inputs():
    rs = np.random.RandomState(7)
    z = rs.randn(2, 8).astype(np.float32)
    c = np.eye(2, dtype=np.float32)[rs.randint(2, size=2)]
    img = rs.randn(2, 3, 16, 16).astype(np.float32)
    return z, c, img


def cond_expected(legacy, pkl_path: str) -> dict[str, np.ndarray]:
    with open(pkl_path, "rb") as f:
        data = legacy.load_network_pkl(f)
    G, D = data["G_ema"], data["D"]
    z, c, img = cond_inputs()
    tz, tc, timg = (torch.from_numpy(a) for a in (z, c, img))
    out = {"z": z, "c": c, "img": img}
    with torch.no_grad():
        for psi in (1.0, 0.5):
            out[f"img_psi{psi}"] = G(tz, tc, truncation_psi=psi, noise_mode="const").numpy()
        out["ws_psi0.5"] = G.mapping(tz, tc, truncation_psi=0.5).numpy()
        out["d_logits"] = D(timg, tc).numpy()
    return out


# ------------------------------------------------------------------------------------------------
# The training snapshot pickled by NVIDIA's code


def _offset_all_parameters(module: torch.nn.Module, scale: float) -> None:
    """p += scale * randn * (std of p, or 1 for constant tensors): biases, noise strengths and
    modulation biases leave their initial constants, as after training."""
    with torch.no_grad():
        for p in module.parameters():
            spread = float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 1.0
            p.add_(torch.randn_like(p) * (scale * spread))


def build_snapshot(dnnlib) -> dict:
    """The training loop's snapshot dict, built with NVIDIA's classes (see the module docstring)."""
    s = SNAPSHOT
    EasyDict = dnnlib.EasyDict
    G_kwargs = EasyDict(class_name="training.networks.Generator", z_dim=s["z_dim"], w_dim=s["w_dim"],
                        mapping_kwargs=EasyDict(), synthesis_kwargs=EasyDict())
    D_kwargs = EasyDict(class_name="training.networks.Discriminator", block_kwargs=EasyDict(),
                        mapping_kwargs=EasyDict(), epilogue_kwargs=EasyDict())
    G_kwargs.synthesis_kwargs.channel_base = D_kwargs.channel_base = s["channel_base"]
    G_kwargs.synthesis_kwargs.channel_max = D_kwargs.channel_max = s["channel_max"]
    G_kwargs.mapping_kwargs.num_layers = s["map_layers"]
    G_kwargs.synthesis_kwargs.num_fp16_res = D_kwargs.num_fp16_res = s["num_fp16_res"]
    G_kwargs.synthesis_kwargs.conv_clamp = D_kwargs.conv_clamp = s["conv_clamp"]
    D_kwargs.epilogue_kwargs.mbstd_group_size = s["mbstd_group_size"]
    common_kwargs = dict(c_dim=s["c_dim"], img_resolution=s["resolution"], img_channels=s["img_channels"])

    torch.manual_seed(SNAPSHOT_SEED)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common_kwargs).train().requires_grad_(False)
    D = dnnlib.util.construct_class_by_name(**D_kwargs, **common_kwargs).train().requires_grad_(False)
    _offset_all_parameters(G, 0.3)
    _offset_all_parameters(D, 0.3)
    for _ in range(64):  # MappingNetwork tracks w_avg in training mode
        G.mapping(torch.randn(16, s["z_dim"]), None)
    G_ema = copy.deepcopy(G).eval()
    _offset_all_parameters(G, 0.05)  # G moves on; G_ema lags behind
    augment_pipe = dnnlib.util.construct_class_by_name(class_name="training.augment.AugmentPipe",
                                                       **s["augpipe"]).train().requires_grad_(False)
    augment_pipe.p.copy_(torch.as_tensor(s["augment_p"]))

    snapshot = dict(training_set_kwargs=dict(TRAINING_SET_KWARGS))
    for name, module in [("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", augment_pipe)]:
        snapshot[name] = copy.deepcopy(module).eval().requires_grad_(False)
    return snapshot


def snapshot_inputs():
    rs = np.random.RandomState(5)
    z = rs.randn(2, SNAPSHOT["z_dim"]).astype(np.float32)
    # D's inputs: 4 images (two minibatch-stddev groups of 2), about as spread as G's outputs
    img = (2 * rs.randn(4, SNAPSHOT["img_channels"], SNAPSHOT["resolution"], SNAPSHOT["resolution"])).astype(np.float32)
    return z, img


def snapshot_expected(data: dict) -> dict[str, np.ndarray]:
    G_ema, G, D = data["G_ema"], data["G"], data["D"]
    z, img = snapshot_inputs()
    tz, timg = torch.from_numpy(z), torch.from_numpy(img)
    out = {"z": z, "img": img}
    with torch.no_grad():
        for psi in (1.0, 0.5):
            out[f"img_psi{psi}"] = G_ema(tz, None, truncation_psi=psi, noise_mode="const", force_fp32=True).numpy()
        out["img_noise_none"] = G_ema(tz, None, noise_mode="none", force_fp32=True).numpy()
        out["ws_psi0.5"] = G_ema.mapping(tz, None, truncation_psi=0.5).numpy()
        out["g_img"] = G(tz, None, noise_mode="const", force_fp32=True).numpy()
        out["d_logits"] = D(timg, None, force_fp32=True).numpy()
    out["augment_p"] = np.array(SNAPSHOT["augment_p"], dtype=np.float32)
    return out


# ------------------------------------------------------------------------------------------------
# Replacing module_src in a pickle without running it


class _Persistent:
    """A persistent object read back from the pickle: its meta dict, re-pickled the way NVIDIA's
    persistence writes it, REDUCE(_reconstruct_persistent_obj, (meta,))."""

    def __init__(self, meta):
        self.meta = meta


def _numpy_scalar(dtype, data=None):
    """numpy's pickled scalar (dtype, raw bytes) -> the numpy scalar, without importing by name."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError("unexpected numpy scalar record")
    return np.frombuffer(data, dtype=dtype)[0]


def _rewriting_unpickler(persistence, module_src_to_placeholder: dict[str, str]):
    import dnnlib

    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): torch.storage._load_from_bytes,  # our own fresh file
        ("dnnlib.util", "EasyDict"): dnnlib.util.EasyDict,
        # numpy scalars, e.g. the activation gains np.sqrt(2) that layers keep as attributes
        ("numpy", "dtype"): np.dtype,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x / 2.x names
        allowed[(mod, "scalar")] = _numpy_scalar

    def reconstruct(meta):
        if not (isinstance(meta, dict) and isinstance(meta.get("module_src"), str)):
            raise pickle.UnpicklingError("unexpected persistent object record")
        if meta["module_src"] not in module_src_to_placeholder:
            raise pickle.UnpicklingError(f"module_src of {meta.get('class_name')} is not a known NVIDIA module")
        meta["module_src"] = module_src_to_placeholder[meta["module_src"]]
        return _Persistent(meta)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
                return reconstruct
            if (module, name) in allowed:
                return allowed[(module, name)]
            raise pickle.UnpicklingError(f"global {module}.{name} is not on the allow-list")

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, _Persistent):
                return persistence._reconstruct_persistent_obj, (obj.meta,)
            return NotImplemented

    return Unpickler, Pickler


def replace_module_src(raw: bytes, persistence, module_src_to_placeholder: dict[str, str]) -> bytes:
    Unpickler, Pickler = _rewriting_unpickler(persistence, module_src_to_placeholder)
    protocol = next(pickletools.genops(raw))[1]  # the PROTO opcode's argument
    obj = Unpickler(io.BytesIO(raw)).load()
    buf = io.BytesIO()
    Pickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


_SAME_KIND = {"SHORT_BINUNICODE": "str", "BINUNICODE": "str", "BINUNICODE8": "str", "UNICODE": "str",
              "SHORT_BINBYTES": "bytes", "BINBYTES": "bytes", "BINBYTES8": "bytes",
              "BINGET": "get", "LONG_BINGET": "get", "GET": "get"}


def _ops(raw: bytes):
    """(opcode kind, argument) along the stream, without FRAME and memo bookkeeping; the opcodes
    that differ only in the width of their length field count as one kind."""
    skip = {"FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}
    return [(_SAME_KIND.get(op.name, op.name), arg) for op, arg, _ in pickletools.genops(raw) if op.name not in skip]


def check_rewrite(original: bytes, rewritten: bytes, module_src_to_placeholder: dict[str, str]) -> None:
    a, b = _ops(original), _ops(rewritten)
    if len(a) != len(b):
        sys.exit(f"error: the rewritten pickle has {len(b)} opcodes, the original {len(a)}")
    placeholders = set(module_src_to_placeholder.values())
    for (na, xa), (nb, xb) in zip(a, b):
        if na != nb:
            sys.exit(f"error: opcode {na} became {nb}")
        if xa == xb or (isinstance(xa, str) and xa in module_src_to_placeholder and xb in placeholders):
            continue
        if isinstance(xa, bytes) and isinstance(xb, bytes):
            continue  # a torch storage blob, written again by torch.save (compared as tensors elsewhere)
        if na == "get":
            continue  # memo indices shift when fewer objects are memoized
        sys.exit(f"error: {na} argument {xa!r:.80} became {xb!r:.80}")


def check_no_source_left(raw: bytes, ref: str) -> None:
    """No line of NVIDIA's sources (longer than a trivial token) may be in the committed file."""
    text = raw.decode("latin-1")
    for rel in ("training/networks.py", "training/augment.py", "torch_utils/persistence.py"):
        with open(os.path.join(ref, rel), encoding="utf-8-sig") as f:
            for line in f:
                line = line.strip()
                if len(line) >= 16 and line in text:
                    sys.exit(f"error: a line of {rel} is still in the rewritten pickle: {line!r}")
    for marker in ("Copyright", "NVIDIA CORPORATION", "import torch", "class MappingNetwork", "def forward"):
        if marker in text:
            sys.exit(f"error: {marker!r} is still in the rewritten pickle")


def load_with_sources_restored(legacy, persistence, raw: bytes, placeholder_to_module_src: dict[str, str]):
    """NVIDIA's own loader on the committed pickle: an import hook swaps each placeholder back for
    the checkout's source text before NVIDIA's persistence executes it."""
    def restore(meta):
        if meta.module_src in placeholder_to_module_src:
            meta.module_src = placeholder_to_module_src[meta.module_src]
        return meta

    persistence._import_hooks.append(restore)
    try:
        return legacy.load_network_pkl(io.BytesIO(raw))
    finally:
        persistence._import_hooks.remove(restore)


def _max_state_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for role in ("G", "D", "G_ema", "augment_pipe"):
        sa, sb = a[role].state_dict(), b[role].state_dict()
        if sa.keys() != sb.keys():
            return float("inf")
        for k in sa:
            worst = max(worst, float((sa[k].double() - sb[k].double()).abs().max()) if sa[k].numel() else 0.0)
    return worst


def main() -> None:
    args = _common.parser(__doc__).parse_args()
    _common.verify_checkout(args.ref, NAME, COMMIT, BLOBS, args.skip_commit_check)
    _common.import_from(args.ref)
    import dnnlib  # NVIDIA's, from the checkout
    import legacy
    import training.augment
    import training.networks
    from torch_utils import persistence

    _common.check_imported_files(args.ref, BLOBS)
    torch.set_num_threads(1)

    # 1. expected outputs of the ganforge-written conditional pickle
    cond_pkl = os.path.join(args.out, "nvidia_tiny_cond.pkl")
    _common.finish(os.path.join(args.out, "nvidia_tiny_cond_expected.npz"),
                   cond_expected(legacy, cond_pkl), args.check)

    # 2. the snapshot written by NVIDIA's pickling, its module_src replaced
    sources = {persistence._module_to_src(m): PLACEHOLDERS[m.__name__]
               for m in (training.networks, training.augment)}
    snapshot = build_snapshot(dnnlib)
    buf = io.BytesIO()
    pickle.dump(snapshot, buf)  # as training_loop.py writes network-snapshot-*.pkl
    original = buf.getvalue()
    expected = snapshot_expected(legacy.load_network_pkl(io.BytesIO(original)))
    rewritten = replace_module_src(original, persistence, sources)
    check_rewrite(original, rewritten, sources)
    check_no_source_left(rewritten, args.ref)
    back = load_with_sources_restored(legacy, persistence, rewritten, {v: k for k, v in sources.items()})
    assert _max_state_difference(back, legacy.load_network_pkl(io.BytesIO(original))) == 0.0
    pkl_path = os.path.join(args.out, "nvidia_snapshot_tiny.pkl")
    if args.check:
        with open(pkl_path, "rb") as f:
            committed = load_with_sources_restored(legacy, persistence, f.read(), {v: k for k, v in sources.items()})
        d = _max_state_difference(committed, back)
        print(f"{pkl_path}: max |committed - rebuilt| over all tensors = {d:.3g}")
        if not d <= _common.CHECK_TOL:
            sys.exit(f"error: {pkl_path} differs from a fresh build")
        recomputed = snapshot_expected(committed)
        worst = max(float(np.abs(recomputed[k].astype(np.float64) - expected[k]).max()) for k in expected)
        print(f"  outputs of the committed pickle vs the original's: max difference {worst:.3g}")
    else:
        with open(pkl_path, "wb") as f:
            f.write(rewritten)
        print(f"wrote {pkl_path} ({len(rewritten)} bytes; NVIDIA's original was {len(original)})")
    _common.finish(os.path.join(args.out, "nvidia_snapshot_tiny_expected.npz"), expected, args.check)


if __name__ == "__main__":
    main()
