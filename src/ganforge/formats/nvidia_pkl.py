"""NVIDIA PyTorch network pickles (stylegan2-ada-pytorch `network-snapshot-*.pkl`, published `*.pkl`;
stylegan3's StyleGAN2 networks), read and written without running code from the file.

Layout (see shared/reference/nvlabs.md §3.1): a pickled dict
    {'G': <Generator>, 'D': <Discriminator>, 'G_ema': <Generator>, 'augment_pipe': <AugmentPipe>|None,
     'training_set_kwargs': dict|None}
where every network module is stored by `torch_utils.persistence` as
    REDUCE(torch_utils.persistence._reconstruct_persistent_obj, ({type, version, module_src, class_name, state},))
and `state` is the module's `__dict__`. Reading takes the constructor kwargs from `_init_kwargs`
and the tensors from `_parameters`/`_buffers` walked through `_modules`; `module_src` stays text.

Writing produces the same stream structure. NVIDIA's loader *executes* `module_src` and looks up
`class_name` in it, so what we store there decides what NVIDIA's code builds:
  - `nvidia_src=path/to/training/networks.py`: the text of that file, exactly what NVIDIA's own
    training loop stores (the file stays the user's; ganforge ships none of NVIDIA's code);
  - otherwise a two-line module that imports the classes from NVIDIA's `training.networks`, so the
    pickle loads wherever NVIDIA's repository is importable (its scripts run from its root).
Either way ganforge itself reads the file back from the recorded state and never runs that text.
"""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ganforge.errors import FormatError, UsageError
from ganforge.formats import Checkpoint
from ganforge.formats._foreign import build_network, pickle_kind, plain
from ganforge.formats.unpickler import PersistentObject, load_pickle

NAME = "nvidia-pkl"
PERSISTENCE_VERSION = 6  # torch_utils.persistence._version
SHIM_MODULE_SRC = (
    "# Written by ganforge: the network classes are NVIDIA's own, from stylegan2-ada-pytorch's\n"
    "# training/networks.py, which must be importable (run NVIDIA's scripts from their repository root).\n"
    "from training.networks import *  # noqa: F401,F403\n"
)
# Keys of a StyleGAN3 (alias-free) synthesis network that the StyleGAN2 one never has.
_STYLEGAN3_MARKERS = ("SynthesisInput", "input", "L0_36_512")


def sniff(path: str) -> bool:
    return pickle_kind(path) == "pickle"


# ------------------------------------------------------------------------------------------------
# Reading


