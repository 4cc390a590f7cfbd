"""The metric table: NVIDIA's metric names and what each one computes (data, not branches)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ganforge.errors import UsageError


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # 'fid' | 'kid' | 'pr' | 'is' | 'ppl' | 'swd'
    num_gen: int | None  # generated images (None: all images of the second folder in --folders mode)
    max_real: int | None  # real images; None = the whole dataset ("_full")
    kwargs: dict = field(default_factory=dict)
    description: str = ""

    @property
    def detector(self):
        return {"fid": "inception", "kid": "inception", "is": "inception", "pr": "vgg16",
                "ppl": "lpips", "swd": None}[self.kind]

    @property
    def needs_generator(self) -> bool:
        return self.kind == "ppl"

    @property
    def needs_real(self) -> bool:
        return self.kind not in ("is", "ppl")


_PPL = {
    "ppl_zfull": dict(space="z", sampling="full", crop=True),
    "ppl_wfull": dict(space="w", sampling="full", crop=True),
    "ppl_zend": dict(space="z", sampling="end", crop=True),
    "ppl_wend": dict(space="w", sampling="end", crop=True),
    "ppl2_wend": dict(space="w", sampling="end", crop=False),
}

METRICS = [
    MetricSpec("fid50k_full", "fid", 50_000, None, description="FID, 50k generated vs the whole dataset"),
    MetricSpec("fid50k", "fid", 50_000, 50_000, description="FID, 50k generated vs the first 50k reals"),
    MetricSpec("fid10k_full", "fid", 10_000, None),
    MetricSpec("fid10k", "fid", 10_000, 10_000),
    MetricSpec("fid5k", "fid", 5_000, 5_000),
    MetricSpec("fid1k", "fid", 1_000, 1_000, description="monitoring only: strongly biased"),
    MetricSpec("kid50k_full", "kid", 50_000, 1_000_000, dict(num_subsets=100, max_subset_size=1000)),
    MetricSpec("kid50k", "kid", 50_000, 50_000, dict(num_subsets=100, max_subset_size=1000)),
    MetricSpec("kid10k", "kid", 10_000, 10_000, dict(num_subsets=100, max_subset_size=1000)),
    MetricSpec("kid1k", "kid", 1_000, 1_000, dict(num_subsets=100, max_subset_size=1000)),
    MetricSpec("pr50k3_full", "pr", 50_000, 200_000, dict(nhood_size=3)),
    MetricSpec("pr50k3", "pr", 50_000, 50_000, dict(nhood_size=3)),
    MetricSpec("pr10k3", "pr", 10_000, 10_000, dict(nhood_size=3)),
    MetricSpec("pr1k3", "pr", 1_000, 1_000, dict(nhood_size=3)),
    MetricSpec("is50k", "is", 50_000, None, dict(num_splits=10)),
    MetricSpec("is10k", "is", 10_000, None, dict(num_splits=10)),
    MetricSpec("is1k", "is", 1_000, None, dict(num_splits=10)),
    *[MetricSpec(n, "ppl", 50_000, None, dict(kw, epsilon=1e-4)) for n, kw in _PPL.items()],
    *[MetricSpec(n + "1k", "ppl", 1_000, None, dict(kw, epsilon=1e-4)) for n, kw in _PPL.items()],
    MetricSpec("swd", "swd", 16_384, 16_384, description="Progressive GAN metric-swd-16k"),
    MetricSpec("swd1k", "swd", 1_024, 1_024),
    # --folders mode (no network): every image of both folders.
    MetricSpec("fid", "fid", None, None, description="FID between two image sets (all images)"),
    MetricSpec("kid", "kid", None, None, dict(num_subsets=100, max_subset_size=1000)),
    MetricSpec("pr3", "pr", None, None, dict(nhood_size=3)),
    MetricSpec("is", "is", None, None, dict(num_splits=10)),
    MetricSpec("swd_all", "swd", None, None),
]
REGISTRY = {m.name: m for m in METRICS}


_SIZED = re.compile(r"^(fid|kid|is|swd|pr)(\d+)(k?)(3?)(_full)?$")


def sized_metric(name: str) -> MetricSpec | None:
    """Metrics at any sample count, named like NVIDIA's: fid2k, kid500, is5k, swd128, pr2k3, fid20k_full.

    N generated images; N reals (or the whole dataset with _full; up to 1M for kid, 200k for pr)."""
    m = _SIZED.match(name)
    if not m:
        return None
    kind, num, kilo, three, full = m.groups()
    if (kind == "pr") != (three == "3") or (full and kind in ("is", "swd")):
        return None
    n = int(num) * (1000 if kilo else 1)
    if n < 2:
        return None
    max_real = {"kid": 1_000_000, "pr": 200_000, "fid": None}.get(kind) if full else n
    kwargs = {"kid": dict(num_subsets=100, max_subset_size=1000), "pr": dict(nhood_size=3),
              "is": dict(num_splits=10)}.get(kind, {})
    return MetricSpec(name, kind, n, None if kind == "is" else max_real, kwargs)


def get_metric(name: str) -> MetricSpec:
    spec = REGISTRY.get(name) or sized_metric(name)
    if spec is None:
        raise UsageError(f"unknown metric {name!r}; choose from {', '.join(REGISTRY)} "
                         "(or a size variant such as fid2k, kid500, swd128, pr5k3)")
    return spec


def parse_metric_list(text) -> list:
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise UsageError("no metrics given; e.g. --metrics fid50k_full,kid50k_full")
    return [get_metric(n) for n in names]
