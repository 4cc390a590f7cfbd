#!/usr/bin/env python3
"""Regenerate the BigGAN-PyTorch fixtures of tests/formats/data/ with ajbrock/BigGAN-PyTorch.

    git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/ref/biggan
    git -C /tmp/ref/biggan checkout 98459431a5d618d644d54cd1e9fceb1e5045648d
    python scripts/reference/biggan_pytorch.py --ref /tmp/ref/biggan --out tests/formats/data
    python scripts/reference/biggan_pytorch.py --ref /tmp/ref/biggan --out tests/formats/data --check

Two tiny training runs, each a weights folder written by BigGAN-PyTorch's own utils.save_weights:

biggan_pytorch_tiny/        --model BigGAN      --dim_z 20 (hier: 4 slots of 5)
biggan_deep_pytorch_tiny/   --model BigGANdeep  --dim_z 16 --G_depth 2 --D_depth 2 (as
                            scripts/launch_BigGAN_deep.sh)
    both with  --dataset C10 (so train.py sets resolution 32, n_classes 10) --G_ch 4 --D_ch 4
    --shared_dim 8 --hier --G_shared --G_attn 16 --D_attn 16 --SN_eps 1e-6 --BN_eps 1e-5
    --G_nl inplace_relu --D_nl inplace_relu --G_init ortho --D_init ortho --ema --ema_decay 0.5
    --batch_size 4 --G_lr 2e-3 --D_lr 2e-3 --seed 0  (everything else: utils.prepare_parser()'s
    defaults, e.g. num_D_steps 2). The larger learning rates and the EMA decay of 0.5 make G and
    G_ema differ after two iterations, so a test can tell which one was loaded.

    The config is parsed by the reference's own utils.prepare_parser(); then the script does what
    train.py's run() does up to its training loop: resolution/n_classes from utils.imsize_dict and
    nclass_dict, G_activation/D_activation from utils.activation_dict (nn.ReLU objects, which end up
    in state_dict.pth), utils.seed_rng(seed), G = model.Generator(**config), D =
    model.Discriminator(**config), G_ema = model.Generator(**{**config, 'skip_init': True,
    'no_optim': True}), ema = utils.ema(G, G_ema, ema_decay, ema_start), GD = model.G_D(G, D),
    z_, y_ = utils.prepare_z_y(G_batch_size, G.dim_z, n_classes, device='cpu') and train =
    train_fns.GAN_training_function(G, D, GD, z_, y_, ema, state_dict, config). One addition, made
    between building G/D and building G_ema (torch.Generator seeded with RANDOMISE_SEED): every
    attention gamma (0 at init) becomes +-U(0.1, 0.3), every bias N(0, 0.1^2) (the output BN's is 0
    at init), the output BN gain 1 + N(0, 0.1^2) (1 at init), every stored_mean N(0, 0.1^2) and
    every stored_var U(0.5, 1.5) (0 and 1 at init), so that these paths matter. Then two
    iterations of the loop body of train.py (itr += 1; G.train(); D.train(); G_ema.train();
    train(x, y)) on random images x ~ U(-1, 1) [8, 3, 32, 32] and labels y [8] (torch.Generator
    seeded with DATA_SEED; 8 = batch_size * num_D_steps), and
    utils.save_weights(G, D, state_dict, root, experiment_name, None, G_ema) writes G.pth,
    G_optim.pth, D.pth, D_optim.pth, state_dict.pth and G_ema.pth, copied here unchanged.
    state_dict.pth is {'itr': 2, 'epoch': 0, 'save_num': 0, 'save_best_num': 0, 'best_IS': 0,
    'best_FID': 999999, 'config': config}; torch.load(weights_only=True) refuses it (nn.ReLU).

biggan_pytorch_tiny_expected.npz, biggan_deep_pytorch_tiny_expected.npz
    What BigGAN-PyTorch computes from those files: fresh modules built from state_dict.pth's config
    (model.Generator(**{**config, 'skip_init': True, 'no_optim': True}) twice,
    model.Discriminator(**{**config, 'skip_init': True})), load_state_dict(strict=True) of
    G_ema.pth, G.pth and D.pth, all in .eval() under torch.no_grad():
      rs = np.random.RandomState(11); z = rs.randn(4, G.dim_z) (float32); y = rs.randint(0, 10, 4)
      (int64); img_in = rs.uniform(-1, 1, (4, 3, 32, 32)) (float32)
      img_G_ema = G_ema(z, G_ema.shared(y));  img_G = G(z, G.shared(y))
      d_logits = D(img_in, y);  d_logits_fake = D(img_G_ema, y)
    BigGAN-PyTorch's spectral norm runs one power iteration from the stored u0 in every forward,
    eval included, without storing it (layers.SN.W_): that is what these outputs contain.

Run-time patches: utils.py, train_fns.py and datasets.py import torchvision, PIL, tqdm and h5py for
data loading and sample sheets, which this script never calls; torchvision and h5py are empty
stand-ins (torchvision.datasets.CIFAR10 an empty class, since datasets.py subclasses it), and so are
PIL and tqdm where they are not installed (they are ganforge dependencies). prepare_z_y is
called with device='cpu' (its default is 'cuda'). Nothing in the checkout is modified. All on the
CPU in float32, one thread.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import sys
import tempfile

import _common
import numpy as np
import torch

NAME, COMMIT, BLOBS = _common.BIGGAN_PYTORCH_NAME, _common.BIGGAN_PYTORCH_COMMIT, _common.BIGGAN_PYTORCH_BLOBS

COMMON_ARGS = [
    "--dataset", "C10", "--G_ch", "4", "--D_ch", "4", "--shared_dim", "8", "--hier", "--G_shared",
    "--G_attn", "16", "--D_attn", "16", "--SN_eps", "1e-6", "--BN_eps", "1e-5",
    "--G_nl", "inplace_relu", "--D_nl", "inplace_relu", "--G_init", "ortho", "--D_init", "ortho",
    "--ema", "--ema_decay", "0.5", "--batch_size", "4", "--G_lr", "2e-3", "--D_lr", "2e-3", "--seed", "0",
]
RUNS = {
    "biggan_pytorch_tiny": ["--model", "BigGAN", "--dim_z", "20"],
    "biggan_deep_pytorch_tiny": ["--model", "BigGANdeep", "--dim_z", "16", "--G_depth", "2", "--D_depth", "2"],
}
FILES = ("G.pth", "G_optim.pth", "D.pth", "D_optim.pth", "state_dict.pth", "G_ema.pth")
TRAIN_ITERS = 2
RANDOMISE_SEED = 6
DATA_SEED = 5
EXPECTED_SEED = 11
EXPECTED_BATCH = 4


# ------------------------------------------------------------------------------------------------
# Importing BigGAN-PyTorch's code


def import_biggan(ref: str):
    _common.import_from(ref)
    stand_ins = {
        "torchvision": {}, "torchvision.transforms": {}, "torchvision.utils": {},
        "torchvision.datasets": {"CIFAR10": type("CIFAR10", (), {})},
        "torchvision.datasets.utils": {"download_url": None, "check_integrity": None},
        "h5py": {},
    }
    # ganforge's own dependencies: the real ones where installed (torch may already have imported tqdm)
    for name, attrs in (("PIL.Image", {}), ("tqdm", {"tqdm": None, "trange": None})):
        try:
            importlib.import_module(name)
        except ImportError:
            stand_ins[name] = attrs
            if name == "PIL.Image":
                stand_ins["PIL"] = {}
    _common.install_stand_ins(stand_ins)
    import train_fns
    import utils
    importlib.import_module("BigGAN")
    importlib.import_module("BigGANdeep")
    _common.check_imported_files(ref, BLOBS)
    return utils, train_fns


# ------------------------------------------------------------------------------------------------
# The training run


def _randomise(nets, gen: torch.Generator) -> None:
    """Give the paths that are 0 (or 1) at init random values (see the docstring)."""
    with torch.no_grad():
        for net in nets:
            for name, p in net.named_parameters():
                leaf = name.rsplit(".", 1)[-1]
                if leaf == "gamma":
                    sign = 1.0 if float(torch.rand((), generator=gen)) < 0.5 else -1.0
                    p.copy_(sign * (0.1 + 0.2 * torch.rand(p.shape, generator=gen)))
                elif leaf == "bias":
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                elif leaf == "gain":
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            for name, b in net.named_buffers():
                leaf = name.rsplit(".", 1)[-1]
                if leaf == "stored_mean":
                    b.copy_(0.1 * torch.randn(b.shape, generator=gen))
                elif leaf == "stored_var":
                    b.copy_(0.5 + torch.rand(b.shape, generator=gen))


def run_training(utils, train_fns, run_args: list[str], dest: str) -> None:
    """train.py's run() with tiny settings and two iterations; its save_weights writes into dest."""
    config = vars(utils.prepare_parser().parse_args(COMMON_ARGS + run_args))
    # --- as train.py's run() ---
    config["resolution"] = utils.imsize_dict[config["dataset"]]
    config["n_classes"] = utils.nclass_dict[config["dataset"]]
    config["G_activation"] = utils.activation_dict[config["G_nl"]]
    config["D_activation"] = utils.activation_dict[config["D_nl"]]
    config = utils.update_config_roots(config)
    utils.seed_rng(config["seed"])
    model = importlib.import_module(config["model"])
    experiment_name = config["experiment_name"] if config["experiment_name"] else utils.name_from_config(config)
    G = model.Generator(**config)
    D = model.Discriminator(**config)
    # --- the one addition (before G_ema, which utils.ema initialises from G) ---
    _randomise((G, D), torch.Generator().manual_seed(RANDOMISE_SEED))
    # --- as train.py's run() ---
    G_ema = model.Generator(**{**config, "skip_init": True, "no_optim": True})
    ema = utils.ema(G, G_ema, config["ema_decay"], config["ema_start"])
    GD = model.G_D(G, D)
    state_dict = {"itr": 0, "epoch": 0, "save_num": 0, "save_best_num": 0, "best_IS": 0, "best_FID": 999999,
                  "config": config}
    G_batch_size = max(config["G_batch_size"], config["batch_size"])
    z_, y_ = utils.prepare_z_y(G_batch_size, G.dim_z, config["n_classes"], device="cpu", fp16=config["G_fp16"])
    train = train_fns.GAN_training_function(G, D, GD, z_, y_, ema, state_dict, config)
    D_batch_size = config["batch_size"] * config["num_D_steps"] * config["num_D_accumulations"]
    data = torch.Generator().manual_seed(DATA_SEED)
    res = config["resolution"]
    for _ in range(TRAIN_ITERS):
        x = torch.rand([D_batch_size, 3, res, res], generator=data) * 2 - 1
        y = torch.randint(0, config["n_classes"], [D_batch_size], generator=data)
        # --- the body of train.py's loop ---
        state_dict["itr"] += 1
        G.train()
        D.train()
        if config["ema"]:
            G_ema.train()
        metrics = train(x, y)
        print(f"  itr {state_dict['itr']}: " + ", ".join(f"{k} {v:+.4f}" for k, v in metrics.items()))
    with tempfile.TemporaryDirectory() as root:
        utils.save_weights(G, D, state_dict, root, experiment_name, None, G_ema)
        written = os.path.join(root, experiment_name)
        if sorted(os.listdir(written)) != sorted(FILES):
            sys.exit(f"error: save_weights wrote {sorted(os.listdir(written))}, expected {sorted(FILES)}")
        os.makedirs(dest, exist_ok=True)
        for f in FILES:
            shutil.copyfile(os.path.join(written, f), os.path.join(dest, f))


