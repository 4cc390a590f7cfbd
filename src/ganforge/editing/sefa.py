"""SeFa: closed-form factorisation of latent semantics (Shen & Zhou, CVPR 2021, arXiv 2007.06600;
genforce/sefa utils.py `factorize_weight`).

The style affine of a layer maps w to styles, s = A w + b. A direction n in W moves the styles by A n,
so the directions that move the styles most are the maximisers of ||A n||^2 under ||n|| = 1 (paper eq. 4-6):

    n* = argmax_{n^T n = 1} n^T A^T A n    ->   the eigenvectors of A^T A, by eigenvalue, largest first

A stacks the chosen layers' affine weights row-wise, each row (one output channel's weight vector over
w, i.e. one column of genforce's transposed `style.weight.T`) normalised to unit L2 norm, as
genforce/sefa does (`weight / np.linalg.norm(weight, axis=0, keepdims=True)` on the [w_dim, C] matrix).
The equalized-lr gains (the affine's weight_gain, ToRGB's 1/sqrt(in) style gain) are uniform per layer,
so that normalisation removes them; ganforge still starts from the effective weights.

SeFa calls np.linalg.eig, which does not sort its eigenvalues; ganforge uses a symmetric eigensolver
and sorts descending, which is the order SeFa means (and shows for its leading semantics).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ganforge.editing.layers import modulated_layers


def _canonical_sign(vectors: torch.Tensor) -> torch.Tensor:
    """Flip each row so that its largest-magnitude coordinate is positive (eigenvectors have no sign;
    this makes the output the same on every platform)."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    return vectors * torch.sign(vectors.gather(1, idx))


def style_weights(G, layers: Sequence[int]) -> torch.Tensor:
    """A: [sum of the chosen layers' in_channels, w_dim] float64 (CPU), the effective style-affine weights
    (weight * weight_gain, times ToRGB's style gain) of the modulated layer of each w index in `layers`
    (editing.layers.modulated_layers), stacked row-wise, not yet normalised."""
    table = modulated_layers(G)
    rows = []
    for i in layers:
        _, layer, _ = table[i]
        w = layer.affine.weight.detach().to("cpu", torch.float64) * layer.affine.weight_gain
        w = w * getattr(layer, "weight_gain", 1.0)  # ToRGBLayer: styles = affine(w) / sqrt(in_channels)
        rows.append(w)
    return torch.cat(rows)


def sefa_directions(G, layers: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa directions for the w indices `layers` (None: all, SeFa's default `-L all`).

    A     = style_weights(G, layers) with each row divided by its L2 norm    [sum C_in, w_dim]
    A^T A = V diag(lambda) V^T,  lambda_1 >= lambda_2 >= ... >= lambda_{w_dim} >= 0

    returns (directions [w_dim, w_dim] float32: row k = v_k, unit norm, sign fixed so its largest-magnitude
             coordinate is positive; eigenvalues [w_dim] float32, descending)
    """
    layers = list(range(G.num_ws)) if layers is None else list(layers)
    if not layers:
        raise ValueError("sefa_directions needs at least one layer")
    A = style_weights(G, layers)
    A = A / A.norm(dim=1, keepdim=True)
    eigenvalues, eigenvectors = torch.linalg.eigh(A.T @ A)     # ascending
    order = torch.argsort(eigenvalues, descending=True)
    directions = _canonical_sign(eigenvectors[:, order].T.contiguous())
    return directions.to(torch.float32), eigenvalues[order].clamp_min(0).to(torch.float32)


__all__ = ["sefa_directions", "style_weights"]
