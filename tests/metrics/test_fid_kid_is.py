import numpy as np
import pytest

from ganforge.metrics.fid import FeatureStats, fid_from_features, frechet_distance, mean_cov
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance, mmd2_unbiased


def _commuting_gaussians(d, seed):
    rng = np.random.RandomState(seed)
    q, _ = np.linalg.qr(rng.randn(d, d))
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    return rng.randn(d), q @ np.diag(a) @ q.T, rng.randn(d), q @ np.diag(b) @ q.T, a, b


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_fid_of_two_gaussians_equals_closed_form(method):
    # Shared eigenbasis: Tr sqrt(S1 S2) = sum_i sqrt(a_i b_i), so FID = |dmu|^2 + sum (sqrt a - sqrt b)^2.
    mu1, s1, mu2, s2, a, b = _commuting_gaussians(32, 0)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-8)


def test_fid_general_covariances_methods_agree_and_1d_formula():
    rng = np.random.RandomState(1)
    x, y = rng.randn(64, 64), rng.randn(64, 64)
    s1, s2 = x @ x.T / 64 + 0.1 * np.eye(64), y @ y.T / 64 + 0.1 * np.eye(64)
    mu = np.zeros(64)
    assert frechet_distance(mu, s1, mu, s2, "sqrtm") == pytest.approx(frechet_distance(mu, s1, mu, s2, "eigh"),
                                                                       rel=1e-7)
    # 1-D: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # pytorch-fid's unit check: equal covariances -> |dmu|^2
    assert frechet_distance(np.zeros(16), np.eye(16), np.ones(16), np.eye(16)) == pytest.approx(16)


def test_fid_of_a_set_with_itself_is_zero_and_stats_use_1_over_n():
    feats = np.random.RandomState(2).randn(500, 64).astype(np.float32) * 3 + 1
    mu, sigma = mean_cov(feats)
    assert np.allclose(sigma, np.cov(feats.astype(np.float64), rowvar=False, bias=True), atol=1e-9)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    # Accumulating in chunks gives the same statistics.
    s = FeatureStats()
    for chunk in np.array_split(feats, 7):
        s.append(chunk)
    assert np.allclose(s.mean(), mu) and np.allclose(s.cov(), sigma, atol=1e-9)


def test_fid_from_samples_converges_to_closed_form():
    mu1, s1, mu2, s2, a, b = _commuting_gaussians(8, 3)
    rng = np.random.RandomState(4)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    m1, c1 = mean_cov(x)
    m2, c2 = mean_cov(y)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, abs=0.05)


def test_mmd2_unbiased_matches_naive_double_loop():
    rng = np.random.RandomState(5)
    x, y = rng.randn(6, 4), rng.randn(6, 4) + 0.5
    k = lambda u, v: (u @ v / 4 + 1) ** 3  # noqa: E731
    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_is_unbiased_on_equal_distributions_and_positive_on_different():
    rng = np.random.RandomState(6)
    vals = [mmd2_unbiased(rng.randn(50, 16), rng.randn(50, 16)) for _ in range(400)]
    mean, sem = np.mean(vals), np.std(vals) / np.sqrt(len(vals))
    assert abs(mean) < 4 * sem  # unbiased: E[MMD^2_u] = 0
    # The biased (V-statistic) estimator, which keeps the diagonal, is clearly positive on the same draws.
    k = lambda u, v: (u @ v.T / 16 + 1) ** 3  # noqa: E731
    biased = [k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
              for x, y in ((rng.randn(50, 16), rng.randn(50, 16)) for _ in range(50))]
    assert np.mean(biased) > 10 * sem
    real, fake = rng.randn(300, 16), rng.randn(300, 16) + 1.0
    assert kernel_inception_distance(real, fake, num_subsets=10, max_subset_size=100) > 0.1


def test_kid_uses_min_subset_size_and_is_seeded():
    rng = np.random.RandomState(7)
    real, fake = rng.randn(40, 8), rng.randn(30, 8)
    a = kernel_inception_distance(real, fake, num_subsets=5, seed=1)
    assert a == kernel_inception_distance(real, fake, num_subsets=5, seed=1)
    # With m = 30 = n_fake the fake subset is the whole set in every draw.
    assert a != kernel_inception_distance(real, fake, num_subsets=5, seed=2)


def test_inception_score_of_known_predictions():
    c = 10
    # Identical predictions: p(y|x) = p(y) -> KL 0 -> IS 1.
    same = np.tile(np.random.RandomState(8).dirichlet(np.ones(c)), (100, 1))
    assert inception_score(same)[0] == pytest.approx(1.0)
    # One-hot predictions spread evenly over C classes within each split -> IS = C, std 0.
    onehot = np.eye(c)[np.arange(100) % c]
    mean, std = inception_score(onehot, num_splits=10)
    assert mean == pytest.approx(c) and std == pytest.approx(0, abs=1e-12)
    # Hand case, one split of two samples: p1 = (.9, .1), p2 = (.1, .9) -> p(y) = (.5, .5),
    # KL = .9 ln 1.8 + .1 ln .2 for both.
    p = np.array([[0.9, 0.1], [0.1, 0.9]])
    expected = np.exp(0.9 * np.log(1.8) + 0.1 * np.log(0.2))
    assert inception_score(p, num_splits=1)[0] == pytest.approx(expected)


def test_fid_from_few_samples_via_cross_gram_equals_sqrtm_path():
    # N < D: the nuclear-norm formula must equal the covariance-matrix path (sqrtm and eigh).
    rng = np.random.RandomState(9)
    x1, x2 = rng.randn(12, 40) * 2, rng.randn(9, 40) + 0.3
    mu1, s1 = mean_cov(x1)
    mu2, s2 = mean_cov(x2)
    ref = frechet_distance(mu1, s1, mu2, s2, "eigh")
    assert fid_from_features(x1, x2) == pytest.approx(ref, rel=1e-7)
    assert frechet_distance(mu1, s1, mu2, s2, "sqrtm") == pytest.approx(ref, rel=1e-5)
    # N >= D goes through the matrix path and agrees too.
    y1, y2 = rng.randn(80, 10), rng.randn(90, 10) * 1.5
    m1, c1 = mean_cov(y1)
    m2, c2 = mean_cov(y2)
    assert fid_from_features(y1, y2) == pytest.approx(frechet_distance(m1, c1, m2, c2, "sqrtm"), rel=1e-9)
