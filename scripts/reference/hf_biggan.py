#!/usr/bin/env python3
"""Regenerate the pytorch-pretrained-BigGAN fixture of tests/formats/data/ with huggingface's code.

    git clone https://github.com/huggingface/pytorch-pretrained-BigGAN /tmp/ref/hf
    git -C /tmp/ref/hf checkout 1e18aed2dff75db51428f13b940c38b923eb4a3d
    python scripts/reference/hf_biggan.py --ref /tmp/ref/hf --out tests/formats/data
    python scripts/reference/hf_biggan.py --ref /tmp/ref/hf --out tests/formats/data --check

hf_biggan_deep_tiny/  (config.json + pytorch_model.bin, the two files of a published model)
    BigGAN(BigGANConfig(output_dim=128, z_dim=8, class_embed_dim=8, channel_width=4,
    num_classes=1000, layers=convert_tf_to_pytorch.BigGAN128.layers, attention_layer_position=8,
    eps=1e-4, n_stats=51)): the real 128-px BigGAN-deep block list of their converter (10 GenBlocks,
    self-attention inserted before block 8, so the blocks are generator.layers.{0..7,9,10} and the
    attention generator.layers.8), with 4 instead of 128 channels per width unit. Built after
    torch.manual_seed(BUILD_SEED); then, from a torch.Generator seeded with RANDOMISE_SEED: every
    spectrally normalised weight_orig N(0, 0.1^2), embeddings.weight N(0, 1), every conv/linear bias
    N(0, 0.1^2), the attention gamma (0 at init) U(0.2, 0.3), the final unconditional batch norm's
    weight 1 + N(0, 0.1^2) and bias N(0, 0.1^2) (their constructor leaves those two uninitialised),
    and every BigGANBatchNorm's 51 rows of running_means N(0, 0.3^2) and running_vars U(0.5, 1.5),
    one row per truncation level, all different, so the truncation value matters. Then 20 no-grad
    forwards in train() mode (z = 0, no class, truncation 1) run torch's spectral-norm power
    iteration, which changes only weight_u/weight_v (checked); eval() uses the stored u and v
    without iterating. Saved the way their converter (convert_tf_to_pytorch.main) saves:
    config.json = config.to_json_string(), pytorch_model.bin = torch.save(model.state_dict()), here
    in the legacy (non-zip) format (_use_new_zipfile_serialization=False) of the 2019 files, and with
    every weight the converter copies from TF stored as the non-contiguous view its np.transpose
    makes (2-D: w.t().contiguous().t(); 4-D: the OIHW view of a contiguous HWIO array), values
    unchanged (the view of a [1, C, 1, 1] weight is contiguous all the same). The legacy format
    names storages by memory address, so the bytes differ from run to run; --check compares the
    tensors (values, dtypes, strides) and the config text.

hf_biggan_deep_tiny_expected.npz
    What their code computes from those files: BigGAN.from_pretrained(folder) (which reads
    config.json and loads pytorch_model.bin with load_state_dict(strict=False); the script checks
    that strict=True loads it too), .eval(), torch.no_grad():
      class_idx = np.random.RandomState(12).randint(0, 1000, 3);  one_hot = one_hot_from_int(class_idx, 3)
      z = truncated_noise_sample(batch_size=3, dim_z=8, truncation=1.0, seed=12)
      for T in 0.4, 0.5, 1.0 (levels 20, 25, 50 exactly), 0.33 (halfway between levels 16 and 17),
               0.345 (a quarter of the way from level 17 to 18: their interpolation weighs level 17
               by 0.25 and level 18 by 0.75, the reverse of a linear interpolation, which 0.33 cannot
               show), 0.14 (7.000000000000001 levels: float rounding makes it level 8, 0.16's):
          z_t{T} = truncated_noise_sample(batch_size=3, dim_z=8, truncation=T, seed=12)
          img_t{T} = model(z_t{T}, one_hot, T)
      class_mix = 0.5 * one_hot + 0.5 * one_hot[[1, 2, 0]];  img_mix_t0.5 = model(z_t0.5, class_mix, 0.5)
      trunc_noise_seed{s}_t0.5 = truncated_noise_sample(batch_size=1, dim_z=8, truncation=0.5, seed=s)
          for s in 0, 1, 2 (their sampler: scipy truncnorm(-2, 2) with RandomState(s), times T)
    The script also checks that the in-memory model gives the same images as the reloaded one.

Run-time patches: the package's file_utils.py imports boto3, botocore.exceptions, requests and tqdm
for downloads, which a local folder never needs. boto3, botocore and requests are empty stand-ins
(ClientError an empty exception class), put in place before the package is imported, whether or
not the real ones are installed; tqdm (a ganforge dependency) is a stand-in only where it is not
installed. Nothing in the checkout is modified. All on the CPU in float32, one thread.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import sys
import tempfile
import zipfile

import _common
import numpy as np
import torch

NAME, COMMIT, BLOBS = _common.HF_BIGGAN_NAME, _common.HF_BIGGAN_COMMIT, _common.HF_BIGGAN_BLOBS

FOLDER = "hf_biggan_deep_tiny"
CONFIG = {"output_dim": 128, "z_dim": 8, "class_embed_dim": 8, "channel_width": 4, "num_classes": 1000,
          "attention_layer_position": 8, "eps": 1e-4, "n_stats": 51}   # + layers from the converter
BUILD_SEED = 0
RANDOMISE_SEED = 1
SN_WARMUP_FORWARDS = 20
INPUT_SEED = 12
BATCH = 3
TRUNCATIONS = (0.4, 0.5, 1.0, 0.33, 0.345, 0.14)
NOISE_SEEDS = (0, 1, 2)


# ------------------------------------------------------------------------------------------------
# Importing their code


def import_hf(ref: str):
    _common.import_from(ref)
    stand_ins = {"boto3": {}, "botocore": {},
                 "botocore.exceptions": {"ClientError": type("ClientError", (Exception,), {})}, "requests": {}}
    try:   # a ganforge dependency (torch may already have imported it): the real one where installed
        importlib.import_module("tqdm")
    except ImportError:
        stand_ins["tqdm"] = {"tqdm": None}
    _common.install_stand_ins(stand_ins)
    import pytorch_pretrained_biggan as ppb
    from pytorch_pretrained_biggan import convert_tf_to_pytorch, model
    _common.check_imported_files(ref, BLOBS)
    return ppb, model, convert_tf_to_pytorch


# ------------------------------------------------------------------------------------------------
# Building and saving


def build(ppb, convert):
    base = convert.BigGAN128
    assert (base.output_dim, base.attention_layer_position, base.eps, base.n_stats) == (128, 8, 1e-4, 51)
    config = ppb.BigGANConfig(layers=base.layers, **CONFIG)
    torch.manual_seed(BUILD_SEED)
    net = ppb.BigGAN(config)
    gen = torch.Generator().manual_seed(RANDOMISE_SEED)
    with torch.no_grad():
        for name, p in net.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if name == "generator.bn.weight":
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name == "embeddings.weight":
                p.copy_(torch.randn(p.shape, generator=gen))
            elif leaf == "gamma":
                p.copy_(0.2 + 0.1 * torch.rand(p.shape, generator=gen))
            elif leaf in ("bias", "weight_orig"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                sys.exit(f"error: no rule to randomise {name}")
        for name, b in net.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_means":
                b.copy_(0.3 * torch.randn(b.shape, generator=gen))
            elif leaf == "running_vars":
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    with torch.no_grad():
        for _ in range(SN_WARMUP_FORWARDS):
            net(torch.zeros(1, config.z_dim), torch.zeros(1, config.num_classes), 1.0)
    net.eval()
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert all(k.endswith(("weight_u", "weight_v")) for k in changed) and changed, sorted(changed)
    return config, net


def converter_layout(state: dict) -> dict:
    """The state dict with every weight their converter copies from TF as np.transpose's view
    (see the docstring); same values, same keys, same _metadata."""
    out = collections.OrderedDict(state)
    out._metadata = state._metadata   # the spectral_norm versions; OrderedDict.copy() would drop it
    for k, v in state.items():
        if k.endswith("weight_orig") or k == "embeddings.weight":
            if v.dim() == 2:
                out[k] = v.t().contiguous().t()
            elif v.dim() == 4:
                out[k] = v.permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1)
            assert torch.equal(out[k], v), k
    n = sum(not v.is_contiguous() for v in out.values())
    print(f"  {n} of the {len(out)} tensors are non-contiguous views, as in a converted file")
    return out


def save(model, config, net, folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, model.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(config.to_json_string())
    torch.save(converter_layout(net.state_dict()), os.path.join(folder, model.WEIGHTS_NAME),
               _use_new_zipfile_serialization=False)


# ------------------------------------------------------------------------------------------------
# What their code computes from the folder


def images(net, ppb) -> dict[str, np.ndarray]:
    class_idx = np.random.RandomState(INPUT_SEED).randint(0, 1000, size=BATCH).astype(np.int64)
    one_hot = ppb.one_hot_from_int([int(i) for i in class_idx], batch_size=BATCH)
    out = {"class_idx": class_idx, "one_hot": one_hot,
           "z": ppb.truncated_noise_sample(batch_size=BATCH, dim_z=8, truncation=1.0, seed=INPUT_SEED)}
    with torch.no_grad():
        for t in TRUNCATIONS:
            z = ppb.truncated_noise_sample(batch_size=BATCH, dim_z=8, truncation=t, seed=INPUT_SEED)
            out[f"z_t{t}"] = z
            out[f"img_t{t}"] = net(torch.from_numpy(z), torch.from_numpy(one_hot), t).numpy()
        mix = (0.5 * one_hot + 0.5 * one_hot[[1, 2, 0]]).astype(np.float32)
        out["class_mix"] = mix
        out["img_mix_t0.5"] = net(torch.from_numpy(out["z_t0.5"]), torch.from_numpy(mix), 0.5).numpy()
    for s in NOISE_SEEDS:
        out[f"trunc_noise_seed{s}_t0.5"] = ppb.truncated_noise_sample(batch_size=1, dim_z=8, truncation=0.5, seed=s)
    return out


def expected(ppb, model, folder: str) -> dict[str, np.ndarray]:
    net = ppb.BigGAN.from_pretrained(folder).eval()
    state = torch.load(os.path.join(folder, model.WEIGHTS_NAME), map_location="cpu", weights_only=True)
    strict = ppb.BigGAN(ppb.BigGANConfig.from_json_file(os.path.join(folder, model.CONFIG_NAME)))
    strict.load_state_dict(state, strict=True)   # from_pretrained's strict=False would hide a missing key
    out = images(net, ppb)
    for t in (0.4, 1.0):
        a = out[f"img_t{t}"]
        print(f"  img_t{t}: std {a.std():.3f}, |x| > 0.99: {np.mean(np.abs(a) > 0.99):.1%}")
    with torch.no_grad():   # informational: 0.14 / (1/50) = 7.000000000000001 -> level 8, i.e. 0.16's
        z, c = torch.from_numpy(out["z_t0.14"]), torch.from_numpy(out["one_hot"])
        d_quirk = float((net(z, c, 0.16) - torch.from_numpy(out["img_t0.14"])).abs().max())
        d_level = float((net(z, c, 0.12) - torch.from_numpy(out["img_t0.14"])).abs().max())
    d_trunc = np.abs(out["img_t0.4"] - out["img_t0.5"]).max()
    print(f"  same z_t0.14 at truncation 0.16 vs img_t0.14: max difference {d_quirk:.3g} "
          f"(at 0.12: {d_level:.3g}); max |img_t0.4 - img_t0.5| = {d_trunc:.3g}")
    return out


# ------------------------------------------------------------------------------------------------
# --check


def _state_difference(a: dict, b: dict) -> list[str]:
    problems = []
    if list(a) != list(b):
        problems.append("keys differ")
    for k in a.keys() & b.keys():
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape or x.stride() != y.stride() or not torch.equal(x, y):
            problems.append(k)
    if getattr(a, "_metadata", None) != getattr(b, "_metadata", None):
        problems.append("_metadata")
    return problems


def compare_folders(model, committed: str, fresh: str) -> bool:
    ok = True
    with open(os.path.join(committed, model.CONFIG_NAME), encoding="utf-8") as fa, \
            open(os.path.join(fresh, model.CONFIG_NAME), encoding="utf-8") as fb:
        same = fa.read() == fb.read()
    print(f"  {model.CONFIG_NAME}: {'identical' if same else 'DIFFERS'}")
    ok &= same
    path = os.path.join(committed, model.WEIGHTS_NAME)
    if zipfile.is_zipfile(path):
        print(f"  {model.WEIGHTS_NAME}: is a zip file, not the legacy format")
        ok = False
    problems = _state_difference(torch.load(path, map_location="cpu", weights_only=True),
                                 torch.load(os.path.join(fresh, model.WEIGHTS_NAME), map_location="cpu",
                                            weights_only=True))
    print(f"  {model.WEIGHTS_NAME}: " + ("every tensor identical (values, dtype, strides), same _metadata"
                                         if not problems else f"DIFFERS: {problems[:10]}"))
    return ok and not problems


def main() -> None:
    args = _common.parser(__doc__).parse_args()
    _common.verify_checkout(args.ref, NAME, COMMIT, BLOBS, args.skip_commit_check)
    ppb, model, convert = import_hf(args.ref)
    torch.set_num_threads(1)
    folder = os.path.join(args.out, FOLDER)
    config, net = build(ppb, convert)
    in_memory = images(net, ppb)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, FOLDER)
        save(model, config, net, fresh)
        reloaded = expected(ppb, model, fresh)
        d = max(float(np.abs(in_memory[k] - reloaded[k]).max()) for k in in_memory)
        print(f"  in-memory model vs BigGAN.from_pretrained of the saved folder: max difference {d:.3g}")
        if not d <= _common.CHECK_TOL:
            sys.exit("error: the reloaded model does not reproduce the in-memory one")
        if args.check:
            if not os.path.isdir(folder):
                sys.exit(f"error: {folder} does not exist")
            print(f"{folder}: committed files vs a fresh build")
            if not compare_folders(model, folder, fresh):
                sys.exit(f"error: {folder} differs from a fresh build")
        else:
            os.makedirs(folder, exist_ok=True)
            for f in (model.CONFIG_NAME, model.WEIGHTS_NAME):
                with open(os.path.join(fresh, f), "rb") as src, open(os.path.join(folder, f), "wb") as dst:
                    dst.write(src.read())
            with open(os.path.join(folder, model.CONFIG_NAME), encoding="utf-8") as f:
                layers = json.load(f)["layers"]
            print(f"wrote {folder}/ ({model.CONFIG_NAME} {os.path.getsize(os.path.join(folder, model.CONFIG_NAME))}"
                  f" bytes, {len(layers)} blocks; {model.WEIGHTS_NAME} "
                  f"{os.path.getsize(os.path.join(folder, model.WEIGHTS_NAME))} bytes, legacy torch.save format)")
    _common.finish(os.path.join(args.out, f"{FOLDER}_expected.npz"), expected(ppb, model, folder), args.check)


if __name__ == "__main__":
    main()
