"""TensorFlow StyleGAN2 pickles (the original NVlabs/stylegan2 release and stylegan2-ada's TF code):
a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects, read without TensorFlow and without
running the `build_module_src` each Network carries.

Each Network's state: version (4; StyleGAN1 pickles are 3), name, static_kwargs, components
(nested Networks: G has 'mapping' and 'synthesis'), build_module_src (text, never run),
build_func_name, variables [(name, ndarray)]. Variable names are collected recursively, prefixed
by their component: 'dlatent_avg', 'mapping/Dense0/weight', 'synthesis/4x4/Const/const',
'synthesis/noise0', ...

Variable mapping (shared/reference/nvlabs.md §3.2). TF dense weights are [in, out] and conv
weights [kh, kw, in, out]; ganforge's are [out, in] and [out, in, kh, kw]:
  dense  W -> W.T                       conv  W -> W.transpose(3, 2, 0, 1)
  up-sampling convs (Conv0_up, the resnet G's Skip): TF runs them as conv2d_transpose of the
      spatially flipped kernel, ganforge (like NVIDIA's PyTorch code) as a transposed conv of the
      unflipped one, so W -> W[::-1, ::-1].transpose(3, 2, 0, 1)
  style bias: TF adds 1 after the affine layer, ganforge initialises that bias at 1: mod_bias + 1
  const [1, C, 4, 4] -> [C, 4, 4];  noise{k} [1, 1, R, R] -> [R, R] of the k-th conv layer
  'ToRGB_lod{n}' / 'FromRGB_lod{n}' are the {r}x{r} layers with r = resolution / 2**n.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np
import torch

from ganforge.errors import FormatError
from ganforge.formats import Checkpoint
from ganforge.formats._foreign import build_network, pickle_kind, plain
from ganforge.formats.unpickler import TFNetworkStub, load_pickle

NAME = "tf-pkl"
MIN_VERSION = 4  # StyleGAN2; StyleGAN (1) pickles are version 3

# Keyword arguments that only steer TF graph building or sampling; they do not change the weights.
_IGNORED_KWARGS = {"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                   "style_mixing_prob", "structure", "conditioning", "fused_modconv", "randomize_noise",
                   "is_training", "is_validation", "is_template_graph", "return_dlatents", "dtype", "components",
                   "mapping_func", "synthesis_func", "func_name", "num_fp16_res", "conv_clamp", "freeze_layers"}


def sniff(path: str) -> bool:
    return pickle_kind(path) == "tf"


class _Kwargs:
    """Read TF static_kwargs once each; anything left unread and not ignorable is an error."""

    def __init__(self, kwargs: dict, source: str, what: str):
        self.kw, self.used, self.source, self.what = dict(kwargs), set(), source, what

    def __call__(self, *names: str, default: Any = None, none: Any = None) -> Any:
        value = default
        for name in names:
            self.used.add(name)
            if name in self.kw:
                value = self.kw[name]
                break
        return none if value is None and none is not None else value

    def finish(self, defaults_ok: dict[str, Any] | None = None) -> None:
        for name, ok in (defaults_ok or {}).items():
            if name in self.kw and self.kw[name] == ok:
                self.used.add(name)
        unknown = sorted(set(self.kw) - self.used - _IGNORED_KWARGS)
        if unknown:
            raise FormatError(f"{self.source}: {self.what} was built with TensorFlow arguments ganforge cannot "
                              f"map: {', '.join(f'{k}={self.kw[k]!r:.30}' for k in unknown)}")


def collect_variables(net: TFNetworkStub, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a TF Network: own ones unprefixed, component ones as '<component>/<name>'."""
    out: dict[str, np.ndarray] = {}
    for item in net.get("variables") or []:
        if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[0], str):
            raise FormatError("a TensorFlow network's variable list is malformed")
        name, value = item
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        if value.dtype.kind not in "fiu":
            raise FormatError(f"TensorFlow variable {prefix}{name} holds {value.dtype}, not numbers")
        out[prefix + name] = value
    for comp_name, comp in (net.get("components") or {}).items():
        if not isinstance(comp, TFNetworkStub):
            raise FormatError(f"TensorFlow component {comp_name!r} is not a Network")
        out.update(collect_variables(comp, f"{prefix}{comp_name}/"))
    return out


