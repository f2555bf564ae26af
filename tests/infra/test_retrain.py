"""Scheduled retraining (infra/retrain.py): off by default; only with ``capture_queries``; EventBridge Scheduler at
the configured expression passing its scheduled time; a role that reads the compacted days and its state, writes the
run's query files and its decisions, starts and lists this pipeline's executions and publishes to the topic only;
cdk-nag clean; bad settings fail synth naming the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, parse_config, read_cdk_json_context
from simulation.harness import TemplateResolver
from simulation.synth import Synthesized
from tests.policy.checks import statement_findings
from tests.policy.evaluate import Request, allowed
from tests.policy.template import function_roles, role_statements

BUCKET_ARN = "arn:aws:s3:::"
SCHEDULED = {"capture_queries": True, "retrain_schedule": "cron(0 3 ? * SUN *)", "retrain_min_new_queries": 300}


@pytest.fixture(scope="module")
def scheduled(loop_stack: Synthesized) -> Synthesized:
    return loop_stack  # tests.conftest.LOOP_SETTINGS: retraining every Sunday, small runs


def _function_id(synth: Synthesized) -> str:
    assert synth.stack.retrain is not None
    return str(synth.stack.get_logical_id(synth.stack.retrain.function.node.default_child))


def test_off_by_default(synth: Synthesized) -> None:
    assert read_cdk_json_context()["retrain_schedule"] is None
    assert synth.stack.retrain is None
    handlers = [f["Properties"].get("Handler") for f in synth.resources("AWS::Lambda::Function").values()]
    assert "search_router.handlers.retrain.handler" not in handlers


def test_the_schedule_invokes_the_function_with_its_scheduled_time_through_its_own_role(
    scheduled: Synthesized,
) -> None:
    assert scheduled.stack.retrain is not None
    props = scheduled.resources("AWS::Scheduler::Schedule")[
        scheduled.stack.get_logical_id(scheduled.stack.retrain.schedule)
    ]["Properties"]
    assert props["ScheduleExpression"] == "cron(0 3 ? * SUN *)" and props["ScheduleExpressionTimezone"] == "UTC"
    function_id = _function_id(scheduled)
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    # the context attribute EventBridge Scheduler replaces (its user guide, "Adding context attributes")
    assert json.loads(props["Target"]["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    role_id = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    resolver = TemplateResolver.for_template(scheduled.template)
    statements = role_statements(scheduled.template, resolver)[role_id]
    assert allowed(statements, Request("lambda:InvokeFunction", resolver.resolve({"Fn::GetAtt": [function_id, "Arn"]})))
    environment = scheduled.template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
    assert environment["MIN_NEW_QUERIES"] == "60" and environment["HELDOUT_QUERIES"] == "20"
    assert environment["WINDOW_DAYS"] == "28"
    # the run's size: run_defaults num_examples + eval_examples (200 + 20 in LOOP_SETTINGS)
    assert environment["MAX_TRAINING_QUERIES"] == "220"


def test_the_role_reaches_captured_days_its_state_this_pipeline_and_the_topic_only(scheduled: Synthesized) -> None:
    resolver = TemplateResolver.for_template(scheduled.template)
    role_id = function_roles(scheduled.template)[_function_id(scheduled)]
    statements = role_statements(scheduled.template, resolver)[role_id]
    stack = scheduled.stack
    bucket = resolver.resolve({"Ref": stack.get_logical_id(stack.storage.data_bucket.node.default_child)})
    obj = f"{BUCKET_ARN}{bucket}/"
    machine = resolver.resolve({"Ref": stack.get_logical_id(stack.pipeline.state_machine.node.default_child)})
    topic = resolver.resolve({"Ref": stack.get_logical_id(stack.notifications.topic.node.default_child)})
    assert allowed(statements, Request("s3:GetObject", f"{obj}inputs/captured/2026-11-29.jsonl"))
    assert allowed(statements, Request("s3:GetObject", f"{obj}retrain/state.json"))
    assert allowed(statements, Request("s3:PutObject", f"{obj}inputs/retrain/retrain-x/queries.jsonl"))
    assert allowed(statements, Request("s3:PutObject", f"{obj}retrain/decisions/x.json"))
    assert allowed(statements, Request("s3:ListBucket", f"{BUCKET_ARN}{bucket}", {"s3:prefix": "inputs/captured/"}))
    assert allowed(statements, Request("states:StartExecution", machine))
    assert allowed(statements, Request("states:ListExecutions", machine))
    assert allowed(statements, Request("sns:Publish", topic))
    assert not allowed(statements, Request("s3:ListBucket", f"{BUCKET_ARN}{bucket}", {"s3:prefix": "runs/"}))
    assert not allowed(statements, Request("s3:GetObject", f"{obj}captured/raw/2026-11-29/a.gz"))
    assert not allowed(statements, Request("s3:GetObject", f"{obj}runs/r1/dataset/train.jsonl"))
    assert not allowed(statements, Request("s3:PutObject", f"{obj}inputs/captured/2026-11-29.jsonl"))
    assert not allowed(statements, Request("states:StartExecution", f"{machine}-other"))
    assert not allowed(statements, Request("states:StopExecution", f"{machine}"))
    assert statement_findings({role_id: statements}) == []


def test_the_scheduled_variant_is_cdk_nag_clean(scheduled: Synthesized) -> None:
    report = json.loads((scheduled.outdir / "validation-report.json").read_text())
    (plugin,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert plugin["conclusion"] == "success" and plugin["violations"] == []
    acknowledged = sorted(
        f["ruleName"]
        for f in plugin["suppressedViolations"]
        if any("ScheduledRetraining" in c["constructPath"] for c in f["violatingConstructs"])
        and "StorageData" in f["ruleName"]
    )
    assert acknowledged == [
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/inputs/captured/*]",
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/inputs/retrain/*]",
        "AwsSolutions-IAM5[Resource::<StorageData6BB23F4E.Arn>/retrain/*]",
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"retrain_schedule": "cron(0 3 * * ? *)"}, "retrain_schedule': needs capture_queries true"),
        ({**SCHEDULED, "retrain_schedule": "rate(1 days)"}, "write rate(1 day)"),
        ({**SCHEDULED, "retrain_schedule": "rate(2 day)"}, "write rate(2 days)"),
        ({**SCHEDULED, "retrain_schedule": "rate(30 minutes)"}, "more often than hourly"),
        ({**SCHEDULED, "retrain_schedule": "cron(0 3 * * ?)"}, "cron(<minutes> <hours>"),
        ({**SCHEDULED, "retrain_schedule": "cron(* * * * ? *)"}, "the minutes field must be one minute"),
        ({**SCHEDULED, "retrain_schedule": "cron(0/5 3 * * ? *)"}, "the minutes field must be one minute"),
        ({**SCHEDULED, "retrain_schedule": "cron(0 3 * * * *)"}, "exactly one of day-of-month and day-of-week"),
        ({**SCHEDULED, "retrain_schedule": "cron(0 3 ? * ? *)"}, "exactly one of day-of-month and day-of-week"),
        ({**SCHEDULED, "retrain_schedule": "weekly"}, "e.g. cron(0 3 ? * SUN *)"),
        ({**SCHEDULED, "retrain_heldout_queries": 300}, "must be smaller than retrain_min_new_queries (300)"),
        (
            {**SCHEDULED, "retrain_heldout_queries": 250, "run_defaults.eval_examples": 800},
            "plus run_defaults.eval_examples (800) must be at most 999",
        ),
        ({**SCHEDULED, "retrain_min_new_queries": 0}, "retrain_min_new_queries"),
    ],
)
def test_a_bad_retraining_setting_fails_synth_naming_it(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({**read_cdk_json_context(), **overrides})
    assert expected in str(error.value)


def test_good_expressions_are_kept_as_written() -> None:
    for expression in ("rate(1 day)", "rate(7 days)", "rate(12 hours)", "cron(0 3 ? * SUN *)", "cron(30 2 1 * ? *)"):
        config = parse_config({**read_cdk_json_context(), **SCHEDULED, "retrain_schedule": f" {expression} "})
        assert config.retrain.schedule == expression
