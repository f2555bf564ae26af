"""The compensation of a failed, timed-out or aborted run (``lambdas/search_router/handlers/compensate.py``), one poll
at a time,
against moto (Step Functions executing a tiny machine, S3, SSM) and the botocore-validating Bedrock fake."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from search_router.adapters.clients import CLIENTS
from simulation.bedrock.values import ACCOUNT_ID, REGION
from simulation.bedrock_fake import BedrockFake
from tests.handlers.runs import run_state
from tests.unit.test_run_naming import DEFAULTS

STACK = "TestStack"
BUCKET = "data-bucket"
PARAMETER = "/TestStack/router/promoted-model"
SETTLE = 90
DEADLINE = 7200


@dataclass
class Clock:
    """Real time plus whatever a test skipped forward (``clock.now += 30``)."""

    offset: float = 0.0

    @property
    def now(self) -> float:
        return time.time() + self.offset

    @now.setter
    def now(self, value: float) -> None:
        self.offset = value - time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    bedrock: BedrockFake
    machine: str
    env: pytest.MonkeyPatch
    clock: Clock

    @property
    def settings(self) -> Any:
        from search_router.handlers.compensate import CompensationSettings

        return CompensationSettings(
            stack_name=STACK,
            state_machine_arn=self.machine,
            bucket=BUCKET,
            model_parameter=PARAMETER,
            settle_seconds=SETTLE,
            deadline_seconds=DEADLINE,
            defaults=DEFAULTS,
        )

    def execution(self, name: str, *, execution_input: dict[str, Any] | None = None, abort: bool = False) -> str:
        """An execution of the pipeline machine that FAILED (its only state is a Fail) or, with ``abort``, that a
        user stopped while it waited."""
        sfn = CLIENTS.get("stepfunctions")
        name = f"abort-{name}" if abort else name  # the machine waits for executions named so, and fails the others
        arn = sfn.start_execution(stateMachineArn=self.machine, name=name, input=json.dumps(execution_input or {}))[
            "executionArn"
        ]
        if abort:
            for _ in range(100):  # stopped once it waits (moto's worker must have started)
                events = sfn.get_execution_history(executionArn=arn)["events"]
                if any(e["type"] == "WaitStateEntered" for e in events):
                    break
                time.sleep(0.02)
            sfn.stop_execution(executionArn=arn, error="Stopped", cause="by hand")
        for _ in range(100):
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                return str(arn)
            time.sleep(0.02)
        raise AssertionError(f"{name} did not end")

    def resources(self, run_id: str, *, stack: str = STACK, training: bool = False, deployed: bool = True) -> dict:
        """What a run of ``stack`` created: a job (InProgress with ``training``), its model and a deployment."""
        from search_router.handlers.deployment import deployment_request
        from search_router.handlers.distillation import job_request

        self.env.setenv("STACK_NAME", stack)
        state = run_state(run_id, stack)
        fake = self.bedrock
        fake.job_polls_to_complete = 1_000 if training else 1
        job = fake.control.create_model_customization_job(**job_request(state, train_uri="s3://b/t.jsonl"))["jobArn"]
        found: dict[str, str] = {"job": job}
        if not training:
            found["model"] = fake.control.get_model_customization_job(jobIdentifier=job)["outputModelArn"]
            if deployed:
                request = deployment_request(state, model_arn=found["model"])
                found["deployment"] = fake.control.create_custom_model_deployment(**request)["customModelDeploymentArn"]
        self.env.setenv("STACK_NAME", STACK)
        return found

    def event(self, execution_arn: str, *, machine: str | None = None) -> dict[str, Any]:
        description = CLIENTS.get("stepfunctions").describe_execution(executionArn=execution_arn)
        return {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {
                "executionArn": execution_arn,
                "stateMachineArn": machine or self.machine,
                "name": description["name"],
                "status": description["status"],
            },
        }

    def poll(self, event: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        from search_router.handlers.compensate import poll

        return poll(
            event,
            previous or {"polls": 0},
            self.settings,
            states=CLIENTS.get("stepfunctions"),
            bedrock=self.bedrock.control,
            s3=CLIENTS.get("s3"),
            ssm=CLIENTS.get("ssm"),
            now=self.clock,
        )

    def compensate(self, event: dict[str, Any], *, max_polls: int = 10, step: float = 30) -> dict[str, Any]:
        result = self.poll(event)
        for _ in range(max_polls):
            if result["done"]:
                return result
            self.clock.now += step
            result = self.poll(event, result)
        raise AssertionError(f"not done after {max_polls} polls: {result}")

    def left(self) -> list[str]:
        fake = self.bedrock
        running = [
            j["jobArn"]
            for j in fake.control.list_model_customization_jobs()["modelCustomizationJobSummaries"]
            if j["status"] in ("InProgress", "Stopping")
        ]
        return sorted(running + fake.deployment_arns + fake.custom_model_arns)


@pytest.fixture
def world(bedrock: BedrockFake, pipeline_env: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        definition = {
            "StartAt": "Choose",
            "States": {
                "Choose": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$$.Execution.Name", "StringMatches": "abort-*", "Next": "Wait"}],
                    "Default": "Broken",
                },
                "Wait": {"Type": "Wait", "Seconds": 3600, "End": True},
                "Broken": {"Type": "Fail", "Error": "DeploymentFailed", "Cause": "Insufficient capacity"},
            },
        }
        machine = CLIENTS.get("stepfunctions").create_state_machine(
            name=f"{STACK}-pipeline", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/p"
        )["stateMachineArn"]
        pipeline_env.setenv("STACK_NAME", STACK)
        yield World(bedrock, machine, pipeline_env, Clock())


def test_only_the_failed_runs_resources_are_stopped_and_deleted(world: World) -> None:
    # Given the failed run's job still training, and another run of the stack and a run of another stack
    mine = world.resources("run-1", training=True)
    other_run = world.resources("run-2")
    other_stack = world.resources("run-1", stack="OtherStack")
    event = world.event(world.execution("run-1"))
    # When it is compensated
    result = world.compensate(event)
    # Then its job is stopped and listed; nothing else was touched
    assert result["done"] and result["clean"] and result["notify"]
    assert result["removed"] == [{"kind": "model customization job", "arn": mine["job"], "state": "stopped"}]
    assert world.bedrock.job(mine["job"])["status"] in ("Stopping", "Stopped")
    assert world.left() == sorted(
        [other_run["model"], other_run["deployment"], other_stack["model"], other_stack["deployment"]]
    )
    assert (result["run_id"], result["status"], result["error"]) == ("run-1", "FAILED", "DeploymentFailed")


def test_a_deployment_goes_before_its_model(world: World) -> None:
    mine = world.resources("run-1")
    result = world.compensate(world.event(world.execution("run-1")))
    assert world.left() == []
    assert [r["arn"] for r in result["removed"]] == [mine["deployment"], mine["model"]]
    names = [name for name, _ in world.bedrock.calls if name in ("DeleteCustomModelDeployment", "DeleteCustomModel")]
    assert names == ["DeleteCustomModelDeployment", "DeleteCustomModel"]


def test_keep_failed_artifacts_keeps_and_lists_everything(world: World) -> None:
    mine = world.resources("run-1")
    event = world.event(world.execution("run-1", execution_input={"keep_failed_artifacts": True}))
    result = world.compensate(event)
    assert result["clean"] and result["removed"] == [] and result["keep"] is True
    assert {k["arn"] for k in result["kept"]} == {mine["deployment"], mine["model"]}
    assert all("keep_failed_artifacts" in k["state"] for k in result["kept"])
    assert sorted(world.left()) == sorted([mine["deployment"], mine["model"]])


def test_an_input_preflight_refused_falls_back_to_the_default(world: World) -> None:
    world.resources("run-1")
    event = world.event(world.execution("run-1", execution_input={"num_examples": 5, "keep_failed_artifacts": True}))
    assert world.compensate(event)["keep"] is False  # the input was invalid as a whole: the default applies
    assert world.left() == []


def test_the_routers_deployment_and_its_model_are_never_removed(world: World) -> None:
    # Given a run that promoted its deployment, then failed
    mine = world.resources("run-1")
    value = {"model_id": mine["deployment"], "prompt_kind": "student", "channels": [], "run_id": "run-1"}
    CLIENTS.get("ssm").put_parameter(Name=PARAMETER, Value=json.dumps(value), Type="String")
    result = world.compensate(world.event(world.execution("run-1")))
    assert result["clean"] and result["removed"] == []
    assert {k["arn"]: k["state"].split("; ")[1] for k in result["kept"]} == {
        mine["deployment"]: "in service: the router's model parameter points at it",
        mine["model"]: "in service: the model of the router's deployment",
    }


def test_one_failure_is_claimed_once(world: World) -> None:
    event = world.event(world.execution("run-1"))
    assert world.poll(event)["notify"] is True
    again = world.poll(event)
    assert again["done"] and not again["notify"] and "another compensation" in again["ignored"]
    claims = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix="runs/run-1/compensation/")
    assert [o["Key"] for o in claims["Contents"]] == ["runs/run-1/compensation/attempt-0.json"]


def test_other_machines_and_map_children_are_ignored(world: World) -> None:
    arn = world.execution("run-1")
    other = world.poll(world.event(arn, machine=f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:Else"))
    assert other["done"] and not other["notify"] and "not an execution of" in other["ignored"]
    child = world.event(arn)
    child["detail"]["executionArn"] = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STACK}-pipeline/LabelShards:x"
    assert "Distributed Map child" in world.poll(child)["ignored"]


def test_after_an_abort_it_waits_until_a_running_task_can_no_longer_create_anything(world: World) -> None:
    # Given an aborted run with nothing (yet) to remove
    event = world.event(world.execution("run-1", abort=True))
    first = world.poll(event)
    assert first["status"] == "ABORTED" and not first["done"] and "settle" in first["waiting"]
    # When a task that was still running creates a deployment afterwards
    world.clock.now += 30
    late = world.resources("abort-run-1")
    second = world.poll(event, first)
    assert not second["done"]
    # Then the next polls remove it, and the sweep ends only once the settle time has passed
    result = second
    while not result["done"]:
        world.clock.now += 30
        result = world.poll(event, result)
    assert world.clock.now >= first["settle_until"]
    assert {r["arn"] for r in result["removed"]} == {late["deployment"], late["model"]}
    assert world.left() == []


def test_what_cannot_be_removed_is_reported_at_the_deadline(world: World) -> None:
    mine = world.resources("run-1")
    world.bedrock.script_errors("DeleteCustomModelDeployment", "ValidationException", times=None, message="busy")
    result = world.compensate(world.event(world.execution("run-1")), max_polls=300, step=60)
    assert result["done"] and result["notify"] and not result["clean"]
    left = {item["arn"] for item in result["left"]}
    assert left == {mine["deployment"], mine["model"]}
    assert world.clock.now >= result["deadline"]


def test_a_permission_error_stops_at_once_and_says_so(world: World) -> None:
    world.resources("run-1")
    world.bedrock.script_errors("DeleteCustomModelDeployment", "AccessDeniedException", times=None, message="no")
    result = world.poll(world.event(world.execution("run-1")))
    assert result["done"] and not result["clean"]
    assert any("AccessDeniedException" in item for item in result["fatal"])


def test_reconcile_finds_recent_unclaimed_failures_only(world: World) -> None:
    from search_router.handlers.compensate import claim, claim_key, find_unclaimed

    lost = world.execution("lost")
    handled = world.execution("handled")
    claim(CLIENTS.get("s3"), BUCKET, claim_key("handled", 0), {"execution_arn": handled})
    now = datetime.now(UTC)
    found = find_unclaimed(
        world.settings, states=CLIENTS.get("stepfunctions"), s3=CLIENTS.get("s3"), now=now, grace=timedelta(0)
    )
    assert [(e["executionArn"], key) for e, key in found] == [(lost, "runs/lost/compensation/attempt-0.json")]
    # too recent (the EventBridge path has time to act) or too old: not looked at
    assert find_unclaimed(world.settings, states=CLIENTS.get("stepfunctions"), s3=CLIENTS.get("s3"), now=now) == []
    later = now + timedelta(days=3)
    assert find_unclaimed(world.settings, states=CLIENTS.get("stepfunctions"), s3=CLIENTS.get("s3"), now=later) == []
