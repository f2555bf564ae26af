"""The stack-delete cleanup in the synthesized template: the custom resource, its deletion order, timeouts, IAM."""

from __future__ import annotations

import json
import re
from typing import Any

from infra.cleanup import HANDLER_DEADLINE, QUERY_INTERVAL, SERVICE_TIMEOUT, TOTAL_TIMEOUT, settle_seconds
from simulation.synth import Synthesized

CLEANUP_ACTIONS = {
    "bedrock:ListModelCustomizationJobs",
    "bedrock:ListEvaluationJobs",
    "bedrock:ListCustomModelDeployments",
    "bedrock:ListCustomModels",
    "bedrock:ListTagsForResource",
    "bedrock:GetModelCustomizationJob",
    "bedrock:StopModelCustomizationJob",
    "bedrock:GetEvaluationJob",
    "bedrock:StopEvaluationJob",
    "bedrock:ListModelInvocationJobs",  # batch labeling jobs (labeling_mode: batch)
    "bedrock:GetModelInvocationJob",
    "bedrock:StopModelInvocationJob",
    "bedrock:DeleteCustomModelDeployment",
    "bedrock:DeleteCustomModel",
    "states:ListExecutions",
    "states:StopExecution",
    "cloudformation:DescribeStacks",
}
# Every function created by the Lambda factory: its own log group, and X-Ray.
FACTORY_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _logical_id(synth: Synthesized, construct: Any) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


