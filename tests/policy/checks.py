"""The IAM checks, as functions returning findings (empty = clean), so tests can also run them on a deliberately
broken copy of the template and show that each defect is caught.

- :func:`statement_findings`: every statement of every identity policy against the Service Authorization
  Reference: no unknown action, no ``NotAction``/``NotResource`` allows, ``"*"`` only for actions the SAR lists
  without a resource type, every granted resource of a type some granted action uses, every granted action on a
  resource type it uses.
- :func:`call_findings`: every AWS call the functions were seen making is allowed by that function's role, on
  the concrete resource, with the concrete condition context, and the resource is of a type the SAR lists for
  the action.
- :func:`service_role_findings`: what Bedrock does with the service role for the jobs the functions created is
  allowed by that role, and Bedrock may assume it for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from simulation.harness import TemplateResolver
from tests.policy.evaluate import Request, Statement, allowed
from tests.policy.recorder import Call
from tests.policy.requirements import Need, needs_of, service_role_needs, trust_context
from tests.policy.sar import GLOBAL_CONDITION_KEYS, Action, ServiceAuthorizationReference
from tests.policy.template import function_roles, key_policies, role_statements, topic_key, topic_policies

SAR = ServiceAuthorizationReference.load()


def statement_findings(statements: Mapping[str, list[Statement]]) -> list[str]:
    """Findings over identity-policy statements (by role logical id)."""
    findings: list[str] = []
    for role, found in statements.items():
        for statement in found:
            findings += _statement_findings(role, statement)
    return findings


def _statement_findings(role: str, statement: Statement) -> list[str]:
    where = f"{role} ({statement.source})"
    findings = []
    if statement.effect == "Allow" and statement.not_actions:
        findings.append(f"{where}: an Allow with NotAction grants everything else: {list(statement.not_actions)}")
    expanded = {}
    for pattern in statement.actions:
        actions = SAR.expand(pattern)
        if not actions:
            findings.append(f"{where}: {pattern} is not an IAM action (Service Authorization Reference)")
        expanded[pattern] = actions
    if statement.effect != "Allow":
        return findings
    every = [a for actions in expanded.values() for a in actions]
    return [
        *findings,
        *_resource_findings(where, statement, every),
        *_condition_findings(where, statement, every),
        *_unmatched_action_findings(where, statement, expanded),
    ]


def _resource_findings(where: str, statement: Statement, every: list[Action]) -> list[str]:
    """Every granted resource is of a type some granted action uses; ``"*"`` only for actions without one."""
    findings = []
    for resource in statement.resources:
        if resource == "*":
            scoped = sorted({a.full_name for a in every if not a.unscopable})
            if scoped:
                findings.append(f"{where}: grants {scoped} on '*', but the SAR lists resource types for them")
            continue
        if not any(a.types_matching(resource) for a in every):
            findings.append(f"{where}: {resource} is of no resource type that {sorted(a.full_name for a in every)} use")
    return findings


def _condition_findings(where: str, statement: Statement, every: list[Action]) -> list[str]:
    """Every condition key (global keys aside) is one the SAR lists for the granted actions."""
    findings = []
    for key in sorted({k for entries in statement.conditions.values() for k in entries}):
        if key in GLOBAL_CONDITION_KEYS:
            continue
        unsupported = sorted(a.full_name for a in every if not a.supports_condition(key, statement.resources))
        if unsupported:
            findings.append(
                f"{where}: condition key {key} is not one the SAR lists for {unsupported} (or their resource types): "
                "the request never carries it, and the condition never holds"
            )
    return findings


def _unmatched_action_findings(where: str, statement: Statement, expanded: Mapping[str, list[Action]]) -> list[str]:
    """Every granted action is granted on a resource of a type it uses."""
    findings = []
    for pattern, actions in expanded.items():
        usable = [
            a
            for a in actions
            if (a.unscopable and "*" in statement.resources)
            or any(r != "*" and a.types_matching(r) for r in statement.resources)
        ]
        if actions and not usable:
            types = sorted({t.name for a in actions for t in a.resource_types}) or ["'*' only"]
            findings.append(
                f"{where}: {pattern} is granted on {list(statement.resources)}, none of a resource type it uses "
                f"({', '.join(types)}): IAM would never match it"
            )
    return findings


def _topic_keys(template: Mapping[str, Any], resolver: TemplateResolver) -> dict[str, str]:
    keys = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SNS::Topic" and (key := topic_key(template, logical_id)):
            keys[resolver.ref(logical_id)] = resolver.get_att(key, "Arn")
    return keys


def need_findings(statements: Iterable[Statement], needs: Iterable[Need], who: str) -> list[str]:
    found = list(statements)
    findings = []
    for need in needs:
        action = SAR.action(need.action)
        if action is None:
            findings.append(f"{who}: {need.action} ({need.why}) is not an IAM action")
            continue
        if need.resource != "*" and not action.types_matching(need.resource):
            findings.append(
                f"{who}: {need.action} on {need.resource} ({need.why}): that ARN is of no resource type the SAR lists "
                f"for the action ({', '.join(t.name for t in action.resource_types) or '*'})"
            )
        if not allowed(found, Request(need.action, need.resource, need.context)):
            findings.append(f"{who}: not allowed: {need.action} on {need.resource} ({need.why})")
    return findings


def call_findings(template: Mapping[str, Any], resolver: TemplateResolver, calls: Iterable[Call]) -> list[str]:
    statements = role_statements(template, resolver)
    roles = function_roles(template)
    keys = _topic_keys(template, resolver)
    findings: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for call in calls:
        for need in needs_of(call, topic_keys=keys):
            signature = (call.function, need.action, need.resource)
            if signature in seen:
                continue
            seen.add(signature)
            findings += need_findings(statements.get(roles[call.function], []), [need], call.function)
    return findings


def _role_of_arn(template: Mapping[str, Any], resolver: TemplateResolver, arn: str) -> str | None:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role" and resolver.get_att(logical_id, "Arn") == arn:
            return logical_id
    return None


def service_role_findings(template: Mapping[str, Any], resolver: TemplateResolver, calls: Iterable[Call]) -> list[str]:
    statements = role_statements(template, resolver)
    findings: list[str] = []
    for call in calls:
        needs = service_role_needs(call)
        if not needs:
            continue
        role = _role_of_arn(template, resolver, call.params["roleArn"])
        if role is None:
            findings.append(f"{call.operation} passes {call.params['roleArn']}, which is no role of the stack")
            continue
        findings += need_findings(statements.get(role, []), needs, f"service role {role} ({call.operation})")
        trust = [
            Statement.from_json(raw, f"{role} trust")
            for raw in resolver.resolve(template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"])[
                "Statement"
            ]
        ]
        request = Request("sts:AssumeRole", resolver.get_att(role, "Arn"), trust_context(call), "bedrock.amazonaws.com")
        if not allowed([_as_resource_policy(s, request.resource) for s in trust], request):
            findings.append(f"service role {role}: bedrock.amazonaws.com may not assume it for {call.operation}")
    return findings


def _as_resource_policy(statement: Statement, resource: str) -> Statement:
    """A trust policy has no Resource: it is the role itself."""
    return Statement(
        statement.effect, statement.actions, statement.not_actions, (resource,), statement.principals,
        statement.conditions, statement.sid, statement.source,
    )  # fmt: skip


def resource_policy_statements(template: Mapping[str, Any], resolver: TemplateResolver) -> dict[str, list[Statement]]:
    """Topic and key policies by resource logical id."""
    return {**topic_policies(template, resolver), **key_policies(template, resolver)}


def unknown_actions(statements: Mapping[str, list[Statement]]) -> list[str]:
    return [
        f"{owner} ({s.source}): {pattern} is not an IAM action"
        for owner, found in statements.items()
        for s in found
        for pattern in (*s.actions, *s.not_actions)
        if not SAR.expand(pattern)
    ]
