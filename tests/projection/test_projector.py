"""Projection on a tiny StyleGAN2: recovery of a known w, W+ versus W, batching, the LPIPS path."""

import math

import pytest
import torch
from testkit import tiny_G

from ganforge.errors import UsageError
from ganforge.models.latents import z_from_seeds
from ganforge.projection.distance import LPIPS_NAME, PIXEL_NAME, pixel, resolve_distance
from ganforge.projection.projector import project, w_stats


@pytest.fixture(scope="module")
def G():
    return tiny_G(res=16, img_channels=3).eval()


def _generated(G, seeds):
    with torch.no_grad():
        w = G.mapping(z_from_seeds(seeds, G.z_dim), None)
        return w, (G.synthesis(w, noise_mode="const") + 1) * 127.5


def test_projecting_a_generated_image_recovers_its_w(G):
    w, target = _generated(G, [5])
    _, w_std = w_stats(G)
    w_avg = torch.from_numpy(w_stats(G)[0])
    start = pixel().pairwise(target, (G.synthesis(w_avg.view(1, 1, -1).repeat(1, G.num_ws, 1),
                                                  noise_mode="const") + 1) * 127.5)
    r = project(G, target, space="w", steps=100, distance=pixel())
    assert r.w.shape == (1, G.num_ws, G.w_dim) and r.distance_name == PIXEL_NAME
    assert r.distance.item() < 0.01 * start.item()
    assert (r.w[0] - w[0]).norm(dim=-1).max().item() < 0.05 * w_std  # start: |w - w_avg| ~ 0.6 w_std
    assert torch.allclose(r.w[0, 0], r.w[0, -1])  # W: one w for every layer


def test_w_plus_reaches_a_lower_or_equal_loss_than_w(G):
    _, a = _generated(G, [1, 2])
    target = torch.cat([a[:1, :, :8], a[1:, :, 8:]], dim=2)  # halves of two images: not an image of W
    rw = project(G, target, space="w", steps=60, distance=pixel())
    rp = project(G, target, space="w+", steps=60, distance=pixel())
    assert rp.loss.item() <= rw.loss.item() and rp.distance.item() <= rw.distance.item()
    assert not torch.allclose(rp.w[0, 0], rp.w[0, -1])  # W+: the layers' w's moved apart


def test_a_batch_is_independent_projections(G):
    _, t = _generated(G, [3, 4])
    both = project(G, t, steps=8, distance=pixel())
    alone = project(G, t[1:], steps=8, distance=pixel())
    assert torch.allclose(both.w[1:], alone.w, atol=1e-4)
    assert torch.allclose(both.distance[1:], alone.distance, rtol=1e-4)
    for name in alone.noise:
        assert both.noise[name].shape[0] == 2 and torch.allclose(both.noise[name][1:], alone.noise[name], atol=1e-4)


def test_projection_leaves_G_untouched(G):
    before = {k: v.clone() for k, v in G.state_dict().items()}
    flags = [p.requires_grad for p in G.parameters()]
    project(G, _generated(G, [7])[1], steps=3, distance=pixel())
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert flags == [p.requires_grad for p in G.parameters()]


def test_biggan_and_bad_arguments_are_usage_errors(G):
    with pytest.raises(UsageError, match="style-based"):
        project(torch.nn.Linear(1, 1), torch.zeros(1, 3, 16, 16))
    with pytest.raises(UsageError, match="steps"):
        project(G, torch.zeros(1, 3, 16, 16), steps=0, distance=pixel())
    with pytest.raises(UsageError, match=r"\[N, 3, 16, 16\]"):
        project(G, torch.zeros(1, 1, 16, 16), steps=1, distance=pixel())
    with pytest.raises(UsageError, match="unconditional"):
        project(G, torch.zeros(1, 3, 16, 16), steps=1, class_idx=2, distance=pixel())


def _random_detectors(d):
    """torchvision vgg16 conv layout + lpips v0.1 heads with random values (no real weights exist here)."""
    from ganforge.metrics.vgg import LPIPS_CHANNELS, VGG16

    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, v in VGG16(with_classifier=False).state_dict().items():
        fan_in = math.prod(v.shape[1:]) if v.ndim > 1 else 1
        sd[k] = torch.randn(v.shape, generator=g) * (math.sqrt(2 / fan_in) if k.endswith("weight") else 0.01)
    torch.save(sd, d / "vgg16-397923af.pth")
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(LPIPS_CHANNELS)},
               d / "vgg.pth")


def test_lpips_is_used_when_its_weights_are_found_and_pixel_otherwise(G, tmp_path, monkeypatch):
    from ganforge.metrics.detectors import DetectorOptions
    from ganforge.metrics.vgg import lpips_distance

    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_DETECTOR_DIR", raising=False)
    d, line = resolve_distance("auto")
    assert d.name == PIXEL_NAME and "LPIPS weights not found" in line
    with pytest.raises(UsageError):
        resolve_distance("lpips")
    _random_detectors(tmp_path)
    opts = DetectorOptions(dirs=[str(tmp_path)], verify=False)
    d, line = resolve_distance("auto", opts)
    assert d.name == LPIPS_NAME and d.name in line
    _, t = _generated(G, [1, 2])
    assert torch.allclose(d.pairwise(t[:1], t[1:]), lpips_distance(d.net, t[:1], t[1:]))  # exactly the metrics' LPIPS
    r = project(G, t[:1], steps=3, distance=d)
    assert r.distance_name == LPIPS_NAME and torch.isfinite(r.distance).all()
