"""The daily drift check (infra/drift.py): only with ``capture_queries``; a daily schedule whose role invokes it
only; its role reads captured/raw/ and training files, writes drift/, reads the promotion parameter and nothing
else; one alarm per figure at its ``drift_max_*`` bound, to the notification topic; cdk-nag clean."""

from __future__ import annotations

import json

import pytest

from search_router.pipeline.drift import FIGURES
from simulation.harness import TemplateResolver
from simulation.synth import Synthesized
from tests.policy.checks import statement_findings
from tests.policy.evaluate import Request, allowed
from tests.policy.template import function_roles, role_statements

BUCKET_ARN = "arn:aws:s3:::"


@pytest.fixture(scope="module")
def drifted(loop_stack: Synthesized) -> Synthesized:
    return loop_stack  # capture_queries on, tests.conftest.DRIFT_BOUNDS


def _function_id(synth: Synthesized) -> str:
    assert synth.stack.drift is not None
    return str(synth.stack.get_logical_id(synth.stack.drift.function.node.default_child))


def test_without_capture_there_is_no_drift_check(synth: Synthesized) -> None:
    assert synth.stack.drift is None
    handlers = [f["Properties"].get("Handler") for f in synth.resources("AWS::Lambda::Function").values()]
    assert "search_router.handlers.drift_check.handler" not in handlers
    metrics = {a["Properties"].get("MetricName") for a in synth.resources("AWS::CloudWatch::Alarm").values()}
    assert not metrics & set(FIGURES)


def test_the_check_runs_daily_through_scheduler_with_a_role_that_invokes_it_only(drifted: Synthesized) -> None:
    assert drifted.stack.drift is not None
    schedules = drifted.resources("AWS::Scheduler::Schedule")
    props = schedules[drifted.stack.get_logical_id(drifted.stack.drift.schedule)]["Properties"]
    assert props["ScheduleExpression"].startswith("cron(") and props["ScheduleExpressionTimezone"] == "UTC"
    function_id = _function_id(drifted)
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert props["Target"]["Input"] == "{}"
    role_id = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    [trust] = drifted.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    resolver = TemplateResolver.for_template(drifted.template)
    statements = role_statements(drifted.template, resolver)[role_id]
    assert allowed(statements, Request("lambda:InvokeFunction", resolver.resolve({"Fn::GetAtt": [function_id, "Arn"]})))
    router_id = drifted.stack.get_logical_id(drifted.stack.routing_api.function.node.default_child)
    assert not allowed(
        statements, Request("lambda:InvokeFunction", resolver.resolve({"Fn::GetAtt": [router_id, "Arn"]}))
    )


def test_the_check_reads_captured_and_training_data_writes_drift_and_reads_the_parameter_only(
    drifted: Synthesized,
) -> None:
    resolver = TemplateResolver.for_template(drifted.template)
    function_id = _function_id(drifted)
    role_id = function_roles(drifted.template)[function_id]
    statements = role_statements(drifted.template, resolver)[role_id]
    bucket = resolver.resolve(
        {"Ref": drifted.stack.get_logical_id(drifted.stack.storage.data_bucket.node.default_child)}
    )
    obj = f"{BUCKET_ARN}{bucket}/"
    parameter = resolver.resolve(drifted.stack.resolve(drifted.stack.routing_api.model_parameter.parameter_arn))
    assert allowed(statements, Request("s3:GetObject", f"{obj}captured/raw/2026-12-01/a.gz"))
    assert allowed(statements, Request("s3:GetObject", f"{obj}runs/r1/dataset/train.jsonl"))
    assert allowed(statements, Request("s3:PutObject", f"{obj}drift/latest.json"))
    assert allowed(statements, Request("s3:PutObject", f"{obj}drift/2026-12-01.json"))
    assert allowed(statements, Request("ssm:GetParameter", parameter))
    assert allowed(statements, Request("s3:ListBucket", f"{BUCKET_ARN}{bucket}", {"s3:prefix": "captured/raw/x/"}))
    assert not allowed(statements, Request("s3:ListBucket", f"{BUCKET_ARN}{bucket}", {"s3:prefix": "runs/"}))
    assert not allowed(statements, Request("s3:GetObject", f"{obj}runs/r1/dataset/heldout.jsonl"))
    assert not allowed(statements, Request("s3:PutObject", f"{obj}captured/raw/2026-12-01/a.gz"))
    assert not allowed(statements, Request("s3:PutObject", f"{obj}runs/r1/dataset/train.jsonl"))
    assert not allowed(statements, Request("ssm:PutParameter", parameter))
    assert statement_findings({role_id: statements}) == []


def test_each_figure_alarms_above_its_configured_bound_to_the_notification_topic(drifted: Synthesized) -> None:
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in drifted.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") in FIGURES
    }
    assert set(alarms) == set(FIGURES)
    expected = {"UnseenVocabularyShare": 0.25, "DominantChannelShift": 0.15, "DefaultRate": 0.01}
    expected |= {"FallbackRate": 0.05, "EscalatedShare": 0.6}  # cdk.json's defaults
    topic = drifted.stack.get_logical_id(drifted.stack.notifications.topic.node.default_child)
    for name, props in alarms.items():
        assert props["Threshold"] == expected[name], name
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["TreatMissingData"] == "notBreaching"  # too little traffic publishes nothing
        assert props["Namespace"] == drifted.stack.stack_name
        assert props["Dimensions"] == [{"Name": "service", "Value": "drift_check"}]
        assert props["AlarmActions"] == [{"Ref": topic}]


@pytest.mark.parametrize(
    ("key", "value"), [("drift_window_days", "0"), ("drift_max_unseen_share", "1.5"), ("drift_min_records", "many")]
)
def test_a_bad_drift_setting_is_an_error_naming_the_key(key: str, value: str) -> None:
    from infra.config import ConfigError, parse_config, read_cdk_json_context

    with pytest.raises(ConfigError, match=key):
        parse_config({**read_cdk_json_context(), key: value})


def test_the_drift_variant_is_cdk_nag_clean(drifted: Synthesized) -> None:
    report = json.loads((drifted.outdir / "validation-report.json").read_text())
    (plugin,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert plugin["conclusion"] == "success" and plugin["violations"] == []
    acknowledged = [
        f
        for f in plugin["suppressedViolations"]
        if any("DriftCheck" in c["constructPath"] for c in f["violatingConstructs"])
    ]
    s3_wildcards = sorted(f["ruleName"] for f in acknowledged if "StorageData" in f["ruleName"])
    assert s3_wildcards == [
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/captured/raw/*]",
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/drift/*]",
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/runs/*/dataset/train.jsonl]",
    ]


def test_a_sample_smaller_than_the_traffic_minimum_is_refused() -> None:
    from infra.config import ConfigError, parse_config, read_cdk_json_context

    with pytest.raises(ConfigError, match=r"drift_max_records.*at least drift_min_records"):
        parse_config({**read_cdk_json_context(), "drift_min_records": 5000, "drift_max_records": 1000})
