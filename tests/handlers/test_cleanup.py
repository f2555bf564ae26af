"""The stack-delete cleanup (``lambdas/search_router/handlers/cleanup.py``) against the Bedrock fake and moto's Step
Functions.

Run-time resources are created the way the pipeline creates them: through the fake's own APIs, with the
pipeline's request builders (so with the same names and ``stack`` / ``run-id`` / ``project`` tags). The Provider
framework is played by :func:`destroy`: ``on_event`` once, then ``is_complete`` until it says complete.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from search_router.adapters.clients import CLIENTS
from search_router.contract.run import RunState, settings_from_input
from simulation.bedrock.values import ACCOUNT_ID, REGION
from simulation.bedrock_fake import BedrockFake
from tests.handlers.runs import run_state
from tests.unit.test_run_naming import DEFAULTS

STACK = "TestStack"
OTHER_STACK = "OtherStack"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK}/0f6c1a70-0000-11ef-9d4e-0affd1b2c3d4"
LOGICAL_ID = "RuntimeResourceCleanup2ED0EC4F"
MAX_POLLS = 12
DEADLINE_KEY = "CleanupDeadline"


# The handler is imported when called: Powertools reads its namespace and service from the environment the
# root conftest sets for each test.
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from search_router.handlers.cleanup import on_event as handler

    return handler(event, context)


def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from search_router.handlers.cleanup import is_complete as handler

    return handler(event, context)


def cleanup_incomplete() -> type[Exception]:
    from search_router.handlers.cleanup import CleanupIncomplete

    return CleanupIncomplete


class Context:
    function_name = "cleanup"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:cleanup"
    aws_request_id = "req"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


# ----------------------------------------------------------------------------------------------------------
# Fixtures: CloudFormation's view of the stack, the pipeline state machine, the pipeline's environment
# ----------------------------------------------------------------------------------------------------------


class StackStatus:
    """A real ``cloudformation`` client whose DescribeStacks answers ``status`` (moto cannot hold a stack in
    DELETE_IN_PROGRESS). The request is still serialized and validated by botocore."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.client = boto3.client("cloudformation", region_name=REGION)
        self.client.meta.events.register_first("before-call.cloudformation.DescribeStacks", self._answer)
        CLIENTS.override("cloudformation", self.client)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.requests.append(params["body"])
        stack = {"StackId": STACK_ID, "StackName": STACK, "CreationTime": datetime.now(UTC), "StackStatus": self.status}
        return AWSResponse(None, 200, {}, None), {"Stacks": [stack], "ResponseMetadata": {"HTTPStatusCode": 200}}


@pytest.fixture
def stack_status(aws: None) -> StackStatus:
    return StackStatus("DELETE_IN_PROGRESS")


@pytest.fixture
def state_machine(aws: None) -> str:
    """The pipeline state machine (moto does not run it: executions stay RUNNING until stopped)."""
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    return CLIENTS.get("stepfunctions").create_state_machine(
        name=f"{STACK}-pipeline",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/pipeline",
    )["stateMachineArn"]


@pytest.fixture
def world(
    aws: None, bedrock: BedrockFake, stack_status: StackStatus, state_machine: str, pipeline_env: pytest.MonkeyPatch
) -> Iterator[World]:
    bedrock.job_polls_to_complete = 1
    bedrock.deployment_polls_to_active = 1
    yield World(bedrock, state_machine, pipeline_env)


# ----------------------------------------------------------------------------------------------------------
# Creating what the pipeline creates
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    run_id: str
    job_arn: str
    model_arn: str | None = None
    deployment_arn: str | None = None
    judge_arn: str | None = None
    execution_arn: str | None = None


