"""``status``: where a pipeline run is, from its execution history and the run's objects in S3.

One :class:`Snapshot` = ``DescribeExecution`` + ``GetExecutionHistory`` (+ while labeling, a count of the
shards' ``tmp/<run>/labeled/*.stats.json`` against ``runs/<run>/dataset/plan.json``). The history is read as
the pipeline's phases (:data:`PHASES`, named after the states of ``stepfunctions/pipeline.asl.json``); what
each phase shows comes from its states' outputs (``StateExited`` events), e.g. the latest
``CheckDistillation`` output gives the distillation job's sub-status.

``--watch`` shows a new snapshot every ``--interval`` seconds until the execution ends: on a terminal rich redraws
it in place (:class:`rich.live.Live`); to a pipe or a file each snapshot is printed after a timestamp line. The
clock, ``sleep`` and the output stream come from :class:`cli.app.Terminal`, so a test drives it without waiting.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Group, RenderableType
from rich.live import Live
from rich.padding import Padding
from rich.style import Style
from rich.table import Table
from rich.text import Text

from cli.app import App
from cli.console import execution_url
from cli.errors import EXIT_OK, EXIT_RUN_FAILED, UsageError
from cli.runs import resolve_execution
from cli.text import duration, progress
from search_router.contract.layout import STATS_SUFFIX, RunLayout
from search_router.contract.run import run_id_from_execution

MIN_INTERVAL_S = 5.0
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")
_LABEL_MAP = "LabelShards"
_EVALUATE_MAP = "EvaluateCandidates"


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    states: tuple[str, ...]


PHASES: tuple[Phase, ...] = (
    Phase("preflight", "Preflight", ("ReadInput", "Preflight")),
    Phase("plan", "Plan queries", ("PlanQueries",)),
    Phase(
        "label",
        "Label with the teacher",
        (
            "IsBatchLabeling",
            _LABEL_MAP,
            "StartBatchLabeling",
            "WaitForBatchLabeling",
            "CheckBatchLabeling",
            "IsBatchLabelingDone",
            "CollectBatchLabels",
        ),
    ),
    Phase("dataset", "Prepare dataset", ("PrepareDataset",)),
    Phase(
        "micro",
        "Train the micro-router",
        ("IsMicroRouterEnabled", "TrainMicroRouter", "MicroRouterSkipped", "MicroRouterFailed"),
    ),
    Phase(
        "distill",
        "Distillation",
        ("StartDistillation", "WaitForDistillation", "CheckDistillation", "IsDistillationDone"),
    ),
    Phase(
        "deploy",
        "Deployment",
        ("StartDeployment", "WaitForDeployment", "CheckDeployment", "IsDeploymentActive", "RecordOutputs"),
    ),
    Phase("evaluate", "Evaluation", (_EVALUATE_MAP, "ShadowReplay", "ShadowFailed")),
    Phase(
        "judge",
        "LLM judge",
        ("IsJudgeEnabled", "StartJudge", "WaitForJudge", "CheckJudge", "IsJudgeDone", "JudgeSkipped"),
    ),
    Phase("report", "Report and quality gate", ("Report", "QualityGate")),
    Phase("decide", "Promote or reject", ("Promote", "Reject")),
    Phase("notify", "Notify", ("NotifySuccess", "RunSucceeded")),
)
PHASE_OF_STATE = {state: phase.key for phase in PHASES for state in phase.states}


# ---------------------------------------------------------------------------------------------------------
# The execution history, read as top-level states
# ---------------------------------------------------------------------------------------------------------
@dataclass
class History:
    """What the events say about the top-level states (events inside Map iterations are only counted)."""

    entered: list[tuple[str, datetime]] = field(default_factory=list)  # in order
    exits: dict[str, tuple[datetime, str | None]] = field(default_factory=dict)  # latest exit per state
    map_length: dict[str, int] = field(default_factory=dict)
    map_done: dict[str, int] = field(default_factory=dict)
    failure: tuple[str | None, str | None] | None = None  # ExecutionFailed/TimedOut/Aborted (error, cause)
    task_failure: tuple[str | None, str | None] | None = None  # the latest failed task (error, cause)

    def first_entry(self, names: Iterable[str]) -> datetime | None:
        wanted = set(names)
        return next((ts for name, ts in self.entered if name in wanted), None)

    def last_exit(self, names: Iterable[str]) -> datetime | None:
        times = [self.exits[n][0] for n in names if n in self.exits]
        return max(times) if times else None

    def output(self, state: str) -> dict[str, Any] | None:
        """The state's latest output (the whole state document after its ResultPath), parsed."""
        raw = self.exits.get(state, (None, None))[1]
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def current(self) -> str | None:
        return self.entered[-1][0] if self.entered else None


