"""ganforge project: find the latent of a target image (NVIDIA projector.py; W or W+).

    ganforge project --network N --target img.png [--target more.png ...] --space w|w+ --steps 1000
                     --outdir DIR [--seed 303] [--class K] [--save-video]

Writes target.png and proj.png (target00.png, proj00.png, ... for several targets), projected_w.npz
(key w, [N, num_ws, w_dim]: `ganforge generate --projected-w` renders proj.png from it), noise.npz (the
optimised noise maps, [N, r, r] per buffer name), projection.json (the final distances and the
distance's name) and, with --save-video, proj.mp4 (target | projection per step, 10 fps).
proj.png is rendered as NVIDIA does, from w with the network's own stored noise; projection.json gives
both the distance with the optimised noise (the projector's objective) and that of proj.png.
Everything is checked before the projection starts; a mistake is one line, exit 2, nothing written.
"""

from __future__ import annotations

import io
import json

from ganforge.cli.common import add_network_args, class_index, load_checkpoint, progress
from ganforge.errors import UsageError
from ganforge.projection import schedule as S

NAME = "project"
HELP = "project target images into W or W+ (NVIDIA's projector; LPIPS or a stated pixel distance)"
VIDEO_FPS = 10  # NVIDIA projector.py proj.mp4


def add_distance_args(p):
    p.add_argument("--distance", choices=["auto", "lpips", "pixel"], default="auto",
                   help="lpips: LPIPS-VGG16 (needs the VGG16 and LPIPS weights); pixel: MSE + multi-scale SSIM; "
                        "auto (default): lpips when its weights are found, else pixel (says so)")
    p.add_argument("--detector", action="append", default=[], metavar="PATH",
                   help="a VGG16 / LPIPS weight file (repeatable), as for `ganforge metrics`")
    p.add_argument("--detector-dir", action="append", default=[], metavar="DIR",
                   help="a directory holding the weight files under their standard names")
    p.add_argument("--no-verify-detector", action="store_true",
                   help="use weight files whose SHA-256 is not the published one")


def add_projection_args(p, steps_default=S.NUM_STEPS):
    p.add_argument("--space", choices=["w", "w+"], default="w",
                   help="w: one w for every layer (NVIDIA, default); w+: one w per layer (rosinality --w_plus)")
    p.add_argument("--steps", type=int, default=steps_default, help=f"optimisation steps (default {steps_default})")
    p.add_argument("--seed", type=int, default=S.DEFAULT_SEED, help="seed of the noise maps and latent noise (303)")
    p.add_argument("--class", dest="class_idx", default=None, metavar="K", help="class of a conditional network")
    add_distance_args(p)


def pick_distance(args, device):
    from ganforge.metrics.detectors import DetectorOptions
    from ganforge.projection.distance import resolve_distance

    opts = DetectorOptions(files=list(args.detector), dirs=list(args.detector_dir), verify=not args.no_verify_detector)
    return resolve_distance(args.distance, opts, device)


def add_arguments(p):
    add_network_args(p)
    p.add_argument("--target", action="append", default=[], metavar="FILE",
                   help="target image (repeatable: several targets are projected as one batch)")
    add_projection_args(p)
    p.add_argument("--save-video", action="store_true", help="also write proj.mp4 (target | projection per step)")
    p.add_argument("--outdir", default="out", help="output directory (default ./out)")


def _npz(arrays) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def run(args):
    from ganforge.projection.projector import (
        check_projectable,
        check_steps,
        target_classes,
    )
    from ganforge.projection.targets import check_target_path, load_targets
    from ganforge.synthesis.images import check_outdir

    if not args.target:
        raise UsageError("give at least one --target image")
    check_steps(args.steps)
    for t in args.target:
        check_target_path(t)
    check_outdir(args.outdir)
    ckpt = load_checkpoint(args)
    G = ckpt.G_ema
    check_projectable(G)
    classes = target_classes(G, class_index(args.class_idx, G), len(args.target))
    targets, notes = load_targets(args.target, G.img_resolution, G.img_channels)
    device = next(G.parameters()).device
    distance, line = pick_distance(args, device)
    print(line)
    for note in notes:
        print(note)

    import torch

    from ganforge.projection.projector import project

    with progress(args.steps, f"project ({args.space})", unit="step") as bar:
        res = project(G, torch.from_numpy(targets), space=args.space, steps=args.steps, seed=args.seed,
                      class_idx=classes, distance=distance, device=device, progress=bar,
                      return_steps=args.save_video)
    paths = write_outputs(G, args, targets, res, device)
    d = ", ".join(f"{x:.4g}" for x in res.distance.tolist())
    print(f"projected {len(targets)} target(s) into {args.space} in {args.steps} steps: distance {d} "
          f"({res.distance_name}); wrote {', '.join(paths)}")


def write_outputs(G, args, targets, res, device) -> list[str]:
    import numpy as np
    import torch

    from ganforge.models.latents import to_uint8
    from ganforge.synthesis.images import encode_png, to_hwc, write_files

    n = len(targets)
    with torch.no_grad():
        proj = to_uint8(G.synthesis(res.w.to(device), noise_mode="const")).cpu()
    video = None
    if args.save_video:
        import os

        from ganforge.synthesis.interpolate import write_video

        def frames():
            for w in res.w_steps:
                with torch.no_grad():
                    img = to_uint8(G.synthesis(w.to(device), noise_mode="const")).cpu().numpy()
                rows = [np.concatenate([targets[i], img[i]], axis=2) for i in range(n)]  # [C, R, 2R]
                frame = np.concatenate(rows, axis=1).transpose(1, 2, 0)
                yield np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame

        os.makedirs(args.outdir, exist_ok=True)
        video = write_video(frames(), os.path.join(args.outdir, "proj.mp4"), fps=VIDEO_FPS, total=len(res.w_steps))
    names = (["target.png"], ["proj.png"]) if n == 1 else ([f"target{i:02d}.png" for i in range(n)],
                                                          [f"proj{i:02d}.png" for i in range(n)])
    summary = {
        "distance_name": res.distance_name,
        "distance": res.distance.tolist(),
        "distance_stored_noise": res.distance_stored_noise.tolist(),
        "loss": res.loss.tolist(),
        "space": res.space, "steps": res.steps, "seed": args.seed, "class": res.class_idx,
        "targets": list(args.target), "network": args.network or "demo",
        "note": "distance: with the optimised noise maps (noise.npz); distance_stored_noise: proj.png, rendered "
                "from projected_w.npz with the network's own noise as `ganforge generate --projected-w` does",
    }

    def files():
        for i in range(n):
            yield names[0][i], encode_png(to_hwc(targets[i]))
            yield names[1][i], encode_png(to_hwc(proj[i]))
        yield "projected_w.npz", _npz({"w": res.w.numpy().astype(np.float32)})
        yield "noise.npz", _npz({k: v.numpy() for k, v in res.noise.items()})
        yield "projection.json", (json.dumps(summary, indent=1) + "\n").encode()

    paths = write_files(args.outdir, files())
    return paths + ([video] if video else [])