def _alias_lod(variables: dict[str, np.ndarray], resolution: int) -> dict[str, np.ndarray]:
    """'ToRGB_lod{n}' / 'FromRGB_lod{n}' -> '{r}x{r}/ToRGB' / '{r}x{r}/FromRGB', r = resolution // 2**n."""
    out = {}
    for name, value in variables.items():
        m = re.search(r"(ToRGB|FromRGB)_lod(\d+)", name)
        if m:
            r = resolution // 2 ** int(m.group(2))
            name = name.replace(m.group(0), f"{r}x{r}/{m.group(1)}")
        out[name] = value
    return out


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def dense(w: np.ndarray) -> torch.Tensor:
    """TF dense [in, out] -> [out, in]."""
    return _t(w.T)


def conv(w: np.ndarray) -> torch.Tensor:
    """TF conv [kh, kw, in, out] -> [out, in, kh, kw]."""
    return _t(w.transpose(3, 2, 0, 1))


def up_conv(w: np.ndarray) -> torch.Tensor:
    """TF up-sampling conv [kh, kw, in, out] (run as conv2d_transpose of the flipped kernel) -> [out, in, kh, kw]."""
    return _t(w[::-1, ::-1].transpose(3, 2, 0, 1))


def style_bias(b: np.ndarray) -> torch.Tensor:
    """TF adds 1 to the style after its bias; ganforge's affine bias carries that 1."""
    return _t(b + 1)


class _Vars:
    def __init__(self, variables: dict[str, np.ndarray], source: str, what: str):
        self.vars, self.used, self.source, self.what = variables, set(), source, what

    def __contains__(self, name):
        return name in self.vars

    def __getitem__(self, name):
        if name not in self.vars:
            raise FormatError(f"{self.source}: {self.what} lacks TensorFlow variable {name!r}")
        self.used.add(name)
        return self.vars[name]

    def finish(self, ignorable=lambda name: False):
        left = sorted(n for n in self.vars if n not in self.used and not ignorable(n))
        if left:
            raise FormatError(f"{self.source}: {self.what} has TensorFlow variables ganforge cannot place: "
                              f"{', '.join(left[:5])}{' ...' if len(left) > 5 else ''}")


def _resample(kernel) -> list:
    return list(plain(kernel)) if kernel is not None else [1, 3, 3, 1]


def generator_kwargs(net: TFNetworkStub, source: str, what: str) -> dict:
    kw = _Kwargs(net.get("static_kwargs") or {}, source, what)
    fmap_base = kw("fmap_base", default=16384)
    out = dict(
        z_dim=kw("latent_size", default=512), c_dim=kw("label_size", default=0),
        w_dim=kw("dlatent_size", default=512), img_resolution=kw("resolution", default=1024),
        img_channels=kw("num_channels", default=3),
        mapping_kwargs=dict(num_layers=kw("mapping_layers", default=8), embed_features=kw("label_fmaps"),
                            layer_features=kw("mapping_fmaps"),
                            activation=kw("mapping_nonlinearity", default="lrelu"),
                            lr_multiplier=kw("mapping_lrmul", default=0.01),
                            w_avg_beta=kw("w_avg_beta", "dlatent_avg_beta", default=0.995, none=1)),
        synthesis_kwargs=dict(channel_base=int(fmap_base) * 2, channel_max=kw("fmap_max", default=512),
                              architecture=kw("architecture", default="skip"),
                              resample_filter=_resample(kw("resample_kernel")),
                              use_noise=kw("use_noise", default=True),
                              activation=kw("nonlinearity", default="lrelu")))
    kw.finish({"fmap_min": 1, "fmap_decay": 1.0, "normalize_latents": True, "dlatent_broadcast": None,
               "fused_modconv": True, "randomize_noise": True})
    return plain(out)


def discriminator_kwargs(net: TFNetworkStub, source: str, what: str) -> dict:
    kw = _Kwargs(net.get("static_kwargs") or {}, source, what)
    fmap_base = kw("fmap_base", default=16384)
    mapping_fmaps = kw("mapping_fmaps")
    out = dict(
        c_dim=kw("label_size", default=0), img_resolution=kw("resolution", default=1024),
        img_channels=kw("num_channels", default=3), architecture=kw("architecture", default="resnet"),
        channel_base=int(fmap_base) * 2, channel_max=kw("fmap_max", default=512), cmap_dim=mapping_fmaps,
        block_kwargs=dict(activation=kw("nonlinearity", default="lrelu"),
                          resample_filter=_resample(kw("resample_kernel"))),
        mapping_kwargs=dict(num_layers=kw("mapping_layers", default=0), embed_features=mapping_fmaps,
                            layer_features=mapping_fmaps, lr_multiplier=kw("mapping_lrmul", default=0.1)),
        # TF's D_stylegan2 default is 4 (NVIDIA's legacy.py uses None, i.e. the whole batch, when unset)
        epilogue_kwargs=dict(mbstd_group_size=kw("mbstd_group_size", default=4),
                             mbstd_num_channels=kw("mbstd_num_features", default=1)))
    kw.finish({"fmap_min": 1, "fmap_decay": 1.0})
    return plain(out)