def parse_history(events: Iterable[dict[str, Any]]) -> History:
    history = History()
    depth = 0
    for event in sorted(events, key=lambda e: e["id"]):
        kind = event["type"]
        ts = event["timestamp"]
        if kind == "MapIterationStarted":
            depth += 1
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            depth = max(0, depth - 1)
            if kind == "MapIterationSucceeded":
                name = event.get("mapIterationSucceededEventDetails", {}).get("name", "")
                history.map_done[name] = history.map_done.get(name, 0) + 1
        elif kind == "MapStateStarted" and depth == 0 and history.entered:
            history.map_length[history.entered[-1][0]] = event.get("mapStateStartedEventDetails", {}).get("length", 0)
        elif kind.endswith("StateEntered") and depth == 0:
            history.entered.append((event["stateEnteredEventDetails"]["name"], ts))
        elif kind.endswith("StateExited") and depth == 0:
            details = event["stateExitedEventDetails"]
            history.exits[details["name"]] = (ts, details.get("output"))
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            key = {"ExecutionFailed": "executionFailed", "ExecutionTimedOut": "executionTimedOut"}.get(
                kind, "executionAborted"
            )
            details = event.get(f"{key}EventDetails", {})
            history.failure = (details.get("error"), details.get("cause"))
        elif kind in ("LambdaFunctionFailed", "TaskFailed", "LambdaFunctionTimedOut", "TaskTimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
            history.task_failure = (details.get("error"), details.get("cause"))
    return history


def read_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, includeExecutionData=True, PaginationConfig={"PageSize": 1000}
    ):
        events.extend(page["events"])
    return events


# ---------------------------------------------------------------------------------------------------------
# A snapshot of a run
# ---------------------------------------------------------------------------------------------------------
@dataclass
class PhaseView:
    phase: Phase
    state: str = "pending"  # pending | running | done | failed | skipped
    detail: str = ""
    started: datetime | None = None
    ended: datetime | None = None


@dataclass
class Snapshot:
    execution_arn: str
    name: str
    run_id: str
    status: str
    started: datetime
    stopped: datetime | None
    now: datetime
    current_state: str | None
    phases: list[PhaseView]
    labeling: tuple[int, int] | None = None
    error: str | None = None
    cause: str | None = None
    outcome: str | None = None  # promoted | rejected, once decided
    gate_passed: bool | None = None

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    @property
    def failed(self) -> bool:
        return self.status in ENDED_BADLY

    @property
    def elapsed(self) -> timedelta:
        return (self.stopped or self.now) - self.started

    def phase(self, key: str) -> PhaseView:
        return next(view for view in self.phases if view.phase.key == key)


def _cause_text(cause: str | None) -> str | None:
    """A Lambda failure's cause is JSON (errorType, errorMessage, stackTrace): keep the message."""
    if not cause:
        return cause
    try:
        data = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if isinstance(data, dict) and data.get("errorMessage"):
        kind = data.get("errorType")
        return f"{kind}: {data['errorMessage']}" if kind else str(data["errorMessage"])
    return cause


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


@dataclass(frozen=True)
class _Seen:
    """What a phase's detail is computed from."""

    history: History
    status: str
    now: datetime
    labeling: tuple[int, int] | None

    @property
    def settings(self) -> dict[str, Any]:
        settings = _get(self.history.output("Preflight"), "run", "settings")
        return settings if isinstance(settings, dict) else {}


