"""rosinality/stylegan2-pytorch checkpoints (`.pt` written by torch.save), read and written.

File: {'g': state_dict, 'd': state_dict, 'g_ema': state_dict, 'latent_avg': [style_dim]} (training
checkpoints add optimizer states and a pickled `args`; converted ones may hold only g_ema and
latent_avg). Read with `torch.load(weights_only=True)`, which refuses code (argparse.Namespace is
the one class allowed in, as plain data).

rosinality's networks are StyleGAN2 config F with fixed choices, so they map onto ganforge's
(NVIDIA-named) networks exactly:
  G: unconditional, 'skip', 3 channels, z_dim = w_dim = style_dim, mapping of n_mlp layers
     (lr multiplier 0.01, not stored in the file: rosinality's default is assumed), channel table
     C(res) = min(16384 * channel_multiplier // res, 512) = NVIDIA's channel_base / channel_max;
  D: unconditional 'resnet', minibatch stddev group 4 with 1 channel.
Name mapping (i: block index from 8x8 up, res = 2 ** (i + 3)):
  style.{k+1}.*                  <-> mapping.fc{k}.*             latent_avg <-> mapping.w_avg
  input.input [1,C,4,4]          <-> synthesis.b4.const [C,4,4]
  conv1 / convs.{2i} / convs.{2i+1} <-> synthesis.b4.conv1 / b{res}.conv0 / b{res}.conv1:
      conv.weight [1,O,I,3,3] <-> weight [O,I,3,3] (same orientation, also for the up-sampling conv:
      both run it as a transposed conv without flipping), conv.modulation.* <-> affine.*,
      noise.weight [1] <-> noise_strength [], activate.bias <-> bias
  noises.noise_{j} [1,1,R,R]     <-> noise_const [R,R] of the j-th conv layer (j = 0: b4.conv1)
  to_rgb1 / to_rgbs.{i}          <-> synthesis.b4.torgb / b{res}.torgb (bias [1,3,1,1] <-> [3])
  D: convs.0.{0.weight,1.bias} <-> b{S}.fromrgb; convs.{k}.conv1.{0,1} <-> b{r}.conv0;
     convs.{k}.conv2.{1,2} <-> b{r}.conv1; convs.{k}.skip.1 <-> b{r}.skip; final_conv <-> b4.conv;
     final_linear.0 / .1 <-> b4.fc / b4.out.
The FIR kernels (`*.blur.kernel`, `*.upsample.kernel`, `*.kernel`) are the fixed [1,3,3,1] filter and
are checked, not copied.
"""

from __future__ import annotations

import argparse
import os
import pickletools
import re
import zipfile

import torch

from ganforge.errors import FormatError, UsageError
from ganforge.formats import Checkpoint
from ganforge.formats._foreign import build_network, pickle_kind

NAME = "rosinality"
MAPPING_LR_MULTIPLIER = 0.01  # rosinality's lr_mlp default; the file does not record it
MBSTD_GROUP_SIZE = 4
KERNEL_1D = (1.0, 3.0, 3.0, 1.0)
W_AVG_SAMPLES = 10000
# rosinality keeps one latent_avg (of g_ema). ganforge also writes the training G's tracked average
# under this extra key, which rosinality's scripts never read, so a round trip keeps it.
G_LATENT_AVG = "g_latent_avg"  # when a training checkpoint has no latent_avg: w_avg = mean of mapping(z) over this many z


