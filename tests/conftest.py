import pytest

from testkit import tiny_D, tiny_G  # noqa: F401  (also sets torch threads)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A native checkpoint of a tiny conditional (10 classes) greyscale 16x16 net on disk."""
    from ganforge.formats import Checkpoint

    G = tiny_G(res=16, img_channels=1, c_dim=10)
    D = tiny_D(res=16, img_channels=1, c_dim=10)
    path = tmp_path / "net"
    Checkpoint(G=G, G_ema=G, D=D).save(path)
    return path
