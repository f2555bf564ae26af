"""Terminal rendering, done by ``rich``: a console per output stream, tables, bar charts, progress bars.

:func:`console` binds a :class:`rich.console.Console` to a stream. To a terminal it writes colour and, for
``status --watch``, redraws in place (:class:`rich.live.Live`). To anything else (a pipe, a file, CI's log, a
test's buffer) rich writes plain text: no ANSI escape sequence, no colour, and here no wrapping at 80 columns
either, so a line can be grepped whole. rich's own switches apply (``NO_COLOR``, ``FORCE_COLOR``,
``TTY_COMPATIBLE``, ``COLUMNS``); :func:`plain` renders anything the CLI draws as that plain text.

What is left hand-written here is a format, not a drawing: :func:`duration`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from typing import TextIO

from rich import box
from rich.bar import Bar
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.progress_bar import ProgressBar
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

# Width of plain output: wide enough that rich never wraps a line (an ARN, a URL, a table row) for a pipe.
PLAIN_WIDTH = 1_000
BAR_STYLE = "cyan"
BAR_BACKGROUND = "grey23"


def console(stream: TextIO, *, terminal: bool | None = None) -> Console:
    """A rich console writing to ``stream``: a terminal's width and colours, or plain text.

    ``terminal`` overrides rich's detection (``stream.isatty()`` and the environment). Markup, emoji codes and
    highlighting are off: every string is printed as given (``[x]`` stays ``[x]``).
    """
    result = Console(file=stream, force_terminal=terminal, markup=False, emoji=False, highlight=False)
    if not result.is_terminal:
        result.width = PLAIN_WIDTH
    return result


def show(target: Console, *renderables: RenderableType) -> None:
    """Print with rich; to a non-terminal, rich's plain rendering without the blanks that pad a line's end."""
    if target.is_terminal:
        target.print(*renderables)
        return
    with target.capture() as captured:
        target.print(*renderables)
    target.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    target.file.flush()


def plain(*renderables: RenderableType) -> str:
    """What ``renderables`` print to a pipe (a non-terminal console): plain text."""
    buffer = io.StringIO()
    show(console(buffer, terminal=False), *renderables)
    return buffer.getvalue()


def lines(texts: Iterable[str | Text]) -> list[Text]:
    """Strings as rich texts: printed as given (never read as markup) whatever console prints them."""
    return [t if isinstance(t, Text) else Text(t) for t in texts]


class FractionBar:
    """A bar ``width`` cells wide filled to ``fraction`` (0..1): rich's block :class:`~rich.bar.Bar` (eighth-cell
    resolution), or rich's ASCII :class:`~rich.progress_bar.ProgressBar` where the output cannot encode blocks."""

    def __init__(self, fraction: float, width: int) -> None:
        self.fraction = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
        self.width = width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if options.ascii_only:
            yield ProgressBar(total=1.0, completed=self.fraction, width=self.width)
            yield Segment.line()
        else:
            yield Bar(1.0, 0.0, self.fraction, width=self.width, color=BAR_STYLE, bgcolor=BAR_BACKGROUND)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


def progress(done: int, total: int, unit: str, width: int = 30, *, suffix: str = "") -> Table:
    """rich's progress bar, then ``41/100 shards  41%`` and ``suffix``."""
    fraction = done / total if total > 0 else 0.0
    row = Table.grid(padding=(0, 1))
    row.add_row(
        ProgressBar(total=max(total, 1), completed=done, width=width, complete_style=BAR_STYLE),
        f"{done}/{total} {unit} {fraction:4.0%}{suffix}",
    )
    return row


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> Table:
    """A rich table with a rule under the header; column indexes in ``right`` are right-aligned (numbers).

    On a narrow terminal rich wraps the text columns; a long model id breaks across lines, never cut short.
    """
    result = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, header_style="bold")
    for index, header in enumerate(headers):
        numeric = index in right
        result.add_column(header, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold")
    for row in rows:
        result.add_row(*row)
    return result


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
