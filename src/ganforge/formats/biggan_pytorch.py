"""ajbrock/BigGAN-PyTorch: the weights folder its `utils.save_weights` writes.

Layout: `weights/<experiment>/` with `G.pth`, `G_ema.pth` (with --ema), `D.pth` (state dicts),
`G_optim.pth`, `D_optim.pth` (not read) and `state_dict.pth` = {itr, epoch, save_num, save_best_num,
best_IS, best_FID, config}: the run's whole argparse config, which names the architecture (model
'BigGAN' or 'BigGANdeep', resolution, G_ch, D_ch, dim_z, shared_dim, hier, attention, eps ...).
Pass the folder or any of those files.

state_dict.pth's config holds nn.ReLU objects (G_activation / D_activation), so torch.load's
weights_only reader refuses it; it is read with that reader and an inert stand-in registered under
the ReLU's name (`_InertModule`: it keeps the pickled attributes as data and can do nothing), never
the real class.

Conversion (exact: only names and shapes change):
  blocks.{i}.0.X -> blocks.{i}.X; attention blocks.{i}.1.X -> attention.{i}.X   (BigGAN G and D, deep G)
  blocks.{s}.{d}.X -> blocks.{s*depth+d}.X; blocks.{s}.{depth}.X -> attention.{s*depth+depth-1}.X  (deep D)
  SN buffers u0 [1, out] -> u [out], sv0 [1] -> sigma []; v = normalize(W^T u) is added (their layer
  keeps no v: every forward, eval included, runs one power step from u0, which ganforge's
  sn_eval_mode "power_step" does)
  ccbn stored_mean/stored_var -> running_mean/running_var; output_layer.0 (gain, bias, stored_*) ->
  output_bn (weight, bias, running_*); output_layer.2 -> output_conv
  --mybn runs store them as bn.stored_mean/stored_var/accumulation_counter; a positive counter means
  standing statistics were accumulated as sums, which are divided by it here (the flag that does
  this in their sample.py is not saved).
"""

from __future__ import annotations

import math
import os
import re

import torch
import torch.nn.functional as F

from ganforge.errors import FormatError
from ganforge.formats import Checkpoint
from ganforge.formats._foreign import build_network, pickle_kind, torch_file_strings

NAME = "biggan-pytorch"
STATE_NAME = "state_dict.pth"
FILES = {"G": "G.pth", "G_ema": "G_ema.pth", "D": "D.pth"}
OUTPUT_BN_EPS = 1e-5  # their output layers.bn is built without BN_eps: torch's default
MODELS = {"BigGAN": "biggan", "BigGANdeep": "biggan-deep"}


class _InertModule:
    """Stand-in for torch.nn modules pickled inside a BigGAN-PyTorch config (nn.ReLU): keeps the
    pickled attributes as a plain dict and has no behaviour."""

    def __setstate__(self, state):
        self.state = dict(state) if isinstance(state, dict) else {"state": state}


_STAND_INS = [(_InertModule, "torch.nn.modules.activation.ReLU")]


def _folder(path: str) -> str:
    return path if os.path.isdir(path) else (os.path.dirname(path) or ".")


def _is_their_weights(path: str) -> bool:
    strings = torch_file_strings(path)
    return any(s.endswith(".u0") or s == "u0" for s in strings) and any(
        s.startswith(("linear.", "shared.", "blocks.0.0.", "input_conv.")) for s in strings)


def sniff(path: str) -> bool:
    if os.path.isdir(path):
        return any(_is_their_weights(os.path.join(path, f)) for f in FILES.values()
                   if os.path.isfile(os.path.join(path, f)))
    if pickle_kind(path) not in ("zip", "legacy-torch"):
        return False
    if os.path.basename(path) == STATE_NAME:
        return sniff(_folder(path))
    return _is_their_weights(path)


def _torch_load(path: str, what: str):
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FormatError(f"refusing or unable to load {what}: {first[:240]}") from None


def read_run_config(folder: str) -> dict:
    path = os.path.join(folder, STATE_NAME)
    if not os.path.isfile(path):
        raise FormatError(f"{folder} has BigGAN-PyTorch weights but no {STATE_NAME}, which holds the run's "
                          "architecture (resolution, channels, attention, eps); copy it from the run's weights folder")
    data = _torch_load(path, path)
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise FormatError(f"{path} is not a BigGAN-PyTorch state_dict.pth (no 'config')")
    return data


