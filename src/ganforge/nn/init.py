"""Weight initialisation of the BigGAN networks."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.nn.spectral_norm import ClassEmbedding


def orthogonal_init_(module: nn.Module) -> nn.Module:
    """BigGAN's initialisation (Saxe et al. 2014, `--G_init ortho`): every conv, linear and embedding
    weight of `module` becomes a (semi-)orthogonal matrix, W_mat W_mat^T = I (or W_mat^T W_mat = I),
    with W_mat = W.reshape(out, -1). Biases are left as they are. Returns `module`."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding, ClassEmbedding)):
                nn.init.orthogonal_(m.weight)
    return module


__all__ = ["orthogonal_init_"]