# ------------------------------------------------------------------------------------------------
# What the reference computes from a weights folder


def load_run(folder: str):
    state = torch.load(os.path.join(folder, "state_dict.pth"), map_location="cpu", weights_only=False)
    config = state["config"]
    model = importlib.import_module(config["model"])
    G_ema = model.Generator(**{**config, "skip_init": True, "no_optim": True})
    G = model.Generator(**{**config, "skip_init": True, "no_optim": True})
    D = model.Discriminator(**{**config, "skip_init": True})
    for net, f in ((G_ema, "G_ema.pth"), (G, "G.pth"), (D, "D.pth")):
        net.load_state_dict(torch.load(os.path.join(folder, f), map_location="cpu", weights_only=True), strict=True)
        net.eval()
    return config, G_ema, G, D


def expected(folder: str) -> dict[str, np.ndarray]:
    config, G_ema, G, D = load_run(folder)
    before = [{k: v.clone() for k, v in net.state_dict().items()} for net in (G_ema, G, D)]
    rs = np.random.RandomState(EXPECTED_SEED)
    z = rs.randn(EXPECTED_BATCH, G_ema.dim_z).astype(np.float32)
    y = rs.randint(0, config["n_classes"], size=EXPECTED_BATCH).astype(np.int64)
    res = config["resolution"]
    img_in = rs.uniform(-1, 1, size=(EXPECTED_BATCH, 3, res, res)).astype(np.float32)
    ty = torch.from_numpy(y)
    with torch.no_grad():
        img_G_ema = G_ema(torch.from_numpy(z.copy()), G_ema.shared(ty))
        img_G = G(torch.from_numpy(z.copy()), G.shared(ty))
        d_logits = D(torch.from_numpy(img_in.copy()), ty)
        d_logits_fake = D(img_G_ema.clone(), ty)
    for net, old in zip((G_ema, G, D), before):  # eval forwards must not write u0/sv0/stats
        assert all(torch.equal(v, old[k]) for k, v in net.state_dict().items())
    out = {"z": z, "y": y, "img_in": img_in, "img_G_ema": img_G_ema.numpy(), "img_G": img_G.numpy(),
           "d_logits": d_logits.numpy(), "d_logits_fake": d_logits_fake.numpy()}
    a = out["img_G_ema"]
    print(f"  img_G_ema std {a.std():.3f}, |x| > 0.99: {np.mean(np.abs(a) > 0.99):.1%}; "
          f"max |img_G - img_G_ema| {np.abs(out['img_G'] - a).max():.3g}; d_logits {out['d_logits'].ravel()}")
    return out


