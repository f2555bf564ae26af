"""StartBatchLabeling, CheckBatchLabeling and CollectBatchLabels on the botocore-validating Bedrock fake and moto
S3: the shard files they write are what LabelShard would have written, and a failed job fails with its message."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from search_router.adapters import s3io
from search_router.contract.errors import BatchLabelingFailed
from search_router.contract.run import RunState
from search_router.contract.tags import RUN_TAG, STACK_TAG
from search_router.contract.tasks import ShardPlan, ShardRef
from search_router.pipeline.dataset import read_examples
from search_router.pipeline.queries.plan_output import shard_document
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.bedrock.values import ConverseRequest
from simulation.bedrock_fake import BedrockFake
from tests.handlers.runs import task_run
from tests.handlers.test_pipeline_handlers import Context

BUCKET = "data-bucket"
VALID = '{"visual":0.6,"audio":0.1,"transcription":0.1,"metadata":0.2,"reasoning":"Mostly scenery."}'


@pytest.fixture
def world(aws: None, bedrock: BedrockFake, pipeline_env: None) -> BedrockFake:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    bedrock.batch_s3 = s3
    return bedrock


def plan(run: RunState, sizes: list[int]) -> dict[str, Any]:
    queries = synthesize_queries(DEFAULT_CHANNELS, sum(sizes), seed=9)
    shards, start = [], 0
    for index, size in enumerate(sizes):
        key = run.layout.plan_shard(index)
        s3io.put_json(BUCKET, key, shard_document(queries[start : start + size]))
        shards.append(ShardRef(index=index, key=key, count=size))
        start += size
    return ShardPlan(shards=shards, planned=sum(sizes), requested=sum(sizes), shard_size=max(sizes)).model_dump()


def test_a_batch_run_writes_every_shard_as_label_shard_would(world: BedrockFake) -> None:
    from search_router.handlers.batch_labeling import check, collect, start

    # Given a plan of two shards (80 + 40 queries) and a teacher that fails to answer one query well
    run = task_run(labeling_mode="batch")
    state = RunState.model_validate(run)
    the_plan = plan(state, [80, 40])
    world.responder = lambda request: "no idea" if request.user_text.startswith(("a", "the")) else VALID
    # When the job is started, checked until done and collected
    job = start({"run": run, "plan": the_plan}, Context())
    statuses = [check({"run": run, "batch_labeling": job}, Context())["status"] for _ in range(2)]
    summary = collect({"run": run, "plan": the_plan, "batch_labeling": job}, Context())
    # Then
    assert statuses == ["InProgress", "Completed"]
    (call,) = world.calls_to("CreateModelInvocationJob")
    assert call["modelId"] == state.teacher_model_id and call["roleArn"].endswith(":role/bedrock")
    assert {STACK_TAG, RUN_TAG} <= {tag["key"] for tag in call["tags"]}  # for the IAM conditions and the cleanup
    labeled = 0
    for shard in (0, 1):
        keys = state.layout.shard(shard)
        stats = s3io.get_json(BUCKET, keys.stats)
        examples = read_examples(s3io.get_text(BUCKET, keys.examples))
        assert stats["shard"] == shard and stats["labeled"] == len(examples)
        assert (
            stats["labeled"] + stats["invalid_total"] + stats["errors_total"] + stats["unlabeled"] == stats["queries"]
        )
        labeled += len(examples)
    assert 0 < labeled < 120  # the teacher answered some queries badly
    assert summary["labeled"] == labeled and summary["invalid"] == 120 - labeled and summary["unreadable"] == 0


def test_unreadable_output_lines_are_counted_in_the_shards_and_the_summary(world: BedrockFake) -> None:
    from search_router.handlers.batch_labeling import check, collect, start

    run = task_run(labeling_mode="batch")
    the_plan = plan(RunState.model_validate(run), [100])
    world.corrupt_next_batch_job(4)
    job = start({"run": run, "plan": the_plan}, Context())
    while check({"run": run, "batch_labeling": job}, Context())["status"] != "Completed":
        pass
    summary = collect({"run": run, "plan": the_plan, "batch_labeling": job}, Context())
    stats = s3io.get_json(BUCKET, RunState.model_validate(run).layout.shard(0).stats)
    assert (summary["unreadable"], summary["unlabeled"], summary["labeled"]) == (4, 4, 96)
    assert stats["unlabeled_by_reason"] == {"batch_no_output": 4} and stats["batch"]["unreadable"] == 4


def test_a_failed_job_fails_the_run_with_the_service_message(world: BedrockFake) -> None:
    from search_router.handlers.batch_labeling import check, start

    run = task_run(labeling_mode="batch")
    the_plan = plan(RunState.model_validate(run), [100])
    world.fail_next_batch_job("The role can't read s3://data-bucket/runs/r1/batch-labeling/input/queries.jsonl")
    job = start({"run": run, "plan": the_plan}, Context())
    check({"run": run, "batch_labeling": job}, Context())
    with pytest.raises(BatchLabelingFailed, match=r"Failed: The role can't read s3://data-bucket/runs/r1/"):
        check({"run": run, "batch_labeling": job}, Context())


def test_a_plan_below_the_minimum_is_refused_before_any_job(world: BedrockFake) -> None:
    from search_router.handlers.batch_labeling import start

    run = task_run(labeling_mode="batch")
    the_plan = plan(RunState.model_validate(run), [60, 30])
    with pytest.raises(BatchLabelingFailed, match=r"at least 100 records .* 90 queries.*labeling_mode: on_demand"):
        start({"run": run, "plan": the_plan}, Context())
    assert world.calls_to("CreateModelInvocationJob") == []


def test_a_second_start_of_the_same_execution_finds_the_job(world: BedrockFake) -> None:
    from search_router.handlers.batch_labeling import start

    run = task_run(labeling_mode="batch")
    the_plan = plan(RunState.model_validate(run), [100])
    first = start({"run": run, "plan": the_plan}, Context())
    assert start({"run": run, "plan": the_plan}, Context())["job_arn"] == first["job_arn"]
    assert len({c["clientRequestToken"] for c in world.calls_to("CreateModelInvocationJob")}) == 1


def test_requests_reach_the_teacher_as_converse_with_the_teacher_prompt(world: BedrockFake) -> None:
    from search_router.handlers.batch_labeling import check, start
    from search_router.shared.prompts import teacher_prompt

    seen: list[ConverseRequest] = []
    world.responder = lambda request: seen.append(request) or VALID  # type: ignore[func-returns-value]
    run = task_run(labeling_mode="batch")
    the_plan = plan(RunState.model_validate(run), [100])
    job = start({"run": run, "plan": the_plan}, Context())
    check({"run": run, "batch_labeling": job}, Context())
    check({"run": run, "batch_labeling": job}, Context())
    assert len(seen) == 100 and {r.system_text for r in seen} == {teacher_prompt(DEFAULT_CHANNELS)}
