"""Every AWS service that publishes to a topic of the stack (CloudWatch alarms, EventBridge rules) is allowed by that
topic's policy and, for an encrypted topic, by its key's policy.

A topic policy replaces SNS's default policy, so an alarm whose topic policy does not name
``cloudwatch.amazonaws.com`` never delivers (AWS accepts the alarm action and drops the message). The requests
are built the way the services make them (principal, ``aws:SourceAccount``, ``aws:SourceArn`` of the alarm or
rule, TLS) and evaluated with :mod:`tests.policy.evaluate`, deny statements included.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from simulation.harness import ACCOUNT, REGION, TemplateResolver
from simulation.synth import Synthesized
from tests.policy.checks import SAR, resource_policy_statements, unknown_actions
from tests.policy.evaluate import Request, allowed
from tests.policy.template import key_policies, topic_key, topic_policies

CLOUDWATCH = "cloudwatch.amazonaws.com"
EVENTS = "events.amazonaws.com"


@dataclass(frozen=True)
class Publisher:
    principal: str
    source_arn: str
    topic: str  # logical id


def _topic_of(value: Any, template: dict[str, Any]) -> str | None:
    if isinstance(value, dict) and "Ref" in value and template["Resources"][value["Ref"]]["Type"] == "AWS::SNS::Topic":
        return str(value["Ref"])
    return None


def publishers(template: dict[str, Any]) -> list[Publisher]:
    """Every alarm action and rule target that is one of the stack's topics."""
    found = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            name = props.get("AlarmName") if isinstance(props.get("AlarmName"), str) else logical_id
            for action in (
                *props.get("AlarmActions", []),
                *props.get("OKActions", []),
                *props.get("InsufficientDataActions", []),
            ):
                if topic := _topic_of(action, template):
                    found.append(Publisher(CLOUDWATCH, f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}", topic))
        if resource["Type"] == "AWS::Events::Rule":
            name = props.get("Name") if isinstance(props.get("Name"), str) else logical_id
            for target in props.get("Targets", []):
                if topic := _topic_of(target.get("Arn"), template):
                    found.append(Publisher(EVENTS, f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}", topic))
    return found


def publisher_findings(template: dict[str, Any]) -> list[str]:
    resolver = TemplateResolver.for_template(template)
    topics, keys = topic_policies(template, resolver), key_policies(template, resolver)
    findings = []
    for publisher in publishers(template):
        context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": publisher.source_arn, "aws:SecureTransport": "true"}
        topic_arn = resolver.ref(publisher.topic)
        publish = Request("sns:Publish", topic_arn, context, publisher.principal)
        if not allowed(topics.get(publisher.topic, []), publish):
            findings.append(
                f"{publisher.topic}: its policy does not let {publisher.principal} ({publisher.source_arn}) publish"
            )
        key = topic_key(template, publisher.topic)
        if key is None:
            continue
        key_arn = resolver.get_att(key, "Arn")
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            if not allowed(keys.get(key, []), Request(action, key_arn, context, publisher.principal)):
                findings.append(
                    f"{key}: its key policy does not let {publisher.principal} {action} for {publisher.topic}"
                )
    return findings


def test_every_alarm_and_rule_can_publish_to_its_topic(synth: Synthesized) -> None:
    found = publishers(synth.template)
    # The stack's alarms (router 5xx, fallback rate, p99 latency, failed runs) all notify the topic.
    assert sum(p.principal == CLOUDWATCH for p in found) >= 4
    assert publisher_findings(synth.template) == []


def test_the_topic_policy_limits_cloudwatch_to_this_accounts_alarms(synth: Synthesized) -> None:
    resolver = TemplateResolver.for_template(synth.template)
    (topic,) = [k for k, v in synth.template["Resources"].items() if v["Type"] == "AWS::SNS::Topic"]
    statements = topic_policies(synth.template, resolver)[topic]
    arn = resolver.ref(topic)
    foreign_account = {
        "aws:SourceAccount": "999999999999",
        "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:999999999999:alarm:x",
    }
    foreign_service = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:x"}
    assert not allowed(
        statements, Request("sns:Publish", arn, {**foreign_account, "aws:SecureTransport": "true"}, CLOUDWATCH)
    )
    assert not allowed(
        statements, Request("sns:Publish", arn, {**foreign_service, "aws:SecureTransport": "true"}, "s3.amazonaws.com")
    )
    # And nothing, not even an allowed alarm, publishes without TLS
    assert not allowed(
        statements, Request("sns:Publish", arn, {**foreign_service, "aws:SecureTransport": "false"}, CLOUDWATCH)
    )


def test_a_topic_policy_without_the_cloudwatch_statement_is_caught(synth: Synthesized) -> None:
    # Given the defect this project once had: the topic policy is only the TLS-only Deny
    broken = copy.deepcopy(synth.template)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::SNS::TopicPolicy":
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            resource["Properties"]["PolicyDocument"]["Statement"] = [s for s in statements if s["Effect"] == "Deny"]
    findings = publisher_findings(broken)
    assert findings and all("cloudwatch.amazonaws.com" in f for f in findings)


def test_a_key_policy_without_the_cloudwatch_statement_is_caught(synth: Synthesized) -> None:
    broken = copy.deepcopy(synth.template)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":
            policy = resource["Properties"]["KeyPolicy"]
            policy["Statement"] = [s for s in policy["Statement"] if "Service" not in (s.get("Principal") or {})]
    assert any("key policy does not let cloudwatch.amazonaws.com kms:" in f for f in publisher_findings(broken))


def test_resource_policies_name_only_real_actions(synth: Synthesized) -> None:
    resolver = TemplateResolver.for_template(synth.template)
    assert SAR.action("sns:Publish") is not None
    assert unknown_actions(resource_policy_statements(synth.template, resolver)) == []
