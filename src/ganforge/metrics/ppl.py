"""Perceptual Path Length (StyleGAN, Karras et al. 2019, §4.2; StyleGAN2 variants).

PPL = E[ d(g(lerp/slerp(a, b; t)), g(lerp/slerp(a, b; t + eps))) / eps^2 ],  eps = 1e-4,
with d = LPIPS-VGG16, t ~ U(0, 1) ('full') or t = 0 ('end'), interpolation slerp in Z, lerp in W.
Samples outside the [1st ('lower'), 99th ('higher')] percentiles are dropped before the mean.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch

from ganforge.models.latents import slerp  # NVIDIA's slerp (normalised in and out)

PPL_EPSILON = 1e-4


def crop_face(img: torch.Tensor) -> torch.Tensor:
    """The StyleGAN face crop: rows [3c, 7c), columns [2c, 6c), c = H // 8.  img: [N, C, H, W]."""
    c = img.shape[2] // 8
    return img[:, :, c * 3:c * 7, c * 2:c * 6]


def box_downsample(img: torch.Tensor, factor: int) -> torch.Tensor:
    """Average factor x factor blocks.  [N, C, H, W] -> [N, C, H/f, W/f]."""
    if factor <= 1:
        return img
    n, c, h, w = img.shape
    return img.reshape(n, c, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


def filter_outliers_mean(dist: np.ndarray) -> float:
    """Mean of the samples within [percentile 1 (method 'lower'), percentile 99 ('higher')]."""
    dist = np.asarray(dist, np.float64)
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def _randomize_const_noise(G, generator: torch.Generator):
    for name, buf in G.named_buffers():
        if name.endswith("noise_const"):
            buf.copy_(torch.randn(buf.shape, generator=generator).to(buf))


@torch.no_grad()
def ppl_distances(G, distance, num_samples: int, space: str = "w", sampling: str = "end", crop: bool = False,
                  epsilon: float = PPL_EPSILON, batch_size: int = 2, seed: int = 0, labels=None,
                  device="cpu", rank: int = 0, num_gpus: int = 1, progress=None) -> np.ndarray:
    """Per-pair path lengths d(img(t), img(t + eps)) / eps^2 for this rank's share of `num_samples`,
    as a list of (batch index, distances [n] float64).

    G: has .z_dim, .c_dim, .img_resolution, .mapping(z, c) -> ws, .synthesis(ws, noise_mode='const');
       its `noise_const` buffers are re-randomised per batch on a private copy (NVIDIA's protocol).
    distance(img0, img1) -> [N]: images in [0, 255], [N, 3, H, W] (LPIPS: `vgg.lpips_distance`).
    labels: optional [L, c_dim] array to sample conditioning labels from.
    Batch b uses seed (seed, b); ranks take batches b = rank, rank + num_gpus, ... -> results do not depend
    on num_gpus once gathered in batch order.
    """
    if space not in ("z", "w") or sampling not in ("end", "full"):
        raise ValueError(f"space must be z|w and sampling end|full, got {space!r}, {sampling!r}")
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    # NVIDIA synthesises PPL pairs with force_fp32=True (fp16 layers would swamp the eps = 1e-4 step).
    fp32 = {"force_fp32": True} if "force_fp32" in inspect.signature(G.synthesis.forward if isinstance(
        G.synthesis, torch.nn.Module) else G.synthesis).parameters else {}
    dtype = next((p.dtype for p in G.parameters()), torch.float32)
    out = []
    num_batches = (num_samples + batch_size - 1) // batch_size
    for b in range(rank, num_batches, num_gpus):
        n = min(batch_size, num_samples - b * batch_size)
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + b)
        t = torch.rand([n, 1], generator=g, dtype=torch.float64) * (1.0 if sampling == "full" else 0.0)
        z = torch.randn([n * 2, G.z_dim], generator=g, dtype=torch.float64)
        if G.c_dim and labels is not None and len(labels):
            idx = torch.randint(len(labels), (n,), generator=g)
            c = torch.as_tensor(np.asarray(labels)[idx.numpy()], dtype=dtype).repeat(2, 1).to(device)
        else:
            c = torch.zeros([n * 2, G.c_dim], dtype=dtype, device=device)
        _randomize_const_noise(G, g)
        t, z = t.to(device=device, dtype=dtype), z.to(device=device, dtype=dtype)
        if space == "w":
            w = G.mapping(z, c)  # [2n, num_ws, w_dim]
            w0, w1 = w[:n], w[n:]
            tt = t[:, :, None]
            wt = torch.cat([w0.lerp(w1, tt), w0.lerp(w1, tt + epsilon)])
        else:
            z0, z1 = z[:n], z[n:]
            zt = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
            wt = G.mapping(zt, c)
        img = G.synthesis(wt, noise_mode="const", **fp32)
        if crop:
            img = crop_face(img)
        img = box_downsample(img, G.img_resolution // 256)
        img = (img + 1) * (255 / 2)
        if img.shape[1] == 1:
            img = img.repeat(1, 3, 1, 1)
        d = distance(img[:n], img[n:]) / epsilon ** 2
        out.append((b, d.double().cpu().numpy()))
        if progress is not None:
            progress(n)
    return out