def _attention(text) -> list[int]:
    return sorted({int(a) for a in str(text).split("_") if a.strip() and int(a) > 0})


SUPPORTED = (("G_param", "SN"), ("D_param", "SN"), ("norm_style", "bn"), ("G_shared", True),
             ("cross_replica", False), ("num_G_SV_itrs", 1), ("num_D_SV_itrs", 1))


def _check_supported(cfg: dict, source: str) -> None:
    for key, want in SUPPORTED:
        if key in cfg and cfg[key] != want:
            raise FormatError(f"{source}: this run used {key}={cfg[key]!r}; ganforge reads BigGAN-PyTorch runs "
                              f"with {key}={want!r}")
    if cfg.get("model", "BigGAN") not in MODELS:
        raise FormatError(f"{source}: model {cfg.get('model')!r} is not BigGAN or BigGANdeep")


def architectures(cfg: dict, state_G: dict | None, source: str) -> tuple[str, dict, dict]:
    """(architecture, G kwargs, D kwargs) for a run's config. The hierarchical z size comes from the
    weights: BigGAN-PyTorch rounds dim_z down to a multiple of the number of z chunks."""
    _check_supported(cfg, source)
    arch = MODELS[cfg.get("model", "BigGAN")]
    res = int(cfg["resolution"])
    n_classes = int(cfg["n_classes"])
    dim_z = int(cfg["dim_z"])
    shared_dim = int(cfg.get("shared_dim", 0)) or dim_z
    hier = bool(cfg.get("hier", False))
    sn_eps, bn_eps = float(cfg.get("SN_eps", 1e-12)), float(cfg.get("BN_eps", 1e-5))
    G = dict(z_dim=dim_z, c_dim=n_classes, img_resolution=res, img_channels=3, channel_width=int(cfg["G_ch"]),
             embed_dim=shared_dim, attention=_attention(cfg.get("G_attn", "64")), bn_eps=bn_eps,
             out_bn_eps=OUTPUT_BN_EPS, sn_eps=sn_eps, sn_eval_mode="power_step", n_stats=1,
             truncation_mode="resample", init="none")
    D = dict(c_dim=n_classes, img_resolution=res, img_channels=3, channel_width=int(cfg["D_ch"]),
             attention=_attention(cfg.get("D_attn", "64")), sn_eps=sn_eps, sn_eval_mode="power_step", init="none")
    if arch == "biggan":
        G["hier"] = hier
        D["wide"] = bool(cfg.get("D_wide", True))
        if hier and state_G is not None and "linear.weight" in state_G:
            num_slots = int(math.log2(res)) - 1      # one z chunk per G block (log2(res / 4)) + the input's
            G["z_dim"] = int(state_G["linear.weight"].shape[1]) * num_slots
    else:
        if not hier:
            raise FormatError(f"{source}: a BigGANdeep run without --hier feeds z alone to the input layer; "
                              "ganforge's BigGAN-deep conditions every layer on [class embedding, z] (--hier)")
        G["depth"] = int(cfg.get("G_depth", 2))
        D["depth"] = int(cfg.get("D_depth", 2))
    return arch, G, D


_SN_KEY = re.compile(r"^(.*)\.(u|sv)(\d+)$")


