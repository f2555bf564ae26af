"""End to end against a deployed stack, through the CLI's own functions: a small pipeline run (real Bedrock:
labeling, distillation, deployment, evaluation), its report, the promotion, and ``POST /route`` signed with SigV4.

Skipped unless ``E2E_STACK_NAME`` is set (see ``conftest.py``). Environment:

- ``E2E_STACK_NAME``: the deployed stack; AWS credentials for its account; ``AWS_REGION`` (default: cdk.json's).
- ``E2E_TIMEOUT_HOURS`` (default 12): how long to wait for the run (distillation alone takes hours).
- ``E2E_POLL_SECONDS`` (default 120): how often to look at the execution.
- ``E2E_RUN``: check this finished (or running) run instead of starting a new one.

A new run costs real money (see ``python -m cli estimate --examples 100 --eval 10 --no-judge``) and leaves a
custom model and, if the gate passes, a promoted deployment behind (``make destroy`` removes them).
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.app import App
from cli.report import download_report
from cli.route import route_query
from cli.runs import find_execution
from cli.start import start_run
from cli.status import Snapshot, wait_for

SMALL_RUN = {"num_examples": 150, "eval_examples": 10, "judge": False, "poll_seconds": 60}
ROUTE_SOURCES = {"model", "cache", "micro", "fallback_model", "default"}


@pytest.fixture(scope="module")
def app(stack_name: str) -> App:
    return App(stack_name=stack_name, region=os.environ.get("AWS_REGION") or None)


@pytest.fixture(scope="module")
def finished_run(app: App) -> Snapshot:
    existing = os.environ.get("E2E_RUN")
    if existing:
        arn = find_execution(app.client("stepfunctions"), app.outputs.state_machine_arn, existing)["executionArn"]
    else:
        name = datetime.now(UTC).strftime("e2e-%Y%m%d-%H%M%S")
        arn = start_run(app, dict(SMALL_RUN), name=name).execution_arn
    timeout_s = float(os.environ.get("E2E_TIMEOUT_HOURS", "12")) * 3600
    snap = wait_for(app, arn, timeout_s=timeout_s, interval=float(os.environ.get("E2E_POLL_SECONDS", "120")))
    assert snap.finished, f"run {snap.run_id} still RUNNING in {snap.current_state} after {timeout_s:.0f} s"
    return snap


def test_the_small_run_succeeds(finished_run: Snapshot) -> None:
    assert finished_run.status == "SUCCEEDED", (finished_run.error, finished_run.cause)
    assert finished_run.outcome in ("promoted", "rejected")


def test_the_report_covers_every_candidate(app: App, finished_run: Snapshot, tmp_path: Path) -> None:
    downloaded = download_report(app, finished_run.run_id, tmp_path)
    assert downloaded.candidate_names == [c.name for c in app.config.eval_candidates]
    names = {path.name for path in downloaded.files}
    assert {"report.json", "report.md"} <= names
    if not downloaded.report.get("charts_error"):
        assert {"latency.png", "mae_per_channel.png", "rubric_distribution.png"} <= names
    if not os.environ.get("E2E_RUN"):
        assert all(c["metrics"]["n"] == SMALL_RUN["eval_examples"] for c in downloaded.report["candidates"])
    assert downloaded.gate_passed is (finished_run.outcome == "promoted")


def test_a_passed_gate_promoted_the_distilled_deployment(app: App, finished_run: Snapshot) -> None:
    value = json.loads(app.client("ssm").get_parameter(Name=app.outputs.model_parameter)["Parameter"]["Value"])
    if finished_run.outcome == "promoted":
        assert value["run_id"] == finished_run.run_id
        assert ":custom-model-deployment/" in value["model_id"]
        assert value["prompt_kind"] == "student"
    else:
        assert value.get("run_id") != finished_run.run_id


def test_route_answers_with_valid_weights(app: App) -> None:
    result = route_query(app, "sunset over snowy mountains", include_reasoning=False)
    weights = result.weights
    assert set(weights) == set(app.config.channels.names)
    assert all(0.0 <= w <= 1.0 for w in weights.values())
    assert math.isclose(sum(weights.values()), 1.0, abs_tol=0.011)
    assert result.body["source"] in ROUTE_SOURCES
    assert result.status == 200
