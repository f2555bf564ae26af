"""Terminal rendering: horizontal bars, progress bars, durations and plain-text tables."""

from __future__ import annotations

import math
from collections.abc import Sequence

_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int, *, unicode: bool = True) -> str:
    """A horizontal bar ``width`` cells wide, filled to ``fraction`` (0..1); eighth-cell resolution in Unicode."""
    fraction = 0.0 if not math.isfinite(fraction) else min(1.0, max(0.0, fraction))
    if not unicode:
        filled = round(fraction * width)
        return "#" * filled + "." * (width - filled)
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[rest] if rest else "")
    return text + "░" * (width - len(text))


def progress(done: int, total: int, unit: str, width: int = 30, *, unicode: bool = True) -> str:
    """``[#######.......] 41/100 shards  41%``."""
    fraction = done / total if total > 0 else 0.0
    return f"[{bar(fraction, width, unicode=unicode)}] {done}/{total} {unit} {fraction:4.0%}"


def duration(seconds: float) -> str:
    """``59s``, ``12m 05s``, ``3h 07m``, ``2d 04h``."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> list[str]:
    """Columns padded to their widest cell; column indexes in ``right`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)]
        return "  ".join(padded).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]