def flatten_state(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """`state_dict()` of a recorded module: _parameters and _buffers through _modules, names joined by '.'."""
    state = obj.state
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is None:
                continue
            if not isinstance(t, torch.Tensor):
                raise FormatError(f"{prefix}{name} is {type(t).__name__}, not a tensor")
            if group == "_buffers" and name in (state.get("_non_persistent_buffers_set") or ()):
                continue
            out[prefix + name] = t
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise FormatError(f"submodule {prefix}{name} is not a recorded network module")
        out.update(flatten_state(child, f"{prefix}{name}."))
    return out


def _is_stylegan3(obj: PersistentObject) -> bool:
    syn = (obj.state.get("_modules") or {}).get("synthesis")
    if obj.class_name != "Generator" or not isinstance(syn, PersistentObject):
        return False
    kids = syn.state.get("_modules") or {}
    return any(k in kids for k in _STYLEGAN3_MARKERS) or any(
        isinstance(v, PersistentObject) and v.class_name == "SynthesisInput" for v in kids.values())


def _child(obj: PersistentObject, *path: str) -> PersistentObject | None:
    for name in path:
        obj = (obj.state.get("_modules") or {}).get(name) if obj is not None else None
    return obj if isinstance(obj, PersistentObject) else None


G_KEYS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
# Arguments NVIDIA's code accepts that only steer run-time speed; they do not change the weights or the math.
# (ganforge's memory layout is a run-time setting, set_channels_last, not a constructor argument.)
_RUNTIME_ONLY = ("fused_modconv_default", "fp16_channels_last", "channels_last")


def generator_kwargs(obj: PersistentObject) -> dict:
    """Constructor kwargs of a recorded Generator in ganforge/ada form (sg3 passes synthesis kwargs flat)."""
    kw = plain(obj.init_kwargs)
    args = plain(list(obj.init_args))
    for name, value in zip(("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"), args):
        kw.setdefault(name, value)
    out = {k: kw.pop(k) for k in G_KEYS[:5] if k in kw}
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    synthesis = dict(kw.pop("synthesis_kwargs", None) or {})
    synthesis.update(kw)  # sg3: **synthesis_kwargs are flat
    for k in _RUNTIME_ONLY:
        synthesis.pop(k, None)
    # The mapping's defaults differ between ada (w_avg_beta 0.995) and sg3 (0.998): take the recorded value.
    m = _child(obj, "mapping")
    if m is not None and "w_avg_beta" in m.state and "w_avg_beta" not in mapping:
        from ganforge.models.stylegan2 import W_AVG_BETA

        if plain(m.state["w_avg_beta"]) != W_AVG_BETA:
            mapping["w_avg_beta"] = plain(m.state["w_avg_beta"])
    missing = [k for k in G_KEYS[:5] if k not in out]
    if missing:
        raise FormatError(f"the recorded Generator lacks constructor arguments {missing}")
    out.update(mapping_kwargs=mapping, synthesis_kwargs=synthesis)
    return out


def discriminator_kwargs(obj: PersistentObject) -> dict:
    kw = plain(obj.init_kwargs)
    for name, value in zip(("c_dim", "img_resolution", "img_channels"), plain(list(obj.init_args))):
        kw.setdefault(name, value)
    for k in _RUNTIME_ONLY:
        kw.pop(k, None)
    if isinstance(kw.get("block_kwargs"), dict):
        kw["block_kwargs"] = {k: v for k, v in kw["block_kwargs"].items() if k not in _RUNTIME_ONLY}
    return kw


def read_objects(data: Any, source: str, device="cpu") -> Checkpoint:
    """Build a Checkpoint from the unpickled (restricted) content of an NVIDIA network pickle."""
    if isinstance(data, PersistentObject):
        data = {"G_ema" if data.class_name == "Generator" else "D": data}
    if not isinstance(data, dict) or not any(isinstance(data.get(k), PersistentObject) for k in ("G", "G_ema")):
        raise FormatError(f"{source} is a pickle but not a network pickle (no G/G_ema network inside); "
                          "expected an NVIDIA StyleGAN2 snapshot")
    nets: dict[str, nn.Module | None] = {}
    built: dict[int, nn.Module] = {}
    for role in ("G", "G_ema", "D"):
        obj = data.get(role)
        if obj is None:
            nets[role] = None
            continue
        if not isinstance(obj, PersistentObject):
            raise FormatError(f"{source}: {role} is a {type(obj).__name__}, not a recorded network")
        if _is_stylegan3(obj):
            raise FormatError(f"{source}: {role} is a StyleGAN3 (alias-free) network, which ganforge does not "
                              "support yet; StyleGAN2 pickles from the same code base load")
        expected = "Discriminator" if role == "D" else "Generator"
        if obj.class_name != expected:
            raise FormatError(f"{source}: {role} is a {obj.class_name}, expected a StyleGAN2 {expected}")
        if id(obj) in built:  # the same object pickled under two keys
            nets[role] = built[id(obj)]
            continue
        try:
            kwargs = discriminator_kwargs(obj) if role == "D" else generator_kwargs(obj)
        except FormatError as e:
            raise FormatError(f"{source}: {role}: {e}") from None
        try:
            state = flatten_state(obj)
        except FormatError as e:
            raise FormatError(f"{source}: {role}: {e}") from None
        nets[role] = built[id(obj)] = build_network("D" if role == "D" else "G", kwargs, state, source,
                                                    device=device, what=role)
    training: dict[str, Any] = {}
    tsk = data.get("training_set_kwargs")
    if isinstance(tsk, dict):
        training["training_set_kwargs"] = plain(tsk)
    aug = data.get("augment_pipe")
    if isinstance(aug, PersistentObject):
        p = (aug.state.get("_buffers") or {}).get("p")
        if isinstance(p, torch.Tensor) and p.numel() == 1:
            training["augment_p"] = float(p)
    return Checkpoint(G=nets["G"], G_ema=nets["G_ema"], D=nets["D"],
                      config={"architecture": "stylegan2", "source_format": NAME, "training": training})


def read(path: str, device="cpu") -> Checkpoint:
    source = os.path.basename(os.fspath(path))
    return read_objects(load_pickle(path, source), source, device=device)


# ------------------------------------------------------------------------------------------------
# Writing


class _PersistentRecord:
    """Pickles as NVIDIA's persistence does: REDUCE(_reconstruct_persistent_obj, (meta,))."""

    def __init__(self, meta: dict):
        self.meta = meta

    def __reduce__(self):
        return (_reconstruct_persistent_obj_ref, (self.meta,))


def _reconstruct_persistent_obj_ref(meta):  # never called: only its name is written to the file
    raise RuntimeError("placeholder for torch_utils.persistence._reconstruct_persistent_obj")


_FOREIGN_GLOBALS = {id(_reconstruct_persistent_obj_ref): ("torch_utils.persistence", "_reconstruct_persistent_obj")}


class _NvidiaPickler(pickle._Pickler):
    """Writes the names in _FOREIGN_GLOBALS as globals of NVIDIA's modules (which ganforge cannot import)."""

    def save_global(self, obj, name=None):
        ref = _FOREIGN_GLOBALS.get(id(obj))
        if ref is None:
            return super().save_global(obj, name)
        module, qualname = ref
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("utf-8"))
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[type(_reconstruct_persistent_obj_ref)] = save_global


