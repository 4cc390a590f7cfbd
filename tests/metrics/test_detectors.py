import math

import pytest
import torch

from ganforge.errors import FormatError, UsageError
from ganforge.metrics import weights as W
from ganforge.metrics.detectors import DetectorOptions, build_inception, get_detector
from ganforge.metrics.inception import FIDInceptionV3
from ganforge.metrics.vgg import VGG16, lpips_distance, lpips_normalize

from metrics_helpers import random_lpips_state_dict


def _basic(prefix, cin, cout, kh, kw):
    """Keys/shapes of one torchvision BasicConv2d (conv without bias + BatchNorm with tracking)."""
    return {f"{prefix}.conv.weight": (cout, cin, kh, kw), f"{prefix}.bn.weight": (cout,),
            f"{prefix}.bn.bias": (cout,), f"{prefix}.bn.running_mean": (cout,), f"{prefix}.bn.running_var": (cout,),
            f"{prefix}.bn.num_batches_tracked": ()}


def published_inception_layout():
    """pt_inception-2015-12-05-6726825d.pth, written down from torchvision's Inception3 definition
    (aux_logits=False, 1008 classes) independently of ganforge's module."""
    L = {}
    for name, cin, cout, k in [("Conv2d_1a_3x3", 3, 32, 3), ("Conv2d_2a_3x3", 32, 32, 3), ("Conv2d_2b_3x3", 32, 64, 3),
                               ("Conv2d_3b_1x1", 64, 80, 1), ("Conv2d_4a_3x3", 80, 192, 3)]:
        L.update(_basic(name, cin, cout, k, k))
    for name, cin, pf in [("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)]:
        for b, i, o, kh, kw in [("branch1x1", cin, 64, 1, 1), ("branch5x5_1", cin, 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
                                ("branch3x3dbl_1", cin, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3),
                                ("branch3x3dbl_3", 96, 96, 3, 3), ("branch_pool", cin, pf, 1, 1)]:
            L.update(_basic(f"{name}.{b}", i, o, kh, kw))
    for b, i, o, kh, kw in [("branch3x3", 288, 384, 3, 3), ("branch3x3dbl_1", 288, 64, 1, 1),
                            ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3)]:
        L.update(_basic(f"Mixed_6a.{b}", i, o, kh, kw))
    for name, c7 in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)]:
        for b, i, o, kh, kw in [("branch1x1", 768, 192, 1, 1), ("branch7x7_1", 768, c7, 1, 1), ("branch7x7_2", c7, c7, 1, 7),
                                ("branch7x7_3", c7, 192, 7, 1), ("branch7x7dbl_1", 768, c7, 1, 1),
                                ("branch7x7dbl_2", c7, c7, 7, 1), ("branch7x7dbl_3", c7, c7, 1, 7),
                                ("branch7x7dbl_4", c7, c7, 7, 1), ("branch7x7dbl_5", c7, 192, 1, 7),
                                ("branch_pool", 768, 192, 1, 1)]:
            L.update(_basic(f"{name}.{b}", i, o, kh, kw))
    for b, i, o, kh, kw in [("branch3x3_1", 768, 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3),
                            ("branch7x7x3_1", 768, 192, 1, 1), ("branch7x7x3_2", 192, 192, 1, 7),
                            ("branch7x7x3_3", 192, 192, 7, 1), ("branch7x7x3_4", 192, 192, 3, 3)]:
        L.update(_basic(f"Mixed_7a.{b}", i, o, kh, kw))
    for name, cin in [("Mixed_7b", 1280), ("Mixed_7c", 2048)]:
        for b, i, o, kh, kw in [("branch1x1", cin, 320, 1, 1), ("branch3x3_1", cin, 384, 1, 1),
                                ("branch3x3_2a", 384, 384, 1, 3), ("branch3x3_2b", 384, 384, 3, 1),
                                ("branch3x3dbl_1", cin, 448, 1, 1), ("branch3x3dbl_2", 448, 384, 3, 3),
                                ("branch3x3dbl_3a", 384, 384, 1, 3), ("branch3x3dbl_3b", 384, 384, 3, 1),
                                ("branch_pool", cin, 192, 1, 1)]:
            L.update(_basic(f"{name}.{b}", i, o, kh, kw))
    L["fc.weight"], L["fc.bias"] = (1008, 2048), (1008,)
    return L


def test_inception_state_dict_matches_the_published_layout():
    ours = {k: tuple(v.shape) for k, v in FIDInceptionV3().state_dict().items()}
    assert ours == published_inception_layout()
    assert len(ours) == 566  # entry count of the published file
    n_params = sum(math.prod(s) for k, s in ours.items() if "running" not in k and "num_batches" not in k)
    assert n_params == 23_850_960


def test_vgg16_and_lpips_state_dicts_match_torchvision_and_lpips_layouts():
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    expected, cin = {}, 3
    for i, c in zip(convs, widths):
        expected[f"features.{i}.weight"], expected[f"features.{i}.bias"] = (c, cin, 3, 3), (c,)
        cin = c
    for i, (o, n) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
        expected[f"classifier.{i}.weight"], expected[f"classifier.{i}.bias"] = (o, n), (o,)
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in VGG16().state_dict().items()}
    assert ours == expected
    assert sum(math.prod(s) for s in ours.values()) == 138_357_544  # torchvision vgg16
    lp = random_lpips_state_dict()
    assert {k: tuple(v.shape) for k, v in lp.items()} == {
        "lin0.model.1.weight": (1, 64, 1, 1), "lin1.model.1.weight": (1, 128, 1, 1),
        "lin2.model.1.weight": (1, 256, 1, 1), "lin3.model.1.weight": (1, 512, 1, 1),
        "lin4.model.1.weight": (1, 512, 1, 1)}