def _preflight_detail(seen: _Seen) -> str | None:
    s = seen.settings
    if not s:
        return None
    examples = f"{s.get('num_examples')} training + {s.get('eval_examples')} held-out examples"
    chosen = _get(seen.history.output("Preflight"), "run", "teacher", "model_id")
    if isinstance(chosen, str) and s.get("teacher_model_id") == "auto":
        return f"{examples}, teacher {chosen} (auto)"
    return f"{examples}, teacher {chosen if isinstance(chosen, str) else s.get('teacher_model_id')}"


def _plan_detail(seen: _Seen) -> str | None:
    plan = _get(seen.history.output("PlanQueries"), "plan")
    if not isinstance(plan, dict):
        return None
    shards = plan.get("shards")
    count = len(shards) if isinstance(shards, list) else shards
    return f"{plan.get('planned')} queries in {count} shards of {plan.get('shard_size')}"


def _label_detail(seen: _Seen) -> str | None:
    return f"{seen.labeling[0]}/{seen.labeling[1]} shards" if seen.labeling else None


def _dataset_detail(seen: _Seen) -> str | None:
    dataset = _get(seen.history.output("PrepareDataset"), "dataset")
    if not isinstance(dataset, dict):
        return None
    return (
        f"{dataset.get('train_records')} training / {dataset.get('heldout_records')} held-out records "
        f"({dataset.get('invalid', 0)} invalid, {dataset.get('duplicates', 0)} duplicates dropped)"
    )


def _distill_detail(seen: _Seen) -> str | None:
    """The latest CheckDistillation output: job status, sub-statuses, job age; when the next check is due."""
    history = seen.history
    status = _get(history.output("CheckDistillation"), "distillation_status")
    text = ""
    if isinstance(status, dict):
        sub = status.get("sub_status") or {}
        parts = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in sub.items() if value)
        text = str(status.get("status")) + (f" ({parts})" if parts else "")
        if status.get("elapsed_minutes") is not None:
            text += f", job running {duration(float(status['elapsed_minutes']) * 60)}"
    elif "StartDistillation" in history.exits:
        text = "job started"
    poll = seen.settings.get("poll_seconds")
    if history.current == "WaitForDistillation" and seen.status == "RUNNING" and isinstance(poll, int):
        left = (history.entered[-1][1] + timedelta(seconds=poll) - seen.now).total_seconds()
        when = f"next check in {duration(left)}" if left >= 1 else "next check due"
        text = f"{text}; {when}" if text else when
    return text or None


def _deploy_detail(seen: _Seen) -> str | None:
    status = _get(seen.history.output("CheckDeployment"), "deployment_status", "status")
    if status:
        return f"deployment {status}"
    return "deployment requested" if "StartDeployment" in seen.history.exits else None


def _shadow_text(seen: _Seen) -> str | None:
    """What ShadowReplay did: replayed, skipped or failed (ShadowFailed's output)."""
    shadow = _get(seen.history.output("ShadowFailed") or seen.history.output("ShadowReplay"), "shadow")
    if not isinstance(shadow, dict):
        return None
    if "error" in shadow:
        return "shadow replay failed"
    if shadow.get("status") == "ok":
        return f"{shadow.get('replayed')} production queries replayed against the model in service"
    return "shadow replay skipped (no production queries)"


def _evaluate_detail(seen: _Seen) -> str | None:
    history = seen.history
    if _EVALUATE_MAP not in history.map_length:
        return None
    text = f"{history.map_done.get(_EVALUATE_MAP, 0)}/{history.map_length[_EVALUATE_MAP]} candidates evaluated"
    shadow = _shadow_text(seen)
    return f"{text}; {shadow}" if shadow else text


def _repeat_text(job: dict[str, Any]) -> str:
    """`` (repeat N)`` for a judge job after the first of its candidate (``judge_repeats``)."""
    return f" (repeat {job['repeat']})" if job.get("repeat") else ""


def _judge_detail(seen: _Seen) -> str | None:
    history = seen.history
    if "JudgeSkipped" in history.exits:
        return "off for this run"
    judge = _get(history.output("CheckJudge") or history.output("StartJudge"), "judge")
    if not isinstance(judge, dict) or not isinstance(judge.get("jobs"), list):
        return None
    return ", ".join(
        f"{job.get('candidate')}{_repeat_text(job)} {job.get('status')}"
        + (f" {job['score']:.2f}" if isinstance(job.get("score"), int | float) else "")
        for job in judge["jobs"]
    )


