"""Projection of images into a StyleGAN2 latent space (StyleGAN2 paper §5 and App. D; NVIDIA
stylegan2-ada-pytorch projector.py; W+ as rosinality/stylegan2-pytorch projector.py).

Find w (and the per-pixel noise maps n_i) such that G.synthesis(w, n) reproduces a target x:

    minimise   d(x, g(w + sigma(t) eps, n)) + alpha * L_noise(n)      eps ~ N(0, I), alpha = 1e5
    over       w: [1, w_dim] broadcast to every layer (space 'w', NVIDIA), or
               w: [num_ws, w_dim], one per layer (space 'w+', rosinality --w_plus), and every n_i

with Adam (betas 0.9, 0.999) under the lr schedule of `schedule.learning_rate`, latent noise sigma(t) of
`schedule.latent_noise_scale`, the autocorrelation penalty L_noise and the renormalisation of the noise
maps after every step (`noise_reg`), d from `distance` (LPIPS-VGG16 or the stated pixel fallback) on
images in [0, 255] area-downsampled to 256x256 when larger.

Space 'w' is NVIDIA's project() exactly: w_avg and the scalar w_std = sqrt(sum ||w - w_avg||^2 / 10000)
from 10,000 z of np.random.RandomState(123) through G.mapping; w initialised at w_avg; noise maps
re-drawn randn. Every target draws from its own CPU torch.Generator seeded with `seed` (noise-map init in
buffer order, then one latent-noise draw per step), so a target's projection does not depend on the other
targets of its batch, and for one target these are the draws of NVIDIA's project() run on the CPU right
after torch.manual_seed(seed).

Space 'w+' starts every layer's w at w_avg (rosinality: latent_mean repeated n_latent times) and adds
independent latent noise to every layer (rosinality: randn_like over the [B, n_latent, 512] latent).
rosinality's other constants are the same as NVIDIA's (lr 0.1, rampup 0.05, rampdown 0.25, noise 0.05,
noise_ramp 0.75, noise_regularize 1e5, 1000 steps); its extras are not taken: `--mse 0` (an MSE term of
weight 0 by default), unseeded torch.randn for the 10,000 w samples, the unbiased std and batch-wide
statistics in the noise renormalisation, and the target resize to min(size, 256) before the crop.

Extensions (ganforge): a batch of N targets is one batch of N independent projections (each target its
own w and noise maps; the loss is summed over targets, so gradients and Adam's per-element updates are
those of N separate runs); conditional networks take a class per target (w statistics from
G.mapping(z, c) for that class); G is never modified (noise maps are fed through the synthesis'
NoiseSource hook, not written into G's noise_const buffers).

Shapes: targets [N, C, R, R] (uint8, or float in [0, 255]); result.w [N, num_ws, w_dim];
result.noise {'synthesis.b8.conv0.noise_const': [N, r, r], ...}.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.models import is_style_based
from ganforge.projection import schedule as S
from ganforge.projection.distance import Distance, resolve_distance
from ganforge.projection.noise_reg import noise_regularization, renormalize_noise_

SPACES = ("w", "w+")


@dataclass
class ProjectionResult:
    """What `project` found, per target (all tensors on the CPU)."""

    w: torch.Tensor  # [N, num_ws, w_dim]
    noise: dict  # buffer name -> [N, r, r]: the optimised noise maps
    distance: torch.Tensor  # [N] d(target, g(w, optimised noise)) after the last step
    distance_stored_noise: torch.Tensor  # [N] d(target, g(w, G's own noise_const)): what generate renders
    loss: torch.Tensor  # [N] distance + alpha * L_noise after the last step
    distance_name: str
    space: str
    steps: int
    class_idx: list = field(default_factory=list)  # per target (None for unconditional networks)
    w_steps: torch.Tensor | None = None  # [steps, N, num_ws, w_dim] with return_steps=True


def check_projectable(G) -> None:
    if not is_style_based(G):
        raise UsageError("projection needs a style-based network (StyleGAN2, with a mapping network and w's); "
                         "this is a BigGAN, which samples straight from (z, class)")
    if G.img_channels not in (1, 3):
        raise UsageError(f"projection supports 1- and 3-channel networks; this one has {G.img_channels}")


def check_steps(steps: int) -> None:
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise UsageError(f"--steps {steps}: give a positive number of optimisation steps (NVIDIA uses 1000)")


def target_classes(G, class_idx, n: int) -> list:
    """class_idx (None, an int, or one per target) -> a list of n class indices (None: unconditional)."""
    if class_idx is None or isinstance(class_idx, (int, np.integer)):
        classes = [class_idx] * n
    else:
        classes = list(class_idx)
        if len(classes) != n:
            raise ValueError(f"{len(classes)} classes for {n} targets")
    for k in classes:
        if G.c_dim == 0 and k is not None:
            raise UsageError("this network is unconditional (c_dim=0); drop --class")
        if G.c_dim > 0:
            if k is None:
                raise UsageError(f"this network is conditional ({G.c_dim} classes); pass --class K "
                                 f"(0..{G.c_dim - 1}) for the target's class")
            if not 0 <= int(k) < G.c_dim:
                raise UsageError(f"--class {k} is out of range; this network has classes 0..{G.c_dim - 1}")
    return [None if k is None else int(k) for k in classes]


@torch.no_grad()
def w_stats(G, class_idx: int | None = None, num_samples: int = S.W_AVG_SAMPLES, seed: int = S.W_AVG_SEED,
            device=None) -> tuple[np.ndarray, float]:
    """(w_avg [w_dim] float32, w_std) from `num_samples` z of RandomState(seed) (NVIDIA: 10000, 123).

    w_avg = mean_k w_k;  w_std = sqrt(sum_k ||w_k - w_avg||^2 / num_samples), computed in numpy float32
    as NVIDIA does; w_k = G.mapping(z_k, c)[:, 0] with c the one-hot class (none when unconditional).
    """
    device = device or next(G.parameters()).device
    z = np.random.RandomState(seed).randn(num_samples, G.z_dim)
    z = torch.from_numpy(z).to(torch.float32).to(device)
    c = torch.zeros([num_samples, G.c_dim], device=device)
    if class_idx is not None:
        c[:, class_idx] = 1
    w = G.mapping(z, c if G.c_dim else None)[:, :1, :].cpu().numpy().astype(np.float32)  # [K, 1, w_dim]
    w_avg = np.mean(w, axis=0, keepdims=True)
    w_std = float((np.sum((w - w_avg) ** 2) / num_samples) ** 0.5)
    return w_avg.reshape(-1), w_std


def noise_layers(G) -> list:
    """[(buffer name as in G.state_dict(), layer)] of every synthesis layer with a noise input, in buffer order."""
    out = []
    for name, _ in G.synthesis.named_buffers():
        if name.endswith("noise_const"):
            out.append((f"synthesis.{name}", G.synthesis.get_submodule(name.rsplit(".", 1)[0])))
    return out


@contextlib.contextmanager
def frozen(G):
    """G's parameters without gradients (the projection differentiates w.r.t. its inputs only), restored after."""
    flags = [(p, p.requires_grad) for p in G.parameters()]
    training = G.training
    G.eval().requires_grad_(False)
    try:
        yield G
    finally:
        for p, f in flags:
            p.requires_grad_(f)
        G.train(training)


