"""Image -> latent projection (W, W+) and attribution (StyleGAN2 §5).

    project(G, targets, space='w'|'w+', steps=1000, ...) -> ProjectionResult   (projector.py)
    attribute(G, images, threshold=None, calibrate=200, ...) -> AttributionResult (attribution.py)
"""

from ganforge.projection.attribution import AttributionResult, attribute, roc_auc
from ganforge.projection.distance import Distance, resolve_distance
from ganforge.projection.projector import ProjectionResult, project

__all__ = [
           "AttributionResult",
           "Distance",
           "ProjectionResult",
           "attribute",
           "project",
           "resolve_distance",
           "roc_auc",
]
