"""The synthesized template's policies as resolved :class:`~tests.policy.evaluate.Statement` objects.

CloudFormation intrinsics are resolved with the workflow harness's :class:`~simulation.harness.TemplateResolver`,
so ARNs in the policies are the very names the recorded AWS calls used (buckets, topics, parameters ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulation.harness import TemplateResolver
from tests.policy.evaluate import Statement, as_list


def _statements(document: Mapping[str, Any], resolver: TemplateResolver, source: str) -> list[Statement]:
    resolved = resolver.resolve(document)
    return [Statement.from_json(raw, source) for raw in as_list(resolved.get("Statement"))]


def role_statements(template: Mapping[str, Any], resolver: TemplateResolver) -> dict[str, list[Statement]]:
    """Identity-policy statements by role logical id (inline ``Policies`` and ``AWS::IAM::Policy`` resources)."""
    found: dict[str, list[Statement]] = {}
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            found.setdefault(logical_id, [])
            for policy in props.get("Policies", []):
                found[logical_id] += _statements(
                    policy["PolicyDocument"], resolver, f"{logical_id}/{policy['PolicyName']}"
                )
        elif resource["Type"] == "AWS::IAM::Policy":
            for role in props.get("Roles", []):
                found.setdefault(role["Ref"], []).extend(_statements(props["PolicyDocument"], resolver, logical_id))
    return found


def function_roles(template: Mapping[str, Any]) -> dict[str, str]:
    """Lambda function logical id → its role's logical id."""
    roles = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]
            roles[logical_id] = role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else str(role)
    return roles


def topic_policies(template: Mapping[str, Any], resolver: TemplateResolver) -> dict[str, list[Statement]]:
    """Topic logical id → its resource-policy statements (``AWS::SNS::TopicPolicy``)."""
    found: dict[str, list[Statement]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SNS::TopicPolicy":
            props = resource["Properties"]
            for topic in props["Topics"]:
                found.setdefault(topic["Ref"], []).extend(_statements(props["PolicyDocument"], resolver, logical_id))
    return found


def key_policies(template: Mapping[str, Any], resolver: TemplateResolver) -> dict[str, list[Statement]]:
    """KMS key logical id → its key-policy statements."""
    return {
        logical_id: _statements(resource["Properties"]["KeyPolicy"], resolver, logical_id)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::KMS::Key"
    }


def topic_key(template: Mapping[str, Any], topic_logical_id: str) -> str | None:
    """The logical id of the KMS key a topic is encrypted with, if any."""
    key = template["Resources"][topic_logical_id]["Properties"].get("KmsMasterKeyId")
    if isinstance(key, dict):
        if "Fn::GetAtt" in key:
            return str(key["Fn::GetAtt"][0])
        if "Ref" in key:
            return str(key["Ref"])
    return None
