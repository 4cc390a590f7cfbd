"""Shared plumbing of the scripts in scripts/reference/ (no reference code here).

Each script imports a reference implementation from a checkout whose path is given with --ref.
Before anything from that checkout is imported, `verify_checkout` makes sure it is the pinned
commit:
  - a git checkout (`git -C REF rev-parse HEAD` works): HEAD must be the pinned commit and the
    files the script imports must be unmodified (`git status --porcelain`);
  - a plain tree (e.g. `git archive PINNED | tar -x`): every file the script imports must have the
    git blob hash it has at the pinned commit (hashes listed in the script).
`--skip-commit-check` turns a mismatch into a loud warning; arrays made that way must not be
committed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import types

import numpy as np

# --check passes when every stored array is within this of a fresh run (float32 on CPU; other torch
# versions or thread counts sum in other orders).
CHECK_TOL = 1e-5


# The NVIDIA reference (NVlabs/stylegan2-ada-pytorch), pinned.
NVIDIA_NAME = "NVlabs/stylegan2-ada-pytorch"
NVIDIA_COMMIT = "d72cc7d041b42ec8e806021a205ed9349f87c6a4"
# git blob ids at NVIDIA_COMMIT of every file the NVIDIA scripts import or read
NVIDIA_BLOBS = {
    "dnnlib/__init__.py": "2f08cf36f11f9b0fd94c1b7caeadf69b98375b04",
    "dnnlib/util.py": "76725336d01e75e1c68daa88be47f4fde0bbc63b",
    "legacy.py": "9387d79f23224642ca316399de2f0258f72de79b",
    "torch_utils/__init__.py": "ece0ea08fe2e939cc260a1dafc0ab5b391b773d9",
    "torch_utils/custom_ops.py": "4cc4e43fc6f6ce79f2bd68a44ba87990b9b8564e",
    "torch_utils/misc.py": "7829f4d9f168557ce8a9a6dec289aa964234cb8c",
    "torch_utils/ops/__init__.py": "ece0ea08fe2e939cc260a1dafc0ab5b391b773d9",
    "torch_utils/ops/bias_act.py": "4bcb409a89ccf6c6f6ecfca5962683df2d280b1f",
    "torch_utils/ops/conv2d_gradfix.py": "e95e10d0b1d0315a63a76446fd4c5c293c8bbc6d",
    "torch_utils/ops/conv2d_resample.py": "cd4750744c83354bab78704d4ef51ad1070fcc4a",
    "torch_utils/ops/fma.py": "2eeac58a626c49231e04122b93e321ada954c5d3",
    "torch_utils/ops/grid_sample_gradfix.py": "ca6b3413ea72a734703c34382c023b84523601fd",
    "torch_utils/ops/upfirdn2d.py": "ceeac2b9834e33b7c601c28bf27f32aa91c69256",
    "torch_utils/persistence.py": "0186cfd97bca0fcb397a7b73643520c1d1105a02",
    "training/__init__.py": "e1e1a5ba99e56a56ecaa14f7d4fa41777789c0cf",
    "training/augment.py": "3efbf1270a94f08413075c986deeb1570a80f543",
    "training/networks.py": "b046eba2c314c6b7b919ab1a048702a2636ba686",
    "train.py": "8d81b3f18e7ebae0b63dc68674c258c5c38bee71",
}

# ajbrock/BigGAN-PyTorch, pinned (scripts/reference/biggan_pytorch.py).
BIGGAN_PYTORCH_NAME = "ajbrock/BigGAN-PyTorch"
BIGGAN_PYTORCH_COMMIT = "98459431a5d618d644d54cd1e9fceb1e5045648d"
# git blob ids at BIGGAN_PYTORCH_COMMIT of every file biggan_pytorch.py imports
BIGGAN_PYTORCH_BLOBS = {
    "BigGAN.py": "036d48e52ae3a20a34b7021af8f090408ee6d3d4",
    "BigGANdeep.py": "95763c34122141ad046dbab85c3e3775eb79eeee",
    "animal_hash.py": "66c2be29132087f58f4467ac26fda6706b039ca8",
    "datasets.py": "386bf3b4a58a62269614a78ce7b6aebb8bddc1a0",
    "layers.py": "55aaab105cdfcb67d61052b6f184ba335bbf38ee",
    "losses.py": "6a7467fb8f4975ed7a49bac3648816e70006c067",
    "sync_batchnorm/__init__.py": "bc8709d92c610b36e0bcbd7da20c1eb41dc8cfcf",
    "sync_batchnorm/batchnorm.py": "5453729bf6f4beb7c6412117656130360ed06164",
    "sync_batchnorm/comm.py": "922f8c4a3adaa9b32fdcaef09583be03b0d7eb2b",
    "sync_batchnorm/replicate.py": "b71c7b8ed51a1d6c55b1f753bdd8d90bad79bd06",
    "train_fns.py": "5a4d2a9bae1433e5ca74fbcee3ba794e1e3f3c2e",
    "utils.py": "bdca336c905b806f1284b1bb81d41cb3f8e767f6",
}

# huggingface/pytorch-pretrained-BigGAN (= PyPI pytorch-pretrained-biggan 0.1.1 apart from its
# __init__.py's __version__ line), pinned (scripts/reference/hf_biggan.py).
HF_BIGGAN_NAME = "huggingface/pytorch-pretrained-BigGAN"
HF_BIGGAN_COMMIT = "1e18aed2dff75db51428f13b940c38b923eb4a3d"
# git blob ids at HF_BIGGAN_COMMIT of every file hf_biggan.py imports
HF_BIGGAN_BLOBS = {
    "pytorch_pretrained_biggan/__init__.py": "b570848421afd921fae635569c97d0f8f5b33c80",
    "pytorch_pretrained_biggan/config.py": "454236a4bfa0d11fda0d52e0ce9b2926f8c32d30",
    "pytorch_pretrained_biggan/convert_tf_to_pytorch.py": "7ccb787dec188e9dbd9ea31288c049c1bdb30f95",
    "pytorch_pretrained_biggan/file_utils.py": "41624cad6d7b44c028f3ef1fb541add4956b4601",
    "pytorch_pretrained_biggan/model.py": "575db1093f89402334b783c633582e9d229d5a00",
    "pytorch_pretrained_biggan/utils.py": "3b9edbef3ecc9bf85092f4e670eb5fac8a3b4616",
}


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="path of the reference checkout (at the pinned commit)")
    p.add_argument("--out", required=True, help="folder to write into (created if missing)")
    p.add_argument("--check", action="store_true",
                   help="write nothing: compare with the files already in --out and report the max differences")
    p.add_argument("--skip-commit-check", action="store_true",
                   help="continue even if the checkout is not the pinned commit (do not commit the result)")
    return p


def git_blob_sha1(path: str) -> str:
    """The id git gives a file's content: sha1(b'blob <size>\\0' + content)."""
    with open(path, "rb") as f:
        data = f.read()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _warn(msg: str) -> None:
    bar = "!" * 100
    print(f"{bar}\nWARNING: {msg}\nThe arrays written now are NOT the committed reference; do not commit them.\n{bar}",
          file=sys.stderr)


