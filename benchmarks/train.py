"""Training throughput of one full StyleGAN2 iteration (G main, D main, amortised lazy R1 and path
length, G EMA), printed as ratios against baselines measured in the same run.

Default net: the `small` preset at 32x32 (Fashion-MNIST shape: 1 channel, 10 classes), batch 32, CPU.
One "iteration" is the mean over 16 consecutive minibatches (steps 0..15), which contain exactly the
lazy schedule: 4 path-length steps and 1 R1 step.

Speed: every variant is built in one process and they are interleaved step by step (a shared machine
slows them alike); the median over --repeats rounds is reported, with each time as a ratio to ganforge's.
Variants:
  ganforge        ganforge.train.loop.Trainer.train_step
  ganforge-naive  the same networks and loss functions in NVIDIA's phase structure, without ganforge's
                  loop optimisations (separate D backward passes for fakes and reals, generator forward in
                  the D phase with autograd enabled, a second mapping pass for style mixing, per-tensor EMA)
  nvidia          NVIDIA's stylegan2-ada-pytorch networks and StyleGAN2Loss driven by the same phase
                  schedule, when --nvidia-ref points at a checkout of that repository (imported at run
                  time from there; nothing of it is part of ganforge). Their CUDA ops fall back to their
                  reference implementations on the CPU.

Peak memory: the growth of the peak resident set (VmHWM; on CUDA, of the peak allocated device memory)
over one lazy cycle, each variant alone in a fresh process.

    python benchmarks/train.py [--nvidia-ref /work/ref/stylegan2-ada-pytorch] [--threads 2] [--repeats 2]

--as-shipped runs each variant in its own worker process instead (still interleaved: the parent asks
the workers for one round in turn), so that each runs with the allocator settings it ships with:
ganforge's trainer tunes glibc malloc (keep_freed_memory_for_reuse), NVIDIA's loop runs with glibc's
defaults. Without it all variants share this process and ganforge's tuning (or, with
--glibc-defaults, glibc's defaults).

Other shapes train on a synthetic dataset of that shape, e.g. the issue's GPU comparison (config F at
256x256, NVIDIA's --cfg stylegan2 with mixed precision on the last 4 resolutions, batch 32 on one GPU;
sec/kimg is printed):

    python benchmarks/train.py --device cuda --cfg stylegan2 --res 256 --channels 3 --classes 0 --batch 32
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time

import numpy as np

STEPS = 16


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _config(args):
    from ganforge.train.presets import resolve

    return resolve(args.cfg, args.res, args.channels, args.classes, 1, batch=args.batch, batch_gpu=args.batch)


def _real_batches(args, n):
    import torch

    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand([n, args.batch, args.channels, args.res, args.res], generator=g) * 255).to(torch.uint8)
    labels = torch.zeros([n, args.batch, args.classes])
    if args.classes:
        labels[:, torch.arange(args.batch), torch.randint(args.classes, [args.batch], generator=g)] = 1
    return imgs, labels


def _synthetic_dataset(args, root: str) -> str:
    """A folder of 8 random PNGs of the benchmark's shape (+ dataset.json labels): the Trainer sizes its
    networks from its dataset; the timed steps use _real_batches."""
    import json

    from PIL import Image

    os.makedirs(root, exist_ok=True)
    rnd = np.random.RandomState(0)
    labels = []
    for i in range(8):
        arr = rnd.randint(0, 256, [args.res, args.res, args.channels], dtype=np.uint8)
        Image.fromarray(arr[:, :, 0] if args.channels == 1 else arr).save(os.path.join(root, f"{i}.png"))
        labels.append([f"{i}.png", i % max(args.classes, 1)])
    if args.classes:
        with open(os.path.join(root, "dataset.json"), "w") as f:
            json.dump({"labels": labels}, f)
    return root


def _sync(args) -> None:
    import torch

    if args.device == "cuda":
        torch.cuda.synchronize()


def make_ganforge(args):
    """(step_fn(step, imgs, labels), label) for ganforge's loop."""
    import tempfile

    from ganforge.data import bundled_path
    from ganforge.train.loop import TrainOptions, Trainer

    tmp = tempfile.mkdtemp(prefix="gf-bench-")
    bundled = args.res == 32 and args.channels == 1 and args.classes == 10
    data = bundled_path("fashion-mnist") if bundled else _synthetic_dataset(args, os.path.join(tmp, "data"))
    opts = TrainOptions(data=data, run_dir=os.path.join(tmp, "run"), cfg=args.cfg, cond=args.classes > 0,
                        batch=args.batch, batch_gpu=args.batch, workers=0, threads=args.threads, kimg=1e9,
                        device=args.device, keep_freed_memory=not args.glibc_defaults,
                        channels_last={"auto": None, "on": True, "off": False}[args.channels_last],
                        aug="noaug")  # NVIDIA's variants below run without an augmentation pipe, too
    T = Trainer(opts)

    def step_fn(step, imgs, labels):
        T.step = step
        T.train_step(imgs, labels)

    return step_fn


