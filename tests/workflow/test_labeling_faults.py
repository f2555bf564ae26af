"""Faults during labeling, in the synthesized state machine run by moto with the real handlers: a shard that runs
out of time resumes from its checkpoint without asking the teacher again; a shard that fails every retry leaves
the run going, counted in the manifest, within the run's tolerance of failed shards — and beyond it, stops it.

moto sleeps every Retry interval for real (a shard failing all eight ``TransientError`` retries would wait minutes),
so the tests that exhaust retries skip those waits; the retry *policy* is the definition's.

The Map's tolerance of failed shards: LabelShards is a Distributed Map with ``ToleratedFailurePercentagePath``
(the field exists for Distributed Maps only). moto 5.2.5 runs its children but applies no threshold (a failed child
never fails its Map run), so here PrepareDataset's own check of ``max_failed_shards_percent`` — which it makes from
the run's S3 state, whatever the Map did — is what stops a run with too many failed shards.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from search_router.contract.errors import TransientError
from simulation.bedrock.values import ConverseRequest, default_responder
from simulation.bedrock_fake import BedrockFake
from simulation.harness import PipelineHarness

SMALL = {"num_examples": 200, "eval_examples": 20, "shard_size": 50, "seed": 11}  # 5 shards: 50 x 4 + 20
TEACHER = "us.amazon.nova-pro-v1:0"  # what teacher_model_id "auto" picks from today's catalog


def label_shard() -> Any:
    """The label shard module, imported at test time (Powertools reads its metrics namespace on first import)."""
    return importlib.import_module("search_router.handlers.label_shard")


class ShortContext:
    """The harness's Lambda context with only ``seconds`` left before the label shard's safety margin."""

    def __init__(self, context: Any, seconds: float) -> None:
        self._context = context
        self._deadline = time.monotonic() + label_shard().SAFETY_MARGIN_S + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class Teacher:
    """The fake's default teacher, counting the calls it answered per query; slow for the queries in ``slow``."""

    def __init__(self) -> None:
        self.answered: Counter[str] = Counter()
        self.slow: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, request: ConverseRequest) -> Any:
        if request.model_id == TEACHER and request.user_text in self.slow:
            time.sleep(0.6)
        if request.model_id == TEACHER:
            with self.lock:
                self.answered[request.user_text] += 1
        return default_responder(request)


class ShardInvocations:
    """Wraps the label shard handler (the harness looks it up at every invoke): per shard index, ``plan`` says how
    each invocation runs — ``"short"`` (two seconds of labeling, a slow teacher: it runs out of time), ``"fail"``
    (raises ``TransientError`` before doing anything, as a shard whose Lambda keeps failing) or ``"normal"``."""

    def __init__(self, pipeline: PipelineHarness, teacher: Teacher, plan: dict[int, Callable[[int], str]]) -> None:
        self.pipeline = pipeline
        self.teacher = teacher
        self.plan = plan
        self.count: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.real = label_shard().handler

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        index = int(event["shard"]["index"])
        with self.lock:
            attempt = self.count[index]
            self.count[index] += 1
        how = self.plan.get(index, lambda _: "normal")(attempt)
        if how == "fail":
            raise TransientError(f"simulated: shard {index} fails again (attempt {attempt + 1})")
        if how == "short":
            texts = [q["text"] for q in self.pipeline.s3_json(event["shard"]["key"])["queries"]]
            with self.teacher.lock:
                self.teacher.slow |= set(texts)
            try:
                return self.real(event, ShortContext(context, 2.0))
            finally:
                with self.teacher.lock:
                    self.teacher.slow -= set(texts)
        return self.real(event, context)


@pytest.fixture
def teacher(bedrock: BedrockFake) -> Teacher:
    responder = Teacher()
    bedrock.responder = responder
    return responder


def _install(monkeypatch: pytest.MonkeyPatch, invocations: ShardInvocations) -> None:
    monkeypatch.setattr(label_shard(), "handler", invocations)


def _no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """moto sleeps each Retry interval for real: record the intervals instead."""
    waits: list[float] = []

    class Clock:
        @staticmethod
        def sleep(seconds: float) -> None:
            waits.append(seconds)

    monkeypatch.setattr(retrier_decl, "time", Clock)
    return waits


