"""ScheduledRetraining with moto (S3, Step Functions without an interpreter, so executions stay RUNNING, SNS with an
SQS subscriber): a running pipeline execution skips the schedule with a notification; a retried invocation whose
execution exists is found, not started twice; a file under inputs/captured/ that is not a day's file is counted."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import boto3
import pytest

from search_router.contract.layout import RETRAIN_LATEST, RETRAIN_STATE, captured_queries
from search_router.handlers.retrain import handler
from search_router.pipeline.queries.captured import query_file
from search_router.shared.channels import DEFAULT_CHANNELS
from tests.handlers.test_compact_captured import Context

BUCKET = "data-bucket"
REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    del aws
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="Pipeline",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/StateMachineRole",
    )["stateMachineArn"]
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="Notifications")["TopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="notes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    environment = {
        "CHANNELS": DEFAULT_CHANNELS.to_json(),
        "DATA_BUCKET": BUCKET,
        "STACK_NAME": "SearchRouterDistillation",
        "STATE_MACHINE_ARN": machine,
        "TOPIC_ARN": topic,
        "MIN_NEW_QUERIES": "5",
        "HELDOUT_QUERIES": "2",
        "MAX_TRAINING_QUERIES": "100",
        "WINDOW_DAYS": "7",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    day = date(2026, 11, 27)
    traffic = [(f"captured query {i}", 1 + i) for i in range(8)]
    s3.put_object(Bucket=BUCKET, Key=captured_queries(day), Body=query_file(traffic))
    return {"s3": s3, "sfn": sfn, "sqs": sqs, "queue": queue, "machine": machine}


def _messages(stack: dict[str, Any]) -> list[dict[str, Any]]:
    batch = stack["sqs"].receive_message(QueueUrl=stack["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(item["Body"]) for item in batch]


def test_a_running_execution_skips_the_schedule_and_says_so(stack: dict[str, Any]) -> None:
    stack["sfn"].start_execution(stateMachineArn=stack["machine"], name="someones-run", input="{}")
    result = handler({"scheduled_time": "2026-11-28T03:00:00Z"}, Context())
    assert result["status"] == "run_in_progress" and result["execution_arn"] is None
    assert result["new_queries"] == 8 and result["training_queries"] == 0
    latest = json.loads(stack["s3"].get_object(Bucket=BUCKET, Key=RETRAIN_LATEST)["Body"].read())
    assert latest["running_executions"] == ["someones-run"] and latest["status"] == "run_in_progress"
    [note] = _messages(stack)
    assert note["Subject"] == "SearchRouterDistillation: scheduled retraining skipped (run_in_progress)"
    assert "a pipeline execution is still running" in note["Message"]
    # nothing was started and no state was written: the next schedule decides afresh
    names = [e["name"] for e in stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]]
    assert names == ["someones-run"]
    assert "Contents" not in stack["s3"].list_objects_v2(Bucket=BUCKET, Prefix=RETRAIN_STATE)


def test_a_retry_after_the_start_finds_its_execution(stack: dict[str, Any]) -> None:
    # The first attempt started its execution and failed before recording it
    first = handler({"scheduled_time": "2026-11-28T03:00:00Z"}, Context())
    assert first["status"] == "start"
    stack["s3"].delete_object(Bucket=BUCKET, Key=RETRAIN_STATE)
    stack["sfn"].stop_execution(executionArn=first["execution_arn"])  # closed: StartExecution now refuses the name
    again = handler({"scheduled_time": "2026-11-28T03:00:00Z"}, Context())
    assert again["status"] == "start" and again["execution_arn"] == first["execution_arn"]
    assert len(stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]) == 1
    state = json.loads(stack["s3"].get_object(Bucket=BUCKET, Key=RETRAIN_STATE)["Body"].read())
    assert state == {
        "execution": "retrain-20261128T030000Z",
        "execution_arn": first["execution_arn"],
        "through": "2026-11-27",
        "window_start": "2026-11-21",
        "started_at": "20261128T030000Z",
    }
    assert _messages(stack) == []  # a start publishes nothing (the run's end is notified by the pipeline)


def test_what_the_last_run_saw_before_the_window_stays_seen(stack: dict[str, Any]) -> None:
    # The last scheduled run read 2026-11-01..2026-11-10; this one's window starts on 2026-11-21
    s3 = stack["s3"]
    s3.put_object(Bucket=BUCKET, Key=captured_queries(date(2026, 11, 5)), Body=query_file([("captured query 0", 3)]))
    s3.put_object(Bucket=BUCKET, Key=captured_queries(date(2026, 10, 1)), Body=query_file([("captured query 1", 3)]))
    state = {"execution": "retrain-x", "execution_arn": "arn", "through": "2026-11-10", "window_start": "2026-11-01"}
    s3.put_object(Bucket=BUCKET, Key=RETRAIN_STATE, Body=json.dumps(state).encode())
    result = handler({"scheduled_time": "2026-11-28T03:00:00Z"}, Context())
    # of 2026-11-27's 8 queries, "captured query 0" was seen by the last run; query 1's day it never read
    assert result["status"] == "start" and result["new_queries"] == 7


def test_no_heldout_sample_passes_no_production_file(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELDOUT_QUERIES", "0")
    result = handler({"scheduled_time": "2026-11-28T03:00:00Z"}, Context())
    assert result["status"] == "start" and result["heldout_queries"] == 0
    execution = stack["sfn"].describe_execution(executionArn=result["execution_arn"])
    assert set(json.loads(execution["input"])) == {"queries_s3_uri", "mix_user_queries"}


def test_a_file_that_is_not_a_day_is_counted_and_days_before_the_window_are_not_read(stack: dict[str, Any]) -> None:
    stack["s3"].put_object(Bucket=BUCKET, Key="inputs/captured/notes.txt", Body=b"hello")
    old = [(f"old query {i}", 1) for i in range(50)]
    stack["s3"].put_object(Bucket=BUCKET, Key=captured_queries(date(2026, 11, 20)), Body=query_file(old))
    result = handler({"scheduled_time": "2026-11-28T03:00:00Z"}, Context())  # window: from 2026-11-21
    assert result["malformed"] == {"not_a_captured_day_file": 1} and result["status"] == "start"
    assert result["new_queries"] == 8 and result["training_queries"] == 6  # the 8 of 2026-11-27 only