def _rosinality_keys(path: str) -> bool:
    """Does a torch.save zip archive's pickle mention g_ema / g state dicts? (opcode walk, no exec)."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                return False
            with z.open(name) as f:
                for i, (op, arg, _) in enumerate(pickletools.genops(f)):
                    if i > 200:
                        return False
                    if isinstance(arg, str) and arg in ("g_ema", "g", "style.1.weight"):
                        return True
    except Exception:
        return False
    return False


def sniff(path: str) -> bool:
    kind = pickle_kind(path)
    return kind == "legacy-torch" or (kind == "zip" and _rosinality_keys(path))


def _fir(factor: int) -> torch.Tensor:
    k = torch.tensor(KERNEL_1D)
    k = k[None, :] * k[:, None]
    return k / k.sum() * factor ** 2


def _check_kernels(sd: dict[str, torch.Tensor], source: str) -> None:
    """rosinality stores its FIR kernels (sum 1, or 4 for 2x up-sampling); ganforge rebuilds them."""
    for k, v in sd.items():
        if k.endswith("kernel") and not (v.shape == (4, 4) and any(
                torch.allclose(v.float(), _fir(f), atol=1e-6) for f in (1, 2))):
            raise FormatError(f"{source}: {k} is not the [1,3,3,1] filter; other blur kernels are not supported")


# ------------------------------------------------------------------------------------------------
# Name mapping


def _generator_layers(num_blocks: int):
    """(rosinality prefix, ganforge prefix, noise index) of every modulated conv, in order."""
    yield "conv1", "synthesis.b4.conv1", 0
    for i in range(num_blocks):
        res = 2 ** (i + 3)
        yield f"convs.{2 * i}", f"synthesis.b{res}.conv0", 2 * i + 1
        yield f"convs.{2 * i + 1}", f"synthesis.b{res}.conv1", 2 * i + 2


def _torgb_layers(num_blocks: int):
    yield "to_rgb1", "synthesis.b4.torgb"
    for i in range(num_blocks):
        yield f"to_rgbs.{i}", f"synthesis.b{2 ** (i + 3)}.torgb"


def generator_to_ganforge(sd: dict[str, torch.Tensor], source: str) -> tuple[dict, dict]:
    """rosinality G state dict -> (ganforge G state dict without w_avg, shape facts)."""
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    num_blocks = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    if n_mlp == 0 or "input.input" not in sd:
        raise FormatError(f"{source}: not a rosinality StyleGAN2 generator (no style.*/input.input)")
    out: dict[str, torch.Tensor] = {}
    for k in range(n_mlp):
        out[f"mapping.fc{k}.weight"] = sd[f"style.{k + 1}.weight"]
        out[f"mapping.fc{k}.bias"] = sd[f"style.{k + 1}.bias"]
    out["synthesis.b4.const"] = sd["input.input"][0]
    for ros, ours, j in _generator_layers(num_blocks):
        out[f"{ours}.weight"] = sd[f"{ros}.conv.weight"][0]
        out[f"{ours}.affine.weight"] = sd[f"{ros}.conv.modulation.weight"]
        out[f"{ours}.affine.bias"] = sd[f"{ros}.conv.modulation.bias"]
        out[f"{ours}.noise_strength"] = sd[f"{ros}.noise.weight"].reshape([])
        out[f"{ours}.bias"] = sd[f"{ros}.activate.bias"]
        noise = sd.get(f"noises.noise_{j}")
        if noise is not None:
            out[f"{ours}.noise_const"] = noise[0, 0]
    for ros, ours in _torgb_layers(num_blocks):
        out[f"{ours}.weight"] = sd[f"{ros}.conv.weight"][0]
        out[f"{ours}.affine.weight"] = sd[f"{ros}.conv.modulation.weight"]
        out[f"{ours}.affine.bias"] = sd[f"{ros}.conv.modulation.bias"]
        out[f"{ours}.bias"] = sd[f"{ros}.bias"].reshape(-1)
    _check_kernels(sd, source)
    channels = {4: int(sd["input.input"].shape[1])}
    for i in range(num_blocks):
        channels[2 ** (i + 3)] = int(sd[f"convs.{2 * i}.conv.weight"].shape[1])
    facts = dict(style_dim=int(sd["style.1.weight"].shape[1]), n_mlp=n_mlp, size=2 ** (num_blocks + 2),
                 channels=channels, has_noise=all(f"noises.noise_{j}" in sd for j in range(2 * num_blocks + 1)))
    return out, facts


def discriminator_to_ganforge(sd: dict[str, torch.Tensor], size: int, source: str) -> tuple[dict, dict]:
    _check_kernels(sd, source)
    out: dict[str, torch.Tensor] = {}
    try:
        out[f"b{size}.fromrgb.weight"] = sd["convs.0.0.weight"]
        out[f"b{size}.fromrgb.bias"] = sd["convs.0.1.bias"]
        channels = {size: int(sd["convs.0.0.weight"].shape[0])}
        k, res = 1, size
        while f"convs.{k}.conv1.0.weight" in sd:
            out[f"b{res}.conv0.weight"] = sd[f"convs.{k}.conv1.0.weight"]
            out[f"b{res}.conv0.bias"] = sd[f"convs.{k}.conv1.1.bias"]
            out[f"b{res}.conv1.weight"] = sd[f"convs.{k}.conv2.1.weight"]
            out[f"b{res}.conv1.bias"] = sd[f"convs.{k}.conv2.2.bias"]
            out[f"b{res}.skip.weight"] = sd[f"convs.{k}.skip.1.weight"]
            channels[res] = int(sd[f"convs.{k}.conv1.0.weight"].shape[0])
            k, res = k + 1, res // 2
        channels[4] = int(sd["final_conv.0.weight"].shape[0])
        out["b4.conv.weight"] = sd["final_conv.0.weight"]
        out["b4.conv.bias"] = sd["final_conv.1.bias"]
        out["b4.fc.weight"] = sd["final_linear.0.weight"]
        out["b4.fc.bias"] = sd["final_linear.0.bias"]
        out["b4.out.weight"] = sd["final_linear.1.weight"]
        out["b4.out.bias"] = sd["final_linear.1.bias"]
    except KeyError as e:
        raise FormatError(f"{source}: discriminator lacks {e.args[0]}; not a rosinality StyleGAN2 D") from None
    if res != 4:
        raise FormatError(f"{source}: discriminator blocks do not reach 4x4 from {size}x{size}")
    return out, channels


def channel_layout(channels: dict[int, int], source: str) -> tuple[int, int]:
    """(channel_base, channel_max) with min(channel_base // res, channel_max) == channels[res] for all res."""
    cmax = max(channels.values())
    lo, hi = 1, 2 ** 40
    for res, c in channels.items():
        if c < cmax:  # channel_base // res == c
            lo, hi = max(lo, c * res), min(hi, c * res + res - 1)
        else:  # channel_base // res >= cmax
            lo = max(lo, cmax * res)
    if lo > hi or any(min(lo // r, cmax) != c for r, c in channels.items()):
        raise FormatError(f"{source}: channel counts {dict(sorted(channels.items()))} do not follow a "
                          "channel_base / channel_max layout")
    return lo, cmax


# ------------------------------------------------------------------------------------------------
# Reading


def _load(path: str, source: str) -> dict:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FormatError(f"refusing or unable to load {source}: {first[:240]}") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), dict) for k in ("g_ema", "g")):
        raise FormatError(f"{source} is a torch.save file but not a rosinality StyleGAN2 checkpoint "
                          "(no 'g_ema' or 'g' state dict)")
    return data


