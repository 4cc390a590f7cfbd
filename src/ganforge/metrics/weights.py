"""Finding, verifying and loading the weight files of the metric feature networks ("detectors").

Nothing is downloaded: the user places the published files in a detector directory or names them.

Search order for a detector kind ('inception', 'vgg16', 'lpips'):
  1. files given explicitly (CLI ``--detector PATH``, repeatable; the kind is recognised from the content);
  2. each directory of ``$GANFORGE_DETECTOR_DIR`` (os.pathsep-separated list), ``--detector-dir``;
  3. ``$GANFORGE_CACHE/detectors``, else ``~/.cache/ganforge/detectors``;
looking there for the standard file names listed in `DETECTORS`.

Verification: the file's SHA-256 must equal the published one (`KNOWN_SHA256`). A file with another hash
is refused with a FormatError unless ``verify=False`` (CLI ``--no-verify-detector``): numbers computed with
other weights are not comparable with published ones. Hash status, honestly:
  * pt_inception-2015-12-05-6726825d.pth: 6726825d0af5... (95,628,359 bytes), agreed by several
    independent projects that pin it; also the hash of torch-fidelity's re-upload. Not recomputed here
    (no download possible).
  * lpips v0.1 vgg.pth: a78928a0af1e... computed here from the lpips 0.1.4 wheel on PyPI (verified).
  * vgg16-397923af.pth (torchvision): 397923af8e79... as reported by a third-party port; unverified.
  * NVIDIA vgg16.pt (TorchScript): b437eb095fea... as reported by a third-party port; unverified.
  * NVIDIA inception-2015-12-05.pt (TorchScript): no published hash known; accepted with a warning that
    prints its SHA-256.

Safety: state dicts are read with ``torch.load(weights_only=True)`` (or safetensors), which runs no code
from the file. NVIDIA's TorchScript archives are read with ``torch.jit.load``: TorchScript code is a
restricted language executed by the TorchScript interpreter (no arbitrary Python), but it is still
a program from the file; it is only loaded when a user names such a file or places it under its
standard name, and hash verification applies to it like to any other file.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge.errors import FormatError, UsageError


@dataclass(frozen=True)
class DetectorFile:
    kind: str  # 'inception' | 'vgg16' | 'lpips'
    filename: str  # the standard file name searched in the detector directories
    sha256: str | None  # published SHA-256, None where none is known
    verified_here: bool  # whether the hash was computed from the real file during development
    url: str
    layout: str  # 'state_dict' | 'torchscript'


DETECTORS = [
    DetectorFile("inception", "pt_inception-2015-12-05-6726825d.pth",
                 "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2", False,
                 "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 "pt_inception-2015-12-05-6726825d.pth", "state_dict"),
    DetectorFile("inception", "weights-inception-2015-12-05-6726825d.pth",
                 "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2", False,
                 "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth", "state_dict"),
    DetectorFile("inception", "inception-2015-12-05.pt", None, False,
                 "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
                 "inception-2015-12-05.pt", "torchscript"),
    DetectorFile("vgg16", "vgg16-397923af.pth",
                 "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0", False,
                 "https://download.pytorch.org/models/vgg16-397923af.pth", "state_dict"),
    DetectorFile("vgg16", "vgg16.pt",
                 "b437eb095feaeb0b83eb3fa11200ebca4548ee39a07fb944a417ddc516cc07c3", False,
                 "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",
                 "torchscript"),
    DetectorFile("lpips", "vgg.pth",
                 "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", True,
                 "the lpips 0.1.4 wheel on PyPI: lpips/weights/v0.1/vgg.pth (`pip download --no-deps "
                 "lpips==0.1.4`, unzip)", "state_dict"),
    DetectorFile("lpips", "lpips-vgg-v0.1.pth",
                 "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", True,
                 "the lpips 0.1.4 wheel on PyPI: lpips/weights/v0.1/vgg.pth", "state_dict"),
]
KNOWN_SHA256 = {d.sha256: d for d in DETECTORS if d.sha256}
KINDS = ("inception", "vgg16", "lpips")


def detector_dirs(extra=()) -> list[Path]:
    """Directories searched for detector files, in order (see the module docstring)."""
    dirs = [Path(d) for d in extra if d]
    env = os.environ.get("GANFORGE_DETECTOR_DIR")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    cache = os.environ.get("GANFORGE_CACHE")
    dirs.append(Path(cache) / "detectors" if cache else Path.home() / ".cache" / "ganforge" / "detectors")
    return [d.expanduser() for d in dirs]


_SHA_CACHE: dict = {}


def sha256_file(path) -> str:
    """SHA-256 of a file, memoised per (path, size, mtime) within the process."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def is_torchscript(path) -> bool:
    """TorchScript archives are zips with a ``code/`` folder and ``constants.pkl``; torch.save zips are not."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def read_state_dict(path) -> dict:
    """Tensors of a .pth/.pt state dict (weights_only) or .safetensors file; FormatError when it is neither."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file, not a bug
        raise FormatError(f"{path}: not a readable weight file ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise FormatError(f"{path}: expected a state dict of tensors")
    return dict(sd)


def sniff_kind(path) -> str:
    """Which detector a file holds, from its content (state-dict keys) or, for TorchScript, its name."""
    path = Path(path)
    if is_torchscript(path):
        name = path.name.lower()
        if "inception" in name:
            return "inception"
        if "vgg" in name:
            return "vgg16"
        raise UsageError(f"{path}: a TorchScript file whose name says neither 'inception' nor 'vgg'; "
                         "keep NVIDIA's file names (inception-2015-12-05.pt, vgg16.pt)")
    keys = read_state_dict(path).keys()
    if any(k.startswith("Mixed_5b.") for k in keys):
        return "inception"
    if any(k.startswith("lin0.") for k in keys):
        return "lpips"
    if "features.0.weight" in keys:
        return "vgg16"
    raise FormatError(f"{path}: not an Inception-v3, VGG16 or LPIPS weight file (unknown keys, e.g. "
                      f"{sorted(keys)[:3]})")


def missing_message(kind: str, dirs) -> str:
    files = [d for d in DETECTORS if d.kind == kind]
    where = "; ".join(f"{d.filename} from {d.url}" for d in files)
    return (f"the {kind} weights were not found (searched {', '.join(str(d) for d in dirs)}). "
            f"Download one of: {where}; put it in one of those directories (or set GANFORGE_DETECTOR_DIR) "
            f"or pass --detector PATH")


def find_detector(kind: str, files=(), dirs=()) -> Path:
    """Path of the weight file for `kind` (see the search order in the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown detector kind {kind!r}")
    for f in files:
        p = Path(f).expanduser()
        if not p.is_file():
            raise UsageError(f"--detector {f}: no such file")
        if sniff_kind(p) == kind:
            return p
    searched = detector_dirs(dirs)
    for d in searched:
        for spec in DETECTORS:
            if spec.kind == kind and (d / spec.filename).is_file():
                return d / spec.filename
    raise UsageError(missing_message(kind, searched))


def verify_detector(path, kind: str, verify: bool = True) -> str:
    """Check the SHA-256 of a detector file; returns the hash (which identifies the detector in caches)."""
    path = Path(path)
    digest = sha256_file(path)
    known = KNOWN_SHA256.get(digest)
    if known is not None:
        if known.kind != kind:
            raise FormatError(f"{path} holds the {known.kind} weights ({known.filename}), not {kind}")
        return digest
    if not verify:
        return digest
    expected = [d for d in DETECTORS if d.kind == kind and d.filename == path.name]
    if expected and expected[0].sha256 is None:
        warnings.warn(f"{path}: no published SHA-256 is known for {path.name}; using it unverified "
                      f"(sha256 {digest})", stacklevel=2)
        return digest
    published = ", ".join(sorted({d.sha256[:12] + "..." for d in DETECTORS if d.kind == kind and d.sha256}))
    raise FormatError(
        f"{path}: SHA-256 {digest} is not that of the published {kind} weights ({published}); the file is "
        "damaged or different weights. Re-download it, or pass --no-verify-detector to use it anyway "
        "(the numbers are then not comparable with published ones)")
