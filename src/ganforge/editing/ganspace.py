"""GANSpace: principal components of sampled w (Härkönen et al., NeurIPS 2020, arXiv 2004.02546;
harskish/ganspace decomposition.py, StyleGAN2 with --use_w).

For StyleGAN(2) GANSpace does PCA directly in W (`samples_are_latents`): w = mapping(z), z ~ N(0, I), no
truncation; the components are the latent directions themselves (unit rows), the mean is the mean w.

    mu = (1/N) sum_n w_n                                  [w_dim]
    C  = (1/(N-1)) sum_n (w_n - mu)(w_n - mu)^T             [w_dim, w_dim]
    C  = V diag(sigma^2) V^T,  sigma_1 >= sigma_2 >= ...    (the PCA of the centred samples, = SVD)

GANSpace fits it with sklearn's IncrementalPCA (batches of max(2000, 3 * components) samples); ganforge
accumulates mu and C exactly in float64 on the CPU over batches and diagonalises C, which is the same
PCA without the incremental approximation and without holding the samples.

Edits: GANSpace walks `--sigma 2.0` standard deviations along a component, over a chosen layer range
[start, end) of W+ (its notebooks: tuples (component, start, end, strength), strengths in sigma units).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.editing.sefa import _canonical_sign

GANSPACE_NUM_SAMPLES = 300_000  # ganspace config.py: -n 300_000 (the paper's notebooks use 1_000_000)
GANSPACE_COMPONENTS = 80        # ganspace config.py: -c 80 (ganforge returns all w_dim by default: same cost)
GANSPACE_SEED = 1               # ganspace decomposition.py: SEED_SAMPLING = 1
GANSPACE_SIGMA = 2.0            # ganspace config.py: --sigma 2.0, the walk in standard deviations
SAMPLE_BATCH = 10_000


def _label_rng(seed: int) -> np.random.RandomState:
    return np.random.RandomState(seed + 1)


@torch.no_grad()
def sample_ws(G, num_samples: int, seed: int = GANSPACE_SEED, class_idx: int | None = None,
              batch_size: int = SAMPLE_BATCH, progress=None):
    """Yield batches of w [B, w_dim] (float32, CPU) = G.mapping(z, c) without truncation, N in all.

    z: one numpy RandomState(seed) stream, standard_normal((B, z_dim)) batch after batch (float64, cast to
    float32), so the samples do not depend on batch_size. c: one-hot class_idx, or for a conditional
    network without one, classes drawn uniformly from RandomState(seed + 1) (the pooled W of all classes).
    """
    device = next(G.parameters()).device
    rng, lrng = np.random.RandomState(seed), _label_rng(seed)
    done = 0
    while done < num_samples:
        b = min(batch_size, num_samples - done)
        z = torch.from_numpy(rng.standard_normal((b, G.z_dim))).to(torch.float32)
        c = torch.zeros([b, G.c_dim])
        if G.c_dim:
            labels = np.full(b, class_idx) if class_idx is not None else lrng.randint(G.c_dim, size=b)
            c[np.arange(b), labels] = 1
        w = G.mapping(z.to(device), c.to(device), truncation_psi=1)[:, 0]
        yield w.float().cpu()
        done += b
        if progress is not None:
            progress.update(b)


def ganspace_directions(G, layers=None, num_samples: int = GANSPACE_NUM_SAMPLES, seed: int = GANSPACE_SEED,
                        num_components: int | None = None, class_idx: int | None = None,
                        progress=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PCA of num_samples w's (see the module docstring).

    layers: accepted for symmetry with sefa_directions and ignored by the decomposition: W is shared by
            all layers before editing, so GANSpace's components do not depend on the layer range; the
            range only says where an edit is applied (editing.apply.edit_ws).
    returns (components [k, w_dim] float32, unit rows, by explained variance descending, sign fixed so each
             row's largest-magnitude coordinate is positive;
             explained_variance [k] float32 (sigma_k^2, the N-1 normalisation of sklearn's PCA);
             mean [w_dim] float32);  k = num_components or w_dim.
    """
    del layers
    if num_samples < 2:
        raise ValueError("GANSpace needs at least 2 samples")
    total = torch.zeros([G.w_dim], dtype=torch.float64)
    outer = torch.zeros([G.w_dim, G.w_dim], dtype=torch.float64)
    n = 0
    for w in sample_ws(G, num_samples, seed, class_idx, progress=progress):
        w = w.double()
        total += w.sum(0)
        outer += w.T @ w
        n += len(w)
    mean = total / n
    cov = (outer - n * torch.outer(mean, mean)) / (n - 1)
    variance, vectors = torch.linalg.eigh(cov)          # ascending
    order = torch.argsort(variance, descending=True)
    k = G.w_dim if num_components is None else min(num_components, G.w_dim)
    order = order[:k]
    components = _canonical_sign(vectors[:, order].T.contiguous())
    return components.float(), variance[order].clamp_min(0).float(), mean.float()


__all__ = ["GANSPACE_NUM_SAMPLES", "GANSPACE_SEED", "GANSPACE_SIGMA", "ganspace_directions", "sample_ws"]
