"""Running metrics: images from a dataset or a generator -> features -> numbers, on one or many processes.

    from ganforge.metrics import compute_metrics, write_jsonl
    results = compute_metrics(["fid50k_full", "kid50k_full"], G=ckpt.G_ema, dataset_path="ffhq.zip",
                              device="cuda", rank=rank, num_gpus=world, cache_dir=None)
    # {"fid50k_full": {"results": {"fid50k_full": 2.84}, "metric": "fid50k_full", "total_time": ..., ...}}
    write_jsonl(results, "run/metric-fid50k_full.jsonl", network="run/network-snapshot-000100")

Work split: images are processed in fixed-size batches; batch b uses the seed (seed, b) and goes to rank
b mod num_gpus; features are all-gathered per step (torch.distributed, when initialised) and concatenated
in batch order, so the result does not depend on the number of processes.

Real-data features are cached on disk (.npz, no pickle) under
``<cache_dir>/<dataset>-<feature>-<key>.npz``; key = SHA-256 of (dataset content hash, detector SHA-256,
feature kind, number of images, format version). The dataset content hash covers the relative names,
sizes and mtimes of a folder's files, or the names, CRC-32s and sizes of a zip's members.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.metrics import fid as fid_mod
from ganforge.metrics import swd as swd_mod
from ganforge.metrics.detectors import DetectorOptions, get_detector
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.ppl import filter_outliers_mean, ppl_distances
from ganforge.metrics.precision_recall import precision_recall
from ganforge.metrics.registry import parse_metric_list
from ganforge.metrics.resize import to_uint8
from ganforge.metrics.vgg import lpips_distance

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    root = os.environ.get("GANFORGE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "ganforge") / "gan-metrics"


def dataset_content_hash(path) -> str:
    """SHA-256 over what identifies a dataset's content without reading every image (see module doc)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for f in sorted(files):
                full = Path(root) / f
                st = full.stat()
                h.update(f"{full.relative_to(p).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    elif zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                h.update(f"{info.filename}\0{info.CRC}\0{info.file_size}\n".encode())
    else:
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


# -- distributed helpers -----------------------------------------------------------------------------

def _dist_active(num_gpus: int) -> bool:
    if num_gpus <= 1:
        return False
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise RuntimeError(f"num_gpus={num_gpus} but torch.distributed is not initialised")
    return True


def run_batches(num_batches: int, fn, rank: int = 0, num_gpus: int = 1, device="cpu"):
    """Call fn(b) -> tensor [n_b, D] for this rank's batches (b = rank, rank + num_gpus, ...) and return
    all batches' outputs concatenated in batch order, on every rank (all-gather per step)."""
    if not _dist_active(num_gpus):
        return torch.cat([fn(b).cpu() for b in range(num_batches)]) if num_batches else None
    out = []
    steps = (num_batches + num_gpus - 1) // num_gpus
    for s in range(steps):
        b = s * num_gpus + rank
        x = fn(b).to(device) if b < num_batches else None
        # Pad to a common shape: gather the row counts first, then the padded tensors.
        n = torch.tensor([0 if x is None else x.shape[0], 0 if x is None else x.shape[1]], device=device)
        counts = [torch.zeros_like(n) for _ in range(num_gpus)]
        torch.distributed.all_gather(counts, n)
        rows = max(int(c[0]) for c in counts)
        dim = max(int(c[1]) for c in counts)
        buf = torch.zeros([rows, dim], device=device, dtype=torch.float32)
        if x is not None:
            buf[:x.shape[0]] = x.float()
        gathered = [torch.zeros_like(buf) for _ in range(num_gpus)]
        torch.distributed.all_gather(gathered, buf)
        out += [g[:int(c[0])].cpu() for g, c in zip(gathered, counts) if int(c[0]) > 0]
    return torch.cat(out)


class _Progress:
    def __init__(self, total: int, desc: str, enabled: bool, num_gpus: int):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="img", leave=False, dynamic_ncols=True)
        self.num_gpus = num_gpus

    def __call__(self, n: int):
        if self.bar is not None:
            self.bar.update(n * self.num_gpus)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# -- image sources -----------------------------------------------------------------------------------

def open_dataset(path, use_labels: bool = False):
    from ganforge.data.dataset import ImageFolderDataset

    return ImageFolderDataset(path, use_labels=use_labels)