def generator_state(variables: dict[str, np.ndarray], kwargs: dict, source: str, what: str) -> dict:
    """TF G/Gs variables -> ganforge Generator state dict (filters and unused noise left to the constructor)."""
    res = kwargs["img_resolution"]
    arch = kwargs["synthesis_kwargs"]["architecture"]
    v = _Vars(_alias_lod(variables, res), source, what)
    out: dict[str, torch.Tensor] = {}
    if "dlatent_avg" in v:
        out["mapping.w_avg"] = _t(v["dlatent_avg"])
    for i in range(kwargs["mapping_kwargs"]["num_layers"]):
        out[f"mapping.fc{i}.weight"] = dense(v[f"mapping/Dense{i}/weight"])
        out[f"mapping.fc{i}.bias"] = _t(v[f"mapping/Dense{i}/bias"])
    if kwargs["c_dim"]:
        if "mapping/LabelEmbed/weight" not in v:
            raise FormatError(f"{source}: {what} is conditional without a label embedding (original StyleGAN2 "
                              "LabelConcat); only StyleGAN2-ADA conditional networks are supported")
        out["mapping.embed.weight"] = dense(v["mapping/LabelEmbed/weight"])
        out["mapping.embed.bias"] = _t(v["mapping/LabelEmbed/bias"])

    def modconv(ours: str, theirs: str, transform, noise: int | None):
        out[f"{ours}.weight"] = transform(v[f"{theirs}/weight"])
        out[f"{ours}.bias"] = _t(v[f"{theirs}/bias"])
        out[f"{ours}.affine.weight"] = dense(v[f"{theirs}/mod_weight"])
        out[f"{ours}.affine.bias"] = style_bias(v[f"{theirs}/mod_bias"])
        if noise is not None and kwargs["synthesis_kwargs"]["use_noise"]:
            out[f"{ours}.noise_strength"] = _t(v[f"{theirs}/noise_strength"]).reshape([])
            out[f"{ours}.noise_const"] = _t(v[f"synthesis/noise{noise}"][0, 0])

    log2 = int(round(math.log2(res)))
    for r in (2 ** i for i in range(2, log2 + 1)):
        tf, ours = f"synthesis/{r}x{r}", f"synthesis.b{r}"
        if r == 4:
            out[f"{ours}.const"] = _t(v[f"{tf}/Const/const"][0])
            modconv(f"{ours}.conv1", f"{tf}/Conv", conv, 0)
        else:
            k = int(round(math.log2(r)))
            modconv(f"{ours}.conv0", f"{tf}/Conv0_up", up_conv, 2 * k - 5)
            modconv(f"{ours}.conv1", f"{tf}/Conv1", conv, 2 * k - 4)
            if arch == "resnet":
                out[f"{ours}.skip.weight"] = up_conv(v[f"{tf}/Skip/weight"])
        if arch == "skip" or r == res:
            out[f"{ours}.torgb.weight"] = conv(v[f"{tf}/ToRGB/weight"])
            out[f"{ours}.torgb.bias"] = _t(v[f"{tf}/ToRGB/bias"])
            out[f"{ours}.torgb.affine.weight"] = dense(v[f"{tf}/ToRGB/mod_weight"])
            out[f"{ours}.torgb.affine.bias"] = style_bias(v[f"{tf}/ToRGB/mod_bias"])

    # 'lod' drives progressive growing in TF graphs; the ToRGB of lower resolutions in 'orig'
    # networks are never used at full resolution.
    v.finish(lambda n: n.split("/")[-1] == "lod" or (arch != "skip" and "/ToRGB/" in n))
    return out