def _cleanup_resource(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    (match,) = synth.resources("Custom::RuntimeResourceCleanup").items()
    return match


def _references(value: Any) -> set[str]:
    """Logical ids a template value points at (Ref / Fn::GetAtt), at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _depends_on(synth: Synthesized, logical_id: str) -> set[str]:
    """Everything ``logical_id`` depends on, directly or not: CloudFormation deletes all of it *after* it."""
    resources = synth.template["Resources"]
    seen: set[str] = set()
    pending = [logical_id]
    while pending:
        resource = resources[pending.pop()]
        direct = set(_as_list(resource.get("DependsOn", []))) | _references(resource.get("Properties", {}))
        for dependency in direct & set(resources) - seen:
            seen.add(dependency)
            pending.append(dependency)
    return seen


def _actions_of(synth: Synthesized, role_logical_id: str) -> tuple[set[str], list[dict[str, Any]]]:
    statements = [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]
        for statement in _as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    ]
    assert "ManagedPolicyArns" not in synth.template["Resources"][role_logical_id]["Properties"]
    return {action for s in statements for action in _as_list(s["Action"])}, statements


def test_the_cleanup_resource_targets_this_stacks_tag_and_state_machine(synth: Synthesized) -> None:
    _, resource = _cleanup_resource(synth)
    props = resource["Properties"]
    # The value the pipeline tags its run-time resources with (STACK_NAME of the task functions)
    start = synth.stack.pipeline.functions["StartDistillationFunctionArn"]
    environment = synth.template["Resources"][_logical_id(synth, start)]["Properties"]["Environment"]["Variables"]
    assert props["StackName"] == environment["STACK_NAME"]
    assert props["StateMachineArn"] == {"Ref": _logical_id(synth, synth.stack.pipeline.state_machine)}
    assert props["SettleSeconds"] == settle_seconds() >= 60
    # And the provider is the Provider framework's onEvent function
    (service_token,) = _references(props["ServiceToken"])
    assert synth.template["Resources"][service_token]["Properties"]["Handler"] == "framework.onEvent"


def test_the_cleanup_is_deleted_before_the_state_machine_and_every_function_it_needs(synth: Synthesized) -> None:
    logical_id, resource = _cleanup_resource(synth)
    state_machine = _logical_id(synth, synth.stack.pipeline.state_machine)
    # Explicitly ordered before the state machine ...
    assert state_machine in _as_list(resource["DependsOn"])
    after = _depends_on(synth, logical_id)
    # ... and through it before every pipeline task function (nothing can start a new job meanwhile)
    for function in synth.stack.pipeline.functions.values():
        assert _logical_id(synth, function) in after
    # And its own functions, their permissions and the Provider framework outlive it
    cleanup = synth.stack.cleanup
    for function in (cleanup.on_event_function, cleanup.is_complete_function):
        assert _logical_id(synth, function) in after
        role = function.role
        assert role is not None
        assert synth.stack.get_logical_id(role.node.find_child("DefaultPolicy").node.default_child) in after
    waiter = cleanup.provider.node.find_child("waiter-state-machine")
    assert synth.stack.get_logical_id(waiter.node.default_child) in after


def test_the_cleanup_gives_up_with_its_own_message_before_any_other_timeout(synth: Synthesized) -> None:
    _, resource = _cleanup_resource(synth)
    props = resource["Properties"]
    deadline = int(props["DeadlineSeconds"])
    service_timeout = int(props["ServiceTimeout"])
    assert deadline == HANDLER_DEADLINE.to_seconds()
    assert deadline + 2 * QUERY_INTERVAL.to_seconds() <= TOTAL_TIMEOUT.to_seconds() < service_timeout
    assert service_timeout == SERVICE_TIMEOUT.to_seconds() <= 3600  # CloudFormation's custom-resource limit
    # The waiter polls isComplete every QUERY_INTERVAL for at most TOTAL_TIMEOUT
    waiter = synth.stack.cleanup.provider.node.find_child("waiter-state-machine")
    definition = json.dumps(synth.template["Resources"][synth.stack.get_logical_id(waiter.node.default_child)])
    interval = int(QUERY_INTERVAL.to_seconds())
    attempts = int(TOTAL_TIMEOUT.to_seconds()) // interval
    assert re.search(rf'\\"IntervalSeconds\\":{interval},\\"MaxAttempts\\":{attempts}', definition)


def test_the_cleanup_role_has_exactly_the_actions_it_needs(synth: Synthesized) -> None:
    function = synth.stack.cleanup.is_complete_function
    assert function.role is not None
    actions, statements = _actions_of(synth, synth.stack.get_logical_id(function.role.node.default_child))
    assert actions == CLEANUP_ACTIONS | FACTORY_ACTIONS
    for statement in statements:
        resources = [json.dumps(r) for r in _as_list(statement["Resource"])]
        if resources == ['"*"']:
            # Only actions without resource-level permissions are granted on every resource
            assert set(_as_list(statement["Action"])) <= {
                "bedrock:ListModelCustomizationJobs",
                "bedrock:ListEvaluationJobs",
                "bedrock:ListModelInvocationJobs",
                "bedrock:ListCustomModelDeployments",
                "bedrock:ListCustomModels",
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }
            continue
        for resource in resources:
            if ":bedrock:" in resource:
                # this account and Region only
                assert '{"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}' in resource, resource
        if "states:StopExecution" in _as_list(statement["Action"]):
            (resource,) = resources
            state_machine = _logical_id(synth, synth.stack.pipeline.state_machine)
            assert ":execution:" in resource
            assert f'"Fn::GetAtt": ["{state_machine}", "Name"]' in resource
        if "states:ListExecutions" in _as_list(statement["Action"]):
            assert resources == [json.dumps({"Ref": _logical_id(synth, synth.stack.pipeline.state_machine)})]
        if "cloudformation:DescribeStacks" in _as_list(statement["Action"]):
            assert resources == ['{"Ref": "AWS::StackId"}']


def test_the_on_event_function_can_do_nothing_but_log(synth: Synthesized) -> None:
    function = synth.stack.cleanup.on_event_function
    assert function.role is not None
    actions, _ = _actions_of(synth, synth.stack.get_logical_id(function.role.node.default_child))
    assert actions == FACTORY_ACTIONS


def test_the_provider_framework_roles_carry_no_managed_policy(synth: Synthesized) -> None:
    roles = [
        role
        for logical_id, role in synth.resources("AWS::IAM::Role").items()
        if logical_id.startswith("RuntimeResourceCleanup")
    ]
    assert len(roles) >= 4
    for role in roles:
        assert "ManagedPolicyArns" not in role["Properties"]
