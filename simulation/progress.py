"""Live progress of a simulated execution: current state, shards labeled, candidates evaluated, elapsed time.

While moto's interpreter runs the execution in its background thread, :meth:`Progress.update` (called on each
poll of ``DescribeExecution``) reads the execution history and the data bucket:

* a line per finished Task/Map state, with its duration and what it did;
* a progress bar (:class:`rich.progress.Progress`) with the current top-level state, shards labeled / total
  (``tmp/<run>/labeled/*.stats.json`` against ``tmp/<run>/plan/shard-*.json``), candidates evaluated
  (``runs/<run>/evaluation/*/metrics.json``), the simulated models' answers so far and the elapsed time. On a
  terminal rich redraws it in place under the finished states' lines; otherwise (CI, a pipe) the same row is
  printed as a plain line whenever the state or a count changes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TextIO

from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as ProgressDisplay
from rich.text import Text

from cli.text import BAR_STYLE, console, show

BAR_WIDTH: Final = 24
REFRESH_S: Final = 0.25

# Where each top-level state starts on the bar (percent); LabelShards and EvaluateCandidates fill their span
# as shards and candidates complete.
MILESTONES: Final[Mapping[str, int]] = {
    "ReadInput": 0,
    "Preflight": 1,
    "PlanQueries": 3,
    "IsBatchLabeling": 6,
    "LabelShards": 6,
    "StartBatchLabeling": 6,
    "WaitForBatchLabeling": 8,
    "CheckBatchLabeling": 8,
    "IsBatchLabelingDone": 8,
    "CollectBatchLabels": 50,
    "PrepareDataset": 56,
    "IsMicroRouterEnabled": 57,
    "TrainMicroRouter": 57,
    "MicroRouterSkipped": 57,
    "MicroRouterFailed": 57,
    "StartDistillation": 59,
    "WaitForDistillation": 61,
    "CheckDistillation": 61,
    "IsDistillationDone": 61,
    "StartDeployment": 66,
    "WaitForDeployment": 68,
    "CheckDeployment": 68,
    "IsDeploymentActive": 68,
    "RecordOutputs": 72,
    "EvaluateCandidates": 74,
    "ShadowReplay": 89,
    "ShadowFailed": 90,
    "IsJudgeEnabled": 90,
    "StartJudge": 90,
    "WaitForJudge": 92,
    "CheckJudge": 92,
    "IsJudgeDone": 92,
    "JudgeSkipped": 92,
    "Report": 94,
    "QualityGate": 97,
    "Promote": 97,
    "Reject": 97,
    "NotifySuccess": 99,
}
SPANS: Final[Mapping[str, int]] = {"LabelShards": 50, "EvaluateCandidates": 15}

DONE: Final[Mapping[str, str]] = {
    "Preflight": "input validated, models found in the (simulated) Bedrock catalog",
    "PlanQueries": "queries synthesized and split into shards",
    "LabelShards": "every shard labeled by the simulated teacher",
    "StartBatchLabeling": "batch labeling job submitted (simulated Bedrock)",
    "CheckBatchLabeling": "batch labeling job polled",
    "CollectBatchLabels": "batch labels read into the shards",
    "PrepareDataset": "training file, held-out set and manifest written",
    "TrainMicroRouter": "micro-router trained on the training file, held-out set predicted",
    "StartDistillation": "distillation job submitted (simulated Bedrock)",
    "CheckDistillation": "distillation job polled",
    "StartDeployment": "on-demand deployment of the distilled model requested (simulated)",
    "CheckDeployment": "deployment polled",
    "RecordOutputs": "run outputs recorded",
    "EvaluateCandidates": "every candidate answered the held-out queries",
    "ShadowReplay": "production held-out queries replayed against the model in service (skipped without any)",
    "StartJudge": "LLM-judge jobs started (simulated: the deterministic rubric)",
    "CheckJudge": "judge jobs polled",
    "Report": "report, charts and quality-gate decision written",
    "Promote": "quality gate passed: the router's model parameter now names the distilled deployment",
    "Reject": "quality gate failed: the router keeps its model",
    "NotifySuccess": "run outcome published (SNS, in moto)",
}


@dataclass
class Counts:
    shards_total: int = 0
    shards_labeled: int = 0
    candidates_total: int = 0
    candidates_done: int = 0
    answers: int = 0


class Progress:
    """Renders the progress of one execution to ``stream``, with rich.

    ``read_counts`` returns the current :class:`Counts` (S3 and the simulated models); ``history`` the execution
    history so far; ``top_level`` names the top-level states of the definition (inner Map states are not shown).
    ``interactive`` overrides whether ``stream`` is a terminal (rich decides by default).
    """

    def __init__(
        self,
        *,
        history: Callable[[], list[dict[str, Any]]],
        read_counts: Callable[[], Counts],
        top_level: Mapping[str, str],
        stream: TextIO | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._history = history
        self._read_counts = read_counts
        self._top_level = dict(top_level)  # name -> Type
        self._console = console(stream or sys.stdout, terminal=interactive)
        self._interactive = self._console.is_terminal
        self._clock = clock
        self._started = clock()
        self._last_refresh = float("-inf")
        self._seen_events = 0
        self._entered: dict[str, datetime] = {}
        self._state = "starting"
        self._percent = 0.0
        self._last_key: tuple[Any, ...] | None = None
        self.counts = Counts()
        self._display = ProgressDisplay(
            BarColumn(bar_width=BAR_WIDTH, complete_style=BAR_STYLE, finished_style="green"),
            TextColumn("{task.percentage:3.0f}%", markup=False),
            TextColumn("{task.fields[state]:<18}", markup=False),
            TextColumn("{task.fields[details]}", markup=False),
            console=self._console,
            auto_refresh=False,  # redrawn at each update: the polls set the pace
            redirect_stdout=False,
            redirect_stderr=False,
            get_time=clock,
        )
        self._task = self._display.add_task("execution", total=100, state=self._state, details="")
        self._live = False

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    # ----------------------------------------------------------------------------------------------- updates
    def update(self, description: Mapping[str, Any], *, force: bool = False) -> None:
        """Refresh from the execution's history and the bucket (at most every :data:`REFRESH_S`)."""
        now = self._clock()
        if not force and now - self._last_refresh < REFRESH_S:
            return
        self._last_refresh = now
        try:
            events = self._history()
            self.counts = self._read_counts()
        except Exception:  # moto is mid-write: keep the last known state, try again at the next poll
            return
        for event in events[self._seen_events :]:
            self._on_event(event)
        self._seen_events = len(events)
        if description.get("status") not in (None, "RUNNING"):
            self._state = str(description["status"])
            self._percent = 100.0 if self._state == "SUCCEEDED" else self._percent
        self._draw_bar()

    def finish(self, description: Mapping[str, Any]) -> None:
        """The last refresh; on a terminal the bar stays on the screen, on its own line."""
        self.update(description, force=True)
        self.stop()

    def stop(self) -> None:
        """End rich's live display (the cursor shows again); the bar stays as last drawn. Idempotent."""
        if self._live:
            self._display.stop()
            self._live = False

    def _on_event(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if "stateEnteredEventDetails" in event:
            name = event["stateEnteredEventDetails"]["name"]
            if name in self._top_level:
                self._entered[name] = event["timestamp"]
                self._state = name
                self._percent = max(self._percent, float(MILESTONES.get(name, self._percent)))
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            if name in self._top_level and self._top_level[name] in ("Task", "Map"):
                started = self._entered.get(name)
                seconds = (event["timestamp"] - started).total_seconds() if started else 0.0
                self._line("✓", "green", f"{name:<19} {seconds:6.2f} s  {DONE.get(name, '')}")
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            details = event.get("executionFailedEventDetails") or {}
            self._line("✗", "bold red", f"{kind}: {details.get('error', '')} {str(details.get('cause', ''))[:300]}")

    # ------------------------------------------------------------------------------------------------- drawing
    def _fraction_in_state(self) -> float:
        counts = self.counts
        if self._state == "LabelShards" and counts.shards_total:
            return counts.shards_labeled / counts.shards_total
        if self._state == "EvaluateCandidates" and counts.candidates_total:
            return counts.candidates_done / counts.candidates_total
        return 0.0

    def _details(self) -> str:
        counts = self.counts
        details = []
        if counts.shards_total:
            details.append(f"shards {counts.shards_labeled}/{counts.shards_total} labeled")
        if counts.candidates_total and counts.candidates_done:
            details.append(f"candidates {counts.candidates_done}/{counts.candidates_total} evaluated")
        details.append(f"{counts.answers:,} model answers")
        details.append(f"{self.elapsed_s:5.1f} s")
        return " · ".join(details)

    def _draw_bar(self) -> None:
        span = SPANS.get(self._state, 0)
        percent = max(self._percent, MILESTONES.get(self._state, 0) + span * self._fraction_in_state())
        self._percent = min(100.0, percent)
        self._display.update(self._task, completed=self._percent, state=self._state, details=self._details())
        if self._interactive:  # rich's live display: redrawn in place, never wider than the terminal
            if not self._live:
                self._display.start()
                self._live = True
            self._display.refresh()
            return
        counts = self.counts
        key = (self._state, counts.shards_labeled, counts.shards_total, counts.candidates_done)
        if key != self._last_key:
            self._last_key = key
            show(self._console, self._display.get_renderable())

    def _line(self, mark: str, style: str, text: str) -> None:
        """A line above the bar (rich keeps the live bar below what is printed)."""
        show(self._console, Text.assemble("  ", (mark, style), " ", text))