def _per_tensor_ema(ctx):
    """G EMA the straightforward way, tensor by tensor (the baselines' EMA), then count the images."""
    import torch

    from ganforge.train.ema import ema_beta, ema_half_life_nimg

    cfg, G, G_ema = ctx["cfg"], ctx["G"], ctx["G_ema"]
    beta = ema_beta(cfg.batch, ema_half_life_nimg(cfg.ema_kimg, ctx["nimg"], cfg.ema_rampup))
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)
    ctx["nimg"] += cfg.batch


def _naive_step(ctx, step, real_img, real_c):
    """NVIDIA's phase structure on ganforge's networks and loss functions (the baseline)."""
    import torch

    from ganforge.train.loss import (discriminator_logistic_loss, generator_logistic_loss, path_length_noise,
                                     path_length_penalty, path_lengths, r1_penalty, sanitize_gradients)

    G, D, cfg = ctx["G"], ctx["D"], ctx["cfg"]
    B = cfg.batch
    dev = ctx["device"]
    real_img, real_c = real_img.to(dev), real_c.to(dev)
    real = real_img.to(torch.float32) / 127.5 - 1

    def run_G(z, c):
        ws = G.mapping(z, c)
        if cfg.style_mixing_prob > 0:
            cutoff = torch.empty([], dtype=torch.int64).random_(1, ws.shape[1])
            cutoff = torch.where(torch.rand([]) < cfg.style_mixing_prob, cutoff, torch.full_like(cutoff, ws.shape[1]))
            ws[:, cutoff:] = G.mapping(torch.randn_like(z), c, skip_w_avg_update=True)[:, cutoff:]
        return G.synthesis(ws), ws

    def gen_c():
        idx = torch.randint(len(ctx["labels"]), [B])
        return ctx["labels"][idx]

    # Gmain
    G.requires_grad_(True)
    z, c = torch.randn([B, G.z_dim], device=dev), gen_c()
    img, _ = run_G(z, c)
    generator_logistic_loss(D(img, c)).mean().backward()
    sanitize_gradients(G.parameters())
    ctx["G_opt"].step()
    ctx["G_opt"].zero_grad(set_to_none=True)
    # Greg
    if step % cfg.pl_interval == 0:
        n = B // 2
        img, ws = run_G(torch.randn([n, G.z_dim], device=dev), gen_c()[:n])
        lengths = path_lengths(img, ws, path_length_noise(img))
        pen, new = path_length_penalty(lengths, ctx["pl_mean"])
        ctx["pl_mean"].copy_(new)
        ((img[:, 0, 0, 0] * 0 + pen * cfg.pl_weight).mean() * cfg.pl_interval).backward()
        sanitize_gradients(G.parameters())
        ctx["G_opt"].step()
        ctx["G_opt"].zero_grad(set_to_none=True)
    G.requires_grad_(False)
    # Dmain: two backward passes, generator forward with autograd on
    D.requires_grad_(True)
    z, c = torch.randn([B, G.z_dim], device=dev), gen_c()
    img, _ = run_G(z, c)
    loss_fake, _ = discriminator_logistic_loss(D(img, c), None)
    loss_fake.mean().backward()
    _, loss_real = discriminator_logistic_loss(None, D(real, real_c))
    loss_real.mean().backward()
    sanitize_gradients(D.parameters())
    ctx["D_opt"].step()
    ctx["D_opt"].zero_grad(set_to_none=True)
    # Dreg
    if step % cfg.r1_interval == 0:
        x = real.detach().requires_grad_(True)
        logits = D(x, real_c)
        ((logits[:, 0] * 0 + r1_penalty(logits, x, cfg.gamma)).mean() * cfg.r1_interval).backward()
        sanitize_gradients(D.parameters())
        ctx["D_opt"].step()
        ctx["D_opt"].zero_grad(set_to_none=True)
    D.requires_grad_(False)
    _per_tensor_ema(ctx)


