"""One short check of everything that only a GPU can show (under 5 minutes on one GPU), printed as one table.

    python benchmarks/gpu_check.py                         # on a machine with CUDA; exit 1 if any check FAILs
    python benchmarks/gpu_check.py --nvidia /path/to/stylegan2-ada-pytorch   # + the benchmarks against NVIDIA
    python benchmarks/gpu_check.py --device cpu --dry-run  # every check's logic at tiny size on a CPU (~1 min)

Without CUDA (and without --device cpu) it prints one line and exits 0. Checks (config F at 256x256 on CUDA,
a 16x16 toy with --dry-run; float32 references with TF32 off):

  fp16-blocks       G and D with num_fp16_res=4, conv_clamp=256 against the same weights with force_fp32
  bf16-autocast     G and D under torch.autocast(bfloat16) against float32
  channels-last     G and D with set_channels_last(True) against set_channels_last(False), plus their speed
  fused-d-pass      the Trainer's one-pass D on fakes + reals against its two passes
  sync-free-nets    torch.cuda.set_sync_debug_mode("error") through G and D forward, backward, R1 and path
                    length gradients (the networks alone)
  sync-free-step    the same through one Trainer.train_step with both lazy regularizers (after warm-up)
  ddp-nccl          `torchrun -m ganforge train` on all visible GPUs with --metrics swd1k at the snapshot
  bench-generate    benchmarks/generate.py at 256x256 config F, ganforge against NVIDIA (--nvidia PATH)
  bench-train       benchmarks/train.py at 256x256 config F (--cfg stylegan2, batch 32) against NVIDIA

Errors are relative: max|a - b| / max|b|. The tolerances are stated in each row (a first calibration:
fp16 and bf16 round activations to 11 and 8 significant bits; float32 paths differ only in summation order).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import torch  # noqa: E402

TOL_FP16 = 2e-2     # fp16 activations in the last 4 resolutions (11-bit mantissa, conv_clamp 256)
TOL_BF16 = 6e-2     # bfloat16 autocast (8-bit mantissa) through every layer
TOL_FP32 = 1e-4     # float32 against float32: summation order only (layout, batch composition)


@dataclass
class Row:
    name: str
    status: str          # PASS | FAIL | SKIP
    err: float | None = None
    tol: float | None = None
    note: str = ""


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    if a.shape != b.shape:
        return math.inf
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def compare(name: str, pairs, tol: float, note: str = "") -> Row:
    err = max(rel_err(a, b) for a, b in pairs)
    ok = math.isfinite(err) and err <= tol
    return Row(name, "PASS" if ok else "FAIL", err, tol, note)


# -- sizes ---------------------------------------------------------------------------------------------

def net_kwargs(args, num_fp16_res: int = 0) -> tuple[dict, dict]:
    """Generator and Discriminator kwargs: config F at 256x256 (NVIDIA's --cfg stylegan2), or a toy."""
    clamp = 256 if num_fp16_res else None
    if args.dry_run:
        syn = dict(channel_base=256, channel_max=32, num_fp16_res=num_fp16_res, conv_clamp=clamp)
        return (dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                     mapping_kwargs=dict(num_layers=2), synthesis_kwargs=syn),
                dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
                     num_fp16_res=num_fp16_res, conv_clamp=clamp))
    syn = dict(channel_base=32768, channel_max=512, num_fp16_res=num_fp16_res, conv_clamp=clamp)
    return (dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                 mapping_kwargs=dict(num_layers=8), synthesis_kwargs=syn),
            dict(c_dim=0, img_resolution=256, img_channels=3, channel_base=32768, channel_max=512,
                 num_fp16_res=num_fp16_res, conv_clamp=clamp))


def make_nets(args, device, num_fp16_res: int = 0):
    from ganforge.models.stylegan2 import Discriminator, Generator

    gk, dk = net_kwargs(args, num_fp16_res)
    torch.manual_seed(0)
    G = Generator(**gk).to(device).eval().requires_grad_(False)
    D = Discriminator(**dk).to(device).eval().requires_grad_(False)
    return G, D