def dataset_batches(dataset, num_items: int, batch_size: int):
    """fn(b) -> uint8 [n, C, H, W] of items [b*batch, (b+1)*batch) in dataset order."""
    def fn(b):
        idx = range(b * batch_size, min((b + 1) * batch_size, num_items))
        return torch.from_numpy(np.stack([dataset[i][0] for i in idx]))
    return fn, (num_items + batch_size - 1) // batch_size


def generator_batches(G, num_items: int, batch_size: int, seed: int, device, labels=None, G_kwargs=None):
    """fn(b) -> uint8 images of batch b: z ~ N(0, I) from torch.Generator seeded (seed, b); labels sampled
    uniformly from the dataset's labels for a conditional G; G(z, c, noise_mode='random') with the torch
    RNG also seeded per batch; converted with `to_uint8`."""
    G_kwargs = dict(noise_mode="random", **(G_kwargs or {}))
    dtype = next((p.dtype for p in G.parameters()), torch.float32)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim and (labels is None or len(labels) == 0):
        raise UsageError(f"the network is conditional (c_dim={c_dim}) but the dataset has no labels; "
                         "use a dataset with dataset.json labels")

    @torch.no_grad()
    def fn(b):
        n = min(batch_size, num_items - b * batch_size)
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + b)
        z = torch.randn([n, G.z_dim], generator=g).to(device=device, dtype=dtype)
        if c_dim:
            idx = torch.randint(len(labels), (n,), generator=g).numpy()
            c = torch.as_tensor(np.asarray(labels)[idx], dtype=dtype, device=device)
        else:
            c = torch.zeros([n, 0], dtype=dtype, device=device)
        devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed) * 1_000_003 + b)
            img = G(z, c, **G_kwargs)
        return to_uint8(img)
    return fn, (num_items + batch_size - 1) // batch_size


# -- features ----------------------------------------------------------------------------------------

def _feature_fn(feature: str, net, device):
    """images uint8 -> features [n, D] for feature in {'pool3', 'probs', 'fc2'}."""
    def fn(images):
        with torch.inference_mode():
            x = images.to(device)
            if feature == "pool3":
                return net(x, return_features=True).float()
            if feature == "probs":
                return net(x, no_output_bias=True).float()
            if feature == "fc2":
                return net(x, return_features=True).float()
        raise ValueError(feature)
    return fn


def _swd_fn(seed: int):
    """images -> flattened raw descriptors of all levels for batch b (patch positions seeded per batch)."""
    def fn(images, b):
        g = torch.Generator().manual_seed(int(seed) * 7919 + b)
        levels = swd_mod.images_to_descriptors(images, g)
        return torch.cat([lvl.reshape(images.shape[0], -1) for lvl in levels], dim=1)
    return fn


def _split_swd(flat: torch.Tensor, resolution: int):
    """Inverse of the per-batch flattening in `_swd_fn`: [N, L*P*3*7*7] -> per level [N*P, 3, 7, 7]."""
    res = swd_mod.pyramid_resolutions(resolution)
    k, p = swd_mod.SWD_NHOOD_SIZE, swd_mod.SWD_NHOODS_PER_IMAGE
    per = p * 3 * k * k
    return [flat[:, i * per:(i + 1) * per].reshape(-1, 3, k, k) for i in range(len(res))], res


