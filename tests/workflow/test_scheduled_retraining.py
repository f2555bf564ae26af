"""Issue 14's loop in the synthesized stack (moto executing the state machine, the Bedrock fake validating every
request against botocore's model): routed queries captured (the gzip JSON-line objects Firehose delivers under
``captured/raw/<day>/``; the router's side is tests/handlers/test_router_capture.py) → the daily compaction → the
scheduled retraining starts a run on them with a production held-out sample that is labeled, held out in split
``production`` and never trained on; the next schedule, with too little new traffic, is skipped with a notification
saying why; a retried invocation starts no second run. Every AWS call the functions made is then checked against
the synthesized IAM with the Service Authorization Reference."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest

from search_router.contract.layout import (
    RETRAIN_LATEST,
    RunLayout,
    captured_raw_prefix,
    retrain_heldout,
    retrain_queries,
)
from search_router.contract.run import run_id_from_execution
from search_router.pipeline.dataset import PRODUCTION_SPLIT, USER_SPLIT
from search_router.pipeline.queries.query import normalize_query
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.router.capture import capture_record
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.bedrock_fake import BedrockFake
from simulation.harness import REGION, PipelineHarness
from simulation.synth import Synthesized
from tests.policy.checks import call_findings
from tests.policy.recorder import CallRecorder
from tests.workflow.test_iam_against_sar import recorded_harness

DAY = date(2026, 11, 27)
FIRST, SECOND = "2026-11-28T03:00:00Z", "2026-11-29T03:00:00Z"
WEIGHTS = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
TRAFFIC = [q.text for q in synthesize_queries(DEFAULT_CHANNELS, 90, seed=77)]


@pytest.fixture
def harness(
    loop_stack: Synthesized, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PipelineHarness, CallRecorder]]:
    """The stack of tests.conftest.LOOP_SETTINGS: capture on, retraining with 60 new queries and 20 held out,
    small runs without the judge."""
    with recorded_harness(loop_stack, bedrock, monkeypatch) as recorded:
        yield recorded


def _deliver(harness: PipelineHarness, day: date, queries: list[str]) -> None:
    """Two Firehose objects of ``day``: each query routed 1 + (its index mod 5) times."""
    lines = [
        capture_record(query=q, weights=WEIGHTS, source="model", model="m", latency_ms=80.0, timestamp=1.76e9)
        for index, q in enumerate(queries)
        for _ in range(1 + index % 5)
    ]
    half = len(lines) // 2
    s3 = boto3.client("s3", region_name=REGION)
    for part, chunk in enumerate((lines[:half], lines[half:])):
        key = f"{captured_raw_prefix(day)}stream-{part}.gz"
        s3.put_object(Bucket=harness.bucket, Key=key, Body=gzip.compress(b"".join(chunk)))


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_captured_traffic_retrains_with_a_production_heldout_and_a_thin_week_is_skipped(
    harness: tuple[PipelineHarness, CallRecorder],
) -> None:
    pipeline, recorder = harness
    # Given a day of captured traffic, compacted
    _deliver(pipeline, DAY, TRAFFIC)
    compacted = pipeline.call("search_router.handlers.compact_captured.handler", {"date": DAY.isoformat()})
    assert compacted["queries"] == 90 and compacted["malformed"] == {}

    # When the schedule fires
    started = pipeline.call("search_router.handlers.retrain.handler", {"scheduled_time": FIRST})
    # Then a run starts on the captured queries with 20 of them held out
    assert started["status"] == "start" and started["new_queries"] == 90
    assert (started["training_queries"], started["heldout_queries"]) == (70, 20)
    execution = pipeline.wait(started["execution_arn"], timeout_s=180)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    name = "retrain-20261128T030000Z"
    assert started["execution_arn"].endswith(f":{name}")
    assert json.loads(execution.description["input"]) == {
        "mix_user_queries": False,
        "production_heldout_s3_uri": f"s3://{pipeline.bucket}/{retrain_heldout(name)}",
        "queries_s3_uri": f"s3://{pipeline.bucket}/{retrain_queries(name)}",
    }
    production = {normalize_query(r["query"]) for r in _jsonl(pipeline.s3_text(retrain_heldout(name)))}
    training = {normalize_query(r["query"]) for r in _jsonl(pipeline.s3_text(retrain_queries(name)))}
    assert len(production) == 20 and len(training) == 70 and not production & training
    assert production | training == {normalize_query(q) for q in TRAFFIC}

    layout = RunLayout(run_id_from_execution(name))
    plan = pipeline.s3_json(layout.plan)
    assert plan["production_queries"]["held_out"] == 20 and plan["production_queries"]["over_judge_limit"] == 0
    assert plan["user_queries"]["accepted"] == 70 and plan["requested"] == 200 + 20 + 20
    heldout = _jsonl(pipeline.s3_text(layout.heldout))
    by_split: dict[str, set[str]] = {}
    for record in heldout:
        by_split.setdefault(record["split"], set()).add(normalize_query(record["query"]))
    # every production query labeled and held out, beyond eval_examples (20)
    assert by_split[PRODUCTION_SPLIT] == production and len(heldout) == 20 + 20
    trained = {normalize_query(r["query"]) for r in _jsonl(pipeline.s3_text(layout.train_groups))}
    assert not trained & production  # never trained on
    assert training <= trained | by_split.get(USER_SPLIT, set())  # the captured queries train (or are evaluated)
    assert len(trained) == 200  # topped up with synthesized queries to num_examples

    # When the schedule fires again a day later, with no new traffic compacted
    skipped = pipeline.call("search_router.handlers.retrain.handler", {"scheduled_time": SECOND})
    # Then no run starts, the decision is recorded and the topic says why
    assert skipped["status"] == "too_few_new_queries" and skipped["execution_arn"] is None
    assert pipeline.s3_json(RETRAIN_LATEST)["status"] == "too_few_new_queries"
    executions = pipeline.sfn.list_executions(stateMachineArn=pipeline.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [name]
    skip_notes = [n for n in pipeline.notifications() if "retraining skipped" in n["subject"]]
    assert len(skip_notes) == 1 and "(too_few_new_queries)" in skip_notes[0]["subject"]
    assert "0 new distinct queries" in skip_notes[0]["message"]
    assert "retrain_min_new_queries" in skip_notes[0]["message"]

    # A retried invocation of the first schedule starts nothing more
    again = pipeline.call("search_router.handlers.retrain.handler", {"scheduled_time": FIRST})
    assert again["status"] == "start" and again["execution_arn"] == started["execution_arn"]
    assert len(pipeline.sfn.list_executions(stateMachineArn=pipeline.state_machine_arn)["executions"]) == 1

    # Every call the functions made (compaction, retraining, the whole run) is allowed by the synthesized IAM
    invoked = {call.function for call in recorder.calls}
    functions = {pipeline.function_for(h).logical_id for h in ("search_router.handlers.retrain.handler",)}
    assert functions <= invoked
    assert call_findings(pipeline.synthesized.template, pipeline.resolver, recorder.calls) == []
