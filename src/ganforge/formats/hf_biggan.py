"""pytorch-pretrained-BigGAN (huggingface): BigGAN-deep generators converted from TF-Hub.

Layout, as their `BigGAN.from_pretrained(folder)` reads it: a folder with `config.json`
(`BigGANConfig`: output_dim, z_dim, class_embed_dim, channel_width, num_classes, layers,
attention_layer_position, eps, n_stats) and `pytorch_model.bin` (a plain state dict, legacy or zip
torch.save). Pass the folder, or either file. There is no discriminator (DeepMind did not release it).

What the conversion to ganforge's BigGAN-deep does (biggan_deep.Generator; exact up to float32
summation order):
  embeddings.weight [E, K] (Linear on the one-hot)   -> shared.weight [K, E] (transposed)
  their conditioning vector is cat(z, e): every matrix that reads it (gen_z, each bn_j.scale/offset)
  has its columns (and its spectral-norm v) reordered to ganforge's cat(e, z)
  gen_z's output is viewed [N, 4, 4, 16ch] (NHWC, TF's layout): its rows (bias, u) are reordered to
  channel-major, so ganforge's reshape to [N, 16ch, 4, 4] gives the same feature map
  layers.{i} (SelfAttn inserted at attention_layer_position P shifts later blocks by one)
                                                       -> blocks.{k}, attention.{P-1}
  bn_j -> bn{j+1} (scale -> gain, offset -> bias; running_means/vars [n_stats, C] as they are)
  conv_j -> conv{j+1}; snconv1x1_{theta,phi,g,o_conv} -> {theta,phi,g,o}; gamma [1] -> []
  generator.bn -> output_bn; conv_to_rgb -> output_conv (rgb_channels = channel_width; the first 3 kept)
  torch spectral norm (weight_orig, weight_u, weight_v) -> weight, u, v, with sigma = u . W v: in eval
  torch's spectral norm uses the stored vectors without a power step, which sn_eval_mode "stored" does.
Sampling defaults to truncation_mode "scale" (TF-Hub's t * truncnorm(-2, 2)), and the truncation
value picks the batch-norm statistics as their BigGANBatchNorm does (nn.batchnorm.truncation_statistics).

Their loader is `load_state_dict(strict=False)`: a misnamed tensor keeps its random initial value.
This one is strict and names what is missing or unexpected.
"""

from __future__ import annotations

import json
import os

import torch

from ganforge.errors import FormatError
from ganforge.formats import Checkpoint
from ganforge.formats._foreign import build_network, pickle_kind, torch_file_strings

NAME = "pytorch-pretrained-biggan"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_KEYS = ("output_dim", "z_dim", "channel_width", "num_classes", "layers", "attention_layer_position",
               "eps", "n_stats")
MARKERS = ("embeddings.weight", "generator.gen_z.weight_orig")
BOTTOM = 4          # gen_z's output is 4 x 4
BN_PER_BLOCK = 4


def _paths(path: str) -> tuple[str, str]:
    """(config.json, pytorch_model.bin) for a folder or either of its files."""
    if os.path.isdir(path):
        return os.path.join(path, CONFIG_NAME), os.path.join(path, WEIGHTS_NAME)
    folder = os.path.dirname(path) or "."
    if os.path.basename(path) == CONFIG_NAME:
        return path, os.path.join(folder, WEIGHTS_NAME)
    return os.path.join(folder, CONFIG_NAME), path


def _is_their_config(cfg_path: str) -> bool:
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and all(k in cfg for k in ("channel_width", "layers", "attention_layer_position"))


def _is_their_weights(weights_path: str) -> bool:
    return os.path.isfile(weights_path) and set(MARKERS) <= torch_file_strings(weights_path)


def sniff(path: str) -> bool:
    cfg_path, weights_path = _paths(path)
    if os.path.isdir(path) or os.path.basename(path) == CONFIG_NAME:
        return _is_their_config(cfg_path) or _is_their_weights(weights_path)
    return pickle_kind(path) in ("zip", "legacy-torch") and _is_their_weights(weights_path)


