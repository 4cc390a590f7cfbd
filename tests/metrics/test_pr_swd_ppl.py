import numpy as np
import pytest
import torch

from ganforge.metrics import swd
from ganforge.metrics.ppl import filter_outliers_mean, ppl_distances, slerp
from ganforge.metrics.precision_recall import manifold_radii, precision_recall

from metrics_helpers import ToyG


def test_manifold_radii_match_brute_force():
    x = torch.randn(300, 5)
    d = np.linalg.norm(x.numpy()[:, None] - x.numpy()[None], axis=2)
    expected = np.sort(d, axis=1)[:, 3]  # self is neighbour 0 -> 3rd NN is column 3
    assert np.allclose(manifold_radii(x, k=3, row_batch=64, col_batch=100).numpy(), expected, atol=1e-4)


def test_precision_recall_on_manifolds_with_known_overlap():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(4000, 2, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    # Fake covers x in [0.5, 1.5): half of it lies on the real square, half of the real square is covered.
    fake = torch.rand(4000, 2, generator=g) + torch.tensor([0.5, 0.0])
    p, r = precision_recall(real, fake, row_batch=1000, col_batch=1500)
    assert p == pytest.approx(0.5, abs=0.03) and r == pytest.approx(0.5, abs=0.03)
    # Fake inside a quarter of the real square: precision ~1, recall ~1/4.
    fake = torch.rand(1000, 2, generator=g) * 0.5
    p, r = precision_recall(real, fake)
    assert p > 0.97 and r == pytest.approx(0.25, abs=0.04)


def test_swd_zero_for_identical_sets_and_linear_in_a_known_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 20, generator=g)
    assert swd.sliced_wasserstein(a, a.clone(), torch.Generator().manual_seed(1)) == 0.0
    v = torch.randn(20, generator=g)
    # Shift by delta * v: every projection moves by delta * (v . d) without reordering, so
    # SWD = delta * mean_d |v . d| exactly (same directions).
    dirs_gen = torch.Generator().manual_seed(2)
    dirs = torch.cat([torch.randn(20, 128, generator=dirs_gen) for _ in range(4)], 1)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    base = (v @ dirs).abs().mean().item()
    for delta in (0.1, 0.5, 2.0):
        got = swd.sliced_wasserstein(a, a + delta * v, torch.Generator().manual_seed(2))
        assert got == pytest.approx(delta * base, rel=1e-4)


def test_laplacian_pyramid_reconstructs_the_image():
    x = torch.rand(2, 3, 64, 64) * 255
    levels = swd.laplacian_pyramid(x, len(swd.pyramid_resolutions(64)))
    assert [lvl.shape[-1] for lvl in levels] == [64, 32, 16]
    rec = levels[-1]
    for lvl in reversed(levels[:-1]):
        rec = lvl + swd.pyr_up(rec)
    assert torch.allclose(rec, x, atol=1e-3)
    const = torch.full((1, 3, 32, 32), 7.0)
    assert torch.allclose(swd.pyr_down(const), torch.full((1, 3, 16, 16), 7.0))


def test_swd_on_images_grows_with_noise():
    from metrics_helpers import blobs

    clean = torch.from_numpy(blobs(8, 32, seed=0)).permute(0, 3, 1, 2)
    other = torch.from_numpy(blobs(8, 32, seed=1)).permute(0, 3, 1, 2)

    def swd_of(fake, fake_seed=1):
        r = swd.images_to_descriptors(clean, torch.Generator().manual_seed(0))
        f = swd.images_to_descriptors(fake, torch.Generator().manual_seed(fake_seed))
        return swd.swd_from_descriptors(r, f, [32, 16])["swd_avg"]

    assert swd_of(clean, fake_seed=0) == 0.0  # same images, same patches
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(3))
    values = [swd_of((other.float() + s * noise).clamp(0, 255).to(torch.uint8)) for s in (0, 20, 80)]
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_slerp_matches_the_classic_sine_formula():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, 7, generator=g, dtype=torch.float64)
    t = torch.rand(5, 1, generator=g, dtype=torch.float64)
    ah, bh = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((ah * bh).sum(1, keepdim=True))
    classic = (torch.sin((1 - t) * omega) * ah + torch.sin(t * omega) * bh) / torch.sin(omega)
    assert torch.allclose(slerp(a, b, t), classic, atol=1e-12)


@pytest.mark.parametrize("space", ["w", "z"])
def test_ppl_equals_direct_finite_difference_and_jvp(space):
    # Toy distance: mean squared difference of the [0, 255] images. PPL sample = d(g(t), g(t + eps)) / eps^2.
    G = ToyG(dtype=torch.float64)
    dist = lambda a, b: (a - b).square().flatten(1).mean(1)  # noqa: E731
    parts = ppl_distances(G, dist, num_samples=6, space=space, sampling="full", epsilon=1e-4, batch_size=3, seed=5)
    got = np.concatenate([d for _, d in sorted(parts, key=lambda p: p[0])])
    expect = []
    for b in range(2):  # recompute each batch directly from the same seeded draws
        g = torch.Generator().manual_seed(5 * 1_000_003 + b)
        t = torch.rand([3, 1], generator=g, dtype=torch.float64)
        z = torch.randn([6, G.z_dim], generator=g, dtype=torch.float64)
        c = torch.zeros([6, 0], dtype=torch.float64)
        torch.randn(G.noise_const.shape, generator=g)  # the noise re-draw consumes the generator
        img = lambda w: (G.synthesis(w, noise_mode="none") + 1) * 127.5  # noqa: E731
        if space == "w":
            w = G.mapping(z, c)
            w0, w1 = w[:3], w[3:]
            # epsilon -> 0 limit: |J_g(w_t) (w1 - w0)|^2, from a forward-mode derivative.
            _, jv = torch.func.jvp(img, (w0.lerp(w1, t[:, :, None]),), (w1 - w0,))
            expect.append(jv.square().flatten(1).mean(1).detach().numpy())
        else:
            z0, z1 = z[:3], z[3:]
            a, bb = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
            om = torch.acos((a * bb).sum(1, keepdim=True))
            sl = lambda tt: (torch.sin((1 - tt) * om) * a + torch.sin(tt * om) * bb) / torch.sin(om)  # noqa: E731
            d = dist(img(G.mapping(sl(t), c[:3])), img(G.mapping(sl(t + 1e-4), c[:3]))) / 1e-8
            expect.append(d.detach().numpy())
    expect = np.concatenate(expect)
    # The const noise is tiny and identical in both images of a pair; it cancels in the difference.
    assert np.allclose(got, expect, rtol=2e-3), (got, expect)


def test_ppl_outlier_filter_keeps_1st_to_99th_percentile():
    d = np.arange(1, 201, dtype=np.float64)  # 1..200
    d[-1] = 1e9  # outlier
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    assert filter_outliers_mean(d) == pytest.approx(d[(d >= lo) & (d <= hi)].mean())
    assert filter_outliers_mean(d) < 200
