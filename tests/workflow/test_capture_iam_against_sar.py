"""With ``capture_queries`` on, the calls capture makes are allowed by the synthesized IAM, checked against the
Service Authorization Reference (:mod:`tests.policy`): the router's ``PutRecordBatch`` (through its own
adapter, to the stream the template names) and the compaction's S3 calls (the real handler, in moto). Pointing
the router's grant at another stream is shown to be caught."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import date
from typing import Any

import boto3
import pytest

from search_router.adapters.clients import CLIENTS
from search_router.adapters.firehose import batch_sender
from search_router.contract.layout import captured_raw_prefix
from search_router.handlers.compact_captured import handler as compact_handler
from search_router.router.capture import capture_record
from simulation.harness import REGION, TemplateResolver
from simulation.synth import Synthesized
from tests.handlers.test_compact_captured import Context  # the compaction's Lambda context
from tests.policy.checks import call_findings
from tests.policy.recorder import CallRecorder
from tests.policy.template import function_roles

STREAM_TYPE = "AWS::KinesisFirehose::DeliveryStream"


@pytest.fixture(scope="module")
def captured(loop_stack: Synthesized) -> Synthesized:
    return loop_stack  # capture_queries on (tests.conftest.LOOP_SETTINGS)


def _logical_id(synth: Synthesized, construct: Any) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


def _record_capture_calls(synth: Synthesized, monkeypatch: pytest.MonkeyPatch) -> tuple[TemplateResolver, Any]:
    resolver = TemplateResolver.for_template(synth.template)
    stream_id = next(k for k, v in synth.template["Resources"].items() if v["Type"] == STREAM_TYPE)
    stream = resolver.ref(stream_id)
    bucket = resolver.ref(_logical_id(synth, synth.stack.storage.data_bucket))
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": resolver.resolve(
                synth.template["Resources"][stream_id]["Properties"]["ExtendedS3DestinationConfiguration"]["RoleARN"]
            ),
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "captured/raw/",
        },
    )
    recorder = CallRecorder()
    router_id = _logical_id(synth, synth.stack.routing_api.function)
    compaction_id = _logical_id(synth, synth.stack.capture.compaction_function)
    record = capture_record(
        query="sunset over mountains", weights={"visual": 1.0}, source="model", model="m", latency_ms=1.0, timestamp=0
    )
    with recorder.installed(monkeypatch):
        # The router's call, as its capture thread makes it (the stream name from its environment)
        router = synth.template["Resources"][router_id]["Properties"]["Environment"]["Variables"]
        assert resolver.resolve(router["ROUTER_CAPTURE_STREAM"]) == stream
        with recorder.invoking(router_id):
            send = batch_sender(lambda: CLIENTS.get("firehose"), stream)
            assert send([record]) == []
        # The compaction, the real handler, over a Firehose object of that day
        day = "2026-11-30"
        s3.put_object(
            Bucket=bucket, Key=f"{captured_raw_prefix(date.fromisoformat(day))}a.gz", Body=gzip.compress(record)
        )
        monkeypatch.setenv("DATA_BUCKET", bucket)
        monkeypatch.setenv("CHANNELS", "[]")
        with recorder.invoking(compaction_id):
            assert compact_handler({"date": day}, Context())["records"] == 1
    operations = {(c.function, c.service, c.operation) for c in recorder.calls}
    assert (router_id, "firehose", "PutRecordBatch") in operations
    assert {(compaction_id, "s3", op) for op in ("ListObjectsV2", "GetObject", "PutObject")} <= operations
    return resolver, recorder


def test_every_capture_call_is_allowed_by_the_synthesized_iam(
    aws: None, captured: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    del aws
    resolver, recorder = _record_capture_calls(captured, monkeypatch)
    assert call_findings(captured.template, resolver, recorder.calls) == []


def test_a_router_grant_on_another_stream_is_caught(
    aws: None, captured: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    del aws
    resolver, recorder = _record_capture_calls(captured, monkeypatch)
    broken = copy.deepcopy(captured.template)
    role = function_roles(broken)[_logical_id(captured, captured.stack.routing_api.function)]
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Action"] == "firehose:PutRecordBatch":
                    statement["Resource"] = f"arn:aws:firehose:{REGION}:123456789012:deliverystream/other"
    findings = call_findings(broken, resolver, recorder.calls)
    assert findings and all("firehose:PutRecordBatch" in f for f in findings), json.dumps(findings)