@dataclass
class World:
    bedrock: BedrockFake
    state_machine: str
    env: pytest.MonkeyPatch

    def run(
        self,
        run_id: str,
        *,
        stack: str = STACK,
        model: bool = True,
        deployment: str | None = None,
        judge: bool = False,
        running: bool = False,
    ) -> Run:
        """A pipeline run of ``stack`` as far as: its job (``model=False``: still InProgress), its custom model,
        a deployment ``"Creating"`` or ``"Active"``, an InProgress judge job, and a RUNNING execution."""
        from search_router.handlers.deployment import deployment_request
        from search_router.handlers.distillation import job_request
        from search_router.handlers.judge import job_request as judge_request

        self.env.setenv("STACK_NAME", stack)
        state = run_state(run_id, stack)
        fake = self.bedrock
        fake.job_polls_to_complete = 1 if model else 1_000
        request = job_request(state, train_uri=f"s3://data-bucket/runs/{run_id}/dataset/train.jsonl")
        run = Run(run_id, fake.control.create_model_customization_job(**request)["jobArn"])
        if model:
            run.model_arn = fake.control.get_model_customization_job(jobIdentifier=run.job_arn)["outputModelArn"]
        if deployment is not None:
            assert run.model_arn is not None
            request = deployment_request(state, model_arn=run.model_arn)
            run.deployment_arn = fake.control.create_custom_model_deployment(**request)["customModelDeploymentArn"]
            if deployment == "Active":
                fake.control.get_custom_model_deployment(customModelDeploymentIdentifier=run.deployment_arn)
            assert fake.deployment(run.deployment_arn)["status"] == deployment
        if judge:
            judge_input = f"s3://data-bucket/runs/{run_id}/judge.jsonl"
            run.judge_arn = fake.control.create_evaluation_job(**judge_request(state, "distilled", judge_input))[
                "jobArn"
            ]
        if running:
            run.execution_arn = CLIENTS.get("stepfunctions").start_execution(
                stateMachineArn=self.state_machine, name=run_id
            )["executionArn"]
        self.env.setenv("STACK_NAME", STACK)
        return run

    def untagged_model(self) -> str:
        """A custom model someone made by hand in the same account: no tags at all."""
        request = {
            "jobName": "hand-made",
            "customModelName": "hand-made-model",
            "roleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/bedrock",
            "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
            "customizationType": "FINE_TUNING",
            "trainingDataConfig": {"s3Uri": "s3://data-bucket/hand/train.jsonl"},
            "outputDataConfig": {"s3Uri": "s3://data-bucket/hand/"},
        }
        self.bedrock.job_polls_to_complete = 1
        arn = self.bedrock.control.create_model_customization_job(**request)["jobArn"]
        return self.bedrock.control.get_model_customization_job(jobIdentifier=arn)["outputModelArn"]

    # --- the custom resource's events ----------------------------------------------------------------------
    def event(self, request_type: str = "Delete", *, settle: int = 0, deadline_seconds: int = 2700) -> dict:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:framework-onEvent",
            "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
            "StackId": STACK_ID,
            "RequestId": "4f6e2b6a-request",
            "LogicalResourceId": LOGICAL_ID,
            "ResourceType": "Custom::RuntimeResourceCleanup",
            "ResourceProperties": {
                "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:framework-onEvent",
                "StackName": STACK,
                "StateMachineArn": self.state_machine,
                "SettleSeconds": str(settle),  # CloudFormation passes numbers as strings
                "DeadlineSeconds": str(deadline_seconds),
            },
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = f"runtime-resource-cleanup-{STACK}"
        return event

    def start(self, event: dict[str, Any]) -> dict[str, Any]:
        """What the Provider framework hands to every is_complete poll: the event merged with on_event's answer."""
        return {**event, **on_event(event, Context())}

    def destroy(self, *, settle: int = 0) -> int:
        """on_event + is_complete until complete; returns the number of polls."""
        event = self.start(self.event(settle=settle))
        for poll in range(1, MAX_POLLS + 1):
            if is_complete(event, Context())["IsComplete"]:
                return poll
        raise AssertionError(f"cleanup not complete after {MAX_POLLS} polls")

    # --- what is left ----------------------------------------------------------------------------------------
    def tags(self, arn: str) -> dict[str, str]:
        return {t["key"]: t["value"] for t in self.bedrock.control.list_tags_for_resource(resourceARN=arn)["tags"]}

    def left_of(self, stack: str) -> list[str]:
        """Deployments and custom models tagged ``stack=<stack>``."""
        arns = self.bedrock.deployment_arns + self.bedrock.custom_model_arns
        return [arn for arn in arns if self.tags(arn).get("stack") == stack]

    def running_executions(self) -> list[str]:
        sfn = CLIENTS.get("stepfunctions")
        executions = sfn.list_executions(stateMachineArn=self.state_machine, statusFilter="RUNNING")["executions"]
        return [e["executionArn"] for e in executions]


# ----------------------------------------------------------------------------------------------------------
# Acceptance
# ----------------------------------------------------------------------------------------------------------


