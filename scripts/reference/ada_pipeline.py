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

NAME, COMMIT, BLOBS = _common.NVIDIA_NAME, _common.NVIDIA_COMMIT, _common.NVIDIA_BLOBS

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
