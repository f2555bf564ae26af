"""LabelShard and PrepareDataset against moto S3 and the Bedrock fake: a shard that runs out of time or is killed
resumes from its checkpoint without asking the teacher again about done queries; failed shards are counted."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from search_router.adapters.clients import CLIENTS
from search_router.contract.errors import TransientError
from search_router.contract.layout import ShardKeys
from search_router.contract.run import RunState
from search_router.pipeline.checkpoint import DEFAULT_EVERY, ShardProgress
from search_router.pipeline.dataset import DatasetTooSmall, TooManyShardsFailed
from search_router.pipeline.labeling import TeacherUnavailable
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.bedrock.values import ConverseRequest, FakeError, default_responder
from simulation.bedrock_fake import BedrockFake
from tests.handlers.runs import task_run

BUCKET = "data-bucket"
TEACHER = "us.amazon.nova-pro-v1:0"


class Context:
    """A Lambda context whose deadline is ``seconds`` from its creation (a new request id each time)."""

    function_name = "label-shard"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:label-shard"

    def __init__(self, seconds: float = 900.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Killed(BaseException):
    """The Lambda sandbox going away mid-call (a hard timeout): nothing in the handler can catch it."""


@dataclass
class Teacher:
    """Responds like the fake's default teacher; counts the calls it answered per query; can be slowed
    (``delay_s``), killed (after ``kill_after`` answers every call raises :class:`Killed`) or refuse some queries."""

    delay_s: float = 0.0
    kill_after: int | None = None
    refuse: set[str] = field(default_factory=set)
    answered: Counter[str] = field(default_factory=Counter)
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: ConverseRequest) -> Any:
        if request.user_text in self.refuse:
            return FakeError("AccessDeniedException", "You don't have access to the model with the specified model ID.")
        with self.lock:
            if self.kill_after is not None and self.started >= self.kill_after:
                raise Killed
            self.started += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.answered[request.user_text] += 1
        return default_responder(request)


@dataclass
class Shards:
    """A run's S3 layout in moto: plan files, and what the handlers wrote."""

    run: dict[str, Any]
    plan: list[dict[str, Any]] = field(default_factory=list)
    texts: dict[int, list[str]] = field(default_factory=dict)

    @property
    def state(self) -> RunState:
        return RunState.model_validate(self.run)

    def add_shard(self, count: int, seed: int) -> dict[str, Any]:
        index = len(self.plan)
        queries = synthesize_queries(DEFAULT_CHANNELS, count, seed=seed)
        key = f"{self.state.tmp_prefix}plan/shard-{index:05d}.json"
        body = {"queries": [{"text": q.text, "category": q.category, "source": q.source} for q in queries]}
        boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())
        shard = {"index": index, "key": key, "count": count}
        self.plan.append(shard)
        self.texts[index] = [q.text for q in queries]
        return shard

    def label(self, index: int, context: Context | None = None) -> dict[str, Any]:
        from search_router.handlers.label_shard import handler

        return handler({"run": self.run, "shard": self.plan[index]}, context or Context())

    def prepare(self) -> dict[str, Any]:
        from search_router.handlers.prepare_dataset import handler

        planned = sum(s["count"] for s in self.plan)
        plan = {"planned": planned, "requested": planned, "shard_size": self.plan[0]["count"], "shards": self.plan}
        return handler({"run": self.run, "plan": plan}, Context())

    def keys(self, index: int) -> ShardKeys:
        return ShardKeys(self.state.tmp_prefix, index)

    def listing(self) -> list[str]:
        response = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{self.state.tmp_prefix}labeled/")
        return [item["Key"] for item in response.get("Contents", [])]

    def json(self, key: str) -> Any:
        return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def json_lines(self, key: str) -> list[str]:
        return boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()

    def checkpointed(self, index: int) -> ShardProgress:
        return ShardProgress.merge(
            (self.json(k) for k in self.keys(index).part_keys(self.listing())), self.texts[index]
        )

    def manifest(self) -> dict[str, Any]:
        return self.json(f"{self.state.run_prefix}dataset/manifest.json")


def make_run(**overrides: Any) -> dict[str, Any]:
    return task_run(teacher_model_id=TEACHER, **overrides)


@pytest.fixture
def teacher(aws: None, bedrock: BedrockFake, pipeline_env: pytest.MonkeyPatch) -> Iterator[Teacher]:
    pipeline_env.setenv("CHANNELS", DEFAULT_CHANNELS.to_json())
    pipeline_env.setenv("TEACHER_BACKOFF_BASE_S", "0.01")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    responder = Teacher()
    bedrock.responder = responder
    yield responder


# ------------------------------------------------------------------------------------------------ the margin
def test_the_safety_margin_outlasts_one_teacher_call_and_leaves_the_shard_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.pipeline import STEPS
    from search_router.handlers import label_shard

    config = label_shard.TEACHER_CLIENT_CONFIG
    # one attempt (label_queries retries, the limiter sees every throttling answer), so one call is at most
    # connect + read timeout long ...
    assert config.retries["max_attempts"] == 1
    one_call = config.connect_timeout + config.read_timeout
    assert one_call == label_shard.TEACHER_CALL_TIMEOUT_S
    # ... and the margin before the Lambda deadline is longer than that, with room to write
    assert one_call < label_shard.SAFETY_MARGIN_S
    timeout = next(
        step.timeout_seconds for step in STEPS if step.handler == "search_router.handlers.label_shard.handler"
    )
    assert timeout - label_shard.SAFETY_MARGIN_S >= 0.8 * timeout