def latents(G, device, batch: int):
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(1)).to(device)
    return z, torch.zeros([batch, G.c_dim], device=device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the checks ----------------------------------------------------------------------------------------

def check_fp16(args, device) -> Row:
    G, D = make_nets(args, device, num_fp16_res=4)
    z, c = latents(G, device, args.batch)
    with torch.no_grad():
        img = G(z, c, noise_mode="const")
        ref = G(z, c, noise_mode="const", force_fp32=True)
        logits, ref_logits = D(ref, c), D(ref, c, force_fp32=True)
    note = "G image and D logits, num_fp16_res=4"
    if device.type != "cuda":
        note += "; fp16 blocks run on CUDA only, so this compared float32 with float32"
    return compare("fp16-blocks", [(img, ref), (logits, ref_logits)], TOL_FP16, note)


def check_bf16(args, device) -> Row:
    G, D = make_nets(args, device)
    z, c = latents(G, device, args.batch)
    with torch.no_grad():
        ref = G(z, c, noise_mode="const")
        ref_logits = D(ref, c)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            img = G(z, c, noise_mode="const")
            logits = D(ref, c)
    return compare("bf16-autocast", [(img, ref), (logits, ref_logits)], TOL_BF16, "G image and D logits")


def _time(fn, device, reps: int) -> float:
    fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / reps


def check_channels_last(args, device) -> Row:
    G, D = make_nets(args, device)
    z, c = latents(G, device, args.batch)
    outs, times = {}, {}
    for setting in (False, True):
        G.set_channels_last(setting)
        D.set_channels_last(setting)
        layouts = []
        last = getattr(G.synthesis, f"b{G.img_resolution}").conv1
        hooks = [last.register_forward_hook(lambda m, i, o: layouts.append(
            o.is_contiguous(memory_format=torch.channels_last) and not o.is_contiguous()))]
        with torch.no_grad():
            img = G(z, c, noise_mode="const")
            outs[setting] = (img, D(img, c))
            for h in hooks:
                h.remove()
            times[setting] = _time(lambda: D(G(z, c, noise_mode="const"), c), device, args.reps)
        if layouts != [setting]:
            return Row("channels-last", "FAIL", None, TOL_FP32,
                       f"set_channels_last({setting}) gave {'channels_last' if layouts[0] else 'NCHW'} feature maps")
    row = compare("channels-last", [(outs[True][0], outs[False][0]), (outs[True][1], outs[False][1])], TOL_FP32)
    row.note = (f"G+D forward: NCHW {times[False] * 1e3:.1f} ms, channels_last {times[True] * 1e3:.1f} ms "
                f"(x{times[False] / times[True]:.2f})")
    return row


def write_dataset(root: str, n: int, res: int) -> str:
    import numpy as np
    from PIL import Image

    os.makedirs(root, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i in range(n):
        Image.fromarray(rnd.randint(0, 256, [res, res, 3], dtype=np.uint8)).save(os.path.join(root, f"{i:04d}.png"))
    return root


def make_trainer(args, device, tmp: str):
    """A Trainer (the library's own loop) on a synthetic dataset, without augmentation or metrics."""
    from ganforge.train.loop import Trainer, TrainOptions

    res = 16 if args.dry_run else 256
    data = write_dataset(os.path.join(tmp, f"data{res}"), 2 * args.batch, res)
    small = dict(cbase=256, cmax=32, map_depth=2) if args.dry_run else {}
    opts = TrainOptions(data=data, outdir=os.path.join(tmp, "runs"), cfg="auto" if args.dry_run else "stylegan2",
                        kimg=1, batch=args.batch, batch_gpu=args.batch, aug="noaug", metrics=[], workers=0,
                        device=device.type, mbstd_group=min(4, args.batch), **small)
    trainer = Trainer(opts)
    imgs = torch.from_numpy(__import__("numpy").random.RandomState(1).randint(
        0, 256, [args.batch, 3, res, res], dtype="uint8"))
    if device.type == "cuda":
        imgs = imgs.pin_memory()  # as the loop's DataLoader delivers them (pin_memory on CUDA)
    return trainer, imgs, torch.zeros([args.batch, trainer.G.c_dim])


def check_fused_d(args, device, tmp: str) -> Row:
    trainer, imgs, c = make_trainer(args, device, tmp)
    real = imgs.to(device).to(torch.float32) / 127.5 - 1  # what the loop feeds D: x / 127.5 - 1
    c = c.to(device)
    with torch.no_grad():
        fake = trainer.G(*latents(trainer.G, device, args.batch), noise_mode="const")
    out = {}
    for fused in (True, False):
        trainer.opts.fused_d_pass = fused
        if trainer._fused_d(fake.shape[0], real.shape[0]) != fused:
            return Row("fused-d-pass", "FAIL", note=f"fused_d_pass={fused} was not honoured")
        with torch.no_grad():
            out[fused] = trainer._run_D_pair(fake, c, real, c, sync=True)
    return compare("fused-d-pass", [(out[True][0], out[False][0]), (out[True][1], out[False][1])], TOL_FP32,
                   "Trainer._run_D_pair fakes and reals logits, one pass vs two")


def _sync_free(device, fn) -> tuple[str, str]:
    """Run fn under torch.cuda.set_sync_debug_mode('error'): ('PASS', '') or ('FAIL', the first sync)."""
    if device.type != "cuda":
        fn()  # the logic still runs (no sync detection off CUDA)
        return "SKIP", "set_sync_debug_mode is CUDA-only; the same code ran on " + device.type
    sync(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn()
        return "PASS", "no synchronizing call"
    except RuntimeError as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = next((f"{os.path.basename(f.filename)}:{f.lineno} {f.line}" for f in reversed(tb)
                      if "ganforge" in f.filename), "?")
        return "FAIL", f"{str(e).splitlines()[0][:80]} at {where}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
        sync(device)


def check_sync_nets(args, device) -> Row:
    from ganforge.train.loss import path_length_noise, path_lengths, r1_penalty

    G, D = make_nets(args, device, num_fp16_res=0 if args.dry_run else 4)
    G.train().requires_grad_(True)
    D.train().requires_grad_(True)
    z, c = latents(G, device, args.batch)
    real = torch.randn([args.batch, G.img_channels, G.img_resolution, G.img_resolution], device=device)
    noise_gen = torch.Generator(device=device).manual_seed(2)

    def step():
        torch.nn.functional.softplus(-D(G(z, c), c)).mean().backward()                 # G main
        ws = G.mapping(z, c)
        img = G.synthesis(ws)
        path_lengths(img, ws, path_length_noise(img, generator=noise_gen)).mean().backward()  # path length
        x = real.detach().requires_grad_(True)
        r1_penalty(D(x, c), x, 1.0).mean().backward()

    step()  # warm-up: cuDNN autotuning and the FIR taps' one-time host copies happen here
    status, note = _sync_free(device, step)
    return Row("sync-free-nets", status, note=note)


def check_sync_step(args, device, tmp: str) -> Row:
    trainer, imgs, c = make_trainer(args, device, tmp)
    for _ in range(2):
        trainer.train_step(imgs, c)
    trainer.step = 16 * (trainer.step // 16 + 1)  # a step with both lazy regularizers (R1 and path length)
    status, note = _sync_free(device, lambda: trainer.train_step(imgs, c))
    return Row("sync-free-step", status, note=note)


def check_ddp(args, device, tmp: str) -> Row:
    if device.type != "cuda":
        return Row("ddp-nccl", "SKIP", note="NCCL needs CUDA (gloo DDP on CPU: tests/train/test_distributed.py)")
    n = torch.cuda.device_count()
    data = write_dataset(os.path.join(tmp, "ddp-data"), 256, 32)
    out = os.path.join(tmp, "ddp-runs")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "ganforge", "train", "--data", data, "--outdir", out, "--gpus", str(n), "--cfg", "auto",
           "--cbase", "4096", "--cmax", "128", "--batch", str(8 * n), "--kimg", "0.064", "--snap", "1",
           "--aug", "noaug", "--metrics", "swd1k", "--workers", "0", "--device", "cuda"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.ddp_timeout)
    except subprocess.TimeoutExpired:
        return Row("ddp-nccl", "FAIL", note=f"{n} processes did not finish in {args.ddp_timeout} s")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1][:100]
        return Row("ddp-nccl", "FAIL", note=f"exit {proc.returncode}: {last}")
    stats = [os.path.join(r, d, "stats.jsonl") for r in [out] for d in os.listdir(out)]
    records = [json.loads(line) for p in stats if os.path.exists(p) for line in open(p) if line.strip()]
    swd = {k: v for rec in records for k, v in rec.items() if "swd" in k and isinstance(v, (int, float))}
    if not swd or not all(math.isfinite(v) for v in swd.values()):
        return Row("ddp-nccl", "FAIL", note=f"no finite swd1k in stats.jsonl ({len(records)} records)")
    k, v = sorted(swd.items())[0]
    return Row("ddp-nccl", "PASS", note=f"{n} GPU(s), NCCL, snapshot {k}={v:.4g}")


def _bench(cmd, timeout: int) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=os.path.join(HERE, ".."))
    except subprocess.TimeoutExpired:
        return -1, f"did not finish in {timeout} s"
    return proc.returncode, proc.stdout + proc.stderr


def check_bench_generate(args, device) -> Row:
    if not args.nvidia and not args.dry_run:
        return Row("bench-generate", "SKIP", note="give --nvidia PATH (a stylegan2-ada-pytorch checkout)")
    cfg, batch = ("small32", 2) if args.dry_run else ("f256", 32)
    cmd = [sys.executable, os.path.join(HERE, "generate.py"), "--device", device.type, "--configs", cfg,
           "--batch", str(batch), "--min-time", "0.2" if args.dry_run else "3"]
    if args.nvidia:
        cmd += ["--nvidia", args.nvidia]
    rc, text = _bench(cmd, args.bench_timeout)
    rows = re.findall(r"^\s+(.+?)\s+([\d.]+) img/s.*?x\s*([\d.]+) vs (.+?)\s+max\|diff\| (\S+)$", text, re.M)
    if rc != 0 or not rows:
        return Row("bench-generate", "FAIL", note=f"exit {rc}: {text.strip().splitlines()[-1][:100] if text else ''}")
    note = "; ".join(f"{label} {ips} img/s x{ratio} vs {rows[-1][0]}" for label, ips, ratio, _, _ in rows)
    diffs = [float(d) for *_, d in rows]
    return Row("bench-generate", "PASS", max(diffs), None, f"{cfg} batch {batch}: {note}")


def check_bench_train(args, device) -> Row:
    if args.dry_run:
        return Row("bench-train", "SKIP", note="the 256x256 config F training benchmark runs on CUDA only")
    if not args.nvidia:
        return Row("bench-train", "SKIP", note="give --nvidia PATH (a stylegan2-ada-pytorch checkout)")
    cmd = [sys.executable, os.path.join(HERE, "train.py"), "--device", "cuda", "--cfg", "stylegan2", "--res", "256",
           "--channels", "3", "--classes", "0", "--batch", "32", "--nvidia-ref", args.nvidia, "--repeats", "1",
           "--warmup", "1", "--no-memory", "--variants", "ganforge,nvidia"]
    rc, text = _bench(cmd, args.bench_timeout)
    rows = re.findall(r"^(ganforge|nvidia)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\S+\s+([\d.]+)x$", text, re.M)
    if rc != 0 or not rows:
        return Row("bench-train", "FAIL", note=f"exit {rc}: {text.strip().splitlines()[-1][:100] if text else ''}")
    return Row("bench-train", "PASS", note="; ".join(f"{v} {spk} sec/kimg ({ratio}x ganforge's time)"
                                                   for v, _, _, spk, ratio in rows))


CHECKS = ["fp16-blocks", "bf16-autocast", "channels-last", "fused-d-pass", "sync-free-nets", "sync-free-step",
          "ddp-nccl", "bench-generate", "bench-train"]


def run_checks(args, device) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        table = {
            "fp16-blocks": lambda: check_fp16(args, device),
            "bf16-autocast": lambda: check_bf16(args, device),
            "channels-last": lambda: check_channels_last(args, device),
            "fused-d-pass": lambda: check_fused_d(args, device, tmp),
            "sync-free-nets": lambda: check_sync_nets(args, device),
            "sync-free-step": lambda: check_sync_step(args, device, tmp),
            "ddp-nccl": lambda: check_ddp(args, device, tmp),
            "bench-generate": lambda: check_bench_generate(args, device),
            "bench-train": lambda: check_bench_train(args, device),
        }
        for name in args.checks:
            t0 = time.perf_counter()
            try:
                row = table[name]()
            except Exception as e:  # a crash is a FAIL of that check, the others still run
                frame = traceback.extract_tb(e.__traceback__)[-1]
                row = Row(name, "FAIL", note=f"{type(e).__name__}: {str(e)[:90]} "
                                             f"({os.path.basename(frame.filename)}:{frame.lineno})")
            row.note = (row.note + f" [{time.perf_counter() - t0:.1f} s]").strip()
            rows.append(row)
            print(f"  {row.name}: {row.status}", file=sys.stderr, flush=True)
    return rows


def print_table(rows: list[Row]) -> None:
    fmt = "{:15s} {:6s} {:>10s} {:>8s}  {}"
    print(fmt.format("check", "result", "max err", "tol", "notes"))
    for r in rows:
        print(fmt.format(r.name, r.status, "-" if r.err is None else f"{r.err:.2e}",
                         "-" if r.tol is None else f"{r.tol:.0e}", r.note))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="checks: " + ", ".join(CHECKS))
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (implies --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="tiny networks: exercise every check quickly")
    p.add_argument("--nvidia", default=None, metavar="PATH", help="stylegan2-ada-pytorch checkout for the benchmarks")
    p.add_argument("--checks", default=",".join(CHECKS), help="comma-separated subset")
    p.add_argument("--batch", type=int, default=None, help="batch of the network checks (default 8; 4 dry-run)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions in channels-last (default 10; 2)")
    p.add_argument("--ddp-timeout", type=int, default=150)
    p.add_argument("--bench-timeout", type=int, default=150)
    args = p.parse_args(argv)
    args.checks = [c for c in args.checks.split(",") if c]
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        p.error(f"unknown checks {unknown}; known: {', '.join(CHECKS)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: skipped: no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False)")
        return 0
    if device.type != "cuda":
        args.dry_run = True
    args.batch = args.batch or (4 if args.dry_run else 8)
    args.reps = args.reps or (2 if args.dry_run else 10)
    from ganforge.train.loop import set_tf32

    set_tf32(False)  # float32 references in full precision
    what = "dry run, tiny networks" if args.dry_run else "config F 256x256"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"gpu_check on {name} ({what}), torch {torch.__version__}, batch {args.batch}")
    rows = run_checks(args, device)
    print_table(rows)
    return 1 if any(r.status == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
