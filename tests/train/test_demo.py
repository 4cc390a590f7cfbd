"""The demo model shipped in the package: what `ganforge generate` uses without --network."""

import os

import pytest

from testkit import run_cli
from ganforge.models.demo import demo_path

pytestmark = pytest.mark.skipif(demo_path() is None, reason="this checkout has no bundled demo model")


def test_demo_model_is_small_conditional_fashion_mnist(tmp_path):
    from ganforge import load
    from PIL import Image

    path = demo_path()
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    assert size < 5 * 2 ** 20
    ckpt = load(path)
    G = ckpt.G_ema
    assert (G.img_resolution, G.img_channels, G.c_dim) == (32, 1, 10) and ckpt.D is None
    proc = run_cli("generate", "--class", "3", "--seeds", "0-1", "--outdir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    img = Image.open(tmp_path / "seed0000.png")
    assert img.size == (32, 32) and img.mode == "L"
