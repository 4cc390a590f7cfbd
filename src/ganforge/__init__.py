"""ganforge: train, sample, convert and evaluate StyleGAN2 networks in pure PyTorch.

    import ganforge
    ckpt = ganforge.load("run/network-snapshot-000100")   # native, NVIDIA .pkl, TF .pkl, rosinality .pt
    images = ckpt.G_ema.sample(seeds=range(8), truncation_psi=0.7)
"""

__version__ = "0.1.0"

from ganforge.errors import UsageError, FormatError  # noqa: E402


def load(path, device="cpu"):
    """Load a checkpoint of any supported format (detected by content) -> ganforge.formats.Checkpoint."""
    from ganforge.formats import load as _load

    return _load(path, device=device)


__all__ = ["load", "UsageError", "FormatError", "__version__"]