def test_destroys_a_stacks_worth_of_run_time_resources_and_leaves_none(world: World) -> None:
    fake = world.bedrock
    # Given two runs of this stack: one finished (model + Active deployment), one in flight (model + deployment
    # still Creating + a judge job InProgress), and a third just started (distillation job InProgress, RUNNING)
    finished = world.run("run-1", deployment="Active")
    in_flight = world.run("run-2", deployment="Creating", judge=True)
    started = world.run("run-3", model=False, running=True)
    assert world.tags(in_flight.deployment_arn or "") == {
        "stack": STACK,
        "run-id": "run-2",
        "project": "search-router-distillation",
    }
    assert len(world.left_of(STACK)) == 4

    # When the stack's cleanup resource is deleted
    world.destroy()

    # Then no deployment or custom model of the stack is left
    assert world.left_of(STACK) == []
    # And nothing runs any more: the execution is stopped, the jobs are stopped
    assert world.running_executions() == []
    assert fake.job(started.job_arn)["status"] == "Stopped"
    judge = fake.control.get_evaluation_job(jobIdentifier=in_flight.judge_arn)
    assert judge["status"] in ("Stopping", "Stopped")
    assert fake.calls_to("StopEvaluationJob") == [{"jobIdentifier": in_flight.judge_arn}]
    # And the models went only after their deployments
    names = [name for name, _ in fake.calls if name in ("DeleteCustomModelDeployment", "DeleteCustomModel")]
    assert names.index("DeleteCustomModel") > max(i for i, n in enumerate(names) if n == "DeleteCustomModelDeployment")
    deleted = {c["modelIdentifier"] for c in fake.calls_to("DeleteCustomModel")}
    assert deleted == {finished.model_arn, in_flight.model_arn}


def test_a_deployment_bedrock_will_not_delete_while_creating_is_deleted_on_a_later_poll(world: World) -> None:
    # Given a deployment still Creating, which Bedrock first refuses to delete
    run = world.run("run-1", deployment="Creating")
    world.bedrock.script_errors(
        "DeleteCustomModelDeployment", "ValidationException", message="Deployment is Creating; retry later"
    )
    # When the stack is destroyed, Then the next poll deletes it, and the model after it
    polls = world.destroy()
    assert polls >= 3
    assert world.left_of(STACK) == []
    assert len(world.bedrock.calls_to("DeleteCustomModelDeployment")) == 2
    assert world.bedrock.calls_to("DeleteCustomModel") == [{"modelIdentifier": run.model_arn}]


def test_other_stacks_and_untagged_resources_are_never_touched(world: World) -> None:
    fake = world.bedrock
    # Given this stack's run, another stack's runs (one still training) and a hand-made, untagged model
    world.run("run-1", deployment="Active")
    other = world.run("run-1", stack=OTHER_STACK, deployment="Active")
    other_training = world.run("run-2", stack=OTHER_STACK, model=False)
    hand_made = world.untagged_model()

    world.destroy()

    # Then only this stack's resources are gone
    assert world.left_of(STACK) == []
    assert sorted(world.left_of(OTHER_STACK)) == sorted([other.deployment_arn, other.model_arn])
    assert hand_made in fake.custom_model_arns
    assert fake.job(other_training.job_arn)["status"] == "InProgress"
    touched = {
        call.get("customModelDeploymentIdentifier") or call.get("modelIdentifier") or call.get("jobIdentifier")
        for name, call in fake.calls
        if name.startswith(("Delete", "Stop"))
    }
    assert touched.isdisjoint({other.deployment_arn, other.model_arn, other_training.job_arn, hand_made})


def test_every_list_call_is_paginated(world: World) -> None:
    fake = world.bedrock
    # Given one item per page and several of everything
    fake.default_page_size = 1
    for run_id in ("run-1", "run-2", "run-3"):
        world.run(run_id, deployment="Active")
    world.run("run-1", stack=OTHER_STACK, deployment="Active")
    world.run("run-4", model=False)
    world.run("run-5", model=False)

    world.destroy()

    assert world.left_of(STACK) == []
    assert len(world.left_of(OTHER_STACK)) == 2
    assert len(fake.calls_to("StopModelCustomizationJob")) == 2
    for operation in ("ListCustomModels", "ListCustomModelDeployments", "ListModelCustomizationJobs"):
        assert any("nextToken" in call for call in fake.calls_to(operation)), operation


def test_throttling_is_retried_on_the_next_poll_and_never_fails_the_delete(world: World) -> None:
    fake = world.bedrock
    run = world.run("run-1", deployment="Active")
    for operation in (
        "ListModelCustomizationJobs",
        "ListCustomModelDeployments",
        "ListTagsForResource",
        "DeleteCustomModelDeployment",
        "ListCustomModels",
        "DeleteCustomModel",
    ):
        fake.script_errors(operation, "ThrottlingException", times=2)
    # When the first polls are throttled, Then they report "not yet" instead of failing
    event = world.start(world.event())
    assert is_complete(event, Context()) == {"IsComplete": False}
    # And the cleanup completes once the throttling stops
    for _ in range(MAX_POLLS):
        if is_complete(event, Context())["IsComplete"]:
            break
    assert world.left_of(STACK) == []
    assert fake.pending_scripted_errors == 0
    assert run.model_arn not in fake.custom_model_arns