def read(path: str, device="cpu") -> Checkpoint:
    source = os.path.basename(os.fspath(path))
    data = _load(path, source)
    gens, facts = {}, None
    for key in ("g", "g_ema"):
        if isinstance(data.get(key), dict):
            gens[key], f = generator_to_ganforge(data[key], source)
            if facts is not None and f["channels"] != facts["channels"]:
                raise FormatError(f"{source}: g and g_ema have different shapes")
            facts = f
    base, cmax = channel_layout(facts["channels"], source)
    G_kwargs = dict(z_dim=facts["style_dim"], c_dim=0, w_dim=facts["style_dim"], img_resolution=facts["size"],
                    img_channels=3, mapping_kwargs=dict(num_layers=facts["n_mlp"],
                                                        lr_multiplier=MAPPING_LR_MULTIPLIER),
                    synthesis_kwargs=dict(channel_base=base, channel_max=cmax, architecture="skip"))
    nets = {}
    for key, role in (("g", "G"), ("g_ema", "G_ema")):
        if key not in gens:
            nets[role] = None
            continue
        state = dict(gens[key])
        nets[role] = _build_generator(G_kwargs, state, data, key, facts, source, device)
    D = None
    if isinstance(data.get("d"), dict):
        d_state, d_channels = discriminator_to_ganforge(data["d"], facts["size"], source)
        d_base, d_max = channel_layout(d_channels, source)
        D_kwargs = dict(c_dim=0, img_resolution=facts["size"], img_channels=3, architecture="resnet",
                        channel_base=d_base, channel_max=d_max,
                        epilogue_kwargs=dict(mbstd_group_size=MBSTD_GROUP_SIZE, mbstd_num_channels=1))
        D = build_network("D", D_kwargs, _with_filters("D", D_kwargs, d_state), source, device=device, what="d")
    config = {"architecture": "stylegan2", "source_format": NAME}
    if "latent_avg" not in data:
        config["training"] = {"w_avg": f"estimated from {W_AVG_SAMPLES} samples (the file has no latent_avg)"}
    return Checkpoint(G=nets["G"], G_ema=nets["G_ema"], D=D, config=config)


def _with_filters(role: str, kwargs: dict, state: dict) -> dict:
    """Add the buffers rosinality does not store under our names (FIR filters, fresh noise) from a new net."""
    from ganforge.models import build

    fresh = build("stylegan2", role, kwargs).state_dict()
    out = dict(state)
    for k, v in fresh.items():
        if k not in out and (k.endswith("resample_filter") or k.endswith("noise_const")):
            out[k] = v
    return out


