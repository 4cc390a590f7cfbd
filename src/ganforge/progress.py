"""When ganforge shows progress bars: one rule for every command and the training loop."""

from __future__ import annotations

import os
import sys


def progress_enabled(stream=None) -> bool:
    """Progress bars are drawn when `stream` (default stderr) is a terminal, or when the environment sets
    GANFORGE_PROGRESS=1 (a log file that wants them); GANFORGE_PROGRESS=0 turns them off. Read at each
    call, never at import."""
    forced = os.environ.get("GANFORGE_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


__all__ = ["progress_enabled"]