# Plain attributes each NVIDIA class keeps in its __dict__ (stylegan2-ada-pytorch training/networks.py).
NVIDIA_ATTRS = {
    "FullyConnectedLayer": ("activation", "weight_gain", "bias_gain"),
    "Conv2dLayer": ("activation", "up", "down", "conv_clamp", "padding", "weight_gain", "act_gain"),
    "MappingNetwork": ("z_dim", "c_dim", "w_dim", "num_ws", "num_layers", "w_avg_beta"),
    "SynthesisLayer": ("resolution", "up", "use_noise", "activation", "conv_clamp", "padding", "act_gain"),
    "ToRGBLayer": ("conv_clamp", "weight_gain"),
    "SynthesisBlock": ("in_channels", "w_dim", "resolution", "img_channels", "is_last", "architecture", "use_fp16",
                       "channels_last", "num_conv", "num_torgb"),
    "SynthesisNetwork": ("w_dim", "img_resolution", "img_resolution_log2", "img_channels", "block_resolutions",
                         "num_ws"),
    "Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws"),
    "DiscriminatorBlock": ("in_channels", "resolution", "img_channels", "first_layer_idx", "architecture",
                           "use_fp16", "channels_last", "num_layers"),
    "MinibatchStdLayer": ("group_size", "num_channels"),
    "DiscriminatorEpilogue": ("in_channels", "cmap_dim", "resolution", "img_channels", "architecture"),
    "Discriminator": ("c_dim", "img_resolution", "img_resolution_log2", "img_channels", "block_resolutions"),
}
# Empty hook dicts nn.Module.__init__ creates (NVIDIA's pickles carry those of the torch that wrote them;
# nn.Module.__setstate__ fills in any that a given torch version expects and the file lacks).
_MODULE_DICTS = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
                 "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                 "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                 "_load_state_dict_post_hooks")


_ALWAYS_DERIVED = ("channels_last",)  # same name in ganforge's modules, another meaning (a run-time setting)


def _derived_attr(module: nn.Module, cls: str, name: str, parent: nn.Module | None) -> Any:
    """Attributes NVIDIA keeps that ganforge's modules do not store under the same name."""
    if name == "w_dim" and cls == "SynthesisBlock":
        return int(module.conv1.affine.weight.shape[1])
    if name == "channels_last":
        # NVIDIA's blocks store use_fp16 and fp16_channels_last, False with its constructors' defaults (which
        # the written init_kwargs leave in force). ganforge's run-time layout setting is not exported.
        return False
    if name == "first_layer_idx" and cls == "DiscriminatorBlock" and parent is not None:
        idx = 0
        for res in parent.block_resolutions:
            block = getattr(parent, f"b{res}")
            if block is module:
                return idx
            idx += block.num_layers
    if name == "img_channels" and cls == "DiscriminatorEpilogue" and parent is not None:
        return int(parent.img_channels)
    raise AttributeError(f"{cls}.{name}")