def discriminator_state(variables: dict[str, np.ndarray], kwargs: dict, source: str, what: str) -> dict:
    res = kwargs["img_resolution"]
    arch = kwargs["architecture"]
    v = _Vars(_alias_lod(variables, res), source, what)
    out: dict[str, torch.Tensor] = {}
    log2 = int(round(math.log2(res)))
    for r in (2 ** i for i in range(log2, 2, -1)):
        tf, ours = f"{r}x{r}", f"b{r}"
        if r == res or arch == "skip":
            out[f"{ours}.fromrgb.weight"] = conv(v[f"{tf}/FromRGB/weight"])
            out[f"{ours}.fromrgb.bias"] = _t(v[f"{tf}/FromRGB/bias"])
        out[f"{ours}.conv0.weight"] = conv(v[f"{tf}/Conv0/weight"])
        out[f"{ours}.conv0.bias"] = _t(v[f"{tf}/Conv0/bias"])
        out[f"{ours}.conv1.weight"] = conv(v[f"{tf}/Conv1_down/weight"])
        out[f"{ours}.conv1.bias"] = _t(v[f"{tf}/Conv1_down/bias"])
        if arch == "resnet":
            out[f"{ours}.skip.weight"] = conv(v[f"{tf}/Skip/weight"])
    if arch == "skip":
        out["b4.fromrgb.weight"] = conv(v["4x4/FromRGB/weight"])
        out["b4.fromrgb.bias"] = _t(v["4x4/FromRGB/bias"])
    if kwargs["c_dim"]:
        if "LabelEmbed/weight" not in v:
            raise FormatError(f"{source}: {what} is conditional without a label embedding (original StyleGAN2 "
                              "output projection); only StyleGAN2-ADA conditional networks are supported")
        out["mapping.embed.weight"] = dense(v["LabelEmbed/weight"])
        out["mapping.embed.bias"] = _t(v["LabelEmbed/bias"])
        for i in range(kwargs["mapping_kwargs"]["num_layers"]):
            out[f"mapping.fc{i}.weight"] = dense(v[f"Mapping{i}/weight"])
            out[f"mapping.fc{i}.bias"] = _t(v[f"Mapping{i}/bias"])
    out["b4.conv.weight"] = conv(v["4x4/Conv/weight"])
    out["b4.conv.bias"] = _t(v["4x4/Conv/bias"])
    out["b4.fc.weight"] = dense(v["4x4/Dense0/weight"])
    out["b4.fc.bias"] = _t(v["4x4/Dense0/bias"])
    out["b4.out.weight"] = dense(v["Output/weight"])
    out["b4.out.bias"] = _t(v["Output/bias"])
    v.finish(lambda n: n.split("/")[-1] == "lod")
    return out


def _fill_constants(role: str, kwargs: dict, state: dict) -> dict:
    """FIR filters (and noise buffers of layers without TF noise) come from the constructor."""
    from ganforge.models import build

    fresh = build("stylegan2", role, kwargs).state_dict()
    out = dict(state)
    for k, t in fresh.items():
        if k not in out and (k.endswith("resample_filter") or k == "mapping.w_avg"):
            out[k] = t
    return out


def read_objects(obj: Any, source: str, device="cpu") -> Checkpoint:
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, TFNetworkStub) for n in obj)):
        raise FormatError(f"{source} names TensorFlow networks but is not the (G, D, Gs) tuple of a "
                          "StyleGAN2 TensorFlow pickle")
    nets = {}
    for role, net in zip(("G", "D", "G_ema"), obj):
        what = {"G": "G", "D": "D", "G_ema": "Gs"}[role]
        version = net.get("version", 0)
        if not isinstance(version, int) or version < MIN_VERSION:
            raise FormatError(f"{source}: TensorFlow pickle version {version} is StyleGAN (1), not StyleGAN2; "
                              "ganforge reads StyleGAN2 TensorFlow pickles (version 4)")
        variables = collect_variables(net)
        if role == "D":
            kwargs = discriminator_kwargs(net, source, what)
            state = discriminator_state(variables, kwargs, source, what)
        else:
            kwargs = generator_kwargs(net, source, what)
            state = generator_state(variables, kwargs, source, what)
        role_kind = "D" if role == "D" else "G"
        nets[role] = build_network(role_kind, kwargs, _fill_constants(role_kind, kwargs, state), source,
                                   device=device, what=what)
    return Checkpoint(G=nets["G"], G_ema=nets["G_ema"], D=nets["D"],
                      config={"architecture": "stylegan2", "source_format": NAME})


def read(path: str, device="cpu") -> Checkpoint:
    source = os.path.basename(os.fspath(path))
    return read_objects(load_pickle(path, source), source, device=device)


__all__ = ["sniff", "read", "read_objects", "collect_variables", "generator_state", "discriminator_state",
           "generator_kwargs", "discriminator_kwargs", "dense", "conv", "up_conv", "style_bias"]
