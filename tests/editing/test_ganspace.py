"""GANSpace (Härkönen et al. 2020) in W: principal components of w = mapping(z), z ~ N(0, I), checked
against numpy's PCA (SVD of the centred samples) drawn independently here."""

import numpy as np
import torch

from testkit import tiny_G
from ganforge.editing import ganspace_directions, sample_ws


@torch.no_grad()
def reference_samples(G, n, seed, class_idx=None):
    z = np.random.RandomState(seed).standard_normal((n, G.z_dim))
    c = torch.zeros([n, G.c_dim])
    if G.c_dim:
        labels = [class_idx] * n if class_idx is not None else np.random.RandomState(seed + 1).randint(G.c_dim, size=n)
        c[np.arange(n), labels] = 1
    return G.mapping(torch.from_numpy(z).float(), c)[:, 0].double().numpy()


def test_components_match_numpy_pca():
    G = tiny_G(res=8).eval()
    n, seed = 3000, 5
    X = reference_samples(G, n, seed)
    mean = X.mean(0)
    _, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    var = S ** 2 / (n - 1)

    comp, ev, mu = ganspace_directions(G, num_samples=n, seed=seed)
    comp, ev, mu = comp.double().numpy(), ev.double().numpy(), mu.double().numpy()
    assert comp.shape == (G.w_dim, G.w_dim) and ev.shape == (G.w_dim,) and mu.shape == (G.w_dim,)
    np.testing.assert_allclose(mu, mean, atol=1e-5)
    np.testing.assert_allclose(ev, var, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(comp @ comp.T, np.eye(G.w_dim), atol=1e-5)
    k = 4                                          # distinct leading variances: the same axes up to sign
    assert np.all(-np.diff(var[:k + 1]) / var[0] > 1e-3)
    np.testing.assert_allclose(np.abs(np.sum(comp[:k] * Vt[:k], axis=1)), 1, atol=1e-5)
    assert ganspace_directions(G, num_samples=n, seed=seed, num_components=3)[0].shape == (3, G.w_dim)


def test_samples_do_not_depend_on_the_batch_size_and_use_the_stated_labels():
    G = tiny_G(res=8, c_dim=4).eval()
    a = torch.cat(list(sample_ws(G, 50, seed=2, batch_size=7))).double().numpy()
    b = torch.cat(list(sample_ws(G, 50, seed=2, batch_size=1000))).double().numpy()
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, reference_samples(G, 50, 2), atol=1e-5)          # pooled classes
    one = torch.cat(list(sample_ws(G, 20, seed=2, class_idx=3))).double().numpy()
    np.testing.assert_allclose(one, reference_samples(G, 20, 2, class_idx=3), atol=1e-5)
