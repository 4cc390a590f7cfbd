"""SeFa (Shen & Zhou 2021): the directions are the eigenvectors of A^T A, with A the row-normalised style
weights of the chosen layers, ordered by eigenvalue; and the w index -> layer map they are built on."""

import numpy as np
import pytest
import torch

from testkit import tiny_G
from ganforge.editing import LAYER_GROUPS, layer_group, modulated_layers, parse_layers, sefa_directions
from ganforge.errors import UsageError

# NVIDIA's layout of a 16-px skip generator: the layer whose style affine each w index drives (SeFa's
# layer0..layer4 and output2 in genforce's naming); written out by hand, not derived from block_ws.
LAYOUT_16 = ["b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1", "b16.torgb"]


def reference_A(G, layers):
    """A by hand from the named modules, rows normalised as genforce/sefa normalises the columns of A^T."""
    rows = []
    for i in layers:
        mod = G.synthesis.get_submodule(LAYOUT_16[i])
        rows.append(mod.affine.weight.detach().double().numpy() * mod.affine.weight_gain)
    A = np.concatenate(rows)
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def test_modulated_layers_follow_nvidia_layout():
    G = tiny_G(res=16)
    assert [name.removeprefix("synthesis.") for name, _, _ in modulated_layers(G)] == LAYOUT_16
    assert [res for _, _, res in modulated_layers(G)] == [4, 8, 8, 16, 16, 16]


@torch.no_grad()
def test_each_layer_reads_its_w_index():
    # Independent of the table: feed w index i the constant value i and watch what each affine receives.
    G = tiny_G(res=16).eval()
    seen = {}

    def record(i):
        def hook(module, inputs, output):
            seen.setdefault(i, inputs[0][0, 0].item())
        return hook

    hooks = [layer.affine.register_forward_hook(record(i)) for i, (_, layer, _) in enumerate(modulated_layers(G))]
    ws = torch.arange(G.num_ws, dtype=torch.float32)[None, :, None].repeat(1, 1, G.w_dim)
    G.synthesis(ws, noise_mode="const")
    for h in hooks:
        h.remove()
    assert seen == {i: float(i) for i in range(G.num_ws)}


@pytest.mark.parametrize("layers", [None, [1, 2], [5]])
def test_directions_are_sorted_orthonormal_eigenvectors(layers):
    G = tiny_G(res=16)
    chosen = list(range(G.num_ws)) if layers is None else layers
    A = reference_A(G, chosen)
    M = A.T @ A
    ref_vals, ref_vecs = np.linalg.eigh(M)
    order = np.argsort(ref_vals)[::-1]
    ref_vals, ref_vecs = ref_vals[order], ref_vecs[:, order].T

    d, lam = sefa_directions(G, layers)
    d, lam = d.double().numpy(), lam.double().numpy()
    assert d.shape == (G.w_dim, G.w_dim) and lam.shape == (G.w_dim,)
    assert np.all(np.diff(lam) <= 1e-6)                                   # descending
    np.testing.assert_allclose(lam, np.clip(ref_vals, 0, None), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d @ d.T, np.eye(G.w_dim), atol=1e-5)      # orthonormal rows
    np.testing.assert_allclose(d @ M, lam[:, None] * d, atol=1e-4)        # v_k^T (A^T A) = lambda_k v_k^T
    # The leading eigenvalues are distinct, so those eigenvectors agree with numpy's up to sign.
    k = 3
    assert np.all(-np.diff(ref_vals[:k + 1]) > 1e-3)
    np.testing.assert_allclose(np.abs(np.sum(d[:k] * ref_vecs[:k], axis=1)), 1, atol=1e-5)
    # Sign convention: each direction's largest-magnitude coordinate is positive.
    assert np.all(d[np.arange(len(d)), np.abs(d).argmax(1)] > 0)


def test_rows_are_normalised_as_sefa_does():
    # SeFa divides each channel's weight vector by its norm: rescaling one channel or one whole layer
    # (e.g. an equalized-lr gain) cannot change the directions.
    G = tiny_G(res=16)
    d0, lam0 = sefa_directions(G)
    with torch.no_grad():
        G.synthesis.b8.conv0.affine.weight[3] *= 10
        G.synthesis.b16.torgb.affine.weight *= 0.1
    d1, lam1 = sefa_directions(G)
    torch.testing.assert_close(lam1, lam0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(d1[:3], d0[:3], rtol=0, atol=1e-5)


def test_layer_groups_by_resolution():
    # StyleGAN §3.1: coarse 4-8 px, middle 16-32, fine 64-1024; a 32-px network has no fine layers.
    G32, G64 = tiny_G(res=32), tiny_G(res=64)
    assert LAYER_GROUPS["coarse"] == (4, 8)
    assert [layer_group(G32, g) for g in ("coarse", "middle", "fine")] == [[0, 1, 2], [3, 4, 5, 6, 7], []]
    assert [layer_group(G64, g) for g in ("coarse", "middle", "fine")] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    assert parse_layers("all", G32) == list(range(8)) and parse_layers("3,0-1", G32) == [0, 1, 3]
    with pytest.raises(UsageError, match="no fine layers"):
        parse_layers("fine", G32)
    with pytest.raises(UsageError, match="out of range"):
        parse_layers("0-8", G32)