def _number(v):
    """numpy scalars -> Python numbers (readable by any numpy version NVIDIA's code runs with)."""
    if isinstance(v, (list, tuple)):
        return [_number(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, torch.Tensor):
        return v.item()
    return v


def _record(module: nn.Module, module_src: str, parent: nn.Module | None = None,
            init_kwargs: dict | None = None) -> _PersistentRecord:
    cls = type(module).__name__
    if cls not in NVIDIA_ATTRS:
        raise UsageError(f"cannot export {cls} to an NVIDIA pickle: NVIDIA's StyleGAN2 code has no such class")
    state: dict[str, Any] = {"training": False}
    params: dict[str, Any] = {}
    for name, p in module._parameters.items():
        params[name] = None if p is None else nn.Parameter(p.detach().to("cpu", torch.float32).clone(),
                                                           requires_grad=False)
    state["_parameters"] = params
    state["_buffers"] = {name: (None if b is None else b.detach().to("cpu").clone())
                         for name, b in module._buffers.items() if name not in module._non_persistent_buffers_set}
    state["_non_persistent_buffers_set"] = set()
    for d in _MODULE_DICTS:
        state[d] = OrderedDict()
    state["_is_full_backward_hook"] = None
    state["_modules"] = {name: (None if child is None else _record(child, module_src, module))
                         for name, child in module._modules.items()}
    for name in NVIDIA_ATTRS[cls]:
        value = (module.__dict__[name] if name in module.__dict__ and name not in _ALWAYS_DERIVED
                 else _derived_attr(module, cls, name, parent))
        value = _number(value)
        if name in ("bias_gain", "act_gain") and value == 1:
            value = 1  # NVIDIA's default gains are the int 1 (lr_multiplier=1, def_gain of 'linear')
        state[name] = value
    if cls in ("FullyConnectedLayer", "Conv2dLayer") and module.bias is None:
        state["bias"] = None  # NVIDIA sets `self.bias = None` as a plain attribute
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs if init_kwargs is not None else {}
    meta = dict(type="class", version=PERSISTENCE_VERSION, module_src=module_src, class_name=cls, state=state)
    return _PersistentRecord(meta)


def write(ckpt: Checkpoint, path: str | os.PathLike, nvidia_src: str | os.PathLike | None = None) -> None:
    """Write `ckpt` in NVIDIA's network-pickle layout (see the module docstring for `nvidia_src`)."""
    if nvidia_src is not None:
        try:
            with open(nvidia_src, encoding="utf-8-sig") as f:  # inspect.getsource drops the BOM too
                module_src = f.read()
        except OSError as e:
            raise UsageError(f"cannot read --nvidia-src {nvidia_src}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--nvidia-src {nvidia_src} is not a text file (not UTF-8); pass NVIDIA's "
                             "training/networks.py or leave --nvidia-src out") from None
        if "class Generator" not in module_src or "persistent_class" not in module_src:
            raise UsageError(f"{nvidia_src} does not look like NVIDIA's training/networks.py "
                             "(no persistent Generator class); pass that file or leave --nvidia-src out")
    else:
        module_src = SHIM_MODULE_SRC
    if ckpt.architecture != "stylegan2":
        raise UsageError(f"only StyleGAN2 networks can be written as NVIDIA pickles, not {ckpt.architecture}")
    if ckpt.D is None:
        raise UsageError("this checkpoint has no discriminator, and NVIDIA's load_network_pkl requires G, D and "
                         "G_ema; convert a training snapshot (it stores D), or write --to native")
    data: dict[str, Any] = {}
    training = ckpt.config.get("training") or {}
    data["training_set_kwargs"] = training.get("training_set_kwargs")
    records: dict[int, _PersistentRecord] = {}  # one generator used as G and G_ema is stored once
    for role in ("G", "D", "G_ema"):
        net = getattr(ckpt, role)
        if net is not None and id(net) not in records:
            records[id(net)] = _record(net, module_src, init_kwargs=plain(net.init_kwargs))
        data[role] = None if net is None else records[id(net)]
    data["augment_pipe"] = None
    buf = io.BytesIO()
    _NvidiaPickler(buf, protocol=4).dump(data)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


__all__ = ["sniff", "read", "read_objects", "write", "flatten_state", "generator_kwargs", "discriminator_kwargs"]
