#!/usr/bin/env python3
"""Regenerate the rosinality fixtures of tests/formats/data/ with rosinality/stylegan2-pytorch.

    git clone https://github.com/rosinality/stylegan2-pytorch /tmp/ref/rosinality
    git -C /tmp/ref/rosinality checkout bef283a1c24087da704d16c30abc8e36e63efa0e
    python scripts/reference/rosinality.py --ref /tmp/ref/rosinality --out tests/formats/data
    python scripts/reference/rosinality.py --ref /tmp/ref/rosinality --out tests/formats/data --check

Tiny networks: rosinality's Generator/Discriminator have a fixed channel table
{4: 512, 8: 512, 16: 512, 32: 512, 64: 256*m, ...}; the script builds them with that table divided
by 64 (8 channels at 4..32 px) so the files stay small. The table is a dict literal inside
__init__, so the script runs a copy of each class's __init__ whose code constants 512/256/128/64
are replaced by 8/4/2/1 (nothing else in either __init__ uses them; the math is unchanged, and
load_state_dict(strict=True) checks every shape). Other run-time patches, none of which touches
what is computed: torch.utils.cpp_extension.load is stubbed while op/ is imported (it would
compile the CUDA kernels; on the CPU rosinality's ops never call them), and train.py's imports of
torchvision and lmdb are satisfied with empty stand-ins (torchvision.utils.save_image writes the
sample grid, which is skipped; the lmdb dataset class is not used). All on the CPU in float32.

rosinality_tiny_expected.npz
    What rosinality's code computes from the committed rosinality_tiny.pt (16x16, style_dim 8,
    n_mlp 2, written by ganforge's writer; its random weights are an input, not regenerated), after
    Generator/Discriminator.load_state_dict(strict=True):
      rs = np.random.RandomState(8); z = rs.randn(2, 8); img = rs.randn(2, 3, 16, 16)   (float32)
      img_psi{1.0,0.5} = g_ema([z], truncation=psi, truncation_latent=latent_avg, randomize_noise=False)[0]
      d_logits = d(img)

rosinality_train_tiny.pt  (+ rosinality_train_tiny_expected.npz)
    A checkpoint written by rosinality's own train.py: its train() function runs one iteration
    (args.iter = 1: D step, R1, G step, path length, G EMA) on one minibatch of 4 random 16x16
    images, with the models and optimizers set up the way train.py's main block does (the fresh
    networks' parameters first offset by random amounts, as if resumed, so that biases and noise
    strengths are not all zero), and saves
    checkpoint/000000.pt itself with torch.save({'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args',
    'ada_aug_p'}), which is copied here unchanged. Expected outputs, from fresh modules after
    load_state_dict(strict=True) of that file:
      rs = np.random.RandomState(9); z = rs.randn(2, 8); img = rs.randn(4, 3, 16, 16)
      img_psi1.0 = g_ema([z], randomize_noise=False)[0];  g_img = g([z], randomize_noise=False)[0]
      torch.manual_seed(0); mean_latent = g_ema.mean_latent(4096)   (the file has no latent_avg)
      img_psi0.5 = g_ema([z], truncation=0.5, truncation_latent=mean_latent, randomize_noise=False)[0]
      d_logits = d(img)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import sys
import tempfile
import types

import numpy as np
import torch

import _common

NAME = "rosinality/stylegan2-pytorch"
COMMIT = "bef283a1c24087da704d16c30abc8e36e63efa0e"
# git blob ids at COMMIT of every file this script imports
BLOBS = {
    "dataset.py": "7713ea2f8bc94d202d2dfbe830af3cb96b1e803d",
    "distributed.py": "51fa243257ef302e2015d5ff36ac531b86a9a0ce",
    "model.py": "0134c398d232a3c50f9f5285fc6d0fe96b2b8c11",
    "non_leaking.py": "19ad5f817d045b76c23c9707a66e2e36b150c15b",
    "op/__init__.py": "d0918d92285955855be89f00096b888ee5597ce3",
    "op/conv2d_gradfix.py": "64229c5a7fd04292140abac1f490619963009328",
    "op/fused_act.py": "5d46e10d6cb35867dbc4871e1c576141f4fe2efe",
    "op/upfirdn2d.py": "67e0375efac0f1cadcda12e667b72c36369e9c88",
    "train.py": "be141b60212f2965bdd95790decab687be742386",
}

SIZE, STYLE_DIM, N_MLP, CHANNEL_MULTIPLIER = 16, 8, 2, 2
CHANNEL_DIVISOR = 64
TRAIN_SEED = 3
TRAIN_BATCH = 4


# ------------------------------------------------------------------------------------------------
# Importing rosinality's code on a CPU-only machine


def import_rosinality(ref: str):
    _common.import_from(ref)
    from torch.utils import cpp_extension

    real_load = cpp_extension.load
    cpp_extension.load = lambda *a, **k: None  # op/ would compile its CUDA kernels at import
    try:
        import model
        import op  # noqa: F401
    finally:
        cpp_extension.load = real_load
    stand_ins = {"torchvision": types.ModuleType("torchvision"),
                 "torchvision.transforms": types.ModuleType("torchvision.transforms"),
                 "torchvision.utils": types.ModuleType("torchvision.utils"),
                 "lmdb": types.ModuleType("lmdb")}
    stand_ins["torchvision.utils"].save_image = lambda *a, **k: None
    stand_ins["torchvision"].transforms = stand_ins["torchvision.transforms"]
    stand_ins["torchvision"].utils = stand_ins["torchvision.utils"]
    for name, mod in stand_ins.items():
        if name in sys.modules:
            sys.exit(f"error: {name} is already imported; run this script in a fresh interpreter")
        sys.modules[name] = mod
    sys.modules.setdefault("wandb", None)  # train.py: `import wandb` -> ImportError -> wandb = None
    import train
    _common.check_imported_files(ref, BLOBS)
    return model, train


def shrunk(cls):
    """`cls` whose __init__ builds the channel table divided by CHANNEL_DIVISOR (see the docstring)."""
    init = cls.__init__
    table = {512: 512 // CHANNEL_DIVISOR, 256: 256 // CHANNEL_DIVISOR, 128: 128 // CHANNEL_DIVISOR,
             64: 64 // CHANNEL_DIVISOR}
    consts = tuple(table.get(c, c) if type(c) is int else c for c in init.__code__.co_consts)
    new_init = types.FunctionType(init.__code__.replace(co_consts=consts), init.__globals__, init.__name__,
                                  init.__defaults__, init.__closure__)
    # zero-argument super() inside __init__ needs the __class__ cell: subclassing keeps cls as that
    return type(cls.__name__, (cls,), {"__init__": new_init, "__module__": cls.__module__})


def networks(model):
    G = shrunk(model.Generator)(SIZE, STYLE_DIM, N_MLP, channel_multiplier=CHANNEL_MULTIPLIER)
    D = shrunk(model.Discriminator)(SIZE, channel_multiplier=CHANNEL_MULTIPLIER)
    return G, D


def load_strict(model, data: dict, g_key: str):
    G, D = networks(model)
    G.load_state_dict(data[g_key], strict=True)
    D.load_state_dict(data["d"], strict=True)
    return G.eval(), D.eval()


# ------------------------------------------------------------------------------------------------
# The ganforge-written fixture


def tiny_expected(model, pt_path: str) -> dict[str, np.ndarray]:
    data = torch.load(pt_path, map_location="cpu", weights_only=True)
    g_ema, d = load_strict(model, data, "g_ema")
    rs = np.random.RandomState(8)
    z = rs.randn(2, STYLE_DIM).astype(np.float32)
    img = rs.randn(2, 3, SIZE, SIZE).astype(np.float32)
    out = {"z": z, "img": img}
    with torch.no_grad():
        for psi in (1.0, 0.5):
            out[f"img_psi{psi}"] = g_ema([torch.from_numpy(z)], truncation=psi, truncation_latent=data["latent_avg"],
                                         randomize_noise=False)[0].numpy()
        out["d_logits"] = d(torch.from_numpy(img)).numpy()
    return out


# ------------------------------------------------------------------------------------------------
# The checkpoint written by train.py


def train_args() -> argparse.Namespace:
    """train.py's argparse defaults, with what its main block sets, for a one-iteration tiny run."""
    return argparse.Namespace(
        path="tiny-16.lmdb", arch="stylegan2", iter=1, batch=TRAIN_BATCH, n_sample=4, size=SIZE, r1=10.0,
        path_regularize=2.0, path_batch_shrink=2, d_reg_every=16, g_reg_every=4, mixing=0.9, ckpt=None,
        lr=0.002, channel_multiplier=CHANNEL_MULTIPLIER, wandb=False, local_rank=0, augment=False,
        augment_p=0.0, ada_target=0.6, ada_length=500 * 1000, ada_every=256,
        distributed=False, latent=STYLE_DIM, n_mlp=N_MLP, start_iter=0)


