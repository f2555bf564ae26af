"""The live progress of ``make simulate`` (:mod:`simulation.progress`), drawn by rich: redrawn in place on a
terminal, a plain line per change anywhere else."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulation.progress import REFRESH_S, Counts, Progress

T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
TOP_LEVEL = {"ReadInput": "Pass", "PlanQueries": "Task", "LabelShards": "Map", "PrepareDataset": "Task"}
BAR_LINE = re.compile(r"^[━╸]* +(\d+)% (\S+) +(.*) · +[\d.]+ s$")


class Execution:
    """A history that grows and the counts S3 would give, as the runner's callbacks read them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.counts = Counts()
        self.now = 0.0

    def state(self, kind: str, name: str, seconds: float, *, entered: bool) -> None:
        key = "stateEnteredEventDetails" if entered else "stateExitedEventDetails"
        suffix = "Entered" if entered else "Exited"
        self.events.append(
            {"type": f"{kind}State{suffix}", "timestamp": T0 + timedelta(seconds=seconds), key: {"name": name}}
        )

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds


def progress_of(execution: Execution, out: io.StringIO, *, interactive: bool | None = None) -> Progress:
    return Progress(
        history=lambda: list(execution.events),
        read_counts=lambda: execution.counts,
        top_level=TOP_LEVEL,
        stream=out,
        interactive=interactive,
        clock=lambda: execution.now,
    )


def run(execution: Execution, progress: Progress) -> None:
    """PlanQueries, then LabelShards shard by shard (with polls that see nothing new), then the end."""
    running = {"status": "RUNNING"}
    execution.state("Task", "PlanQueries", 0, entered=True)
    progress.update(running)
    execution.state("Task", "PlanQueries", 2, entered=False)
    execution.state("Map", "LabelShards", 2, entered=True)
    execution.counts = Counts(shards_total=4, answers=10)
    execution.tick()
    progress.update(running)
    for labeled in (1, 1, 2, 4):  # a poll that sees the same count prints nothing new
        execution.counts = Counts(shards_total=4, shards_labeled=labeled, answers=10 * labeled)
        execution.tick(REFRESH_S / 2)
        progress.update(running)  # too soon after the last refresh: nothing is read
        execution.tick(REFRESH_S)
        progress.update(running)
    execution.state("Map", "LabelShards", 9, entered=False)
    execution.tick()
    progress.finish({"status": "SUCCEEDED"})


def test_to_a_pipe_each_change_is_one_plain_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    execution, out = Execution(), io.StringIO()
    run(execution, progress_of(execution, out))
    text = out.getvalue()

    # Plain text: no escape sequence, no carriage return redrawing a line
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert "  ✓ PlanQueries           2.00 s  queries synthesized and split into shards" in lines
    assert "  ✓ LabelShards           7.00 s  every shard labeled by the simulated teacher" in lines
    # and one bar line per change of state or count, in order, never one per poll
    bars = [match.groups() for line in lines if (match := BAR_LINE.match(line))]
    assert [(int(percent), state) for percent, state, _ in bars] == [
        (3, "PlanQueries"),
        (6, "LabelShards"),
        (18, "LabelShards"),
        (31, "LabelShards"),
        (56, "LabelShards"),
        (100, "SUCCEEDED"),
    ]
    assert [details.split(" · ")[0] for _, _, details in bars[1:]] == [
        "shards 0/4 labeled",
        "shards 1/4 labeled",
        "shards 2/4 labeled",
        "shards 4/4 labeled",
        "shards 4/4 labeled",
    ]
    assert all(BAR_LINE.match(line) or line.startswith("  ✓ ") for line in lines)


def test_on_a_terminal_rich_redraws_the_bar_in_place_under_the_finished_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # a terminal wide enough for the whole row
    execution, out = Execution(), io.StringIO()
    progress = progress_of(execution, out, interactive=True)
    run(execution, progress)
    progress.stop()  # what the runner does in any case: a second stop draws nothing
    text = out.getvalue()

    # rich's live display: the cursor hidden while it runs, the bar erased and redrawn, the cursor back at the end
    assert text.startswith("\x1b[?25l") and text.endswith("\x1b[?25h")
    assert text.count("\r\x1b[2K") >= 5
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "\n")
    assert "✓ PlanQueries" in screen and "✓ LabelShards" in screen
    # and the last drawing of the bar stays on the screen, full
    assert re.search(r"━{24} 100% SUCCEEDED +shards 4/4 labeled", screen)