def _nvidia_step(ctx, step, real_img, real_c):
    """NVIDIA's networks and StyleGAN2Loss, driven by their phase schedule (batch_gpu = batch)."""
    import torch

    cfg, B = ctx["cfg"], ctx["cfg"].batch
    G, D = ctx["G"], ctx["D"]
    dev = ctx["device"]
    real_img, real_c = real_img.to(dev), real_c.to(dev)
    real = real_img.to(torch.float32) / 127.5 - 1
    for name, module, opt, interval in [("Gmain", G, ctx["G_opt"], 1), ("Greg", G, ctx["G_opt"], cfg.pl_interval),
                                        ("Dmain", D, ctx["D_opt"], 1), ("Dreg", D, ctx["D_opt"], cfg.r1_interval)]:
        if step % interval != 0:
            continue
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        idx = torch.randint(len(ctx["labels"]), [B])
        ctx["loss"].accumulate_gradients(phase=name, real_img=real, real_c=real_c, gen_z=torch.randn([B, G.z_dim], device=dev),
                                         gen_c=ctx["labels"][idx], sync=True, gain=interval)
        module.requires_grad_(False)
        for p in module.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
    _per_tensor_ema(ctx)


def _plain_adam(params, lr, reg_interval):
    """The baselines' optimizer: torch.optim.Adam with its default (per-tensor) implementation, as
    NVIDIA's training loop creates it, with the same lazy-regularization correction."""
    import torch

    from ganforge.train.optim import ADAM_BETAS, ADAM_EPS, lazy_regularization_adam

    lr_c, betas_c = lazy_regularization_adam(lr, ADAM_BETAS, reg_interval)
    return torch.optim.Adam(params, lr=lr_c, betas=betas_c, eps=ADAM_EPS)


def make_other(args, variant: str):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = _config(args)
    torch.manual_seed(0)
    if variant == "nvidia":
        sys.path.insert(0, args.nvidia_ref)
        from training import networks  # NVIDIA's, imported from the reference checkout at run time
        from training.loss import StyleGAN2Loss

        G = networks.Generator(**copy.deepcopy(cfg.G_kwargs))
        D = networks.Discriminator(**copy.deepcopy(cfg.D_kwargs))
    else:
        from ganforge.models import build

        G, D = build("stylegan2", "G", cfg.G_kwargs), build("stylegan2", "D", cfg.D_kwargs)
    dev = torch.device(args.device)
    G = G.to(dev).train().requires_grad_(False)
    D = D.to(dev).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    labels = torch.eye(args.classes)[torch.arange(1000) % args.classes] if args.classes else torch.zeros([1000, 0])
    ctx = dict(G=G, D=D, G_ema=G_ema, cfg=cfg, labels=labels.to(dev), nimg=0, pl_mean=torch.zeros([], device=dev),
               device=dev,
               G_opt=_plain_adam(G.parameters(), cfg.lr, cfg.pl_interval),
               D_opt=_plain_adam(D.parameters(), cfg.lr, cfg.r1_interval))
    step_fn = _naive_step
    if variant == "nvidia":
        ctx["loss"] = StyleGAN2Loss(dev, G.mapping, G.synthesis, D,
                                    style_mixing_prob=cfg.style_mixing_prob, r1_gamma=cfg.gamma,
                                    pl_weight=cfg.pl_weight)
        step_fn = _nvidia_step
    return lambda step, imgs, labels: step_fn(ctx, step, imgs, labels)


def make_variant(args, variant: str):
    return make_ganforge(args) if variant == "ganforge" else make_other(args, variant)


def child_memory(args):
    """Peak memory growth (MB) over one lazy cycle of one variant, alone in this process: resident set
    on CPU, allocated device memory on CUDA."""
    import torch

    step_fn = make_variant(args, args.variant)
    imgs, lbl = _real_batches(args, 1)
    for i in range(args.warmup):
        step_fn(i + 1, imgs[0], lbl[0])
    if args.device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for i in range(STEPS):
            step_fn(i, imgs[0], lbl[0])
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    else:
        _reset_peak()
        base = _rss_kb("VmRSS")
        for i in range(STEPS):
            step_fn(i, imgs[0], lbl[0])
        peak = (_rss_kb("VmHWM") - base) / 1024
    print(json.dumps({"variant": args.variant, "peak_mb": peak}))