def _report_detail(seen: _Seen) -> str | None:
    report = _get(seen.history.output("Report"), "report")
    if not isinstance(report, dict):
        return None
    failures = report.get("failures") or []
    verdict = "PASSED" if report.get("gate_passed") else "FAILED"
    return f"quality gate {verdict}" + (f": {'; '.join(map(str, failures))}" if failures else "")


def _decide_detail(seen: _Seen) -> str | None:
    decision = _get(seen.history.output("Promote") or seen.history.output("Reject"), "decision")
    if not isinstance(decision, dict):
        return None
    if decision.get("outcome") == "promoted":
        return f"promoted (router parameter version {decision.get('version')})"
    return "rejected: the router keeps its model"


_DETAILS = {
    "preflight": _preflight_detail,
    "plan": _plan_detail,
    "label": _label_detail,
    "dataset": _dataset_detail,
    "distill": _distill_detail,
    "deploy": _deploy_detail,
    "evaluate": _evaluate_detail,
    "judge": _judge_detail,
    "report": _report_detail,
    "decide": _decide_detail,
}


def _details(history: History, status: str, now: datetime, labeling: tuple[int, int] | None) -> dict[str, str]:
    """The one-line detail of each phase, from its states' outputs."""
    seen = _Seen(history, status, now, labeling)
    return {key: text for key, detail in _DETAILS.items() if (text := detail(seen))}


def build_snapshot(
    description: dict[str, Any], events: list[dict[str, Any]], now: datetime, labeling: tuple[int, int] | None
) -> Snapshot:
    """A snapshot from ``DescribeExecution`` and the history (pure: no AWS calls)."""
    history = parse_history(events)
    status = description["status"]
    error, cause = _failure(history, description)
    gate = _get(history.output("Report"), "report", "gate_passed")
    return Snapshot(
        execution_arn=description["executionArn"],
        name=description["name"],
        run_id=_run_id(history, description),
        status=status,
        started=description["startDate"],
        stopped=description.get("stopDate"),
        now=now,
        current_state=history.current,
        phases=_phase_views(history, status, now, labeling),
        labeling=labeling,
        error=error,
        cause=_cause_text(cause),
        outcome=_get(history.output("Promote") or history.output("Reject"), "decision", "outcome"),
        gate_passed=gate if isinstance(gate, bool) else None,
    )


def _run_id(history: History, description: dict[str, Any]) -> str:
    return str(_get(history.output("Preflight"), "run", "run_id") or run_id_from_execution(description["name"]))


def _failed_phase(history: History, status: str) -> str | None:
    """The phase that failed, for an execution that ended badly.

    A failed task stays the execution's last state (the pipeline has no failure path: a redrive continues from
    it, and the compensation state machine announces the failure), so the phase that failed is its phase.
    """
    if status not in ENDED_BADLY:
        return None
    last_state = history.current
    return PHASE_OF_STATE.get(last_state, "preflight") if last_state else "preflight"


def _phase_views(history: History, status: str, now: datetime, labeling: tuple[int, int] | None) -> list[PhaseView]:
    """Every phase with its state (failed, running, done, skipped or pending), times and detail."""
    keys = [phase.key for phase in PHASES]
    failed_phase = _failed_phase(history, status)
    current_phase = PHASE_OF_STATE.get(history.current) if history.current else None
    if failed_phase is not None:
        reference = keys.index(failed_phase)
    elif status == "RUNNING" and current_phase is not None:
        reference = keys.index(current_phase)
    else:
        reference = len(keys) if status == "SUCCEEDED" else 0
    entered_phases = {PHASE_OF_STATE.get(name) for name, _ in history.entered}
    details = _details(history, status, now, labeling)
    views: list[PhaseView] = []
    for index, phase in enumerate(PHASES):
        view = PhaseView(phase, detail=details.get(phase.key, ""), started=history.first_entry(phase.states))
        if phase.key == failed_phase:
            view.state = "failed"
        elif phase.key == current_phase and status == "RUNNING":
            view.state = "running"
        elif phase.key in entered_phases:
            view.state = "done"
            view.ended = history.last_exit(phase.states)
        elif index < reference:
            view.state = "skipped"
        views.append(view)
    return views


