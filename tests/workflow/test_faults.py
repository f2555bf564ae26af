"""Faults cost nothing: an aborted, timed-out or failed execution is compensated (what the run created is stopped
and deleted, or kept on request, and the notification lists it), and every task re-entered with the same input
creates nothing twice (so a retry or a redrive is safe).

The synthesized pipeline and compensation state machines run in moto's interpreter with the real handlers and
the botocore-validating Bedrock fake; the compensation is started as the stack's EventBridge rule would start it
(the rule's own pattern, matched by moto's implementation of EventBridge patterns).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from simulation.bedrock_fake import BedrockFake
from simulation.harness import REGION, Execution, PipelineHarness

SMALL = {"num_examples": 200, "eval_examples": 20, "shard_size": 50, "seed": 11}
JOB = "model customization job"
DEPLOYMENT = "custom model deployment"
MODEL = "custom model"


def _when(pipeline: PipelineHarness, handler: str, action: Callable[[dict[str, Any]], None]) -> None:
    """Run ``action(event)`` the first time ``handler`` is invoked (before the handler runs)."""

    def hook(invoked: str, event: dict[str, Any]) -> None:
        if invoked == handler and hook in pipeline.before_invoke:
            pipeline.before_invoke.remove(hook)
            action(event)

    pipeline.before_invoke.append(hook)


def _finish(pipeline: PipelineHarness, arn: str, *, timeout_s: float = 120) -> Execution:
    execution = pipeline.wait(arn, timeout_s=timeout_s)
    execution.compensation = pipeline.compensate(execution)
    return execution


def _one_notification(pipeline: PipelineHarness) -> dict[str, str]:
    (note,) = pipeline.notifications()
    return note


def _bedrock_resources(bedrock: BedrockFake) -> dict[str, list[str]]:
    control = bedrock.control
    return {
        JOB: [
            j["jobArn"]
            for j in control.list_model_customization_jobs()["modelCustomizationJobSummaries"]
            if j["status"] in ("InProgress", "Stopping")
        ],
        DEPLOYMENT: [
            d["customModelDeploymentArn"] for d in control.list_custom_model_deployments()["modelDeploymentSummaries"]
        ],
        MODEL: [m["modelArn"] for m in control.list_custom_models()["modelSummaries"]],
    }


def test_an_abort_during_distillation_stops_the_job_and_says_so(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a run stopped from the console while its distillation job trains
    bedrock.job_polls_to_complete = 10_000
    _when(
        pipeline,
        "search_router.handlers.distillation.check",
        lambda event: pipeline.sfn.stop_execution(executionArn=event["run"]["execution_arn"], cause="stopped by hand"),
    )
    execution = _finish(pipeline, pipeline.start(SMALL, name="aborted"))
    assert execution.status == "ABORTED"
    # When its compensation has run
    assert execution.compensation is not None and execution.compensation.status == "SUCCEEDED"
    (job,) = bedrock.calls_to("StopModelCustomizationJob")
    # Then the job was stopped, nothing of the run is left, and the notification lists what was removed
    assert _bedrock_resources(bedrock) == {JOB: [], DEPLOYMENT: [], MODEL: []}
    note = _one_notification(pipeline)
    assert note["subject"].startswith("[SearchRouterDistillation] run aborted ABORTED in")
    assert f"Removed:\n- {JOB} {job['jobIdentifier']} (stopped)" in note["message"]
    assert "aws stepfunctions redrive-execution --execution-arn" in note["message"]
    assert not bedrock.calls_to("CreateCustomModelDeployment")


def test_a_timeout_during_deployment_deletes_the_deployment_and_the_model(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given an execution time limit that runs out while the deployment is still being created (moto enforces
    # TimeoutSeconds; the check blocks until it has)
    definition = {**copy.deepcopy(pipeline.definition), "TimeoutSeconds": 25}
    pipeline.sfn.update_state_machine(stateMachineArn=pipeline.state_machine_arn, definition=json.dumps(definition))
    bedrock.deployment_polls_to_active = 10_000

    def block_until_timed_out(event: dict[str, Any]) -> None:
        deadline = time.monotonic() + 60
        while pipeline.sfn.describe_execution(executionArn=event["run"]["execution_arn"])["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution did not time out"
            time.sleep(0.1)

    _when(pipeline, "search_router.handlers.deployment.check", block_until_timed_out)
    execution = _finish(pipeline, pipeline.start(SMALL, name="timed-out"), timeout_s=90)
    assert execution.status == "TIMED_OUT"
    # When it is compensated
    assert execution.compensation is not None and execution.compensation.status == "SUCCEEDED"
    # Then the deployment and the distilled model are deleted, and the notification says so
    (deployment,) = {c["customModelDeploymentIdentifier"] for c in bedrock.calls_to("DeleteCustomModelDeployment")}
    (model,) = {c["modelIdentifier"] for c in bedrock.calls_to("DeleteCustomModel")}
    assert _bedrock_resources(bedrock) == {JOB: [], DEPLOYMENT: [], MODEL: []}
    note = _one_notification(pipeline)
    assert "run timed-out TIMED OUT in" in note["subject"]
    assert f"- {DEPLOYMENT} {deployment} (deleted)" in note["message"]
    assert f"- {MODEL} {model} (deleted)" in note["message"]


def test_a_failed_evaluation_keeps_what_was_asked_to_be_kept_and_lists_it(
    pipeline: PipelineHarness, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run that asked to keep its artifacts, and a candidate evaluation that breaks (a defect, not retried)
    import search_router.handlers.evaluate

    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(search_router.handlers.evaluate, "handler", broken)
    execution = pipeline.run({**SMALL, "keep_failed_artifacts": True}, name="kept")
    assert execution.status == "FAILED" and execution.error == "RuntimeError"
    assert "EvaluateCandidates" in execution.entered_states() and "Report" not in execution.entered_states()
    # When it is compensated
    assert execution.compensation is not None and execution.compensation.status == "SUCCEEDED"
    # Then nothing was stopped or deleted, and the notification lists what is kept and what storage costs
    assert not bedrock.calls_to("DeleteCustomModelDeployment") and not bedrock.calls_to("DeleteCustomModel")
    left = _bedrock_resources(bedrock)
    (deployment,), (model,) = left[DEPLOYMENT], left[MODEL]
    note = _one_notification(pipeline)
    assert "run kept FAILED in EvaluateCandidates: RuntimeError" in note["subject"]
    assert f"Kept:\n- {DEPLOYMENT} {deployment} (Active; kept: keep_failed_artifacts is true)" in note["message"]
    assert f"- {MODEL} {model} (exists; kept: keep_failed_artifacts is true)" in note["message"]
    assert "billed for storage every month" in note["message"]
    assert "redrive continues from it" in note["message"]


def test_a_failed_run_never_takes_the_routers_model_away(
    pipeline: PipelineHarness, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run that promoted its deployment, then failed in its last step (the notification)
    import search_router.handlers.notify

    real = search_router.handlers.notify.handler

    def fails_once(event: dict[str, Any], context: Any) -> Any:
        if event.get("outcome") != "failed":
            raise RuntimeError("SNS is down")
        return real(event, context)

    monkeypatch.setattr(search_router.handlers.notify, "handler", fails_once)
    execution = pipeline.run({**SMALL, "judge": False}, name="promoted-then-failed")
    assert execution.status == "FAILED" and execution.entered_states()[-1] == "NotifySuccess"
    # Then the compensation keeps the deployment the router now serves, and its model
    promoted = json.loads(
        boto3.client("ssm", region_name=REGION).get_parameter(Name=_parameter(pipeline))["Parameter"]["Value"]
    )
    assert not bedrock.calls_to("DeleteCustomModelDeployment") and not bedrock.calls_to("DeleteCustomModel")
    assert _bedrock_resources(bedrock)[DEPLOYMENT] == [promoted["model_id"]]
    note = _one_notification(pipeline)
    assert "in service: the router's model parameter points at it" in note["message"]


def _parameter(pipeline: PipelineHarness) -> str:
    return pipeline.function_for("search_router.handlers.promote.promote").environment["MODEL_PARAMETER"]


def test_two_starts_for_one_failure_announce_it_once(pipeline: PipelineHarness) -> None:
    # Given a failure whose event reached the compensation twice (EventBridge delivers at least once; the
    # hourly reconcile may start one too)
    execution = pipeline.run({"num_examples": 5}, name="twice", compensate=False)
    event = pipeline.status_change_event(execution.description)
    first, second = pipeline.deliver(event), pipeline.deliver(event)
    # Then both succeed, and only the first (which claimed the failure) notified
    assert first.status == second.status == "SUCCEEDED"
    assert "Notify" in first.entered_states() and "Notify" not in second.entered_states()
    assert len(pipeline.notifications()) == 1


def test_a_lost_event_is_compensated_by_the_reconcile(pipeline: PipelineHarness) -> None:
    # Given a failure whose status event never arrived
    execution = pipeline.run({"num_examples": 5}, name="lost", compensate=False)
    assert execution.status == "FAILED" and not pipeline.notifications()
    # When the hourly reconcile runs (twice: a second run starts nothing new)
    reconcile = pipeline.function_for("search_router.handlers.compensate.reconcile")
    reconcile.environment["RECONCILE_GRACE_SECONDS"] = "0"
    for _ in range(2):
        headers: dict[str, str] = {}
        result = json.loads(pipeline.invoke(reconcile.arn, json.dumps({"source": "aws.events"}), headers))
        assert "x-amz-function-error" not in headers, result
    # Then one compensation ran for it and announced it
    (started,) = pipeline.sfn.list_executions(stateMachineArn=pipeline.compensation_arn)["executions"]
    assert pipeline.wait(started["executionArn"]).status == "SUCCEEDED"
    (note,) = pipeline.notifications()
    assert "run lost FAILED in Preflight: InvalidRunInput" in note["subject"]


def test_a_succeeded_run_is_not_compensated(pipeline: PipelineHarness) -> None:
    execution = pipeline.run(SMALL, name="fine")
    assert execution.status == "SUCCEEDED" and execution.compensation is None  # the rule's pattern does not match


# ----------------------------------------------------------------------------------------------------------
# Re-entry: every task twice with the same input creates nothing twice
# ----------------------------------------------------------------------------------------------------------


def _snapshot(pipeline: PipelineHarness, bedrock: BedrockFake) -> dict[str, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    objects = {}
    for key in pipeline.s3_keys(""):
        body = s3.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read()
        objects[key] = body.count(b"\n") if key.endswith(".jsonl") else len(body) > 0
    control = bedrock.control
    return {
        "objects": objects,
        "jobs": sorted(j["jobArn"] for j in control.list_model_customization_jobs()["modelCustomizationJobSummaries"]),
        "deployments": sorted(
            d["customModelDeploymentArn"] for d in control.list_custom_model_deployments()["modelDeploymentSummaries"]
        ),
        "models": sorted(m["modelArn"] for m in control.list_custom_models()["modelSummaries"]),
        "evaluations": sorted(j["jobArn"] for j in control.list_evaluation_jobs().get("jobSummaries", [])),
        "parameter_version": boto3.client("ssm", region_name=REGION).get_parameter(Name=_parameter(pipeline))[
            "Parameter"
        ]["Version"],
    }


def test_every_task_re_entered_with_the_same_input_creates_nothing_twice(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a finished run, and what it created
    execution = pipeline.run(SMALL, name="reentered")
    assert execution.status == "SUCCEEDED", execution.cause
    before = _snapshot(pipeline, bedrock)
    teacher = execution.output["run"]["teacher"]["model_id"]
    teacher_calls = [c for c in bedrock.calls_to("Converse") if c["modelId"] == teacher]
    first_invocations = list(pipeline.invocations)
    # When every task is invoked again with the very input it had (a retry after a timeout, a redrive)
    again = 0
    for handler, event in first_invocations:
        if handler.startswith(("notify.", "compensate.")):
            continue  # notifications are at least once; the compensation has its own claim (test above)
        info = pipeline.function_for(handler)
        headers: dict[str, str] = {}
        result = json.loads(pipeline.invoke(info.arn, json.dumps(event), headers))
        assert "x-amz-function-error" not in headers, (handler, result)
        again += 1
    # Then no second job, deployment, model, evaluation job, S3 object or record, or parameter version exists
    assert again >= 15
    assert _snapshot(pipeline, bedrock) == before
    # And a labeling shard that had finished asks the teacher nothing again
    assert [c for c in bedrock.calls_to("Converse") if c["modelId"] == teacher] == teacher_calls
