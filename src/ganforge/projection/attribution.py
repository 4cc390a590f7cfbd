"""Attribution: was an image made by this network? (StyleGAN2 paper §5.1, Fig. 9 and 10.)

Project the image x (`projector.project`) and measure the distance to its reprojection,

    D(x) = d(x, g(g~^{-1}(x)))          (the paper: LPIPS; here the projector's `Distance`)

Images the network generated itself project back almost exactly (D near 0), real images do not. The
verdict compares D with a threshold calibrated on the network's own images: K images from seeds
0..K-1 (psi 1, the stored noise, class seed % c_dim for conditional networks, quantised to uint8 as
`generate` writes them) are projected the same way, and

    threshold = quantile_q({D(g(z_k))}_k),  q = CALIBRATION_QUANTILE = 0.99  (numpy 'linear' quantile)

so about 1 % of the network's own images would be called "not made by it". The paper reports only the
two histograms; the quantile rule is ganforge's. An image is "made by this network" when D <= threshold.
Calibration images are projected with the class they were generated with; query images of a conditional
network are projected with every class (or --class) and the smallest D is kept, with its class.

Calibrations are stored in a JSON file (`load_calibration` / `save_calibration`) under a key naming the
network (SHA-256 of its tensors), the distance, the space, the steps, K and the seed, so the next call reuses one.
`roc_auc` (numpy) measures how well D separates generated from real images (--real DIR).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.fsutil import atomic_write_text
from ganforge.models.latents import class_labels, to_uint8, z_from_seeds
from ganforge.projection import schedule as S
from ganforge.projection.distance import Distance, resolve_distance
from ganforge.projection.projector import check_projectable, check_steps, project

CALIBRATION_QUANTILE = 0.99
DEFAULT_CALIBRATION_COUNT = 200
CALIBRATION_FORMAT = "ganforge-attribution-calibration"


@dataclass
class Calibration:
    threshold: float
    quantile: float
    distances: list  # D of the K generated images
    distance_name: str
    space: str
    steps: int
    count: int
    seed: int


@dataclass
class AttributionResult:
    distances: np.ndarray  # [N] D(x) per image
    made_by_network: np.ndarray  # [N] bool, D <= threshold
    classes: list  # [N] the class of the best projection (None: unconditional)
    threshold: float
    distance_name: str
    calibration: Calibration | None  # None when the threshold was given
    calibration_reused: bool = False


def network_fingerprint(G) -> str:
    """SHA-256 (16 hex digits) of G's tensors by name: the same weights give the same key wherever stored."""
    h = hashlib.sha256()
    for k, v in sorted(G.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def calibration_key(fingerprint: str, distance_name: str, space: str, steps: int, count: int, seed: int) -> str:
    return f"G:{fingerprint}|{distance_name}|space={space}|steps={steps}|k={count}|seed={seed}"


def load_calibration(path, key: str) -> Calibration | None:
    if path is None or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
        entry = data.get("entries", {}).get(key)
    except (OSError, ValueError, AttributeError) as e:
        raise UsageError(f"calibration file {path} is not readable ({type(e).__name__}); delete it to recalibrate") \
            from None
    return Calibration(**entry) if entry else None


def save_calibration(path, key: str, cal: Calibration) -> None:
    data = {"format": CALIBRATION_FORMAT, "version": 1, "entries": {}}
    if os.path.isfile(path):
        try:
            with open(path) as f:
                old = json.load(f)
            if isinstance(old.get("entries"), dict):
                data["entries"] = old["entries"]
        except (OSError, ValueError, AttributeError):
            pass
    data["entries"][key] = asdict(cal)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def roc_auc(generated, real) -> float:
    """Area under the ROC curve of D as a detector of real images: P(D_real > D_gen) + 0.5 P(D_real = D_gen)
    (Mann-Whitney U / (n_gen n_real), average ranks for ties)."""
    g, r = np.asarray(generated, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if len(g) == 0 or len(r) == 0:
        raise ValueError("the AUC needs generated and real distances")
    s = np.concatenate([g, r])
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based average rank of each distinct value
    ranks = avg_rank[inv]
    u = ranks[len(g):].sum() - len(r) * (len(r) + 1) / 2
    return float(u / (len(g) * len(r)))


def generated_images(G, count: int, device=None) -> tuple[torch.Tensor, list]:
    """The calibration images: seeds 0..count-1, psi 1, stored noise, class seed % c_dim -> (uint8 [K, C, R, R], classes)."""
    device = device or next(G.parameters()).device
    classes = [s % G.c_dim if G.c_dim else None for s in range(count)]
    out = []
    with torch.no_grad():
        for s in range(count):
            z = z_from_seeds([s], G.z_dim).to(device)
            c = class_labels(classes[s], G.c_dim, 1).to(device)
            out.append(to_uint8(G(z, c, noise_mode="const")).cpu())
    return torch.cat(out), classes


def project_distances(G, images, class_idx=None, batch_size: int = 64, **kw) -> tuple[np.ndarray, list]:
    """D per image -> ([N], class per image). class_idx: None (conditional: try every class, keep the
    smallest D), an int, or one per image. Projections run in batches of `batch_size` targets."""
    images = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    n = images.shape[0]
    if n == 0:
        return np.zeros([0], dtype=np.float32), []
    if G.c_dim and class_idx is None:
        reps = images.repeat_interleave(G.c_dim, dim=0)
        classes = [k for _ in range(n) for k in range(G.c_dim)]
    else:
        reps = images
        classes = [class_idx] * n if class_idx is None or isinstance(class_idx, int) else list(class_idx)
    d = []
    for i in range(0, len(reps), batch_size):
        r = project(G, reps[i:i + batch_size], class_idx=classes[i:i + batch_size], **kw)
        d.append(r.distance.numpy())
    d = np.concatenate(d)
    if G.c_dim and class_idx is None:
        d = d.reshape(n, G.c_dim)
        best = d.argmin(axis=1)
        return d[np.arange(n), best], [int(b) for b in best]
    return d, classes


def calibrate_threshold(G, count: int = DEFAULT_CALIBRATION_COUNT, space: str = "w", steps: int = S.NUM_STEPS,
              distance: Distance | None = None, seed: int = S.DEFAULT_SEED, device=None, batch_size: int = 64,
              progress=None) -> Calibration:
    """Project `count` images the network generates itself; threshold = their D's CALIBRATION_QUANTILE."""
    if count < 1:
        raise UsageError(f"--calibrate {count}: give at least 1 image to calibrate on")
    distance = distance or resolve_distance("auto", device=device or next(G.parameters()).device)[0]
    images, classes = generated_images(G, count, device)
    d, _ = project_distances(G, images, classes if G.c_dim else None, batch_size=batch_size, space=space,
                             steps=steps, distance=distance, seed=seed, device=device, progress=progress)
    return Calibration(threshold=float(np.quantile(d, CALIBRATION_QUANTILE)), quantile=CALIBRATION_QUANTILE,
                       distances=[float(x) for x in d], distance_name=distance.name, space=space, steps=steps,
                       count=count, seed=seed)


def attribute(G, images, threshold: float | None = None, calibrate: int = DEFAULT_CALIBRATION_COUNT,
              class_idx: int | None = None, space: str = "w", steps: int = S.NUM_STEPS,
              distance: Distance | None = None, seed: int = S.DEFAULT_SEED, device=None,
              calibration_file=None, batch_size: int = 64, progress=None) -> AttributionResult:
    """D(x) for each image [N, C, R, R] (uint8 or float in [0, 255]) and the verdict D <= threshold.

    threshold None: calibrated on `calibrate` generated images (see the module docstring), read
    from / written to `calibration_file` (a JSON) when one is given.
    """
    check_projectable(G)
    check_steps(steps)
    device = device or next(G.parameters()).device
    distance = distance or resolve_distance("auto", device=device)[0]
    kw = dict(space=space, steps=steps, distance=distance, seed=seed, device=device, progress=progress)
    cal, reused = None, False
    if threshold is None:
        key = calibration_key(network_fingerprint(G), distance.name, space, steps, calibrate, seed)
        cal = load_calibration(calibration_file, key)
        reused = cal is not None
        if cal is None:
            cal = calibrate_threshold(G, calibrate, batch_size=batch_size, **kw)
            if calibration_file is not None:
                save_calibration(calibration_file, key, cal)
        threshold = cal.threshold
    d, classes = project_distances(G, images, class_idx, batch_size=batch_size, **kw)
    return AttributionResult(distances=d, made_by_network=d <= threshold, classes=classes, threshold=float(threshold),
                             distance_name=distance.name, calibration=cal, calibration_reused=reused)