def synthesize_with_noise(G, ws: torch.Tensor, noise: dict, layers: list) -> torch.Tensor:
    """G.synthesis(ws) with per-target noise maps: noise[name] [N, r, r] for each (name, layer) of `layers`."""
    by_layer = {id(layer): noise[name] for name, layer in layers}

    def source(layer, batch, res, device):
        return by_layer[id(layer)].unsqueeze(1)  # [N, 1, r, r]; the layer multiplies it by noise_strength

    return G.synthesis(ws, noise_mode="random", noise=source)


def _as_target_tensor(G, targets, device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(targets)) if not isinstance(targets, torch.Tensor) else targets
    if t.ndim == 3:
        t = t.unsqueeze(0)
    want = (G.img_channels, G.img_resolution, G.img_resolution)
    if t.ndim != 4 or tuple(t.shape[1:]) != want or t.shape[0] == 0:
        raise UsageError(f"targets must be [N, {want[0]}, {want[1]}, {want[2]}] for this network, "
                         f"got {list(t.shape)}")
    return t.to(device=device, dtype=torch.float32)


def project(G, targets, space: str = "w", steps: int = S.NUM_STEPS, seed: int = S.DEFAULT_SEED,
            class_idx: int | Sequence[int] | None = None, distance: Distance | None = None, device=None,
            progress=None, return_steps: bool = False, w_avg_samples: int = S.W_AVG_SAMPLES) -> ProjectionResult:
    """Project targets [N, C, R, R] (uint8 or float in [0, 255]) into `space` ('w' or 'w+'); see the module
    docstring. class_idx: one class for all targets or one per target (conditional networks).
    distance: a `Distance` (default: LPIPS-VGG16 when found, else the pixel fallback).
    progress: anything with .update(n) (a tqdm bar), advanced once per step."""
    check_projectable(G)
    check_steps(steps)
    if space not in SPACES:
        raise UsageError(f"--space {space!r}: use w or w+")
    device = torch.device(device) if device is not None else next(G.parameters()).device
    target = _as_target_tensor(G, targets, device)
    n = target.shape[0]
    classes = target_classes(G, class_idx, n)
    if distance is None:
        distance, _ = resolve_distance("auto", device=device)

    with frozen(G):
        stats = {k: w_stats(G, k, num_samples=w_avg_samples, device=device) for k in sorted(set(classes), key=str)}
        w_avg = torch.from_numpy(np.stack([stats[k][0] for k in classes])).to(device)  # [N, w_dim]
        w_std = [stats[k][1] for k in classes]

        gens = [torch.Generator().manual_seed(int(seed)) for _ in range(n)]  # one stream per target
        layers = noise_layers(G)
        noise = {}
        for name, layer in layers:
            r = layer.noise_const.shape[-1]
            noise[name] = torch.stack([torch.randn([r, r], generator=g) for g in gens]).to(device).requires_grad_(True)

        with torch.no_grad():
            target_features = distance.features(target)
        num_ws = G.num_ws
        w_opt = w_avg.unsqueeze(1).clone()  # [N, 1, w_dim]
        if space == "w+":
            w_opt = w_opt.repeat(1, num_ws, 1)  # [N, num_ws, w_dim]
        w_opt.requires_grad_(True)
        optimizer = torch.optim.Adam([w_opt] + list(noise.values()), betas=S.ADAM_BETAS,
                                     lr=S.INITIAL_LEARNING_RATE)
        w_steps = torch.zeros([steps, n, num_ws, G.w_dim]) if return_steps else None

        for step in range(steps):
            t = step / steps
            lr = S.learning_rate(t)
            for group in optimizer.param_groups:
                group["lr"] = lr
            scale = torch.tensor([S.latent_noise_scale(t, s) for s in w_std], device=device).view(n, 1, 1)
            w_noise = torch.stack([torch.randn(list(w_opt.shape[1:]), generator=g) for g in gens]).to(device) * scale
            ws = (w_opt + w_noise).expand(n, num_ws, G.w_dim)
            synth = (synthesize_with_noise(G, ws, noise, layers) + 1) * (255 / 2)
            dist = distance(target_features, synth)
            reg = noise_regularization(noise.values()) if noise else torch.zeros_like(dist)
            loss = dist + reg * S.REGULARIZE_NOISE_WEIGHT
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            if w_steps is not None:
                w_steps[step] = w_opt.detach().expand(n, num_ws, G.w_dim).cpu()
            renormalize_noise_(noise.values())
            if progress is not None:
                progress.update(1)

        with torch.no_grad():
            ws = w_opt.detach().expand(n, num_ws, G.w_dim).contiguous()
            synth = (synthesize_with_noise(G, ws, noise, layers) + 1) * (255 / 2)
            final = distance(target_features, synth)
            reg = noise_regularization(noise.values()) if noise else torch.zeros_like(final)
            stored = distance(target_features, (G.synthesis(ws, noise_mode="const") + 1) * (255 / 2))

    return ProjectionResult(
        w=ws.cpu(), noise={k: v.detach().cpu() for k, v in noise.items()}, distance=final.cpu(),
        distance_stored_noise=stored.cpu(), loss=(final + reg * S.REGULARIZE_NOISE_WEIGHT).cpu(),
        distance_name=distance.name, space=space, steps=steps, class_idx=classes, w_steps=w_steps)
