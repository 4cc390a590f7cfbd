"""Parsing of the number lists people type: seeds '0-35,100', layer ranges '0-6', grids '4x2'."""

from __future__ import annotations

from ganforge.errors import UsageError


def parse_range(text: str, what: str = "seeds", max_value: int = 2 ** 32 - 1) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]. Ranges are inclusive, like NVIDIA's tools."""
    out: list[int] = []
    text = (text or "").strip()
    if not text:
        raise UsageError(f"--{what} is empty; give numbers like 0-35,100")
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
                if hi < lo:
                    raise UsageError(f"--{what}: range {part!r} runs backwards; write it as {hi}-{lo}")
                if hi - lo > 1_000_000:
                    raise UsageError(f"--{what}: range {part!r} is too long (over a million values)")
                values = range(lo, hi + 1)
            else:
                values = [int(part)]
        except ValueError:
            raise UsageError(f"--{what}: {part!r} is not a number or a range like 0-35") from None
        for v in values:
            if not 0 <= v <= max_value:
                raise UsageError(f"--{what}: {v} is out of range 0..{max_value}")
            out.append(v)
    return out


def parse_grid(text: str) -> tuple[int, int]:
    """'ROWSxCOLS' -> (rows, cols): '2x4' is 2 rows of 4 images."""
    try:
        r, c = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--grid {text!r}: write it as ROWSxCOLS, e.g. 4x8") from None
    if r < 1 or c < 1:
        raise UsageError(f"--grid {text!r}: rows and columns must be at least 1")
    return r, c