def verify_checkout(ref: str, name: str, commit: str, blobs: dict[str, str], skip: bool) -> bool:
    """Check that `ref` is `name` at `commit` (see the module docstring); exit otherwise, unless `skip`
    (then warn and return False)."""
    if not os.path.isdir(ref):
        sys.exit(f"error: --ref {ref} is not a folder; give the path of a {name} checkout at {commit}")
    problems: list[str] = []
    try:
        head = subprocess.run(["git", "-C", ref, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        top = subprocess.run(["git", "-C", ref, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = top = None
    if head is not None and os.path.realpath(top) == os.path.realpath(ref):
        how = f"git checkout at {head}"
        if head != commit:
            problems.append(f"HEAD is {head}, the pinned commit is {commit}")
        dirty = subprocess.run(["git", "-C", ref, "status", "--porcelain", "--", *blobs], capture_output=True,
                               text=True, check=False).stdout.strip()
        if dirty:
            problems.append("files the script imports are modified:\n" + dirty)
    else:
        how = "plain tree (not a git checkout): compared the git blob hashes of the imported files"
        for rel, want in blobs.items():
            path = os.path.join(ref, rel)
            if not os.path.isfile(path):
                problems.append(f"{rel} is missing")
            elif git_blob_sha1(path) != want:
                problems.append(f"{rel} differs from {commit} (blob {git_blob_sha1(path)}, pinned {want})")
    if problems:
        msg = f"{ref} is not {name} at {commit}:\n  " + "\n  ".join(problems)
        if not skip:
            sys.exit(f"error: {msg}\n(check out {commit}, or pass --skip-commit-check to continue anyway)")
        _warn(msg)
        return False
    print(f"{name}: {how}; the {len(blobs)} imported files match {commit}")
    return True


def import_from(ref: str) -> None:
    """Put the checkout first on sys.path (its scripts run from their repository root)."""
    sys.path.insert(0, os.path.abspath(ref))


def check_imported_files(ref: str, blobs: dict[str, str]) -> None:
    """After importing: every module loaded from the checkout must be one of the verified files."""
    root = os.path.realpath(ref)
    loaded = {os.path.relpath(os.path.realpath(m.__file__), root).replace(os.sep, "/")
              for m in list(sys.modules.values())
              if getattr(m, "__file__", None) and os.path.realpath(m.__file__).startswith(root + os.sep)}
    extra = sorted(loaded - set(blobs))
    if extra:
        sys.exit(f"error: the script imported unverified files from {ref}: {extra}; add them to its pinned list")


def install_stand_ins(modules: dict[str, dict]) -> None:
    """Put empty modules (with the given attributes) in sys.modules for imports a reference makes but
    never uses on the path a script runs; a dotted name also becomes an attribute of its parent.
    Exits if one is already imported (run the script in a fresh interpreter)."""
    for name in modules:
        if name in sys.modules:
            sys.exit(f"error: {name} is already imported; run this script in a fresh interpreter")
    for name, attrs in modules.items():
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        mod.__ganforge_stand_in__ = True
        sys.modules[name] = mod
    for name in modules:
        parent, _, child = name.rpartition(".")
        if parent in modules:
            setattr(sys.modules[parent], child, sys.modules[name])


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed with a summary line per array."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"wrote {path}")
    for k, v in arrays.items():
        print(f"    {k:>16s} {v.dtype!s:>8s} {tuple(v.shape)}")


def compare_with(path: str, arrays: dict[str, np.ndarray]) -> float:
    """Max abs difference between `arrays` and the ones stored in `path` (same keys); prints per key."""
    old = np.load(path)
    if set(old.files) != set(arrays):
        print(f"  {path}: keys differ: stored {sorted(old.files)}, new {sorted(arrays)}")
    worst = 0.0
    for k in sorted(set(old.files) & set(arrays)):
        a, b = old[k], arrays[k]
        if a.shape != b.shape:
            print(f"  {k}: shape {a.shape} stored, {b.shape} new")
            worst = float("inf")
            continue
        if a.dtype.kind in "fiu":
            d = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
        else:
            d = 0.0 if np.array_equal(a, b) else float("inf")
        worst = max(worst, d)
        print(f"  {k:>16s} max |stored - new| = {d:.3g}")
    return worst


def finish(path: str, arrays: dict[str, np.ndarray], check: bool) -> None:
    """--check: compare with the stored file (exit 1 if it is missing or differs by more than CHECK_TOL);
    otherwise write it (after reporting the differences from the version it replaces)."""
    if check:
        if not os.path.exists(path):
            sys.exit(f"error: {path} does not exist")
        print(f"{path}:")
        worst = compare_with(path, arrays)
        print(f"  max abs difference over all arrays: {worst:.3g}")
        if not worst <= CHECK_TOL:
            sys.exit(f"error: {path} differs from what the reference computes now by {worst:.3g} > {CHECK_TOL}")
        return
    if os.path.exists(path):
        print(f"replacing {path}; differences from the old file:")
        compare_with(path, arrays)
    save_npz(path, arrays)
