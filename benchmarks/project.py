"""Projection speed: seconds per projector step, ganforge versus NVIDIA's projector logic.

    python benchmarks/project.py                                        # ganforge alone, CPU
    python benchmarks/project.py --nvidia /path/to/stylegan2-ada-pytorch  # side by side with their project()
    python benchmarks/project.py --configs demo32 --device cuda

Configs: demo32 = the bundled demo (32 px, 1 channel, conditional; class 0), f256 = config F at 256 px
with random weights. Both projectors run in this process on the same network weights (NVIDIA's
training.networks.Generator gets ganforge's state dict, as benchmarks/generate.py does) and the same
distance network:
  * lpips: ganforge's VGG16 + LPIPS heads with random weights (no VGG16 weights exist on these machines),
    handed to NVIDIA's project() in place of their TorchScript vgg16.pt (their download and
    torch.jit.load are patched to return it), and used by ganforge as its LPIPS Distance;
  * mse: a parameter-free "embedding" x/255 flattened, i.e. the sum of squared pixel differences, for
    both: it isolates the generator's forward/backward and the optimiser bookkeeping from the VGG cost.
NVIDIA's project() is imported from the checkout (never copied). For their conditional-network gap
(G.mapping(z, None)), the demo's mapping gets class 0 bound in (the same class ganforge projects with).
Seconds per step = (T(s2) - T(s1)) / (s2 - s1) of whole project() calls, which cancels the set-up (w
statistics from the same number of samples, --w-samples, for both; their deep copy of G); the two
contenders run alternately, --repeats times, and the median is taken. Both use W space, batch 1.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import ganforge
from ganforge.metrics.vgg import LPIPS_CHANNELS, VGG16, LPIPSHeads
from ganforge.models.demo import demo_path
from ganforge.models.stylegan2 import Generator
from ganforge.projection.distance import Distance
from ganforge.projection.projector import project

F256 = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, mapping_kwargs=dict(num_layers=8),
            synthesis_kwargs=dict(channel_base=32768, channel_max=512))


class PixelEmbedding(torch.nn.Module):
    """NVIDIA's vgg16.pt call convention with e(x) = x / 255 flattened: ||e(x) - e(y)||^2 = SSE / 255^2."""

    def forward(self, images, resize_images=False, return_lpips=True):
        return images.to(torch.float32).flatten(1) / 255


def random_lpips_vgg(seed=0):
    g = torch.Generator().manual_seed(seed)
    net = VGG16(with_classifier=False)
    with torch.no_grad():
        for k, v in net.state_dict().items():
            fan_in = math.prod(v.shape[1:]) if v.ndim > 1 else 1
            v.copy_(torch.randn(v.shape, generator=g) * (math.sqrt(2 / fan_in) if k.endswith("weight") else 0.01))
        heads = LPIPSHeads()
        for i, c in enumerate(LPIPS_CHANNELS):
            getattr(heads, f"lin{i}").model[1].weight.copy_(torch.rand(1, c, 1, 1, generator=g))
    net.lpips = heads
    return net.eval().requires_grad_(False)


def nvidia_projector(path):
    sys.path.insert(0, path)
    import dnnlib  # noqa: F401  their package
    import projector  # their projector.py

    return projector


@contextlib.contextmanager
def nvidia_vgg(projector_mod, net):
    """Make their `dnnlib.util.open_url(vgg16 url)` + `torch.jit.load(f)` yield `net`."""
    util = projector_mod.dnnlib.util
    old_open, old_load = util.open_url, torch.jit.load
    util.open_url = lambda url, *a, **k: contextlib.nullcontext(None)
    torch.jit.load = lambda f, *a, **k: net
    try:
        yield
    finally:
        util.open_url, torch.jit.load = old_open, old_load


