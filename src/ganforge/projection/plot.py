"""The attribution figure (StyleGAN2 Fig. 10): histograms of D for generated and real images, drawn with
Pillow (matplotlib is an optional extra and not needed for this one plot)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = (640, 400)
MARGIN = (60, 30, 20, 50)  # left, top, right, bottom
COLOURS = {"generated": (31, 119, 180), "real": (255, 127, 14)}
BINS = 30


def histogram_png(generated, real, distance_name: str, threshold: float | None = None, auc: float | None = None) -> bytes:
    """PNG bytes: two outlined, translucent histograms over common bins (counts as fractions of each set)."""
    g, r = np.asarray(generated, float), np.asarray(real, float)
    lo, hi = float(min(g.min(), r.min())), float(max(g.max(), r.max()))
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, BINS + 1)
    hists = {k: np.histogram(v, edges)[0] / len(v) for k, v in (("generated", g), ("real", r))}
    top = max(h.max() for h in hists.values()) or 1.0
    img = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(img, "RGBA")
    font = ImageFont.load_default()
    left, up, right, bottom = MARGIN
    x0, x1, y0, y1 = left, SIZE[0] - right, SIZE[1] - bottom, up

    def px(v):
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    def py(f):
        return y0 - f / top * (y0 - y1)

    for name, h in hists.items():
        col = COLOURS[name]
        for i, f in enumerate(h):
            if f > 0:
                draw.rectangle([px(edges[i]), py(f), px(edges[i + 1]), y0], fill=col + (110,), outline=col + (255,))
    if threshold is not None and lo <= threshold <= hi:
        draw.line([px(threshold), y0, px(threshold), y1], fill=(200, 0, 0, 255), width=1)
    draw.line([x0, y0, x1, y0], fill="black")
    draw.line([x0, y0, x0, y1], fill="black")
    for v in np.linspace(lo, hi, 5):
        draw.line([px(v), y0, px(v), y0 + 4], fill="black")
        draw.text((px(v) - 15, y0 + 6), f"{v:.3g}", fill="black", font=font)
    for f in np.linspace(0, top, 5):
        draw.text((5, py(f) - 5), f"{f:.2f}", fill="black", font=font)
    draw.text((x0 + (x1 - x0) / 2 - 120, SIZE[1] - 18), f"distance to the reprojection ({distance_name})",
              fill="black", font=font)
    title = f"generated (n={len(g)}) vs real (n={len(r)})" + (f", ROC AUC {auc:.3f}" if auc is not None else "")
    draw.text((x0, 8), title, fill="black", font=font)
    for i, (name, col) in enumerate(COLOURS.items()):
        draw.rectangle([x1 - 110, y1 + 5 + 16 * i, x1 - 98, y1 + 15 + 16 * i], fill=col)
        draw.text((x1 - 92, y1 + 4 + 16 * i), name, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