class _Context:
    """Everything one compute_metrics call shares: detectors, data, memoised features."""

    def __init__(self, G, dataset_path, fake_path, device, rank, num_gpus, cache_dir, detectors, seed,
                 batch_size, progress, G_kwargs):
        self.G, self.device, self.rank, self.num_gpus = G, torch.device(device), rank, num_gpus
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.opts = detectors or DetectorOptions()
        self.seed, self.batch_size, self.progress, self.G_kwargs = seed, batch_size, progress, G_kwargs
        self.dataset_path, self.fake_path = dataset_path, fake_path
        self._datasets, self._memo, self._hash = {}, {}, {}

    def dataset(self, path):
        if path not in self._datasets:
            self._datasets[path] = open_dataset(path, use_labels=(path == self.dataset_path and
                                                                  bool(getattr(self.G, "c_dim", 0))))
        return self._datasets[path]

    def content_hash(self, path):
        if path not in self._hash:
            self._hash[path] = dataset_content_hash(path)
        return self._hash[path]

    def _run(self, num_batches, images_fn, feat_fn, total, desc):
        bar = _Progress(total, desc, self.progress and self.rank == 0, self.num_gpus)

        def fn(b):
            imgs = images_fn(b)
            out = feat_fn(imgs, b)
            bar(imgs.shape[0])
            return out
        try:
            return run_batches(num_batches, fn, self.rank, self.num_gpus, self.device)
        finally:
            bar.close()

    def features(self, feature: str, source: str, num: int | None):
        """Features of `num` images from source 'real' (dataset) or 'fake' (G, or the second folder)."""
        if feature == "swd":
            det_id = "none"
            feat_fn = _swd_fn(self.seed + (0 if source == "real" else 1))
        else:
            kind = {"pool3": "inception", "probs": "inception", "fc2": "vgg16"}[feature]
            net, det_id = get_detector(kind, self.opts, self.device)
            f = _feature_fn(feature, net, self.device)
            feat_fn = lambda imgs, b: f(imgs)  # noqa: E731
        path = self.dataset_path if source == "real" else self.fake_path
        if source == "fake" and path is None:  # images from the generator
            if self.G is None:
                raise UsageError("this metric needs a network (--network) or two folders (--folders A B)")
            if num is None:
                raise UsageError("this metric name is for --folders mode (all images); with a network use a "
                                 "sized one such as fid50k_full, kid50k_full, pr50k3_full, is50k, swd")
            key = ("G", feature, det_id, num)
            if key not in self._memo:
                ds = self.dataset(self.dataset_path) if getattr(self.G, "c_dim", 0) else None
                labels = None
                if ds is not None:
                    labels = np.stack([ds.get_label(i) for i in range(len(ds))])
                images_fn, nb = generator_batches(self.G, num, self.batch_size, self.seed, self.device,
                                                  labels, self.G_kwargs)
                self._memo[key] = self._run(nb, images_fn, feat_fn, num, f"generated ({feature})")
            return self._memo[key]
        if path is None:
            raise UsageError("this metric needs real images: pass --data DATASET")
        ds = self.dataset(path)
        n = len(ds) if num is None else min(num, len(ds))
        key = (path, feature, det_id, n)
        if key in self._memo:
            return self._memo[key]
        meta = dict(dataset=self.content_hash(path), detector=det_id, feature=feature, num=n,
                    seed=self.seed if feature == "swd" else None, version=CACHE_VERSION)
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:32]
        cache_file = self.cache_dir / f"{ds.name}-{feature}-{digest}.npz"
        hit = cache_file.is_file()
        if _dist_active(self.num_gpus):  # every rank must take the same branch (collectives below)
            flag = torch.tensor([int(hit)], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            hit = bool(flag.item())
        if hit:
            with np.load(cache_file, allow_pickle=False) as z:
                feats = torch.from_numpy(z["features"])
        else:
            images_fn, nb = dataset_batches(ds, n, self.batch_size)
            feats = self._run(nb, images_fn, feat_fn, n, f"{ds.name} ({feature})")
            if self.rank == 0:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npz")
                np.savez(tmp, features=feats.numpy(), meta=json.dumps(meta))
                os.replace(tmp, cache_file)
        self._memo[key] = feats
        return feats

    def check(self, specs) -> None:
        """Every request of this call, checked before anything is computed (one UsageError naming the fix):
        the data each metric needs is there, a network matches its dataset (resolution, channels, labels
        of a conditional network), SWD has as many reals as it generates (suggesting the sized variant that
        fits), and every feature network is found."""
        real = self.dataset(self.dataset_path) if self.dataset_path else None
        fake = self.dataset(self.fake_path) if self.fake_path else None
        G = self.G
        needs_real = any(s.needs_real for s in specs)
        if G is not None and real is not None:
            res, ch = int(G.img_resolution), int(G.img_channels)
            if needs_real and (real.resolution, real.num_channels) != (res, ch):
                raise UsageError(f"the network makes {res}x{res} {ch}-channel images but {self.dataset_path} holds "
                                 f"{real.resolution}x{real.resolution} {real.num_channels}-channel ones; pass the "
                                 "dataset the network was trained on")
        c_dim = int(getattr(G, "c_dim", 0) or 0) if G is not None else 0
        if c_dim:
            if real is None:
                raise UsageError(f"the network is conditional ({c_dim} classes): pass --data DATASET with labels "
                                 "(generated images take their classes from the dataset's labels, as NVIDIA's do)")
            if not real.has_labels or real.label_dim != c_dim:
                have = f"labels of size {real.label_dim}" if real.has_labels else "no labels (dataset.json)"
                raise UsageError(f"the network is conditional on {c_dim} classes but {self.dataset_path} has {have}; "
                                 "pass the labelled dataset it was trained on")
        for spec in specs:
            if spec.kind == "swd" and real is not None:
                want = spec.max_real if spec.max_real is not None else (len(fake) if fake is not None else None)
                if want is not None and len(real) < want:
                    fit = 2 ** int(np.log2(max(len(real), 2)))
                    raise UsageError(f"{spec.name} compares {want} real images with as many generated ones but "
                                     f"{self.dataset_path} has only {len(real)}; use --metrics swd{fit} (or another "
                                     f"swdN with N <= {len(real)})")
        for kind in dict.fromkeys(s.detector for s in specs if s.detector):
            get_detector(kind, self.opts, self.device)

    def resolution(self):
        if self.G is not None and self.fake_path is None:
            return int(self.G.img_resolution)
        return int(self.dataset(self.fake_path or self.dataset_path).image_shape[1])


# -- the metrics -------------------------------------------------------------------------------------

def _compute_one(spec, ctx: _Context, fid_method: str) -> dict:
    k = spec.kwargs
    if spec.kind == "fid":
        real = ctx.features("pool3", "real", spec.max_real).numpy()
        fake = ctx.features("pool3", "fake", spec.num_gen).numpy()
        return {spec.name: fid_mod.fid_from_features(fake, real, method=fid_method)}
    if spec.kind == "kid":
        real = ctx.features("pool3", "real", spec.max_real).numpy()
        fake = ctx.features("pool3", "fake", spec.num_gen).numpy()
        return {spec.name: kernel_inception_distance(real, fake, k["num_subsets"], k["max_subset_size"],
                                                     seed=ctx.seed)}
    if spec.kind == "is":
        probs = ctx.features("probs", "fake", spec.num_gen).numpy()
        mean, std = inception_score(probs, k["num_splits"])
        return {f"{spec.name}_mean": mean, f"{spec.name}_std": std}
    if spec.kind == "pr":
        real = ctx.features("fc2", "real", spec.max_real)
        fake = ctx.features("fc2", "fake", spec.num_gen)
        p, r = precision_recall(real, fake, k["nhood_size"])
        return {f"{spec.name}_precision": p, f"{spec.name}_recall": r}
    if spec.kind == "swd":
        res = ctx.resolution()
        n_real = spec.max_real
        n_fake = spec.num_gen
        if n_real is None and n_fake is None:  # folders mode: equal set sizes
            n = min(len(ctx.dataset(ctx.dataset_path)), len(ctx.dataset(ctx.fake_path)))
            n_real = n_fake = n
        real, rres = _split_swd(ctx.features("swd", "real", n_real), res)
        fake, _ = _split_swd(ctx.features("swd", "fake", n_fake), res)
        if real[0].shape[0] != fake[0].shape[0]:
            raise UsageError(f"SWD needs as many real images as generated ones ({fake[0].shape[0] // 128}); "
                             f"the dataset has only {real[0].shape[0] // 128}")
        out = swd_mod.swd_from_descriptors(real, fake, rres, seed=ctx.seed)
        return {f"{spec.name}_{key[4:]}" if key != "swd_avg" else spec.name: v for key, v in out.items()}
    if spec.kind == "ppl":
        if ctx.G is None:
            raise UsageError(f"{spec.name} needs a network (--network)")
        net, _ = get_detector("lpips", ctx.opts, ctx.device)
        labels = None
        if getattr(ctx.G, "c_dim", 0):
            ds = ctx.dataset(ctx.dataset_path)
            labels = np.stack([ds.get_label(i) for i in range(len(ds))])
        batch = 2 if spec.num_gen >= 10_000 else max(2, min(ctx.batch_size, 8))
        bar = _Progress(spec.num_gen, spec.name, ctx.progress and ctx.rank == 0, ctx.num_gpus)
        parts = ppl_distances(ctx.G, lambda a, b: lpips_distance(net, a, b), spec.num_gen,
                              space=k["space"], sampling=k["sampling"], crop=k["crop"], epsilon=k["epsilon"],
                              batch_size=batch, seed=ctx.seed, labels=labels, device=ctx.device,
                              rank=ctx.rank, num_gpus=ctx.num_gpus, progress=bar)
        bar.close()
        lookup = dict(parts)
        nb = (spec.num_gen + batch - 1) // batch
        dist = run_batches(nb, lambda b: torch.from_numpy(lookup[b]).float()[:, None], ctx.rank,
                           ctx.num_gpus, ctx.device)
        return {spec.name: filter_outliers_mean(dist.numpy()[:, 0])}
    raise ValueError(spec.kind)


def compute_metrics(metric_names, G=None, dataset_path=None, device="cpu", rank: int = 0, num_gpus: int = 1,
                    cache_dir=None, detectors: DetectorOptions | None = None, seed: int = 0,
                    batch_size: int = 32, fake_path=None, progress: bool = True, fid_method: str = "sqrtm",
                    G_kwargs: dict | None = None) -> dict:
    """Compute metrics by name (see `registry.METRICS`) -> {name: result record}.

    G: generator with NVIDIA's interface (G(z, c, noise_mode=...), .z_dim, .c_dim, .img_resolution,
       .mapping/.synthesis for PPL), or None with `fake_path` (two-folder mode: dataset_path = reals,
       fake_path = the images to evaluate).
    dataset_path: folder or zip of real images (ganforge.data ImageFolderDataset).
    rank / num_gpus: this process's place in an initialised torch.distributed group (every rank must call
       this with the same arguments; each gets the same results).
    cache_dir: real-feature cache (default $GANFORGE_CACHE/gan-metrics or ~/.cache/ganforge/gan-metrics).
    detectors: where the feature-network weights are (`DetectorOptions`).
    seed: latents, KID subsets, SWD patches and directions are drawn from it (NVIDIA draws fresh seeds).
    fid_method: 'sqrtm' (reference) or 'eigh' (faster, same value within ~1e-6).
    Result record: {"results": {...}, "metric": name, "total_time": s, "total_time_str", "num_gpus",
    "timestamp"}.
    """
    specs = parse_metric_list(metric_names)
    if G is not None:  # a private copy: the caller's (training) network is left untouched
        G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    ctx = _Context(G, dataset_path, fake_path, device, rank, num_gpus, cache_dir, detectors, seed, batch_size,
                   progress, G_kwargs)
    ctx.check(specs)
    out = {}
    for spec in specs:
        t0 = time.time()
        results = _compute_one(spec, ctx, fid_method)
        total = time.time() - t0
        out[spec.name] = {"results": results, "metric": spec.name, "total_time": total,
                          "total_time_str": _format_time(total), "num_gpus": num_gpus,
                          "timestamp": time.time()}
    return out


def _format_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s" if s >= 3600 else (
        f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s")


def write_jsonl(records: dict, path=None, network=None, run_dir=None) -> list:
    """Append one JSON line per metric record, as NVIDIA's metric-<name>.jsonl.

    records: {name: record} as `compute_metrics` returns it; each line is the record plus "network"
    (str(network), or null). path: one file for every record; else <run_dir>/metric-<name>.jsonl, or
    next to `network` (its parent directory), or in the current directory. Each line is written in one
    write, flushed and fsynced before the next; if the file's last line was torn (a crash mid-write),
    the new line starts on a line of its own. Returns the files written (Path), one per record.
    """
    written = []
    for name, rec in records.items():
        line = dict(rec)
        line["network"] = str(network) if network is not None else None
        if path is not None:
            target = Path(path)
        else:
            base = Path(run_dir) if run_dir else (Path(network).parent if network else Path("."))
            target = base / f"metric-{name}.jsonl"
        data = (json.dumps(line) + "\n").encode("utf-8")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab") as f:
                if f.tell() > 0:
                    with open(target, "rb") as r:
                        r.seek(-1, os.SEEK_END)
                        if r.read(1) != b"\n":
                            data = b"\n" + data
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise UsageError(f"could not write {target}: {e.strerror or e}; free some disk space or choose "
                             "another place for the results") from None
        written.append(target)
    return written