def _offset_all_parameters(module: torch.nn.Module, scale: float) -> None:
    """p += scale * randn * (std of p, or 1 for constant tensors): the zero biases and noise
    strengths of a fresh network get values, so the parity tests see them."""
    with torch.no_grad():
        for p in module.parameters():
            spread = float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 1.0
            p.add_(torch.randn_like(p) * (scale * spread))


@contextlib.contextmanager
def _in_folder(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_train(model, train, dest: str) -> None:
    """One iteration of rosinality's train(); its own torch.save writes checkpoint/000000.pt."""
    args = train_args()
    random.seed(TRAIN_SEED)  # mixing_noise and the style-mixing cut use Python's random
    torch.manual_seed(TRAIN_SEED)
    generator, discriminator = networks(model)
    _offset_all_parameters(generator, 0.3)  # as if resumed from a trained network
    _offset_all_parameters(discriminator, 0.3)
    g_ema, _ = networks(model)
    g_ema.eval()
    train.accumulate(g_ema, generator, 0)
    g_reg_ratio = args.g_reg_every / (args.g_reg_every + 1)
    d_reg_ratio = args.d_reg_every / (args.d_reg_every + 1)
    g_optim = torch.optim.Adam(generator.parameters(), lr=args.lr * g_reg_ratio,
                               betas=(0 ** g_reg_ratio, 0.99 ** g_reg_ratio))
    d_optim = torch.optim.Adam(discriminator.parameters(), lr=args.lr * d_reg_ratio,
                               betas=(0 ** d_reg_ratio, 0.99 ** d_reg_ratio))
    reals = torch.rand([args.batch, 3, SIZE, SIZE], generator=torch.Generator().manual_seed(TRAIN_SEED)) * 2 - 1
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "checkpoint"))
        os.makedirs(os.path.join(tmp, "sample"))
        with _in_folder(tmp):
            train.train(args, [reals], generator, discriminator, g_optim, d_optim, g_ema, "cpu")
        shutil.copyfile(os.path.join(tmp, "checkpoint", "000000.pt"), dest)


