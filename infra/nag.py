"""cdk-nag AwsSolutions on every synth, with narrow acknowledgments that each give a reason.

cdk-nag 3 runs as a CDK policy-validation plugin: any unacknowledged finding interrupts synthesis, so
``make synth`` and every infra test fail on a new finding. Acknowledgments are attached to the exact
construct (and, for IAM5/IAM4, the exact finding id such as ``AwsSolutions-IAM5[Resource::...]``).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def apply_security_checks(app: App) -> None:
    """Register the AwsSolutions rule pack for every stack of ``app``."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding on one construct (and its children). ``reason`` is mandatory."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledgment of {rule_id} needs a real reason, got {reason!r}")
    qualified = rule_id if rule_id.startswith("AwsSolutions::") else f"AwsSolutions::{rule_id}"
    Validations.of(scope).acknowledge(Acknowledgment(id=qualified, reason=reason))


def acknowledge_wildcards(scope: IConstruct, findings: list[str], reason: str) -> None:
    """Acknowledge exactly these AwsSolutions-IAM5 findings (``Resource::...`` / ``Action::...``)."""
    for finding in findings:
        acknowledge(scope, f"AwsSolutions-IAM5[{finding}]", reason)


def nag_resource(scope: IConstruct, resource: str) -> str:
    """Render a (possibly tokenized) ARN the way cdk-nag prints it: ``<Logical.Arn>``, ``<AWS::Region>``."""
    resolved = Stack.of(scope).resolve(resource)
    return _render(resolved)


def _render(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(_render(p) for p in parts)
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return f"<{logical_id}.{attribute}>"
    raise ValueError(f"cannot render {value!r} as a cdk-nag resource string")


def acknowledge_resources(scope: IConstruct, resources: list[str], reason: str) -> None:
    """Acknowledge the IAM5 finding of each wildcard ARN in ``resources`` (others need none)."""
    findings = [f"Resource::{text}" for text in (nag_resource(scope, r) for r in resources) if "*" in text]
    acknowledge_wildcards(scope, findings, reason)