def test_the_teacher_client_is_built_with_that_configuration(teacher: Teacher, monkeypatch: pytest.MonkeyPatch) -> None:
    from search_router.handlers import label_shard

    shards = Shards(make_run())
    shards.add_shard(5, seed=1)
    configs: list[Any] = []
    real_get = CLIENTS.get

    def get(service: str, **kwargs: Any) -> Any:
        if service == "bedrock-runtime":
            configs.append(kwargs.get("config"))
        return real_get(service, **kwargs)

    monkeypatch.setattr(CLIENTS, "get", get)
    shards.label(0)
    assert configs == [label_shard.TEACHER_CLIENT_CONFIG]


# ------------------------------------------------------------------------------------------------ resuming
def test_a_shard_that_runs_out_of_time_saves_its_progress_and_the_retry_labels_only_the_rest(
    teacher: Teacher,
) -> None:
    from search_router.handlers.label_shard import SAFETY_MARGIN_S

    shards = Shards(make_run())
    shards.add_shard(50, seed=2)
    # Given a slow teacher and an invocation with two seconds left before its safety margin
    teacher.delay_s = 0.6
    with pytest.raises(TransientError, match="ran out of time") as incomplete:
        shards.label(0, Context(SAFETY_MARGIN_S + 2.0))
    # Then it stopped cleanly: what it finished is checkpointed, it is not marked done, and it says why
    done_first = set(teacher.answered)
    progress = shards.checkpointed(0)
    assert 0 < progress.done == len(done_first) < 50
    assert {shards.texts[0][i] for i in progress.outcomes} == done_first
    assert f"{50 - progress.done} of 50 queries left" in str(incomplete.value)
    listing = shards.listing()
    assert shards.keys(0).stats not in listing and shards.keys(0).examples not in listing
    assert shards.json(shards.keys(0).error)["error"] == "TransientError"

    # When the state machine retries it (same input, a fresh invocation with its whole timeout)
    teacher.delay_s = 0.0
    summary = shards.label(0)
    # Then it labeled only the rest: no query was sent to the teacher twice
    assert summary == {"index": 0, "labeled": 50, "invalid": 0, "unlabeled": 0}
    assert sorted(teacher.answered) == sorted(shards.texts[0])
    assert set(teacher.answered.values()) == {1}
    stats = shards.json(shards.keys(0).stats)
    assert stats["labeled"] == 50 and stats["unlabeled"] == 0 and stats["unlabeled_by_reason"] == {}
    assert stats["invocations"] == 2 and stats["resumed"] == len(done_first)
    assert stats["calls"] == 50  # both invocations' calls, each counted once
    examples = [json.loads(line)["query"] for line in shards.json_lines(shards.keys(0).examples)]
    assert examples == shards.texts[0]  # in plan order whichever invocation labeled them

    # And a third invocation (a retry after a lost response, or a redrive) answers the same without a call
    assert shards.label(0) == summary
    assert sum(teacher.answered.values()) == 50


def test_a_shard_killed_mid_way_resumes_from_its_last_checkpoint_part(teacher: Teacher) -> None:
    shards = Shards(make_run())
    shards.add_shard(100, seed=3)
    # Given an invocation whose sandbox dies after 60 answers (a hard timeout: no handler code runs after it)
    teacher.kill_after = 60
    with pytest.raises(Killed):
        shards.label(0)
    answered_before = Counter(teacher.answered)
    progress = shards.checkpointed(0)
    # Then the parts written every DEFAULT_EVERY outcomes survived; nothing says the shard is done
    assert DEFAULT_EVERY <= progress.done <= sum(answered_before.values()) == 60
    assert shards.keys(0).stats not in shards.listing()
    assert shards.keys(0).error not in shards.listing()  # a killed sandbox writes nothing more
    # When Step Functions retries it (Lambda.Unknown / Sandbox.Timedout)
    teacher.kill_after = None
    summary = shards.label(0)
    # Then checkpointed queries were never asked again; only those answered after the last part were
    checkpointed = {shards.texts[0][i] for i in progress.outcomes}
    assert all(teacher.answered[text] == 1 for text in checkpointed)
    asked_twice = {text for text, n in teacher.answered.items() if n == 2}
    assert asked_twice == set(answered_before) - checkpointed
    assert len(asked_twice) < DEFAULT_EVERY + 16  # at most one part's worth plus the calls in flight
    assert max(teacher.answered.values()) <= 2
    # And the counts are exact: every query once
    assert summary["labeled"] == 100 and summary["unlabeled"] == 0
    stats = shards.json(shards.keys(0).stats)
    assert stats["resumed"] == progress.done and stats["labeled"] + stats["invalid_total"] == 100


