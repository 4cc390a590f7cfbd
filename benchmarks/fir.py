"""The two implementations of ganforge's separable FIR (upfirdn2d with up=1), side by side.

    python benchmarks/fir.py [--threads 2] [--batch 32] [--channels 64] [--device cpu|cuda]

For the [1, 3, 3, 1] filter of StyleGAN2 at 4..32 px, two uses:
  pad   padding 2 on each side, no decimation (D's blur before a stride-2 conv; G's after a transposed conv)
  down  padding 1, decimation by 2 (downsample2d: D's skip path)
it times, in the same process and interleaved, forward alone under no_grad (what sampling runs) of
  shift-add   shifted multiply-adds along each axis (no autograd support)
  depthwise   one depthwise conv2d with the padding inside the convolution
as a ratio to shift-add, and forward + backward (what training runs) of the depthwise conv, the only
implementation used under autograd. ganforge.nn.resample._prefer_depthwise encodes the choice. (A
shift-and-add version with a hand-written adjoint measured 1.3-3x slower forward + backward here and
was removed.)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from ganforge.nn import resample  # noqa: E402


def _time(fn, device, min_time=0.3) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return dt / n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    f = resample.setup_filter([1, 3, 3, 1]).to(device)
    col, row = resample._cached_1d_taps(f, False)
    impls = {
        "shift-add": lambda x, pad, down: resample._fir_shift_add(x, col, row, pad, pad, pad, pad, down),
        "depthwise": lambda x, pad, down: resample._fir_depthwise(x, col, row, pad, pad, pad, pad, down),
    }
    print(f"batch {args.batch}, {args.channels} channels, {device}, threads={torch.get_num_threads()}; "
          "ms per call (median of interleaved repeats), ratio = time / shift-add")
    for res in (32, 16, 8, 4):
        for use, pad, down in (("pad", 2, 1), ("down", 1, 2)):
            x = torch.randn(args.batch, args.channels, res, res, device=device)
            xg = x.clone().requires_grad_(True)
            ref = impls["shift-add"](x, pad, down)
            out = impls["depthwise"](x, pad, down)
            err = (out - ref).abs().max().item()
            times = {k: [] for k in (*impls, "depthwise fwd+bwd")}
            for _ in range(args.repeats):
                for name, fn in impls.items():
                    def infer_call(fn=fn):
                        with torch.no_grad():
                            fn(x, pad, down)

                    times[name].append(_time(infer_call, device))

                def train_call():
                    y = impls["depthwise"](xg, pad, down)
                    y.backward(torch.ones_like(y))

                times["depthwise fwd+bwd"].append(_time(train_call, device))
            med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
            line = "  ".join(f"no-grad {name} {med[name]:6.3f} ms ({med[name] / med['shift-add']:.2f}x)"
                             for name in impls)
            print(f"{res:3d}px {use:4s} max|diff| {err:.1e}  {line}  depthwise fwd+bwd "
                  f"{med['depthwise fwd+bwd']:6.3f} ms")


if __name__ == "__main__":
    main()