def test_inception_file_loads_and_fast_path_matches_plain(weights_dir):
    path = weights_dir / "inception-random.pth"
    assert W.sniff_kind(path) == "inception"
    sd = W.read_state_dict(path)
    plain = build_inception(sd, fast=False)
    fast = build_inception(sd, fast=True)
    x = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8)
    with torch.inference_mode():
        f_plain, f_fast = plain(x, return_features=True), fast(x, return_features=True)
        probs = plain(x, no_output_bias=True)
        grey = plain.preprocess(x[:, :1])
        tiled = plain.preprocess(x[:, :1].repeat(1, 3, 1, 1))
    assert f_plain.shape == (1, 2048) and f_plain.std() > 1e-3
    assert torch.allclose(f_plain, f_fast, rtol=1e-4, atol=1e-4 * f_plain.abs().max().item())
    expected = torch.softmax(f_plain @ sd["fc.weight"].t(), dim=1)  # IS: no fc bias
    assert torch.allclose(probs, expected, atol=1e-6)
    assert torch.equal(grey, tiled)
    # A state dict without num_batches_tracked (older torch) loads too; a wrong layout does not.
    build_inception({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, fast=False)
    bad = dict(sd)
    bad["fc.weight"] = torch.zeros(1000, 2048)
    with pytest.raises(FormatError, match="fc.weight"):
        build_inception(bad)


def test_hash_verification_and_missing_file_messages(weights_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_DETECTOR_DIR", raising=False)
    path = weights_dir / "inception-random.pth"
    with pytest.raises(FormatError, match="--no-verify-detector") as e:
        W.verify_detector(path, "inception", verify=True)
    assert "6726825d" in str(e.value)
    assert W.verify_detector(path, "inception", verify=False) == W.sha256_file(path)
    # Under the standard name in a detector directory, found, and still refused when the hash is wrong.
    d = tmp_path / "dets"
    d.mkdir()
    (d / "pt_inception-2015-12-05-6726825d.pth").write_bytes(path.read_bytes())
    monkeypatch.setenv("GANFORGE_DETECTOR_DIR", str(d))
    assert W.find_detector("inception") == d / "pt_inception-2015-12-05-6726825d.pth"
    with pytest.raises(FormatError, match="SHA-256"):
        get_detector("inception", DetectorOptions())
    # Absent: a UsageError that says where to get the file.
    with pytest.raises(UsageError, match="vgg16-397923af.pth from https://download.pytorch.org"):
        W.find_detector("vgg16")
    # A file whose hash is a published one is accepted; here we fake the table entry for our random file.
    monkeypatch.setitem(W.KNOWN_SHA256, W.sha256_file(path), W.DETECTORS[0])
    assert W.verify_detector(path, "inception", verify=True) == W.sha256_file(path)
    with pytest.raises(FormatError, match="holds the inception weights"):
        W.verify_detector(path, "vgg16", verify=True)


def test_vgg16_fc2_and_lpips_from_files(weights_dir):
    opts = DetectorOptions(files=[str(weights_dir / "vgg16-random.pth"), str(weights_dir / "lpips-random.pth")],
                           verify=False)
    vgg, ident = get_detector("vgg16", opts)
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.inference_mode():
        f = vgg(x, return_features=True)
    assert f.shape == (2, 4096) and (f >= 0).all()
    lp, ident2 = get_detector("lpips", opts)
    assert "lpips:" in ident2 and lp.classifier is None
    a = torch.rand(3, 3, 32, 32) * 255
    b = torch.rand(3, 3, 32, 32) * 255
    with torch.inference_mode():
        d_ab, d_ba, d_aa = lpips_distance(lp, a, b), lpips_distance(lp, b, a), lpips_distance(lp, a, a)
        # The lpips package's formula, computed directly: sum_l mean_hw sum_c w_c (f^a - f^b)^2.
        scale = lambda t: ((t / 127.5 - 1) - torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)) / \
            torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)  # noqa: E731
        ta, tb = lp.lpips_taps(scale(a)), lp.lpips_taps(scale(b))
        direct = sum(((lpips_normalize(fa) - lpips_normalize(fb)) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean((1, 2))
                     for fa, fb, w in zip(ta, tb, lp.lpips.weights()))
    assert torch.allclose(d_ab, direct, rtol=1e-4)
    assert torch.allclose(d_ab, d_ba) and d_aa.abs().max() < 1e-10 and (d_ab > 0).all()


class _ScriptedInception(torch.nn.Module):
    """Stands in for NVIDIA's TorchScript inception-2015-12-05.pt: same call signature."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2048)

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False):
        f = self.fc(img.float().mean(dim=(2, 3)))
        if return_features:
            return f
        return torch.softmax(f[:, :1008], dim=1)


def test_torchscript_detector_is_recognised_and_called_with_nvidia_signature(tmp_path):
    import warnings

    path = tmp_path / "inception-2015-12-05.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_ScriptedInception()), str(path))
    assert W.is_torchscript(path) and W.sniff_kind(path) == "inception"
    assert not W.is_torchscript(tmp_path.parent / "nonexistent")
    # No published hash is known for this file name: accepted with a warning that names its SHA-256.
    with pytest.warns(UserWarning, match="no published SHA-256"):
        net, ident = get_detector("inception", DetectorOptions(files=[str(path)]))
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    assert net(x, return_features=True).shape == (2, 2048) and ident.startswith("inception:")