def build(config, device):
    if config == "demo32":
        G = ganforge.load(demo_path()).G_ema
        kwargs = G.init_kwargs
    else:
        torch.manual_seed(0)
        G = Generator(**F256)
        kwargs = F256
    return G.to(device).eval(), kwargs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="demo32,f256")
    p.add_argument("--distances", default="lpips,mse")
    p.add_argument("--device", default="cpu")
    p.add_argument("--nvidia", default=os.environ.get("NVIDIA_SG2ADA"), help="a stylegan2-ada-pytorch checkout")
    p.add_argument("--steps", default=None, help="s1,s2 (default 5,25 for demo32, 2,5 for f256)")
    p.add_argument("--w-samples", type=int, default=1000, help="w statistics samples, both (NVIDIA: 10000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    nv = nvidia_projector(args.nvidia) if args.nvidia else None
    for config in args.configs.split(","):
        G, kwargs = build(config, device)
        NG = None
        if nv is not None:
            from training import networks

            NG = networks.Generator(**kwargs).to(device).eval().requires_grad_(False)
            NG.load_state_dict(G.state_dict(), strict=True)
            if NG.c_dim:
                c0 = torch.zeros([1, NG.c_dim], device=device)
                c0[0, 0] = 1
                orig = NG.mapping.forward
                NG.mapping.forward = lambda z, c, _o=orig, _c=c0, **kw: _o(z, _c.expand(len(z), -1), **kw)
        s1, s2 = map(int, (args.steps or ("5,25" if config == "demo32" else "2,5")).split(","))
        with torch.no_grad():
            c = torch.zeros([1, G.c_dim], device=device)
            if G.c_dim:
                c[0, 0] = 1
            target = ((G(torch.randn(1, G.z_dim, device=device), c, noise_mode="const") + 1) * 127.5).clamp(0, 255)
        for dname in args.distances.split(","):
            net = (random_lpips_vgg() if dname == "lpips" else PixelEmbedding()).to(device)
            dist = Distance(f"{dname} (benchmark)", net=net)
            cls = 0 if G.c_dim else None

            def ours(steps):
                project(G, target, steps=steps, class_idx=cls, distance=dist, device=device,
                        w_avg_samples=args.w_samples)

            def theirs(steps):
                with nvidia_vgg(nv, net):
                    nv.project(NG, target[0], num_steps=steps, w_avg_samples=args.w_samples, device=device)

            contenders = [("ganforge", ours)] + ([("NVIDIA project()", theirs)] if NG is not None else [])
            per_step = {name: [] for name, _ in contenders}
            for name, fn in contenders:  # warm-up
                fn(1)
            for _ in range(args.repeats):
                for name, fn in contenders:
                    t = []
                    for s in (s1, s2):
                        if device.type == "cuda":
                            torch.cuda.synchronize()
                        t0 = time.perf_counter()
                        fn(s)
                        if device.type == "cuda":
                            torch.cuda.synchronize()
                        t.append(time.perf_counter() - t0)
                    per_step[name].append((t[1] - t[0]) / (s2 - s1))
            parity = ""
            if NG is not None:  # same seed, same distance: the same w after s1 steps (float tolerance)
                w_ours = project(G, target, steps=s1, seed=303, class_idx=cls, distance=dist, device=device,
                                 w_avg_samples=args.w_samples).w
                torch.manual_seed(303)
                with nvidia_vgg(nv, net):
                    w_nv = nv.project(NG, target[0], num_steps=s1, w_avg_samples=args.w_samples, device=device)[-1]
                parity = f", max|w_ganforge - w_NVIDIA| after {s1} steps {(w_ours[0] - w_nv.cpu()).abs().max():.2e}"
            med = {k: sorted(v)[len(v) // 2] for k, v in per_step.items()}
            base = med.get("NVIDIA project()", med["ganforge"])
            print(f"\n{config} ({G.img_resolution} px, {G.img_channels} ch), distance {dname}, steps {s1}->{s2}, "
                  f"median of {args.repeats}{parity}")
            for k, v in med.items():
                print(f"  {k:18s} {v * 1e3:9.1f} ms/step   x{base / v:5.2f} vs NVIDIA" if NG is not None else
                      f"  {k:18s} {v * 1e3:9.1f} ms/step")


if __name__ == "__main__":
    main()
