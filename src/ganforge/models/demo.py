"""The demo model shipped inside the package (trained on the bundled Fashion-MNIST subset)."""

from __future__ import annotations

import os

DEMO_DIR = os.path.join(os.path.dirname(__file__), "demo")


def demo_path() -> str | None:
    """Path of the bundled demo checkpoint, or None when this install has none."""
    return DEMO_DIR if os.path.isfile(os.path.join(DEMO_DIR, "config.json")) else None