def _build_generator(G_kwargs, state, data, key, facts, source, device):
    state = _with_filters("G", G_kwargs, state)
    latent_avg = data.get(G_LATENT_AVG if key == "g" and G_LATENT_AVG in data else "latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        state["mapping.w_avg"] = latent_avg.reshape(-1).to(torch.float32)
    else:
        state["mapping.w_avg"] = torch.zeros([facts["style_dim"]])
    G = build_network("G", G_kwargs, state, source, device=device, what=key)
    if not isinstance(latent_avg, torch.Tensor):
        with torch.no_grad():  # what rosinality's scripts do: mean_latent(n) of the mapping network
            z = torch.randn([W_AVG_SAMPLES, G.z_dim], generator=torch.Generator().manual_seed(0)).to(device)
            G.mapping.w_avg.copy_(G.mapping(z, None)[:, 0].mean(0))
    return G


# ------------------------------------------------------------------------------------------------
# Writing


def rosinality_channels(res: int, channel_multiplier: int) -> int:
    """rosinality's Generator/Discriminator `self.channels` table (model.py, commit bef283a): 512 up to
    32x32, then 2^(14 - log2 res) * channel_multiplier (256*cm at 64, 128*cm at 128, ..., 16*cm at 1024)."""
    return 512 if res <= 32 else (2 ** 14 // res) * channel_multiplier


def need_rosinality_channels(img_resolution: int, channel_base: int, channel_max: int, which: str) -> None:
    """UsageError unless ganforge's widths min(channel_base // res, channel_max) at every resolution 4..img_resolution
    equal rosinality's table for one integer channel_multiplier (rosinality can express no other widths)."""
    ours = {4 * 2 ** i: min(channel_base // (4 * 2 ** i), channel_max)
            for i in range(int(img_resolution).bit_length() - 2)}
    cms = {c * r // 2 ** 14 for r, c in ours.items() if r > 32} or {2}
    if img_resolution > 1024 or len(cms) != 1 or min(cms) < 1 or any(
            rosinality_channels(r, min(cms)) != c for r, c in ours.items()):
        table = ", ".join(f"{r}: {c}" for r, c in ours.items())
        raise UsageError(f"cannot write a rosinality checkpoint: the {which}'s channel widths ({table}) are not "
                         "rosinality's (512 up to 32x32, then 256*m, 128*m, ... for an integer channel_multiplier "
                         "m), so its Generator could not load them; convert to native or nvidia-pkl instead")


def _check_writable(G, D) -> None:
    def need(cond, what):
        if not cond:
            raise UsageError(f"cannot write a rosinality checkpoint: {what}; rosinality's networks have no such option")

    kw = G.init_kwargs
    syn, mp = kw.get("synthesis_kwargs") or {}, kw.get("mapping_kwargs") or {}
    need(G.c_dim == 0, "the generator is conditional")
    need(G.z_dim == G.w_dim, "z_dim differs from w_dim")
    need(G.img_channels == 3, f"the generator makes {G.img_channels}-channel images")
    need(syn.get("architecture", "skip") == "skip", f"the generator architecture is {syn.get('architecture')!r} (only 'skip')")
    need(syn.get("conv_clamp") is None, "the generator uses conv_clamp")
    need(list(syn.get("resample_filter", KERNEL_1D)) == list(KERNEL_1D), "the resample filter is not [1,3,3,1]")
    need(syn.get("activation", "lrelu") == "lrelu" and mp.get("activation", "lrelu") == "lrelu", "activations are not lrelu")
    need(syn.get("use_noise", True), "noise inputs are disabled")
    need(mp.get("lr_multiplier", MAPPING_LR_MULTIPLIER) == MAPPING_LR_MULTIPLIER, "the mapping lr multiplier is not 0.01")
    need(mp.get("layer_features") in (None, G.w_dim), "the mapping layer width differs from w_dim")
    need_rosinality_channels(G.img_resolution, syn.get("channel_base", 32768), syn.get("channel_max", 512), "generator")
    if D is not None:
        dk = D.init_kwargs
        need_rosinality_channels(D.img_resolution, dk.get("channel_base", 32768), dk.get("channel_max", 512),
                                 "discriminator")
        ep = dk.get("epilogue_kwargs") or {}
        need(dk.get("c_dim", 0) == 0, "the discriminator is conditional")
        need(dk.get("architecture", "resnet") == "resnet", f"the discriminator architecture is {dk.get('architecture')!r}")
        need(dk.get("conv_clamp") is None, "the discriminator uses conv_clamp")
        need(D.img_channels == 3, "the discriminator reads non-RGB images")
        need(ep.get("mbstd_group_size", 4) == MBSTD_GROUP_SIZE and ep.get("mbstd_num_channels", 1) == 1,
             "minibatch stddev is not group 4 / 1 channel")


def generator_from_ganforge(G) -> dict[str, torch.Tensor]:
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in G.state_dict().items()}
    num_blocks = len(G.synthesis.block_resolutions) - 1
    out: dict[str, torch.Tensor] = {}
    for k in range(G.mapping.num_layers):
        out[f"style.{k + 1}.weight"] = sd[f"mapping.fc{k}.weight"]
        out[f"style.{k + 1}.bias"] = sd[f"mapping.fc{k}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]
    for ros, ours, j in _generator_layers(num_blocks):
        out[f"{ros}.conv.weight"] = sd[f"{ours}.weight"][None]
        if ours.endswith("conv0"):  # the up-sampling conv carries its blur kernel
            out[f"{ros}.conv.blur.kernel"] = _fir(2)
        out[f"{ros}.conv.modulation.weight"] = sd[f"{ours}.affine.weight"]
        out[f"{ros}.conv.modulation.bias"] = sd[f"{ours}.affine.bias"]
        out[f"{ros}.noise.weight"] = sd[f"{ours}.noise_strength"].reshape(1)
        out[f"{ros}.activate.bias"] = sd[f"{ours}.bias"]
        out[f"noises.noise_{j}"] = sd[f"{ours}.noise_const"][None, None]
    for ros, ours in _torgb_layers(num_blocks):
        out[f"{ros}.bias"] = sd[f"{ours}.bias"].reshape(1, -1, 1, 1)
        if ros != "to_rgb1":
            out[f"{ros}.upsample.kernel"] = _fir(2)
        out[f"{ros}.conv.weight"] = sd[f"{ours}.weight"][None]
        out[f"{ros}.conv.modulation.weight"] = sd[f"{ours}.affine.weight"]
        out[f"{ros}.conv.modulation.bias"] = sd[f"{ours}.affine.bias"]
    return out


def discriminator_from_ganforge(D) -> dict[str, torch.Tensor]:
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in D.state_dict().items()}
    size = D.img_resolution
    out = {"convs.0.0.weight": sd[f"b{size}.fromrgb.weight"], "convs.0.1.bias": sd[f"b{size}.fromrgb.bias"]}
    for k, res in enumerate(D.block_resolutions, start=1):
        out[f"convs.{k}.conv1.0.weight"] = sd[f"b{res}.conv0.weight"]
        out[f"convs.{k}.conv1.1.bias"] = sd[f"b{res}.conv0.bias"]
        out[f"convs.{k}.conv2.0.kernel"] = _fir(1)
        out[f"convs.{k}.conv2.1.weight"] = sd[f"b{res}.conv1.weight"]
        out[f"convs.{k}.conv2.2.bias"] = sd[f"b{res}.conv1.bias"]
        out[f"convs.{k}.skip.0.kernel"] = _fir(1)
        out[f"convs.{k}.skip.1.weight"] = sd[f"b{res}.skip.weight"]
    out.update({"final_conv.0.weight": sd["b4.conv.weight"], "final_conv.1.bias": sd["b4.conv.bias"],
                "final_linear.0.weight": sd["b4.fc.weight"], "final_linear.0.bias": sd["b4.fc.bias"],
                "final_linear.1.weight": sd["b4.out.weight"], "final_linear.1.bias": sd["b4.out.bias"]})
    return out


def write(ckpt: Checkpoint, path: str | os.PathLike) -> None:
    """Write {'g', 'd', 'g_ema', 'latent_avg'} as rosinality's train.py / convert_weight.py do."""
    G_ema = ckpt.G_ema
    _check_writable(G_ema, ckpt.D)
    if ckpt.G is not None and ckpt.G is not G_ema:
        _check_writable(ckpt.G, None)
    data = {"g_ema": generator_from_ganforge(G_ema),
            "latent_avg": G_ema.mapping.w_avg.detach().to("cpu", torch.float32).clone()}
    if ckpt.G is not None and ckpt.G is not G_ema:
        data["g"] = generator_from_ganforge(ckpt.G)
        data[G_LATENT_AVG] = ckpt.G.mapping.w_avg.detach().to("cpu", torch.float32).clone()
    if ckpt.D is not None:
        data["d"] = discriminator_from_ganforge(ckpt.D)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        torch.save(data, tmp)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


__all__ = ["sniff", "read", "write", "generator_to_ganforge", "discriminator_to_ganforge", "channel_layout"]
