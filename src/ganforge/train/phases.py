"""The four phases of one StyleGAN2 training iteration (Karras et al. 2020; the phase structure of
NVIDIA's stylegan2-ada-pytorch training loop, written anew).

    generator_main         every step          non-saturating logistic G loss (with style mixing)
    generator_path_length  every pl_interval   path length penalty * pl_weight * pl_interval (lazy regularization)
    discriminator_main     every step          logistic D loss on fakes and reals
    discriminator_r1       every r1_interval   R1 penalty * r1_interval                      (lazy regularization)

Each phase takes the Trainer `t` (networks, optimizers, the generator/discriminator passes) and the
`Minibatch` of this step, accumulates gradients over the per-step rounds of batch_gpu samples, takes
one optimizer step and records its statistics in `mb.stats` (detached tensors: nothing here waits for
the device).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ganforge.train import distributed as dist_utils
from ganforge.train.loss import (PL_BATCH_SHRINK, PL_DECAY, discriminator_logistic_loss, generator_logistic_loss,
                                 path_length_noise, path_length_penalty, path_lengths, r1_penalty)
from ganforge.train.rng import PL_NOISE_STREAM, step_seed

# Noise phases: each generator pass of a step draws its per-pixel noise from its own streams.
NOISE_GMAIN, NOISE_GPL, NOISE_DMAIN = 0, 1, 2


@dataclass
class Minibatch:
    """What the phases of one step share."""

    gen: torch.Generator                  # stream 0 of this step: latents/labels of the global batch
    reals: list[tuple[torch.Tensor, torch.Tensor]]  # this rank's reals [bg, C, H, W] in [-1, 1], labels, per round
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


def to_float_images(img: torch.Tensor, device) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 in [-1, 1] (NVIDIA: x / 127.5 - 1)."""
    return img.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1


def generator_main(t, mb: Minibatch) -> None:
    """Gmain: maximise log D(G(z)), i.e. minimise softplus(-D(G(z))) over the global batch."""
    B, bg, rounds = t.cfg.batch, t.cfg.batch_gpu, t.rounds
    z, z2, c, cut = t._draw_latents(mb.gen, B)
    t.G.requires_grad_(True)
    total = 0.0
    for r in range(rounds):
        s = slice(r * bg, (r + 1) * bg)
        noise = t._global_noise(NOISE_GMAIN, B, s)
        img, _ = t._run_G(z[s], z2[s], c[s], cut[s], sync=(r == rounds - 1), noise=noise)
        with dist_utils.ddp_sync(t.D_ddp, False):
            logits = t.D_ddp(t._aug(img), c[s])
        loss = generator_logistic_loss(logits).mean() / rounds
        loss.backward()
        total = total + loss.detach()
    t._optimizer_step(t.G, t.G_opt)
    t.G.requires_grad_(False)
    mb.stats["loss/G"] = total