def _failure(history: History, description: dict[str, Any]) -> tuple[str | None, str | None]:
    """The error and cause of an execution: the execution's own, else (when it ended badly) the last failed
    task's, else what the last state caught."""
    error, cause = history.failure or (description.get("error"), description.get("cause"))
    if description["status"] not in ENDED_BADLY or error:
        return error, cause
    if history.task_failure:
        error, cause = history.task_failure
    last_state = history.current
    if not error and last_state:
        caught = _get(history.output(last_state), "error")
        if isinstance(caught, dict):
            error, cause = caught.get("Error"), caught.get("Cause")
    return error, cause


def count_labeled_shards(app: App, run_id: str) -> int:
    count = 0
    paginator = app.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=app.outputs.bucket, Prefix=RunLayout(run_id).labeled_prefix):
        count += sum(1 for item in page.get("Contents", []) if item["Key"].endswith(STATS_SUFFIX))
    return count


def planned_shards(app: App, run_id: str, history: History) -> int | None:
    """The plan's shard count: ``runs/<run>/dataset/plan.json``, else the Map's item count."""
    try:
        body = app.client("s3").get_object(Bucket=app.outputs.bucket, Key=RunLayout(run_id).plan)
        shards = json.loads(body["Body"].read()).get("shards")
        if isinstance(shards, int):
            return shards
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404", "AccessDenied"):
            raise
    shards = _get(history.output("PlanQueries"), "plan", "shards")
    return len(shards) if isinstance(shards, list) else history.map_length.get(_LABEL_MAP)


def snapshot(app: App, execution_arn: str) -> Snapshot:
    sfn = app.client("stepfunctions")
    description = sfn.describe_execution(executionArn=execution_arn)
    events = read_history(sfn, execution_arn)
    history = parse_history(events)
    run_id = _run_id(history, description)
    labeling: tuple[int, int] | None = None
    # Each shard is a child execution of the Distributed Map (absent from this history): count what S3 holds.
    if _LABEL_MAP in history.exits or history.current == _LABEL_MAP:
        total_shards = planned_shards(app, run_id, history)
        if total_shards:
            done = min(count_labeled_shards(app, run_id), total_shards)
            if not done and _LABEL_MAP in history.exits:
                done = total_shards  # the Map finished and tmp/ has expired since (lifecycle)
            labeling = (done, total_shards)
    return build_snapshot(description, events, app.terminal.now(), labeling)


# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------
_MARKS = {"done": "[x]", "running": "[>]", "failed": "[!]", "pending": "[ ]", "skipped": "[-]"}
_MARK_STYLES = {"done": "green", "running": "bold cyan", "failed": "bold red", "pending": "dim", "skipped": "dim"}
_STATUS_STYLES = {"SUCCEEDED": "bold green", "RUNNING": "bold cyan"}


def render(snap: Snapshot, *, region: str | None = None) -> Group:
    """The run's header, a row per phase (rich's progress bar while labeling) and how it ended."""
    header = Text.assemble(
        f"Run {snap.run_id}  ",
        (snap.status, _STATUS_STYLES.get(snap.status, "bold red")),
        f"  elapsed {duration(snap.elapsed.total_seconds())}",
    )
    facts = Table.grid(padding=(0, 1))
    facts.add_column(min_width=9)
    facts.add_column(overflow="fold")  # an ARN or a URL breaks at the terminal's edge, not at a word
    facts.add_row("execution", snap.execution_arn)
    if region:
        url = execution_url(region, snap.execution_arn)
        facts.add_row("console", Text(url, style=Style(link=url)))
    if snap.status == "RUNNING" and snap.current_state:
        facts.add_row("now in", snap.current_state)
    phases = Table.grid(padding=(0, 2))
    phases.add_column()
    phases.add_column(justify="right", min_width=8)
    phases.add_column()
    for view in snap.phases:
        took = ""
        if view.started is not None and view.state in ("done", "running", "failed"):
            end = view.ended if view.state == "done" and view.ended else (snap.stopped or snap.now)
            took = duration((end - view.started).total_seconds())
        detail: RenderableType = view.detail
        if view.phase.key == "label" and view.state == "running" and snap.labeling:
            done, total = snap.labeling
            eta = ""
            if view.started is not None and 0 < done < total:
                spent = (snap.now - view.started).total_seconds()
                eta = f"  ETA {duration(spent / done * (total - done))}"
            detail = progress(done, total, "shards", suffix=eta)
        title = Text.assemble((_MARKS[view.state], _MARK_STYLES[view.state]), f" {view.phase.title}")
        phases.add_row(title, took, detail)
    indent = (0, 0, 0, 2)
    return Group(
        header, Padding(facts, indent, expand=False), "", Padding(phases, indent, expand=False), "", *_final_lines(snap)
    )