def test_a_teacher_without_access_fails_the_shard_and_records_why(teacher: Teacher) -> None:
    shards = Shards(make_run())
    shards.add_shard(30, seed=4)
    teacher.refuse = set(shards.texts[0])
    with pytest.raises(TeacherUnavailable):
        shards.label(0)
    error = shards.json(shards.keys(0).error)
    assert error["error"] == "TeacherUnavailable" and "AccessDeniedException" in error["message"]


# ------------------------------------------------------------------------------------------------ failed shards
def _three_shards_two_failed(teacher: Teacher, **settings: Any) -> Shards:
    """Shard 0 (150 queries) labeled; shard 1 (30) killed after 28 answers, leaving a 25-outcome checkpoint;
    shard 2 (20) failed on a teacher without access (TeacherUnavailable after 20 AccessDeniedException errors,
    which it checkpointed on its way out)."""
    shards = Shards(make_run(num_examples=180, eval_examples=20, **settings))
    for count, seed in ((150, 5), (30, 6), (20, 7)):
        shards.add_shard(count, seed)
    shards.label(0)
    teacher.kill_after = 150 + 28
    with pytest.raises(Killed):
        shards.label(1)
    teacher.kill_after = None
    teacher.refuse = set(shards.texts[2])
    with pytest.raises(TeacherUnavailable):
        shards.label(2)
    return shards


def test_failed_shards_count_their_queries_as_shard_failed_and_keep_what_they_checkpointed(
    teacher: Teacher,
) -> None:
    # Given two of three shards that failed after their retries, one with a checkpoint, and a run that
    # tolerates it
    shards = _three_shards_two_failed(teacher, max_failed_shards_percent=100)
    kept = shards.checkpointed(1).done
    assert kept == DEFAULT_EVERY
    # When the dataset is prepared
    result = shards.prepare()
    # Then the checkpointed examples are used, the checkpointed errors are counted by code, and only the rest is
    # counted, as unlabeled by shard_failed
    manifest = shards.manifest()
    assert manifest["labeled"] == 150 + kept == result["labeled"]
    assert manifest["errors"] == {"total": 20, "by": {"AccessDeniedException": 20}}
    assert manifest["unlabeled"] == 30 - kept
    assert manifest["labeling"]["unlabeled_by_reason"] == {"shard_failed": 30 - kept}
    accounted = manifest["labeled"] + manifest["invalid"]["total"] + manifest["errors"]["total"] + manifest["unlabeled"]
    assert accounted == 200
    labeling = manifest["labeling"]
    assert (labeling["shards_planned"], labeling["shards"], labeling["shards_failed"]) == (3, 1, 2)
    assert labeling["failed_shards"] == [
        {
            "index": 1,
            "queries": 30,
            "checkpointed": kept,
            "labeled": kept,
            "unlabeled": 30 - kept,
            "invocations": 1,
            "error": "none recorded (the function was stopped, e.g. by its timeout, before it could write one)",
            "message": "",
        },
        {
            "index": 2,
            "queries": 20,
            "checkpointed": 20,
            "labeled": 0,
            "unlabeled": 0,
            "invocations": 1,
            "error": "TeacherUnavailable",
            "message": labeling["failed_shards"][1]["message"],
        },
    ]
    assert "AccessDeniedException" in labeling["failed_shards"][1]["message"]
    assert labeling["failed_shards_tolerated"] is True and labeling["max_failed_shards_percent"] == 100
    assert labeling["calls"] >= 150 + kept  # the failed shard's checkpointed calls were paid for: counted
    assert manifest["trainable"] is True and result["train_records"] == 150 + kept - 20


def test_more_failed_shards_than_tolerated_fail_the_run_with_the_numbers(teacher: Teacher) -> None:
    shards = _three_shards_two_failed(teacher, max_failed_shards_percent=50)
    with pytest.raises(TooManyShardsFailed) as failure:
        shards.prepare()
    message = str(failure.value)
    assert "2 of 3 labeling shards (67%) failed after their retries" in message
    assert "tolerates 50% (max_failed_shards_percent)" in message
    assert f"{30 - DEFAULT_EVERY} queries were left unlabeled (shard_failed)" in message
    assert f"{DEFAULT_EVERY} labeled examples were kept from the failed shards' checkpoints" in message
    assert "TeacherUnavailable (1)" in message
    manifest = shards.manifest()  # written on this path too
    assert manifest["trainable"] is False and manifest["files"] == {}
    assert manifest["labeling"]["failed_shards_tolerated"] is False


def test_too_few_examples_because_a_shard_failed_says_so(teacher: Teacher) -> None:
    shards = Shards(make_run(num_examples=180, eval_examples=20, max_failed_shards_percent=100))
    shards.add_shard(60, seed=8)
    shards.add_shard(140, seed=9)
    shards.label(0)  # shard 1 never ran to completion: no output at all
    with pytest.raises(DatasetTooSmall) as failure:
        shards.prepare()
    assert "unlabeled 140 (140 of them in 1 failed shard: shard_failed)" in str(failure.value)
    assert "throttling was the reason" not in str(failure.value)