def _read_config(cfg_path: str, weights_path: str) -> dict:
    if not os.path.isfile(cfg_path):
        raise FormatError(f"{weights_path} is a pytorch-pretrained-BigGAN weights file but {cfg_path} is missing; "
                          f"put the {CONFIG_NAME} of the same release (e.g. biggan-deep-128-config.json, renamed) "
                          "beside it")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise FormatError(f"{cfg_path} is unreadable or not JSON ({e})") from None
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise FormatError(f"{cfg_path} is not a pytorch-pretrained-BigGAN config (no {', '.join(missing)})")
    return cfg


def _load_state(weights_path: str) -> dict[str, torch.Tensor]:
    if not os.path.isfile(weights_path):
        raise FormatError(f"{weights_path} is missing: a pytorch-pretrained-BigGAN folder needs {WEIGHTS_NAME} "
                          f"beside {CONFIG_NAME}")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FormatError(f"refusing or unable to load {weights_path}: {first[:240]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(f"{weights_path} is not a state dict of tensors")
    return {k: v.contiguous() for k, v in state.items()}


def _architecture(cfg: dict, cfg_path: str) -> dict:
    """ganforge BigGAN-deep constructor arguments for their config (refusing layouts it cannot express)."""
    from ganforge.models.biggan_deep import layer_specs

    res = int(cfg["output_dim"])
    try:
        specs = [list(s) for s in layer_specs(res, 2)]
    except (ValueError, KeyError):
        raise FormatError(f"{cfg_path}: output_dim {res} is not a BigGAN-deep resolution (32..512)") from None
    theirs = [[bool(a), int(b), int(c)] for a, b, c in cfg["layers"]]
    if theirs != [[bool(a), int(b), int(c)] for a, b, c in specs]:
        raise FormatError(f"{cfg_path}: its 'layers' {theirs} are not BigGAN-deep's {res}-px layout {specs}")
    pos = int(cfg["attention_layer_position"])
    if not 0 < pos <= len(theirs):
        raise FormatError(f"{cfg_path}: attention_layer_position {pos} is outside 1..{len(theirs)}")
    ups = sum(1 for up, _, _ in theirs[:pos] if up)
    eps = float(cfg["eps"])
    return dict(z_dim=int(cfg["z_dim"]), c_dim=int(cfg["num_classes"]), img_resolution=res, img_channels=3,
                channel_width=int(cfg["channel_width"]), embed_dim=int(cfg["z_dim"]), depth=2,
                attention=[BOTTOM * 2 ** ups], channel_ratio=4, bn_eps=eps, out_bn_eps=eps, sn_eps=eps,
                sn_eval_mode="stored", n_stats=int(cfg["n_stats"]), rgb_channels=int(cfg["channel_width"]),
                truncation_mode="scale", init="none")


def _sn(state: dict, prefix: str, out: dict, new: str, cols=None, rows=None, used: set | None = None,
        origin: dict | None = None) -> None:
    """torch spectral norm tensors at `prefix` -> ganforge's weight/bias/u/v/sigma at `new`, reordering
    columns (the conditioning order) and rows (the NHWC output) by index lists where given."""
    def take(key):
        k = prefix + key
        if k not in state:
            raise FormatError(f"missing tensor {k}")
        used.add(k)
        return state[k]

    w, u, v = take("weight_orig"), take("weight_u"), take("weight_v")
    bias = state.get(prefix + "bias")
    if bias is not None:
        used.add(prefix + "bias")
    if rows is not None:
        w, u = w[rows], u[rows]
        bias = bias[rows] if bias is not None else None
    if cols is not None:
        w, v = w[:, cols], v[cols]
    w_mat = w.reshape(w.shape[0], -1)
    if origin is not None:
        origin.update({new + "weight": prefix + "weight_orig", new + "bias": prefix + "bias", new + "u": prefix + "weight_u",
                       new + "v": prefix + "weight_v"})
    out[new + "weight"] = w.contiguous()
    if bias is not None:
        out[new + "bias"] = bias.contiguous()
    out[new + "u"] = u.contiguous()
    out[new + "v"] = v.contiguous()
    out[new + "sigma"] = torch.dot(u, torch.mv(w_mat, v)).reshape([])


def generator_to_ganforge(state: dict[str, torch.Tensor], kwargs: dict, attention_position: int,
                          source: str, origin: dict | None = None) -> dict[str, torch.Tensor]:
    """Their state dict -> ganforge biggan_deep.Generator's (module docstring). Raises FormatError naming
    a missing or left-over tensor."""
    from ganforge.models.biggan_deep import layer_specs

    z_dim, embed_dim, ch = kwargs["z_dim"], kwargs["embed_dim"], kwargs["channel_width"]
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}
    try:
        if "embeddings.weight" not in state:
            raise FormatError("missing tensor embeddings.weight")
        out["shared.weight"] = state["embeddings.weight"].t().contiguous()
        used.add("embeddings.weight")
        # theirs: cond = cat(z, e); ours: cat(e, z)
        cond_cols = torch.cat([torch.arange(z_dim, z_dim + embed_dim), torch.arange(z_dim)])
        c0 = 16 * ch
        # their row (h, w, c) = (h * 4 + w) * c0 + c; ours (c, h, w) = c * 16 + h * 4 + w
        rows = torch.arange(BOTTOM * BOTTOM * c0).reshape(BOTTOM * BOTTOM, c0).t().reshape(-1)
        _sn(state, "generator.gen_z.", out, "linear.", cols=cond_cols, rows=rows, used=used, origin=origin)
        num_blocks = len(layer_specs(kwargs["img_resolution"], kwargs["depth"]))
        for i in range(num_blocks + 1):
            theirs = f"generator.layers.{i}."
            if i == attention_position:
                k = attention_position - 1
                for a, b in (("theta", "theta"), ("phi", "phi"), ("g", "g"), ("o_conv", "o")):
                    _sn(state, f"{theirs}snconv1x1_{a}.", out, f"attention.{k}.{b}.", used=used, origin=origin)
                if theirs + "gamma" not in state:
                    raise FormatError(f"missing tensor {theirs}gamma")
                out[f"attention.{k}.gamma"] = state[theirs + "gamma"].reshape([])
                used.add(theirs + "gamma")
                continue
            k = i if i < attention_position else i - 1
            for j in range(BN_PER_BLOCK):
                bn = f"{theirs}bn_{j}."
                for a, b in (("running_means", "running_mean"), ("running_vars", "running_var")):
                    if bn + a not in state:
                        raise FormatError(f"missing tensor {bn}{a}")
                    out[f"blocks.{k}.bn{j + 1}.{b}"] = state[bn + a]
                    used.add(bn + a)
                _sn(state, bn + "scale.", out, f"blocks.{k}.bn{j + 1}.gain.", cols=cond_cols, used=used, origin=origin)
                _sn(state, bn + "offset.", out, f"blocks.{k}.bn{j + 1}.bias.", cols=cond_cols, used=used, origin=origin)
                _sn(state, f"{theirs}conv_{j}.", out, f"blocks.{k}.conv{j + 1}.", used=used, origin=origin)
        for a, b in (("running_means", "running_mean"), ("running_vars", "running_var"), ("weight", "weight"),
                     ("bias", "bias")):
            key = f"generator.bn.{a}"
            if key not in state:
                raise FormatError(f"missing tensor {key}")
            out[f"output_bn.{b}"] = state[key]
            used.add(key)
        _sn(state, "generator.conv_to_rgb.", out, "output_conv.", used=used, origin=origin)
    except FormatError as e:
        raise FormatError(f"{source}: {e}") from None
    left = sorted(set(state) - used)
    if left:
        raise FormatError(f"{source}: unexpected tensor{'s' if len(left) > 1 else ''} "
                          f"{', '.join(left[:4])}{' ...' if len(left) > 4 else ''} (not part of BigGAN-deep)")
    return out


def read(path: str, device="cpu") -> Checkpoint:
    cfg_path, weights_path = _paths(os.fspath(path))
    cfg = _read_config(cfg_path, weights_path)
    kwargs = _architecture(cfg, cfg_path)
    state = _load_state(weights_path)
    source = os.path.basename(os.path.dirname(os.path.abspath(weights_path))) + "/" + WEIGHTS_NAME
    origin: dict[str, str] = {}
    ours = generator_to_ganforge(state, kwargs, int(cfg["attention_layer_position"]), source, origin)
    G = build_network("G", kwargs, ours, source, device=device, what="the generator", architecture="biggan-deep",
                      origin=origin)
    config = {"architecture": "biggan-deep", "source_format": NAME,
              "source": {"config": {k: cfg[k] for k in CONFIG_KEYS if k in cfg}}}
    return Checkpoint(G=G, G_ema=G, D=None, config=config)


__all__ = ["sniff", "read", "generator_to_ganforge", "NAME"]
