"""Capture of routed queries (``capture_queries``): the Firehose stream, its role, the router's grant, retention
and the daily compaction's schedule exist only when capture is on, and are scoped to ``captured/``."""

from __future__ import annotations

from typing import Any

import pytest

from simulation.harness import TemplateResolver
from simulation.synth import Synthesized
from tests.policy.checks import statement_findings
from tests.policy.evaluate import Request, allowed
from tests.policy.template import function_roles, role_statements

STREAM = "AWS::KinesisFirehose::DeliveryStream"
BUCKET_ARN = "arn:aws:s3:::"


@pytest.fixture(scope="module")
def captured(loop_stack: Synthesized) -> Synthesized:
    return loop_stack  # capture_queries on, data_retention_days 30


def _only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def _router_role(synth: Synthesized) -> str:
    roles = function_roles(synth.template)
    router = synth.stack.get_logical_id(synth.stack.routing_api.function.node.default_child)
    return roles[router]


def test_without_capture_there_is_no_stream_no_schedule_and_the_router_gets_no_capture_setting(
    synth: Synthesized,
) -> None:
    assert synth.resources(STREAM) == {}
    assert synth.resources("AWS::Scheduler::Schedule") == {}
    router = synth.template["Resources"][
        synth.stack.get_logical_id(synth.stack.routing_api.function.node.default_child)
    ]
    variables = router["Properties"]["Environment"]["Variables"]
    assert not [name for name in variables if name.startswith("ROUTER_CAPTURE")]
    statements = role_statements(synth.template, TemplateResolver.for_template(synth.template))[_router_role(synth)]
    assert not [s for s in statements if any(a.startswith("firehose:") for a in s.actions)]


def test_the_stream_is_direct_put_encrypted_compressed_buffered_and_partitioned_by_day(captured: Synthesized) -> None:
    _, stream = _only(captured.resources(STREAM))
    props = stream["Properties"]
    assert props["DeliveryStreamType"] == "DirectPut"
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    s3 = props["ExtendedS3DestinationConfiguration"]
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["Prefix"] == "captured/raw/!{timestamp:yyyy-MM-dd}/"
    # Firehose requires an error prefix with the error-output-type when the prefix holds an expression
    assert "!{firehose:error-output-type}" in s3["ErrorOutputPrefix"]
    assert s3["ErrorOutputPrefix"].startswith("captured/")
    assert 60 <= s3["BufferingHints"]["IntervalInSeconds"] <= 900
    assert 1 <= s3["BufferingHints"]["SizeInMBs"] <= 128
    assert s3["CloudWatchLoggingOptions"]["Enabled"] is True
    data_bucket = captured.stack.get_logical_id(captured.stack.storage.data_bucket.node.default_child)
    assert s3["BucketARN"] == {"Fn::GetAtt": [data_bucket, "Arn"]}


