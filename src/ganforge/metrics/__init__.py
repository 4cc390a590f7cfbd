"""Quality metrics that match the literature: FID, KID, IS, precision/recall, PPL, SWD.

Library entry points (the CLI `ganforge metrics` and the training loop use these):
    compute_metrics(names, G=..., dataset_path=..., device=..., rank=..., num_gpus=..., cache_dir=...)
    write_jsonl(records, path=None, network=None, run_dir=None)
    METRICS / REGISTRY: the metric table;  DetectorOptions: where the feature-network weights are.

Math lives in one function each: fid.frechet_distance, kid.kernel_inception_distance,
inception_score.inception_score, precision_recall.precision_recall, ppl.ppl_distances (+ filter_outliers_mean;
slerp is models.latents.slerp), swd.sliced_wasserstein; feature networks in inception.py and vgg.py; the TF1
resize in resize.py; weight lookup and SHA-256 checks in weights.py.
"""

from ganforge.metrics.detectors import DetectorOptions, get_detector
from ganforge.metrics.registry import METRICS, REGISTRY, MetricSpec, get_metric
from ganforge.metrics.runner import compute_metrics, dataset_content_hash, default_cache_dir, write_jsonl

__all__ = ["compute_metrics", "write_jsonl", "DetectorOptions", "get_detector", "METRICS", "REGISTRY",
           "MetricSpec", "get_metric", "dataset_content_hash", "default_cache_dir"]