def _convert_tensors(state: dict[str, torch.Tensor], rename, sn_eps: float, source: str,
                     origin: dict | None = None) -> dict[str, torch.Tensor]:
    """Rename keys with `rename(key) -> key | None`, and turn SN buffers u0/sv0 into u, v, sigma;
    `origin` collects ganforge key -> their key."""
    out: dict[str, torch.Tensor] = {}
    origin = {} if origin is None else origin
    counters: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _SN_KEY.match(key)
        if m and m.group(3) != "0":
            continue  # extra singular vectors of --num_G_SVs > 1: logging only
        if key.endswith(".accumulation_counter"):
            counters[key[: -len(".accumulation_counter")]] = value
            continue
        new = rename(key)
        if new is None:
            raise FormatError(f"{source}: unexpected tensor {key} (not part of this architecture)")
        if m:
            new = new[: -len(m.group(2) + "0")] + ("u" if m.group(2) == "u" else "sigma")
            value = value.reshape(-1) if m.group(2) == "u" else value.reshape([])
        out[new] = value.contiguous()
        origin[new] = key
    for prefix, count in counters.items():   # --mybn standing statistics: sums over `count` passes
        if float(count.reshape(-1)[0]) > 0:
            base = rename(prefix + ".stored_mean").rsplit(".", 1)[0]
            out[base + ".running_mean"] = out[base + ".running_mean"] / count.reshape(-1)[0]
            out[base + ".running_var"] = out[base + ".running_var"] / count.reshape(-1)[0]
    for key in [k for k in out if k.endswith(".u")]:
        w = out.get(key[:-2] + ".weight")
        if w is not None:
            out[key[:-2] + ".v"] = F.normalize(torch.mv(w.reshape(w.shape[0], -1).t(), out[key]), dim=0, eps=sn_eps)
    return out


def _renamer(arch: str, role: str, depth: int):
    """Their key -> ours (module docstring); None for a key that has no place."""
    def block_index(stage: int, sub: int) -> tuple[str, int] | None:
        if arch == "biggan" or role == "G":   # their deep G lists every block on its own: blocks.{k}.0
            return ("blocks", stage) if sub == 0 else ("attention", stage) if sub == 1 else None
        if sub < depth:
            return "blocks", stage * depth + sub
        return ("attention", stage * depth + depth - 1) if sub == depth else None

    def rename(key: str) -> str | None:
        key = key.replace(".bn.stored_", ".stored_")          # --mybn
        key = key.replace(".stored_mean", ".running_mean").replace(".stored_var", ".running_var")
        m = re.match(r"^blocks\.(\d+)\.(\d+)\.(.*)$", key)
        if m:
            where = block_index(int(m.group(1)), int(m.group(2)))
            return None if where is None else f"{where[0]}.{where[1]}.{m.group(3)}"
        if role == "G" and key.startswith("output_layer.0."):
            rest = key[len("output_layer.0."):]
            return "output_bn." + {"gain": "weight"}.get(rest, rest)
        if role == "G" and key.startswith("output_layer.2."):
            return "output_conv." + key[len("output_layer.2."):]
        head = key.split(".", 1)[0]
        allowed = {"G": ("shared", "linear"), "D": ("linear", "embed", "input_conv")}[role]
        return key if head in allowed else None

    return rename


def read(path: str, device="cpu") -> Checkpoint:
    folder = _folder(os.fspath(path))
    run = read_run_config(folder)
    cfg = run["config"]
    source = os.path.basename(os.path.abspath(folder)) or folder
    states = {}
    for role, name in FILES.items():
        file = os.path.join(folder, name)
        if os.path.isfile(file):
            states[role] = _torch_load(file, os.path.join(source, name))
            if not isinstance(states[role], dict):
                raise FormatError(f"{source}/{name} is not a state dict")
    if "G" not in states and "G_ema" not in states:
        raise FormatError(f"{folder} has no G.pth or G_ema.pth")
    arch, G_kwargs, D_kwargs = architectures(cfg, states.get("G_ema", states.get("G")), source)
    nets = {}
    for role, state in states.items():
        kind = "D" if role == "D" else "G"
        kwargs = D_kwargs if kind == "D" else G_kwargs
        origin: dict[str, str] = {}
        ours = _convert_tensors(state, _renamer(arch, kind, kwargs.get("depth", 1)), kwargs["sn_eps"],
                                f"{source}/{FILES[role]}", origin)
        nets[role] = build_network(kind, kwargs, ours, f"{source}/{FILES[role]}", device=device,
                                   what=FILES[role], architecture=arch, origin=origin)
    training = {k: run[k] for k in ("itr", "epoch") if isinstance(run.get(k), (int, float))}
    config = {"architecture": arch, "source_format": NAME, "training": training,
              "source": {"config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool))}}}
    return Checkpoint(G=nets.get("G"), G_ema=nets.get("G_ema"), D=nets.get("D"), config=config)


__all__ = ["sniff", "read", "read_run_config", "architectures", "NAME"]