def _label_shard_task(definition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    label_map = definition["States"]["LabelShards"]
    processor = label_map.get("ItemProcessor") or label_map["Iterator"]
    return label_map, processor


def _transient_retries(pipeline: PipelineHarness) -> int:
    _, processor = _label_shard_task(pipeline.definition)
    task = processor["States"][processor["StartAt"]]
    return next(int(r["MaxAttempts"]) for r in task["Retry"] if "TransientError" in r["ErrorEquals"])


def _failed_label_shard_errors(pipeline: PipelineHarness) -> list[str]:
    """The errors of the label shard invocations that failed (each shard is a child execution of the Distributed
    Map, whose history is not the parent's: the harness records them)."""
    return [
        error for handler, error in pipeline.function_errors if handler == "search_router.handlers.label_shard.handler"
    ]


# ------------------------------------------------------------------------------------------------ timeouts
def test_a_shard_that_times_out_resumes_from_its_checkpoint_without_asking_the_teacher_again(
    pipeline: PipelineHarness, teacher: Teacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given shard 0's first invocation gets two seconds before its safety margin, with a slow teacher
    invocations = ShardInvocations(pipeline, teacher, {0: lambda attempt: "short" if attempt == 0 else "normal"})
    _install(monkeypatch, invocations)
    # When a run labels its 220 queries
    execution = pipeline.run(SMALL, name="resumed")
    # Then the shard stopped itself, Step Functions retried it (TransientError) and the run went on
    assert execution.status == "SUCCEEDED", execution.cause
    assert invocations.count[0] == 2
    assert _failed_label_shard_errors(pipeline) == ["TransientError"]
    # And no query was sent to the teacher twice: the retry labeled only what the first had not
    plan = pipeline.s3_json("tmp/resumed/plan/shard-00000.json")
    planned = {q["text"] for key in pipeline.s3_keys("tmp/resumed/plan/") for q in pipeline.s3_json(key)["queries"]}
    assert set(teacher.answered) == planned and set(teacher.answered.values()) == {1}
    stats = pipeline.s3_json("tmp/resumed/labeled/shard-00000.stats.json")
    assert stats["invocations"] == 2 and 0 < stats["resumed"] < len(plan["queries"])
    assert stats["calls"] == len(plan["queries"]) and stats["labeled"] == len(plan["queries"])
    # And the manifest counts every query once
    manifest = pipeline.s3_json("runs/resumed/dataset/manifest.json")
    assert manifest["labeled"] == 220 and manifest["unlabeled"] == 0
    assert manifest["labeling"]["resumed_shards"] == 1 and manifest["labeling"]["shards_failed"] == 0
    assert manifest["labeling"]["calls"] == 220


# ------------------------------------------------------------------------------------------------ failed shards
def test_a_shard_failing_every_retry_leaves_the_run_going_and_the_manifest_counts_it(
    pipeline: PipelineHarness, teacher: Teacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given shard 1 runs out of time once (checkpointing what it did) and then fails on every retry
    waits = _no_retry_waits(monkeypatch)
    invocations = ShardInvocations(pipeline, teacher, {1: lambda attempt: "short" if attempt == 0 else "fail"})
    _install(monkeypatch, invocations)
    # When a run that tolerates 25% of its shards failing labels its 220 queries in 5 shards
    execution = pipeline.run({**SMALL, "max_failed_shards_percent": 25}, name="one-failed")
    # Then shard 1 was tried once and retried as often as the definition allows, then given up
    assert execution.status == "SUCCEEDED", execution.cause
    retries = _transient_retries(pipeline)
    assert invocations.count[1] == 1 + retries
    assert _failed_label_shard_errors(pipeline) == ["TransientError"] * (1 + retries)
    assert len(waits) >= retries
    # And its checkpointed examples are used; only the rest is counted, as unlabeled by shard_failed
    plan = pipeline.s3_json("tmp/one-failed/plan/shard-00001.json")
    shard_texts = {q["text"] for q in plan["queries"]}
    kept = {text for text in teacher.answered if text in shard_texts}
    assert 0 < len(kept) < 50
    manifest = pipeline.s3_json("runs/one-failed/dataset/manifest.json")
    assert manifest["labeled"] == 170 + len(kept)
    assert manifest["unlabeled"] == 50 - len(kept)
    assert manifest["labeling"]["unlabeled_by_reason"] == {"shard_failed": 50 - len(kept)}
    accounted = manifest["labeled"] + manifest["invalid"]["total"] + manifest["errors"]["total"] + manifest["unlabeled"]
    assert accounted == 220
    [failed] = manifest["labeling"]["failed_shards"]
    assert failed["index"] == 1 and failed["checkpointed"] == len(kept) and failed["error"] == "TransientError"
    assert manifest["labeling"]["failed_shards_tolerated"] is True and manifest["trainable"] is True
    # And no query was asked twice
    assert set(teacher.answered.values()) == {1}


def test_more_failed_shards_than_the_run_tolerates_stop_it_with_the_numbers(
    pipeline: PipelineHarness, teacher: Teacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shard that fails every retry, and the default tolerance (10%: none of 5 shards may fail)
    _no_retry_waits(monkeypatch)
    _install(monkeypatch, ShardInvocations(pipeline, teacher, {2: lambda attempt: "fail"}))
    # When the run labels
    execution = pipeline.run(SMALL, name="too-many-failed")
    # Then it fails in PrepareDataset, naming the numbers, before a distillation job is started
    assert execution.status == "FAILED" and execution.error == "TooManyShardsFailed"
    cause = json.loads(execution.cause)["errorMessage"]
    assert "1 of 5 labeling shards (20%) failed after their retries" in cause
    assert "the run tolerates 10% (max_failed_shards_percent)" in cause
    assert "50 queries were left unlabeled (shard_failed)" in cause
    manifest = pipeline.s3_json("runs/too-many-failed/dataset/manifest.json")
    assert manifest["labeling"]["failed_shards_tolerated"] is False and manifest["files"] == {}
    notified = "\n".join(n["message"] for n in pipeline.notifications())
    assert "1 of 5 labeling shards (20%) failed" in notified