def child_worker(args):
    """One variant in its own process (--as-shipped): a round of STEPS steps per 'round' line on stdin,
    answered with the mean seconds per step."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    step_fn = make_variant(args, args.worker)
    imgs, lbl = _real_batches(args, 1)
    for i in range(args.warmup):
        step_fn(i + 1, imgs[0], lbl[0])
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        t0 = time.perf_counter()
        for step in range(STEPS):
            step_fn(step, imgs[0], lbl[0])
            _sync(args)
        print(f"{(time.perf_counter() - t0) / STEPS:.6f}", flush=True)


def rounds_as_shipped(args, variants):
    """Interleaved rounds with every variant in its own worker process (see child_worker)."""
    argv = [a for a in sys.argv[1:] if a != "--as-shipped"]
    workers = {v: subprocess.Popen([sys.executable, __file__, *argv, "--worker", v], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True) for v in variants}
    try:
        for v, w in workers.items():
            for line in w.stdout:  # skip whatever the variant prints while it builds
                if line.strip() == "ready":
                    break
            else:
                raise SystemExit(f"benchmark worker for {v} failed to start")
        rounds = {v: [] for v in variants}
        for r in range(args.repeats):
            for v, w in workers.items():
                w.stdin.write("round\n")
                w.stdin.flush()
                rounds[v].append(float(w.stdout.readline()))
            print(f"round {r}: " + "  ".join(f"{v} {rounds[v][-1]:.3f}" for v in variants) + " s/iter", flush=True)
        return rounds
    finally:
        for w in workers.values():
            w.stdin.close()
            w.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfg", default="small")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds over the variants")
    p.add_argument("--nvidia-ref", default="/work/ref/stylegan2-ada-pytorch",
                   help="checkout of NVlabs/stylegan2-ada-pytorch (skipped when absent)")
    p.add_argument("--variants", default="ganforge,ganforge-naive,nvidia")
    p.add_argument("--no-memory", action="store_true", help="skip the per-variant peak-memory processes")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="ganforge's feature-map layout (TrainOptions.channels_last): auto = channels_last on CPU")
    p.add_argument("--glibc-defaults", action="store_true",
                   help="leave glibc's malloc at its defaults for every variant (ganforge's CLI tunes it)")
    p.add_argument("--as-shipped", action="store_true",
                   help="each variant in its own process, with the allocator settings it ships with")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        return child_memory(args)
    if args.worker:
        return child_worker(args)
    variants = [v for v in args.variants.split(",") if v]
    if "nvidia" in variants and not os.path.isdir(os.path.join(args.nvidia_ref, "training")):
        print(f"(no NVIDIA checkout at {args.nvidia_ref}: skipping the nvidia variant)")
        variants.remove("nvidia")
    # Speed: all variants in this process, interleaved step by step, so that a machine shared with
    # other work slows them alike; each round is one lazy cycle (steps 0..15) of every variant.
    import torch

    from ganforge.train.loop import keep_freed_memory_for_reuse

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.as_shipped:
        rounds = rounds_as_shipped(args, variants)
        tuned = "as shipped (ganforge tuned, others glibc defaults)"
    else:
        # ganforge's CLI trainer tunes glibc malloc for the whole process (see keep_freed_memory_for_reuse),
        # so every variant here runs with it; --glibc-defaults runs all of them with glibc's defaults.
        tuned = False if args.glibc_defaults else keep_freed_memory_for_reuse()
        fns = {v: make_variant(args, v) for v in variants}
        imgs, lbl = _real_batches(args, 1)
        for v, fn in fns.items():
            for i in range(args.warmup):
                fn(i + 1, imgs[0], lbl[0])
        rounds = {v: [] for v in variants}
        for r in range(args.repeats):
            acc = {v: 0.0 for v in variants}
            for step in range(STEPS):
                for v, fn in fns.items():
                    t0 = time.perf_counter()
                    fn(step, imgs[0], lbl[0])
                    _sync(args)
                    acc[v] += time.perf_counter() - t0
            for v in variants:
                rounds[v].append(acc[v] / STEPS)
            print(f"round {r}: " + "  ".join(f"{v} {rounds[v][-1]:.3f}" for v in variants) + " s/iter",
                  flush=True)
    peaks = {}
    if not args.no_memory:
        for v in variants:  # memory: each variant alone in a fresh process
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", v], capture_output=True,
                                 text=True)
            peaks[v] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"] if out.returncode == 0 else None
    print(f"\n{args.cfg} preset, {args.res}x{args.res}x{args.channels}, {args.classes} classes, batch {args.batch}, "
          f"{args.device}, threads={args.threads or torch.get_num_threads()}; s/iter = mean over steps 0..15 (4 path length + "
          f"1 R1 steps), median of {args.repeats} interleaved rounds; malloc keeps freed memory: {tuned}")
    med = {v: float(np.median(rounds[v])) for v in variants}
    base = med.get("ganforge")
    print(f"{'variant':15s} {'s/iter':>8s} {'img/s':>8s} {'sec/kimg':>9s} {'peak MB':>8s} {'time / ganforge':>16s}")
    for v in variants:
        it = med[v]
        pk = f"{peaks[v]:8.1f}" if peaks.get(v) is not None else f"{'-':>8s}"
        print(f"{v:15s} {it:8.3f} {args.batch / it:8.1f} {1000 * it / args.batch:9.1f} {pk} {it / base:15.2f}x")


if __name__ == "__main__":
    main()
