"""Batch labeling (``labeling_mode: batch``) in the synthesized state machine, run by moto's interpreter with the
real handlers and the botocore-validating Bedrock fake: a whole run, a job that fails, a job whose output holds
unparseable records, and an abort while the job runs (its compensation stops it)."""

from __future__ import annotations

from typing import Any

from simulation.bedrock.values import ConverseRequest, default_responder
from simulation.bedrock_fake import BedrockFake
from simulation.harness import PipelineHarness
from tests.workflow.test_faults import _finish, _one_notification, _when

BATCH = {"num_examples": 200, "eval_examples": 20, "shard_size": 50, "seed": 11, "labeling_mode": "batch"}
BATCH_JOB = "batch inference job"


def _states(pipeline: PipelineHarness) -> list[str]:
    return [handler for handler, _ in pipeline.invocations]


def test_a_batch_run_labels_through_one_job_and_counts_unparseable_records(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a teacher that answers prose to the queries that start with "a", and an output with 3 cut-off lines
    def responder(request: ConverseRequest) -> Any:
        return "I would say visual." if request.user_text.startswith("a ") else default_responder(request)

    bedrock.responder = responder
    bedrock.corrupt_next_batch_job(3)
    # When a batch run goes all the way
    execution = _finish(pipeline, pipeline.start(BATCH, name="batched"))
    # Then it succeeded through one batch job, no LabelShard and no on-demand teacher call
    assert execution.status == "SUCCEEDED", execution
    handlers = _states(pipeline)
    assert "search_router.handlers.label_shard.handler" not in handlers
    assert "search_router.handlers.batch_labeling.collect" in handlers
    (job,) = bedrock.calls_to("CreateModelInvocationJob")
    assert job["modelInvocationType"] == "Converse"
    assert [c for c in bedrock.calls_to("Converse") if c["modelId"] == job["modelId"]] == []  # no on-demand teacher
    # and the manifest counts the unparseable answers by reason and the cut-off records as unlabeled
    manifest = pipeline.s3_json("runs/batched/dataset/manifest.json")
    assert manifest["invalid"]["by"].get("no_json", 0) > 0
    assert manifest["labeling"]["unlabeled_by_reason"] == {"batch_no_output": 3}
    # the output's lines: every planned record, the 3 cut-off ones unreadable and quoted
    lines = manifest["labeling"]["batch_output"]
    assert (lines["unreadable"], lines["unknown_records"], lines["duplicate_records"]) == (3, 0, 0)
    assert len(lines["unreadable_samples"]) == 3
    assert lines["records"] + lines["unreadable"] == manifest["planned"]  # one output line per planned record
    planned = pipeline.s3_json("runs/batched/dataset/plan.json")["planned"]
    assert manifest["labeled"] + manifest["invalid"]["total"] + manifest["errors"]["total"] + 3 == planned


def test_a_failed_batch_job_fails_the_run_with_the_service_message(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    bedrock.fail_next_batch_job("Bedrock could not read s3://data/runs/failed-batch/batch-labeling/input/")
    execution = _finish(pipeline, pipeline.start(BATCH, name="failed-batch"))
    assert execution.status == "FAILED"
    note = _one_notification(pipeline)
    assert "FAILED in CheckBatchLabeling: BatchLabelingFailed" in note["subject"]
    assert "Bedrock could not read s3://data/runs/failed-batch/batch-labeling/input/" in note["message"]
    assert not bedrock.calls_to("CreateModelCustomizationJob")


def test_an_abort_while_the_batch_job_runs_stops_it(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # Given a run stopped from the console while its batch job is queued
    bedrock.batch_polls_to_complete = 10_000
    _when(
        pipeline,
        "search_router.handlers.batch_labeling.check",
        lambda event: pipeline.sfn.stop_execution(executionArn=event["run"]["execution_arn"], cause="stopped by hand"),
    )
    execution = _finish(pipeline, pipeline.start(BATCH, name="aborted-batch"))
    assert execution.status == "ABORTED"
    # When its compensation has run, Then the job was stopped and the notification says so
    assert execution.compensation is not None and execution.compensation.status == "SUCCEEDED"
    (stop,) = bedrock.calls_to("StopModelInvocationJob")
    assert bedrock.batch_job(stop["jobIdentifier"])["status"] in ("Stopping", "Stopped")
    note = _one_notification(pipeline)
    assert f"- {BATCH_JOB} {stop['jobIdentifier']} (stopped)" in note["message"]