def test_the_delivery_role_is_assumed_by_this_accounts_firehose_and_writes_captured_only(captured: Synthesized) -> None:
    _, stream = _only(captured.resources(STREAM))
    role_id = stream["Properties"]["ExtendedS3DestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    role = captured.template["Resources"][role_id]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]

    resolver = TemplateResolver.for_template(captured.template)
    statements = role_statements(captured.template, resolver)[role_id]
    bucket = resolver.resolve(
        {"Ref": captured.stack.get_logical_id(captured.stack.storage.data_bucket.node.default_child)}
    )
    obj = f"{BUCKET_ARN}{bucket}/"
    # Given the delivery role, Then it may write under captured/ ...
    assert allowed(
        statements, Request("s3:PutObject", f"{obj}captured/raw/2026-12-01/stream-1-2026-12-01-00-00-00-x.gz")
    )
    # ... and nowhere else of the bucket, nor read anything outside captured/
    for key in ("runs/r1/dataset/train.jsonl", "inputs/queries.txt", "promoted/micro-router/r1/model.bin"):
        assert not allowed(statements, Request("s3:PutObject", f"{obj}{key}")), key
        assert not allowed(statements, Request("s3:GetObject", f"{obj}{key}")), key
    assert not allowed(statements, Request("s3:DeleteObject", f"{obj}captured/raw/2026-12-01/x.gz"))
    assert statement_findings({role_id: statements}) == []


def test_the_router_may_put_batches_on_this_stream_only_and_knows_its_name(captured: Synthesized) -> None:
    resolver = TemplateResolver.for_template(captured.template)
    statements = role_statements(captured.template, resolver)[_router_role(captured)]
    stream_id, _ = _only(captured.resources(STREAM))
    stream_arn = resolver.resolve({"Fn::GetAtt": [stream_id, "Arn"]})
    other = stream_arn.rsplit("/", 1)[0] + "/someone-elses-stream"
    assert allowed(statements, Request("firehose:PutRecordBatch", stream_arn))
    assert not allowed(statements, Request("firehose:PutRecordBatch", other))
    assert not allowed(statements, Request("firehose:PutRecord", stream_arn))
    assert not allowed(statements, Request("firehose:DeleteDeliveryStream", stream_arn))
    assert statement_findings({"router": statements}) == []  # the SAR: PutRecordBatch on a deliverystream
    router = captured.template["Resources"][
        captured.stack.get_logical_id(captured.stack.routing_api.function.node.default_child)
    ]
    variables = router["Properties"]["Environment"]["Variables"]
    assert variables["ROUTER_CAPTURE_STREAM"] == {"Ref": stream_id}
    assert variables["ROUTER_CAPTURE_REDACT_PATTERNS"].startswith("[")


def test_data_retention_expires_captured_queries(captured: Synthesized) -> None:
    data = captured.template["Resources"][
        captured.stack.get_logical_id(captured.stack.storage.data_bucket.node.default_child)
    ]
    rules = {r.get("Prefix"): r for r in data["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["captured/"]["ExpirationInDays"] == 30 and rules["captured/"]["Status"] == "Enabled"
    assert rules["inputs/"]["ExpirationInDays"] == 30  # the compacted files live under inputs/captured/


def test_the_compaction_runs_daily_through_scheduler_with_a_role_that_invokes_it_only(captured: Synthesized) -> None:
    # the drift check (infra/drift.py) has its own schedule: this one is the compaction's
    assert captured.stack.capture is not None
    schedule = captured.resources("AWS::Scheduler::Schedule")[
        captured.stack.get_logical_id(captured.stack.capture.schedule)
    ]
    props = schedule["Properties"]
    assert props["ScheduleExpression"].startswith("cron(") and props["ScheduleExpressionTimezone"] == "UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    function_id = captured.stack.get_logical_id(captured.stack.capture.compaction_function.node.default_child)
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert props["Target"]["Input"] == "{}"
    role_id = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    [trust] = captured.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    resolver = TemplateResolver.for_template(captured.template)
    statements = role_statements(captured.template, resolver)[role_id]
    function_arn = resolver.resolve({"Fn::GetAtt": [function_id, "Arn"]})
    router_id = captured.stack.get_logical_id(captured.stack.routing_api.function.node.default_child)
    assert allowed(statements, Request("lambda:InvokeFunction", function_arn))
    assert not allowed(
        statements, Request("lambda:InvokeFunction", resolver.resolve({"Fn::GetAtt": [router_id, "Arn"]}))
    )
    assert statement_findings({role_id: statements}) == []


def test_the_compaction_reads_captured_raw_and_writes_inputs_captured_only(captured: Synthesized) -> None:
    resolver = TemplateResolver.for_template(captured.template)
    function_id = captured.stack.get_logical_id(captured.stack.capture.compaction_function.node.default_child)
    role_id = function_roles(captured.template)[function_id]
    statements = role_statements(captured.template, resolver)[role_id]
    bucket = resolver.resolve(
        {"Ref": captured.stack.get_logical_id(captured.stack.storage.data_bucket.node.default_child)}
    )
    obj = f"{BUCKET_ARN}{bucket}/"
    assert allowed(statements, Request("s3:GetObject", f"{obj}captured/raw/2026-12-01/a.gz"))
    assert allowed(statements, Request("s3:PutObject", f"{obj}inputs/captured/2026-12-01.jsonl"))
    assert allowed(
        statements, Request("s3:ListBucket", f"{BUCKET_ARN}{bucket}", {"s3:prefix": "captured/raw/2026-12-01/"})
    )
    assert not allowed(statements, Request("s3:ListBucket", f"{BUCKET_ARN}{bucket}", {"s3:prefix": "runs/"}))
    assert not allowed(statements, Request("s3:PutObject", f"{obj}inputs/queries.txt"))
    assert not allowed(statements, Request("s3:GetObject", f"{obj}runs/r1/dataset/train.jsonl"))
    assert not allowed(statements, Request("s3:DeleteObject", f"{obj}captured/raw/2026-12-01/a.gz"))
    assert statement_findings({role_id: statements}) == []


def test_the_capture_variant_is_cdk_nag_and_cfn_lint_clean(captured: Synthesized) -> None:
    import json

    from cfnlint.api import ManualArgs, lint_file

    report = json.loads((captured.outdir / "validation-report.json").read_text())
    (plugin,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert plugin["conclusion"] == "success" and plugin["violations"] == []
    capture_acknowledged = [
        f
        for f in plugin["suppressedViolations"]
        if any("QueryCapture" in c["constructPath"] for c in f["violatingConstructs"])
    ]
    # the capture's own wildcards are object keys under captured/ (or inputs/captured/), one construct each
    s3_wildcards = [f["ruleName"] for f in capture_acknowledged if "StorageData" in f["ruleName"]]
    assert sorted(s3_wildcards) == [
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/captured/*]",
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/captured/raw/*]",
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/inputs/captured/*]",
    ]
    assert all(len(f["violatingConstructs"]) == 1 and len(f["reason"]) >= 20 for f in capture_acknowledged)
    matches = lint_file(captured.template_path, config=ManualArgs(regions=["us-east-1"]))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], "\n".join(str(m) for m in errors)
