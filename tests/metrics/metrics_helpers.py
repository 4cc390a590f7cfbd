"""Helpers for the metrics tests: weight files in the published layouts (random values), image folders,
a toy generator. No real weights exist on the test machines."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from ganforge.metrics.inception import FIDInceptionV3
from ganforge.metrics.vgg import LPIPS_CHANNELS, VGG16


def _he(shape, g):
    fan_in = int(np.prod(shape[1:]))
    return torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)


def random_inception_state_dict(seed=0) -> dict:
    """pt_inception layout with random, variance-preserving values (features stay O(1) through 94 layers)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in FIDInceptionV3().state_dict().items():
        if k.endswith("conv.weight"):
            sd[k] = _he(v.shape, g)
        elif k.endswith("bn.weight") or k.endswith("running_var"):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("bn.bias") or k.endswith("running_mean"):
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(0, dtype=torch.long)
        else:  # fc
            sd[k] = 0.05 * torch.randn(v.shape, generator=g)
    return sd


def random_vgg16_state_dict(seed=0) -> dict:
    """torchvision vgg16 layout. The fc weights are stride-0 expansions of one random column per output
    unit, so the file stays small (torch.save writes the small storage) while keys and shapes are exact."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in VGG16(with_classifier=False).state_dict().items():
        sd[k] = _he(v.shape, g) if k.endswith("weight") else 0.01 * torch.randn(v.shape, generator=g)
    for idx, (o, i) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
        sd[f"classifier.{idx}.weight"] = (torch.randn(o, 1, generator=g) / math.sqrt(i)).expand(o, i)
        sd[f"classifier.{idx}.bias"] = 0.01 * torch.randn(o, generator=g)
    return sd


def random_lpips_state_dict(seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(LPIPS_CHANNELS)}


def write_images(folder, images: np.ndarray):
    """images uint8 [N, H, W, C] -> PNG files in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(folder / f"img{i:05d}.png")
    return folder


def blobs(n, res, seed, shift=0.0):
    """Smooth random colour images (sums of Gaussians), optionally brightened."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:res, 0:res] / res
    out = np.zeros([n, res, res, 3])
    for k in range(4):
        cy, cx = rng.rand(2, n, 1, 1)
        col = rng.rand(n, 1, 1, 3)
        out += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)[..., None] * col
    return np.clip(out / out.max() * 200 + 20 + shift, 0, 255).astype(np.uint8)


class ToyG(torch.nn.Module):
    """A tiny generator with NVIDIA's interface: mapping(z, c) -> ws, synthesis(ws) -> img in [-1, 1]."""

    def __init__(self, z_dim=8, res=16, channels=3, c_dim=0, num_ws=2, dtype=torch.float32):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, 8, num_ws
        self.img_resolution, self.img_channels = res, channels
        g = torch.Generator().manual_seed(1)
        self.map = torch.nn.Parameter(torch.randn(z_dim + c_dim, 8, generator=g, dtype=dtype) / 3)
        self.syn = torch.nn.Parameter(torch.randn(8 * num_ws, channels * res * res, generator=g, dtype=dtype) / 4)
        self.register_buffer("noise_const", torch.zeros(channels * res * res, dtype=dtype))

    def mapping(self, z, c, **kw):
        w = torch.tanh(torch.cat([z, c], 1) @ self.map)
        return w[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        x = torch.sin(ws.flatten(1) @ self.syn)
        if noise_mode == "random":
            x = x + 0.01 * torch.randn_like(x)
        elif noise_mode == "const":
            x = x + 0.01 * self.noise_const
        return x.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution).clamp(-1, 1)

    def forward(self, z, c, noise_mode="random", **kw):
        return self.synthesis(self.mapping(z, c), noise_mode=noise_mode)


def run_cli(*args, env=None, timeout=300):
    """`python -m ganforge ARGS` in a subprocess -> CompletedProcess (text)."""
    import os
    import subprocess
    import sys

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], env=e, capture_output=True,
                          text=True, timeout=timeout)