def _final_lines(snap: Snapshot) -> list[str]:
    took = duration(snap.elapsed.total_seconds())
    if snap.status == "SUCCEEDED":
        verdict = {"promoted": "the distilled model was promoted", "rejected": "the distilled model was rejected"}
        tail = verdict.get(snap.outcome or "", "")
        return [f"SUCCEEDED in {took}" + (f": {tail}" if tail else ""), f"Report: python -m cli report {snap.run_id}"]
    if snap.failed:
        where = next((v.phase.title for v in snap.phases if v.state == "failed"), "?")
        lines = [f"{snap.status} after {took} in {where}"]
        if snap.error:
            lines.append(f"  error: {snap.error}")
        if snap.cause:
            lines.append(f"  cause: {snap.cause}")
        return lines
    return [f"RUNNING for {took}"]


def watch(app: App, execution_arn: str, *, interval: float) -> Snapshot:
    """A snapshot every ``interval`` seconds until the execution ends; returns the final one.

    On a terminal rich redraws the snapshot in place (:class:`rich.live.Live`, refreshed at each poll only); to
    anything else each snapshot is printed in full after a ``--- <time> UTC ---`` line: periodic plain text.
    """
    terminal = app.terminal
    snap = snapshot(app, execution_arn)
    if not terminal.console.is_terminal:
        while True:
            terminal.print(f"--- {snap.now:%Y-%m-%d %H:%M:%S} UTC ---")
            terminal.show(render(snap, region=app.region))
            if snap.finished:
                return snap
            terminal.sleep(interval)
            snap = snapshot(app, execution_arn)
    live = Live(
        render(snap, region=app.region),
        console=terminal.console,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with live:
        while not snap.finished:
            terminal.sleep(interval)
            snap = snapshot(app, execution_arn)
            live.update(render(snap, region=app.region), refresh=True)
    return snap


def wait_for(app: App, execution_arn: str, *, timeout_s: float, interval: float) -> Snapshot:
    """Poll quietly until the execution ends or ``timeout_s`` passes (e2e tests); returns the last snapshot."""
    deadline = app.terminal.now() + timedelta(seconds=timeout_s)
    while True:
        snap = snapshot(app, execution_arn)
        if snap.finished or snap.now >= deadline:
            return snap
        app.terminal.sleep(interval)


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "status",
        parents=[common],
        help="progress of the latest (or a named) run: step, shards, distillation, errors",
        description="Show where a pipeline run is. Exit code 5 when the run ended FAILED, TIMED_OUT or ABORTED.",
    )
    parser.add_argument("run", nargs="?", help="run id, execution name or execution ARN (default: the latest run)")
    parser.add_argument("--watch", action="store_true", help="redraw until the run ends")
    parser.add_argument(
        "--interval", type=float, default=30.0, help=f"seconds between redraws (default 30, min {MIN_INTERVAL_S:g})"
    )
    parser.set_defaults(handler=run)


def run(app: App, args: argparse.Namespace) -> int:
    if args.interval < MIN_INTERVAL_S:
        raise UsageError(f"--interval must be at least {MIN_INTERVAL_S:g} seconds (Step Functions API quotas)")
    outputs = app.outputs
    execution = resolve_execution(app.client("stepfunctions"), outputs.state_machine_arn, args.run)
    if args.watch:
        snap = watch(app, execution["executionArn"], interval=args.interval)
    else:
        snap = snapshot(app, execution["executionArn"])
        app.terminal.show(render(snap, region=app.region))
    return EXIT_RUN_FAILED if snap.failed else EXIT_OK
