#!/usr/bin/env python3
"""Regenerate tests/train/data/augment_reference.npz with NVIDIA's ADA augmentation pipe.

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /tmp/ref/nvidia
    git -C /tmp/ref/nvidia checkout d72cc7d041b42ec8e806021a205ed9349f87c6a4
    python scripts/reference/ada_pipeline.py --ref /tmp/ref/nvidia --out tests/train/data
    python scripts/reference/ada_pipeline.py --ref /tmp/ref/nvidia --out tests/train/data --check

For each preset below it stores x, seed s, p and
    y = (torch.manual_seed(s); training.augment.AugmentPipe(**augpipe_specs[preset]) with p)(x)
computed by NVIDIA's training/augment.py on the CPU in float32, with
    x = torch.rand(shape, generator=torch.Generator().manual_seed(s)) * 2 - 1.
The preset table (`augpipe_specs`) is read from the checkout's train.py as data (parsed with `ast`,
not executed), so the script does not restate NVIDIA's presets. The file also records the commit.

tests/train/test_augment.py::test_matches_nvidia_reference_outputs compares ganforge's pipe with it.
"""

from __future__ import annotations

import ast
import os

import numpy as np
import torch

import _common

NAME = "NVlabs/stylegan2-ada-pytorch"
COMMIT = "d72cc7d041b42ec8e806021a205ed9349f87c6a4"
# git blob ids at COMMIT of every file this script imports or reads
BLOBS = {
    "dnnlib/__init__.py": "2f08cf36f11f9b0fd94c1b7caeadf69b98375b04",
    "dnnlib/util.py": "76725336d01e75e1c68daa88be47f4fde0bbc63b",
    "torch_utils/__init__.py": "ece0ea08fe2e939cc260a1dafc0ab5b391b773d9",
    "torch_utils/custom_ops.py": "4cc4e43fc6f6ce79f2bd68a44ba87990b9b8564e",
    "torch_utils/misc.py": "7829f4d9f168557ce8a9a6dec289aa964234cb8c",
    "torch_utils/ops/__init__.py": "ece0ea08fe2e939cc260a1dafc0ab5b391b773d9",
    "torch_utils/ops/conv2d_gradfix.py": "e95e10d0b1d0315a63a76446fd4c5c293c8bbc6d",
    "torch_utils/ops/conv2d_resample.py": "cd4750744c83354bab78704d4ef51ad1070fcc4a",
    "torch_utils/ops/fma.py": "2eeac58a626c49231e04122b93e321ada954c5d3",
    "torch_utils/ops/grid_sample_gradfix.py": "ca6b3413ea72a734703c34382c023b84523601fd",
    "torch_utils/ops/upfirdn2d.py": "ceeac2b9834e33b7c601c28bf27f32aa91c69256",
    "torch_utils/persistence.py": "0186cfd97bca0fcb397a7b73643520c1d1105a02",
    "training/__init__.py": "e1e1a5ba99e56a56ecaa14f7d4fa41777789c0cf",
    "training/augment.py": "3efbf1270a94f08413075c986deeb1570a80f543",
    "train.py": "8d81b3f18e7ebae0b63dc68674c258c5c38bee71",
}

# (preset, input shape [N, C, H, W], seed of both the input and the pipe's draws, p)
CASES = [
    ("bgc", (4, 3, 10, 10), 11, 0.6),
    ("blit", (2, 3, 10, 10), 12, 0.6),
    ("bgcfnc", (2, 1, 24, 24), 13, 0.6),  # greyscale: NVIDIA's colour ops on one channel
]


def augpipe_specs(train_py: str) -> dict[str, dict[str, float]]:
    """The `augpipe_specs = {name: dict(key=value, ...)}` table of NVIDIA's train.py, parsed, not run."""
    with open(train_py, encoding="utf-8-sig") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "augpipe_specs"
                                                for t in node.targets):
            table = {}
            for k, v in zip(node.value.keys, node.value.values):
                if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "dict"):
                    raise SystemExit(f"error: unexpected augpipe_specs entry in {train_py}")
                table[ast.literal_eval(k)] = {kw.arg: ast.literal_eval(kw.value) for kw in v.keywords}
            return table
    raise SystemExit(f"error: no augpipe_specs table in {train_py}")


def main() -> None:
    args = _common.parser(__doc__).parse_args()
    verified = _common.verify_checkout(args.ref, NAME, COMMIT, BLOBS, args.skip_commit_check)
    specs = augpipe_specs(os.path.join(args.ref, "train.py"))
    _common.import_from(args.ref)
    from training.augment import AugmentPipe  # NVIDIA's, from the checkout

    _common.check_imported_files(args.ref, BLOBS)
    torch.set_num_threads(1)
    arrays = {"nvidia_commit": np.array(COMMIT if verified else f"unverified checkout (not {COMMIT})")}
    for name, shape, seed, p in CASES:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        pipe = AugmentPipe(**specs[name])
        pipe.p.copy_(torch.as_tensor(p))
        torch.manual_seed(seed)
        with torch.no_grad():
            y = pipe(x)
        arrays[f"{name}/x"] = x.numpy()
        arrays[f"{name}/y"] = y.numpy()
        arrays[f"{name}/p"] = np.array(p, dtype="float32")
        arrays[f"{name}/seed"] = np.array(seed, dtype="int64")
    _common.finish(os.path.join(args.out, "augment_reference.npz"), arrays, args.check)


if __name__ == "__main__":
    main()