def test_a_throttled_listing_never_counts_as_nothing_left(world: World) -> None:
    # Given only a custom model is left, and the first listing of models is throttled
    run = world.run("run-1")
    world.bedrock.script_errors("ListCustomModels", "ThrottlingException")
    event = world.start(world.event())
    # Then the first poll is not complete, although it found nothing
    assert is_complete(event, Context()) == {"IsComplete": False}
    assert run.model_arn in world.bedrock.custom_model_arns
    world.destroy()
    assert world.left_of(STACK) == []


def test_an_execution_stopped_moments_ago_delays_completion(world: World) -> None:
    # Given a RUNNING execution and nothing else
    world.run("run-1", model=False, running=True)
    event = world.start(world.event(settle=3600))
    # When the cleanup stops it, Then it waits out the settle time (a task may still create a job)
    for _ in range(3):
        assert is_complete(event, Context()) == {"IsComplete": False}
    assert world.running_executions() == []


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_do_nothing(world: World, request_type: str) -> None:
    world.run("run-1", deployment="Active", running=True)
    calls_before = len(world.bedrock.calls)
    event = world.event(request_type)

    answer = on_event(event, Context())
    assert answer == {"PhysicalResourceId": f"runtime-resource-cleanup-{STACK}"}
    assert on_event(event, Context()) == answer  # stable: CloudFormation never sends a replacement Delete
    assert is_complete({**event, **answer}, Context()) == {"IsComplete": True}

    assert len(world.bedrock.calls) == calls_before
    assert len(world.left_of(STACK)) == 2
    assert len(world.running_executions()) == 1


def test_a_delete_while_the_stack_lives_on_keeps_everything(world: World, stack_status: StackStatus) -> None:
    # Given the resource is replaced during an update (the stack is not being deleted)
    world.run("run-1", deployment="Active", running=True)
    stack_status.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    event = world.start(world.event())
    # Then the Delete completes at once and touches nothing: the live stack still serves its deployment
    assert is_complete(event, Context()) == {"IsComplete": True}
    assert len(world.left_of(STACK)) == 2
    assert len(world.running_executions()) == 1
    assert stack_status.requests[0]["StackName"] == STACK_ID


def test_leftovers_at_the_deadline_fail_the_delete_with_what_is_left_and_how_to_remove_it(world: World) -> None:
    fake = world.bedrock
    # Given this stack's model is deployed by another stack (Bedrock: ConflictException on delete), and this
    # stack's own deployment never gets deleted
    run = world.run("run-1", deployment="Active")
    world.env.setenv("STACK_NAME", OTHER_STACK)
    from search_router.handlers.deployment import deployment_request

    borrowed = deployment_request(
        RunState(run_id="borrow", execution_arn="arn:x", started_at="t", settings=settings_from_input(DEFAULTS, {})),
        model_arn=run.model_arn or "",
    )
    fake.control.create_custom_model_deployment(**borrowed)
    world.env.setenv("STACK_NAME", STACK)
    event = world.start(world.event())
    # Before the deadline: not yet, no failure
    for _ in range(3):
        assert is_complete(event, Context()) == {"IsComplete": False}
    assert world.left_of(STACK) == [run.model_arn]

    # When the deadline has passed
    event[DEADLINE_KEY] = time.time() - 1
    with pytest.raises(cleanup_incomplete()) as failure:
        is_complete(event, Context())

    # Then the message lists the ARN left, why, and how to finish
    message = str(failure.value)
    assert "did not finish within 45 minutes" in message
    assert f"custom model {run.model_arn}" in message
    assert "ConflictException" in message
    assert "cdk destroy" in message
    assert "aws bedrock delete-custom-model --model-identifier <arn>" in message
    assert f"--retain-resources {LOGICAL_ID}" in message
    assert len(message) < 3000


def test_the_deadline_comes_from_on_event(world: World) -> None:
    before = time.time()
    answer = on_event(world.event(deadline_seconds=600), Context())
    assert answer["PhysicalResourceId"] == f"runtime-resource-cleanup-{STACK}"
    assert before + 600 <= answer[DEADLINE_KEY] <= time.time() + 600


def test_missing_permissions_fail_at_once_naming_what_is_left(world: World) -> None:
    run = world.run("run-1", deployment="Active")
    world.bedrock.script_errors("DeleteCustomModelDeployment", "AccessDeniedException", times=None)
    event = world.start(world.event())
    with pytest.raises(cleanup_incomplete()) as failure:
        is_complete(event, Context())
    message = str(failure.value)
    assert "not permitted" in message
    assert f"custom model deployment {run.deployment_arn}" in message
    assert "AccessDeniedException" in message
    assert "delete-custom-model-deployment" in message