def train_expected(model, pt_path: str) -> dict[str, np.ndarray]:
    data = torch.load(pt_path, map_location="cpu", weights_only=False)  # our own file: args is a Namespace
    g_ema, d = load_strict(model, data, "g_ema")
    g, _ = load_strict(model, data, "g")
    rs = np.random.RandomState(9)
    z = rs.randn(2, STYLE_DIM).astype(np.float32)
    img = rs.randn(4, 3, SIZE, SIZE).astype(np.float32)
    tz = torch.from_numpy(z)
    out = {"z": z, "img": img}
    with torch.no_grad():
        out["img_psi1.0"] = g_ema([tz], randomize_noise=False)[0].numpy()
        out["g_img"] = g([tz], randomize_noise=False)[0].numpy()
        torch.manual_seed(0)
        mean_latent = g_ema.mean_latent(4096)
        out["mean_latent"] = mean_latent[0].numpy()
        out["img_psi0.5"] = g_ema([tz], truncation=0.5, truncation_latent=mean_latent,
                                  randomize_noise=False)[0].numpy()
        out["d_logits"] = d(torch.from_numpy(img)).numpy()
    out["ada_aug_p"] = np.array(data["ada_aug_p"], dtype=np.float32)
    return out


def _max_state_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for key in ("g", "d", "g_ema"):
        if a[key].keys() != b[key].keys():
            return float("inf")
        for k in a[key]:
            worst = max(worst, float((a[key][k].double() - b[key][k].double()).abs().max()))
    return worst


def main() -> None:
    args = _common.parser(__doc__).parse_args()
    _common.verify_checkout(args.ref, NAME, COMMIT, BLOBS, args.skip_commit_check)
    model, train = import_rosinality(args.ref)
    torch.set_num_threads(1)

    _common.finish(os.path.join(args.out, "rosinality_tiny_expected.npz"),
                   tiny_expected(model, os.path.join(args.out, "rosinality_tiny.pt")), args.check)

    pt_path = os.path.join(args.out, "rosinality_train_tiny.pt")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "000000.pt")
        run_train(model, train, fresh)
        expected = train_expected(model, fresh)
        if args.check:
            d = _max_state_difference(torch.load(pt_path, weights_only=False), torch.load(fresh, weights_only=False))
            print(f"{pt_path}: max |committed - rerun| over the g, d, g_ema tensors = {d:.3g}")
            if not d <= _common.CHECK_TOL:
                sys.exit(f"error: {pt_path} differs from a fresh run")
        else:
            shutil.copyfile(fresh, pt_path)
            print(f"wrote {pt_path} ({os.path.getsize(pt_path)} bytes), as rosinality's train.py saved it")
    _common.finish(os.path.join(args.out, "rosinality_train_tiny_expected.npz"), expected, args.check)


if __name__ == "__main__":
    main()
