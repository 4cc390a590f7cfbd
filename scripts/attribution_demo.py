"""The StyleGAN2 paper's attribution effect (§5.1, Fig. 9-10) on the bundled demo model.

Projects N images the demo generates (seeds 0..N-1, class seed % 10, as `attribute --calibrate` does)
and N real Fashion-MNIST test images (the first N of the test split, prepared as the demo's training
data was: 28x28 put on a 32x32 black canvas, `--transform pad`), each with its own class (the generated
image's class, the real image's label), and reports both distance distributions and the ROC AUC.

    python scripts/attribution_demo.py [--n 20] [--steps 1000] [--space w] [--distance auto|pixel|lpips]

Needs the Debian package dataset-fashion-mnist. Not a test (minutes on a CPU).
"""

import argparse
import time

import numpy as np
import torch

import ganforge
from ganforge.data.sources import fashion_mnist_source
from ganforge.data.transforms import apply_transform
from ganforge.models.demo import demo_path
from ganforge.projection.attribution import generated_images, project_distances, roc_auc
from ganforge.projection.distance import resolve_distance


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--space", default="w")
    ap.add_argument("--distance", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    G = ganforge.load(demo_path()).G_ema
    dist, line = resolve_distance(a.distance)
    print(line)
    gen, gen_cls = generated_images(G, a.n)
    src = fashion_mnist_source("test")
    real = np.stack([np.asarray(apply_transform(it.load(), 32, "pad")[0])[None] for it in src.items[:a.n]])
    real_cls = [it.label for it in src.items[:a.n]]
    t0 = time.time()
    both = torch.cat([gen, torch.from_numpy(real)])
    d, _ = project_distances(G, both, gen_cls + real_cls, batch_size=a.batch, space=a.space, steps=a.steps,
                             distance=dist)
    dg, dr = d[:a.n], d[a.n:]
    q = [0, 0.25, 0.5, 0.75, 1]
    print(f"{a.n} generated + {a.n} real, {a.steps} steps, space {a.space}, {dist.name}, {time.time() - t0:.0f} s")
    print("generated D quantiles (min, 25%, median, 75%, max):", np.round(np.quantile(dg, q), 4).tolist())
    print("real      D quantiles (min, 25%, median, 75%, max):", np.round(np.quantile(dr, q), 4).tolist())
    print(f"generated mean {dg.mean():.4f} sd {dg.std():.4f}; real mean {dr.mean():.4f} sd {dr.std():.4f}")
    print(f"ROC AUC (real farther than generated) {roc_auc(dg, dr):.3f}; real above the generated max: "
          f"{np.mean(dr > dg.max()):.2f}")
    print("generated:", np.round(dg, 4).tolist())
    print("real:", np.round(dr, 4).tolist())


if __name__ == "__main__":
    main()
