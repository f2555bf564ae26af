"""The compensation of failed runs, as synthesized: the EventBridge rule (its pattern matched with moto's
implementation of EventBridge patterns against the event shape of the Step Functions developer guide), its
target (dead-letter queue, retries), the reconcile schedule, the alarms, and what the sweep may do."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from moto.events.models import EventPattern

from simulation.harness import TemplateResolver
from simulation.synth import Synthesized

EVENT = json.loads((Path(__file__).resolve().parents[1] / "events" / "execution_status_change_failed.json").read_text())


def _logical_id(synth: Synthesized, construct: Any) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


def _rule(synth: Synthesized) -> dict[str, Any]:
    return synth.template["Resources"][_logical_id(synth, synth.stack.compensation.rule)]["Properties"]


def _event_for(pipeline_arn: str, status: str = "FAILED", machine: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    execution = f"{pipeline_arn.replace(':stateMachine:', ':execution:')}:nightly-1"
    event["resources"] = [execution]
    event["detail"].update(executionArn=execution, stateMachineArn=machine or pipeline_arn, status=status)
    return event


def test_the_rule_matches_the_pipelines_executions_that_ended_badly_and_nothing_else(synth: Synthesized) -> None:
    resolver = TemplateResolver.for_template(synth.template)
    pattern = EventPattern.load(json.dumps(resolver.resolve(_rule(synth)["EventPattern"])))
    pipeline = resolver.ref(_logical_id(synth, synth.stack.pipeline.state_machine))
    for status in ("FAILED", "TIMED_OUT", "ABORTED"):
        assert pattern.matches_event(_event_for(pipeline, status)), status  # type: ignore[arg-type]
    for status in ("SUCCEEDED", "RUNNING", "PENDING_REDRIVE"):
        assert not pattern.matches_event(_event_for(pipeline, status)), status  # type: ignore[arg-type]
    other = pipeline.replace("PipelineStateMachine", "SomeoneElses")
    assert not pattern.matches_event(_event_for(pipeline, machine=other))  # type: ignore[arg-type]
    compensation = resolver.ref(_logical_id(synth, synth.stack.compensation.state_machine))
    assert not pattern.matches_event(_event_for(compensation))  # type: ignore[arg-type]  # never itself


def test_the_rule_starts_the_compensation_with_a_dead_letter_queue_and_retries(synth: Synthesized) -> None:
    (target,) = _rule(synth)["Targets"]
    machine = _logical_id(synth, synth.stack.compensation.state_machine)
    assert target["Arn"] == {"Ref": machine}
    assert target["DeadLetterConfig"]["Arn"] == {
        "Fn::GetAtt": [_logical_id(synth, synth.stack.compensation.dead_letter_queue), "Arn"]
    }
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    queue = synth.template["Resources"][_logical_id(synth, synth.stack.compensation.dead_letter_queue)]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["MessageRetentionPeriod"] == 14 * 86400
    # EventBridge's role may start exactly this machine
    role = target["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine}}]


def test_a_lost_event_is_reconciled_hourly_and_every_failure_raises_an_alarm(synth: Synthesized) -> None:
    schedule = synth.template["Resources"][_logical_id(synth, synth.stack.compensation.schedule)]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 hour)"
    (target,) = schedule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_logical_id(synth, synth.stack.compensation.reconcile_function), "Arn"]}
    alarms = {
        a["Properties"]["AlarmDescription"].split(" (")[0]: a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if "compensation" in a["Properties"]["AlarmDescription"].lower()
    }
    assert len(alarms) == 2
    topic = {"Ref": _logical_id(synth, synth.stack.notifications.topic)}
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms.values())
    assert all(alarm in synth.stack.monitoring.alarms for alarm in synth.stack.compensation.alarms)


def test_the_sweep_may_destroy_only_what_carries_this_stacks_tag(synth: Synthesized) -> None:
    role = synth.template["Resources"][_logical_id(synth, synth.stack.compensation.sweep_function)]["Properties"][
        "Role"
    ]
    statements = [
        s
        for p in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role["Fn::GetAtt"][0]} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    destructive = {
        "bedrock:StopModelCustomizationJob",
        "bedrock:StopEvaluationJob",
        "bedrock:DeleteCustomModelDeployment",
        "bedrock:DeleteCustomModel",
    }
    for statement in statements:
        actions = set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        if actions & destructive:
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/stack": synth.stack.stack_name}}
    granted = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert destructive <= granted
    assert not {a for a in granted if a.startswith("bedrock:Create")}
