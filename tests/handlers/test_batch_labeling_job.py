"""A batch labeling job end to end below the state machine: the records batch_input builds, the job the adapter
starts on the botocore-validating Bedrock fake (moto S3 for the files), its status polled, its output parsed."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from search_router.adapters import s3io
from search_router.adapters.bedrock import (
    batch_job_request,
    batch_job_status,
    batch_output_lines,
    create_once,
    stop_batch_job,
)
from search_router.adapters.clients import CLIENTS
from search_router.pipeline.batch_labeling import batch_input, parse_batch_output
from search_router.pipeline.queries.query import Query
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.bedrock.values import ConverseRequest, FakeError
from simulation.bedrock_fake import BedrockFake

BUCKET = "data-bucket"
ROLE = "arn:aws:iam::123456789012:role/BedrockBatchRole"
TEACHER = "us.amazon.nova-pro-v1:0"
VALID = '{"visual":0.6,"audio":0.1,"transcription":0.1,"metadata":0.2,"reasoning":"Mostly scenery."}'


@pytest.fixture
def batch(aws: None, bedrock: BedrockFake) -> BedrockFake:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    bedrock.batch_s3 = s3
    return bedrock


def start(queries: list[Query], name: str = "stack-run1-label") -> tuple[str, str]:
    """Upload the input, start the job as the pipeline would; returns (job ARN, output URI)."""
    input_uri = s3io.put_text(
        BUCKET, "tmp/run1/batch/input/queries.jsonl", batch_input(queries, channels=DEFAULT_CHANNELS)
    )
    output_uri = s3io.s3_uri(BUCKET, "tmp/run1/batch/output/")
    request = batch_job_request(
        job_name=name,
        role_arn=ROLE,
        model_id=TEACHER,
        input_uri=input_uri,
        output_uri=output_uri,
        token=f"{name}-token",
        tags={"project": "search-router", "stack": "stack"},
    )
    bedrock = CLIENTS.get("bedrock")
    arn, created = create_once(bedrock, "batch", name, bedrock.create_model_invocation_job, request)
    assert created
    return arn, output_uri


def poll(arn: str, limit: int = 10) -> Any:
    for _ in range(limit):
        status = batch_job_status(arn)
        if not status.running:
            return status
    raise AssertionError(f"job {arn} still running after {limit} polls")


def test_a_batch_job_labels_every_query_through_the_responder(batch: BedrockFake) -> None:
    # Given 120 queries and a teacher that answers one of them badly
    queries = synthesize_queries(DEFAULT_CHANNELS, 120, seed=2)
    bad = queries[7].text
    batch.responder = lambda request: "no idea" if request.user_text == bad else VALID
    # When
    arn, output_uri = start(queries)
    status = poll(arn)
    result = parse_batch_output(batch_output_lines(output_uri), queries, channels=DEFAULT_CHANNELS)
    # Then
    assert status.status == "Completed"
    assert status.counts["successRecordCount"] == 120
    assert [e.query for e in result.labeling.examples] == [q.text for q in queries if q.text != bad]
    assert dict(result.labeling.invalid) == {"no_json": 1}
    # the job was started as a Converse job with the teacher, tagged
    (call,) = batch.calls_to("CreateModelInvocationJob")
    assert call["modelInvocationType"] == "Converse" and call["modelId"] == TEACHER
    assert {"key": "project", "value": "search-router"} in call["tags"]
    # and the fake answered what the teacher prompt asked: every record reached the responder as Converse
    assert result.labeling.input_tokens > 0 and result.to_stats()["batch"]["records"] == 120


def test_record_errors_and_cut_off_lines_are_counted_not_dropped(batch: BedrockFake) -> None:
    queries = synthesize_queries(DEFAULT_CHANNELS, 100, seed=4)
    refused = {queries[1].text, queries[2].text}

    def responder(request: ConverseRequest) -> str | FakeError:
        return FakeError("ValidationException", "Input is too long") if request.user_text in refused else VALID

    batch.responder = responder
    batch.corrupt_next_batch_job(3)
    arn, output_uri = start(queries)
    assert poll(arn).status == "Completed"
    stats = parse_batch_output(batch_output_lines(output_uri), queries, channels=DEFAULT_CHANNELS).to_stats()
    assert stats["batch"]["unreadable"] == 3
    assert stats["unlabeled_by_reason"] == {"batch_no_output": 3}
    assert stats["errors"] == {"400": 2} and stats["error_messages"]["400"] == "Input is too long"
    assert stats["labeled"] + stats["invalid_total"] + stats["errors_total"] + stats["unlabeled"] == 100


def test_a_failed_job_reports_the_service_message_and_writes_nothing(batch: BedrockFake) -> None:
    queries = synthesize_queries(DEFAULT_CHANNELS, 100, seed=4)
    batch.fail_next_batch_job("Access denied to s3://data-bucket/tmp/run1/batch/input/")
    arn, output_uri = start(queries)
    status = poll(arn)
    assert (status.status, status.message) == ("Failed", "Access denied to s3://data-bucket/tmp/run1/batch/input/")
    assert list(batch_output_lines(output_uri)) == []


def test_a_job_below_the_minimum_fails_as_the_service_validates(batch: BedrockFake) -> None:
    batch.batch_min_records = 150
    arn, _ = start(synthesize_queries(DEFAULT_CHANNELS, 120, seed=4))
    status = poll(arn)
    assert status.status == "Failed" and "at least 150" in (status.message or "")


def test_a_running_job_is_stopped_and_a_stop_after_the_end_is_harmless(batch: BedrockFake) -> None:
    batch.batch_polls_to_complete = 5
    arn, _ = start(synthesize_queries(DEFAULT_CHANNELS, 100, seed=4))
    assert batch_job_status(arn).running
    assert stop_batch_job(arn)
    assert poll(arn).status == "Stopped"
    assert stop_batch_job(arn)  # ended: nothing to stop, not an error
    assert [c["jobIdentifier"] for c in batch.calls_to("StopModelInvocationJob")] == [arn, arn]


def test_a_second_start_finds_the_job_by_name_and_the_request_is_botocore_valid(batch: BedrockFake) -> None:
    queries = synthesize_queries(DEFAULT_CHANNELS, 100, seed=4)
    arn, _ = start(queries, name="stack-run1-label")
    bedrock = CLIENTS.get("bedrock")
    again = batch_job_request(
        job_name="stack-run1-label",
        role_arn=ROLE,
        model_id=TEACHER,
        input_uri="s3://data-bucket/x.jsonl",
        output_uri="s3://data-bucket/out/",
        token="another-token",
        tags={},
    )
    assert create_once(bedrock, "batch", "stack-run1-label", bedrock.create_model_invocation_job, again) == (arn, False)
    broken = {**again, "jobName": "stack-run1-label-2"}
    del broken["roleArn"]
    with pytest.raises(ParamValidationError):
        bedrock.create_model_invocation_job(**broken)
    with pytest.raises(ValueError, match="24-168"):
        batch_job_request(**{**_args(), "timeout_hours": 12})


def _args() -> dict[str, Any]:
    return {
        "job_name": "n",
        "role_arn": ROLE,
        "model_id": TEACHER,
        "input_uri": "s3://b/i.jsonl",
        "output_uri": "s3://b/o/",
        "token": "t",
        "tags": {},
    }


def test_an_unknown_teacher_is_refused_at_create(batch: BedrockFake) -> None:
    request = {**batch_job_request(**_args()), "modelId": "us.amazon.nova-imaginary-v1:0"}
    with pytest.raises(ClientError) as raised:
        CLIENTS.get("bedrock").create_model_invocation_job(**request)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert json.dumps(request)  # the request stays JSON (it is what the state carries)
