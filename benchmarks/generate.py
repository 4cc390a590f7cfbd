"""Generator throughput: images/s, FLOPs per image and the achieved FLOP rate.

    python benchmarks/generate.py                       # CPU, both configs
    python benchmarks/generate.py --nvidia /path/to/stylegan2-ada-pytorch   # side by side with NVIDIA's code
    python benchmarks/generate.py --device cuda --configs f256 --batch 32
    python benchmarks/generate.py --configs biggan-deep128 --hf /path/to/pytorch-pretrained-BigGAN
    python benchmarks/generate.py --configs biggan-deep128 --hf ... --device cuda --dtype bfloat16

Everything is measured in this process, in this run: a matrix-multiply rate (the machine's ceiling),
ganforge's default path, ganforge's plain grouped-convolution path (what NVIDIA's code runs at
inference), and NVIDIA's own Generator on the same weights when --nvidia points at a checkout of
stylegan2-ada-pytorch (it is imported from there, never copied). Ratios are printed against those.

biggan-deep128 is BigGAN-deep at 128 px with the published model's sizes (channel width 128, z 128,
1000 classes, 51 truncation-indexed BN rows), random weights, sampled at truncation 0.5. With --hf
pointing at a checkout of huggingface/pytorch-pretrained-BigGAN (or its unpacked wheel), its own
BigGAN class is built first and ganforge's network is converted from that model's state dict by the
same code `ganforge convert` uses, so both run the same weights; their model(z, one_hot, 0.5) is the
baseline. With --dtype bfloat16 ganforge runs under autocast and is compared with float32.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from ganforge.models.stylegan2 import Generator  # noqa: E402
from ganforge.models.summary import generator_flops  # noqa: E402

CONFIGS = {
    # name: (Generator kwargs, default batch on CPU)
    "small32": (dict(z_dim=64, c_dim=0, w_dim=64, img_resolution=32, img_channels=3,
                     mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=2048, channel_max=128)), 64),
    "f256": (dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                  mapping_kwargs=dict(num_layers=8), synthesis_kwargs=dict(channel_base=32768, channel_max=512)), 4),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_fn(fn, device, min_time=3.0, warmup=2):
    for _ in range(warmup):
        fn()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        sync(device)
        dt = time.perf_counter() - t0
        if dt >= min_time and n >= 3:
            return dt / n


def time_interleaved(fns, device, min_time=3.0, warmup=1):
    """Median seconds per call of each fn, calling them in turn (round robin) so that a busy machine
    slows every contender alike and the ratios stay fair."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples = [[] for _ in fns]
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < min_time * len(fns) or len(samples[0]) < 3:
        for i, fn in enumerate(fns):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            samples[i].append(time.perf_counter() - t0)
    return [sorted(s)[len(s) // 2] for s in samples]


def matmul_rate(device, dtype=torch.float32, n=2048):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sec = time_fn(lambda: a @ b, device, min_time=2.0)
    return 2 * n ** 3 / sec


def nvidia_generator(path, kwargs, state_dict, device):
    sys.path.insert(0, path)
    from training import networks  # NVIDIA's code, imported from the user's checkout

    G = networks.Generator(**kwargs).to(device).eval()
    G.load_state_dict(state_dict, strict=True)
    return G


def hf_biggan(path, device):
    """pytorch-pretrained-BigGAN's own BigGAN-deep-128 (their code, imported from the checkout at `path`) with
    random weights warmed the way their spectral norm needs (their README example), and ganforge's copy."""
    import types

    sys.path.insert(0, path)
    for name, attrs in {"boto3": {}, "botocore": {}, "requests": {},
                        "botocore.exceptions": {"ClientError": type("ClientError", (Exception,), {})}}.items():
        if name not in sys.modules:  # their file_utils imports these for downloads, never used on a local model
            mod = types.ModuleType(name)
            mod.__dict__.update(attrs)
            sys.modules[name] = mod
    from pytorch_pretrained_biggan import convert_tf_to_pytorch, model  # their code, from the checkout

    from ganforge.formats.hf_biggan import _architecture, generator_to_ganforge
    from ganforge.models import build

    cfg = model.BigGANConfig(output_dim=128, z_dim=128, class_embed_dim=128, channel_width=128, num_classes=1000,
                             layers=convert_tf_to_pytorch.BigGAN128.layers, attention_layer_position=8, eps=1e-4,
                             n_stats=51)
    torch.manual_seed(0)
    theirs = model.BigGAN(cfg)
    with torch.no_grad():
        theirs.generator.bn.weight.fill_(1)   # created uninitialised by their constructor
        theirs.generator.bn.bias.zero_()
        for m in theirs.modules():            # distinct statistics per truncation row
            if hasattr(m, "running_means"):
                m.running_means.normal_(0, 0.1)
                m.running_vars.uniform_(0.5, 1.5)
        theirs.train()
        z, c = torch.randn(2, 128), torch.eye(1000)[:2]
        for _ in range(3):                    # settle the spectral-norm vectors
            theirs(z, c, 1.0)
    theirs.eval().requires_grad_(False)
    kwargs = _architecture(cfg.to_dict(), "config")
    ours = build("biggan-deep", "G", kwargs)
    ours.load_state_dict(generator_to_ganforge(theirs.state_dict(), kwargs, 8, "benchmark"))
    return theirs.to(device), ours.to(device).eval().requires_grad_(False)


def bench_biggan(args, device, mm):
    batch = args.batch or 16
    truncation = 0.5
    if args.hf:
        theirs, G = hf_biggan(args.hf, device)
    else:
        from ganforge.models.biggan_deep import Generator as DeepGenerator

        theirs = None
        G = DeepGenerator(z_dim=128, c_dim=1000, img_resolution=128, channel_width=128, embed_dim=128,
                          bn_eps=1e-4, out_bn_eps=1e-4, sn_eps=1e-4, n_stats=51, rgb_channels=128,
                          truncation_mode="scale").to(device).eval().requires_grad_(False)
    G.set_channels_last({"auto": None, "on": True, "off": False}[args.channels_last])
    flops = generator_flops(G)
    from ganforge.models.latents import truncated_z_from_seeds

    z = truncated_z_from_seeds(range(batch), 128, truncation, "scale").to(device)
    c = torch.eye(1000, device=device)[torch.arange(batch) * 37 % 1000]
    dtype = getattr(torch, args.dtype)

    def ours():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            return G(z, c, truncation=truncation).float()

    with torch.inference_mode():
        out32 = G(z, c, truncation=truncation)
        out = ours()
        contenders = [(f"ganforge ({args.dtype})", ours, (out - out32).abs().max().item())]
        if theirs is not None:
            ref = theirs(z, c, truncation)
            contenders[0] = (contenders[0][0], ours, (out - ref).abs().max().item())
            contenders.append(("pytorch-pretrained-BigGAN", lambda: theirs(z, c, truncation), 0.0))
        times = time_interleaved([fn for _, fn, _ in contenders], device, args.min_time)
    print(f"\nbiggan-deep128: batch {batch}, {flops / 1e9:.3f} GFLOP/image, truncation {truncation}")
    base = times[-1]
    for (label, _, diff), sec in zip(contenders, times):
        ips = batch / sec
        print(f"  {label:30s} {ips:9.2f} img/s  {ips * flops / 1e9:7.1f} GFLOP/s  {ips * flops / mm:6.1%} of matmul  "
              f"x{base / sec:5.2f} vs {contenders[-1][0]}  max|diff| {diff:.2e}"
              + ("  (vs their float32)" if theirs is not None and label.startswith("ganforge") else ""))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="small32,f256", help="small32, f256, biggan-deep128 (comma-separated)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=None, help="override the per-config batch")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--nvidia", default=os.environ.get("NVIDIA_SG2ADA"), help="path to a stylegan2-ada-pytorch checkout")
    p.add_argument("--hf", default=None, help="path to a pytorch-pretrained-BigGAN checkout (for biggan-deep128)")
    p.add_argument("--min-time", type=float, default=4.0)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="ganforge's feature-map layout (G.set_channels_last): auto = channels_last on CPU only")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    mm = matmul_rate(device)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"matmul 2048^3 fp32: {mm / 1e9:.1f} GFLOP/s (the ceiling used below)")
    for name in args.configs.split(","):
        if name == "biggan-deep128":
            bench_biggan(args, device, mm)
            continue
        kwargs, batch = CONFIGS[name]
        batch = args.batch or batch
        torch.manual_seed(0)
        G = Generator(**kwargs).to(device).eval().requires_grad_(False)
        G.set_channels_last({"auto": None, "on": True, "off": False}[args.channels_last])
        flops = generator_flops(G)
        z = torch.randn(batch, G.z_dim, device=device)
        c = torch.zeros(batch, 0, device=device)
        def run(fused=None):
            return lambda: G(z, c, noise_mode="const", fused_modconv=fused)

        with torch.inference_mode():
            ref = G(z, c, noise_mode="const", fused_modconv=True)
            out = G(z, c, noise_mode="const")
            contenders = [("ganforge (default path)", run(None), (out - ref).abs().max().item()),
                          ("ganforge grouped-conv path", run(True), 0.0)]
            if args.nvidia:
                NG = nvidia_generator(args.nvidia, kwargs, G.state_dict(), device)
                nv_out = NG(z, c, noise_mode="const", force_fp32=True)
                contenders.append(("NVIDIA stylegan2-ada-pytorch",
                                   lambda: NG(z, c, noise_mode="const", force_fp32=True),
                                   (out - nv_out).abs().max().item()))
            times = time_interleaved([fn for _, fn, _ in contenders], device, args.min_time)
            rows = [(label, t, diff) for (label, _, diff), t in zip(contenders, times)]
        print(f"\n{name}: batch {batch}, {flops / 1e9:.3f} GFLOP/image")
        base = rows[-1][1]
        for label, sec, diff in rows:
            ips = batch / sec
            rate = ips * flops
            print(f"  {label:30s} {ips:9.2f} img/s  {rate / 1e9:7.1f} GFLOP/s  {rate / mm:6.1%} of matmul  "
                  f"x{base / sec:5.2f} vs {rows[-1][0]}  max|diff| {diff:.2e}")


if __name__ == "__main__":
    main()