def generator_path_length(t, mb: Minibatch) -> None:
    """Greg: path length regularization (StyleGAN2 eq. 4), lazily: the penalty times pl_weight times
    pl_interval, on a batch shrunk by PL_BATCH_SHRINK. The image-space noise y is drawn on the device
    from its own stream of the step, for the global batch, and sliced per rank."""
    cfg, bg, rounds = t.cfg, t.cfg.batch_gpu, t.rounds
    pl_bg = max(bg // PL_BATCH_SHRINK, 1)
    n_pl = pl_bg * rounds * t.info.world_size
    z, z2, c, cut = t._draw_latents(mb.gen, n_pl)
    res, ch = t.G.img_resolution, t.G.img_channels
    pl_gen = torch.Generator(device=t.device).manual_seed(step_seed(t.seed, t.step, PL_NOISE_STREAM))
    y = t._slice(path_length_noise(torch.empty([n_pl, ch, res, res], device=t.device), generator=pl_gen))
    t.G.requires_grad_(True)
    pen_total = 0.0
    for r in range(rounds):
        s = slice(r * pl_bg, (r + 1) * pl_bg)
        noise = t._global_noise(NOISE_GPL, n_pl, s)
        img, ws = t._run_G(z[s], z2[s], c[s], cut[s], sync=(r == rounds - 1), noise=noise)
        lengths = path_lengths(img, ws, y[s])
        penalty, new_mean = path_length_penalty(lengths, t.pl_mean, PL_DECAY, dist_utils.all_mean)
        t.pl_mean.copy_(new_mean)
        loss = (img[:, 0, 0, 0] * 0 + penalty * cfg.pl_weight).mean() * (cfg.pl_interval / rounds)
        loss.backward()
        pen_total = pen_total + penalty.detach().mean() / rounds
    t._optimizer_step(t.G, t.G_opt)
    t.G.requires_grad_(False)
    mb.stats["loss/pl_penalty"] = pen_total
    mb.stats["pl_mean"] = t.pl_mean.detach().clone()


def discriminator_main(t, mb: Minibatch) -> None:
    """Dmain: minimise softplus(D(G(z))) + softplus(-D(x)); feeds ADA's sign statistics of D(x)."""
    B, bg, rounds = t.cfg.batch, t.cfg.batch_gpu, t.rounds
    z, z2, c, cut = t._draw_latents(mb.gen, B)
    t.D.requires_grad_(True)
    total = 0.0
    real_score = 0.0
    fake_score = 0.0
    for r in range(rounds):
        s = slice(r * bg, (r + 1) * bg)
        with torch.no_grad():
            noise = t._global_noise(NOISE_DMAIN, B, s)
            img, _ = t._run_G(z[s], z2[s], c[s], cut[s], sync=False, noise=noise)
        x, xc = mb.reals[r]
        if t._fused_d(img.shape[0], x.shape[0]):
            fake_logits, real_logits = t._run_D_pair(t._aug(img), c[s], t._aug(x), xc, sync=(r == rounds - 1))
            loss_fake, loss_real = discriminator_logistic_loss(fake_logits, real_logits)
            loss = (loss_fake.mean() + loss_real.mean()) / rounds
            loss.backward()
        else:  # two passes, each freeing its graph before the next (faster on CPUs)
            with dist_utils.ddp_sync(t.D_ddp, False):
                fake_logits = t.D_ddp(t._aug(img), c[s])
            loss_fake, _ = discriminator_logistic_loss(fake_logits, None)
            (loss_fake.mean() / rounds).backward()
            with dist_utils.ddp_sync(t.D_ddp, r == rounds - 1):
                real_logits = t.D_ddp(t._aug(x), xc)
            _, loss_real = discriminator_logistic_loss(None, real_logits)
            (loss_real.mean() / rounds).backward()
            loss = (loss_fake.mean() + loss_real.mean()).detach() / rounds
        total = total + loss.detach()
        if t.ada is not None:
            t.ada.accumulate(real_logits)
        real_score = real_score + real_logits.detach().mean() / rounds
        fake_score = fake_score + fake_logits.detach().mean() / rounds
    t._optimizer_step(t.D, t.D_opt)
    t.D.requires_grad_(False)
    mb.stats["loss/D"] = total
    mb.stats["scores/real"] = real_score
    mb.stats["scores/fake"] = fake_score


def discriminator_r1(t, mb: Minibatch) -> None:
    """Dreg: R1 on the reals (gamma / 2 * ||grad_x D(x)||^2), lazily: times r1_interval."""
    cfg, rounds = t.cfg, t.rounds
    t.D.requires_grad_(True)
    pen_total = 0.0
    for r in range(rounds):
        x, xc = mb.reals[r]
        x = x.detach().requires_grad_(True)
        with dist_utils.ddp_sync(t.D_ddp, r == rounds - 1):
            logits = t.D_ddp(t._aug(x), xc)  # R1 is taken w.r.t. the reals before augmentation
        if t.ada is not None:
            t.ada.accumulate(logits)
        penalty = r1_penalty(logits, x, cfg.gamma)
        loss = (logits[:, 0] * 0 + penalty).mean() * (cfg.r1_interval / rounds)
        loss.backward()
        pen_total = pen_total + penalty.detach().mean() / rounds
    t._optimizer_step(t.D, t.D_opt)
    t.D.requires_grad_(False)
    mb.stats["loss/r1_penalty"] = pen_total


__all__ = ["Minibatch", "to_float_images", "generator_main", "generator_path_length", "discriminator_main",
           "discriminator_r1"]