def report_safe_load(folder: str) -> None:
    """Informational: torch.load(weights_only=True) of state_dict.pth (the config holds nn.ReLU objects)."""
    path = os.path.join(folder, "state_dict.pth")
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = next((line for line in str(e).splitlines() if "Unsupported global" in line), str(e).splitlines()[0])
        print(f"  torch.load({os.path.basename(path)}, weights_only=True) refuses it: {first.strip()}")
    else:
        print(f"  note: torch.load({os.path.basename(path)}, weights_only=True) accepted it")


# ------------------------------------------------------------------------------------------------
# --check


def _same(a, b) -> bool:
    """Exact equality of what torch.load returns: tensors bit for bit, modules by type and __dict__."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride() and torch.equal(a, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.nn.Module):
        return _same(vars(a), vars(b))
    return a == b


def compare_folders(committed: str, fresh: str) -> bool:
    ok = True
    for f in FILES:
        a = torch.load(os.path.join(committed, f), map_location="cpu", weights_only=False)
        b = torch.load(os.path.join(fresh, f), map_location="cpu", weights_only=False)
        with open(os.path.join(committed, f), "rb") as fa, open(os.path.join(fresh, f), "rb") as fb:
            same_bytes = fa.read() == fb.read()
        same = _same(a, b)
        ok &= same
        print(f"  {f:>15s}: {'identical content' if same else 'DIFFERS'}"
              f" ({'byte-identical' if same_bytes else 'bytes differ'})")
    return ok


def main() -> None:
    args = _common.parser(__doc__).parse_args()
    _common.verify_checkout(args.ref, NAME, COMMIT, BLOBS, args.skip_commit_check)
    utils, train_fns = import_biggan(args.ref)
    torch.set_num_threads(1)
    failed = []
    for run, run_args in RUNS.items():
        folder = os.path.join(args.out, run)
        print(f"{run}: {' '.join(run_args)}")
        with tempfile.TemporaryDirectory() as tmp:
            fresh = os.path.join(tmp, run)
            run_training(utils, train_fns, run_args, fresh)
            report_safe_load(fresh)
            if args.check:
                if not os.path.isdir(folder):
                    sys.exit(f"error: {folder} does not exist")
                print(f"{folder}: committed files vs a fresh run")
                if not compare_folders(folder, fresh):
                    failed.append(folder)
            else:
                if os.path.isdir(folder):
                    shutil.rmtree(folder)
                shutil.copytree(fresh, folder)
                sizes = ", ".join(f"{f} {os.path.getsize(os.path.join(folder, f))}" for f in FILES)
                print(f"wrote {folder}/ as BigGAN-PyTorch's save_weights wrote it ({sizes} bytes)")
        _common.finish(os.path.join(args.out, f"{run}_expected.npz"), expected(folder), args.check)
    if failed:
        sys.exit(f"error: {failed} differ from a fresh run")


if __name__ == "__main__":
    main()
