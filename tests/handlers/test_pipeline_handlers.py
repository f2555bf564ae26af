"""Pipeline task handlers in isolation: preflight model checks, stuck jobs, notification text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from search_router.contract.errors import DeploymentFailed, DistillationTimedOut, InvalidRunInput
from search_router.contract.run import RunState
from simulation.bedrock_fake import BedrockFake
from tests.handlers.runs import task_run


class Context:
    function_name = "fn"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    aws_request_id = "req"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@pytest.fixture
def run_state() -> dict[str, Any]:
    return task_run(max_distillation_hours=1)


@pytest.mark.parametrize(
    ("model_id", "prepare", "expected"),
    [
        ("us.amazon.nova-pro-v1:0", lambda f: None, None),
        ("us.amazon.nova-lite-v2:9", lambda f: None, "it is not offered in us-east-1"),
        ("us.amazon.nova-premier-v1:0", lambda f: None, "it is LEGACY in us-east-1"),
        (
            "us.amazon.nova-pro-v1:0",
            lambda f: f.set_model_access("amazon.nova-pro-v1:0", authorization="NOT_AUTHORIZED"),
            "request or enable access to amazon.nova-pro-v1:0 in the Amazon Bedrock console",
        ),
        (
            "us.amazon.nova-pro-v1:0",
            lambda f: f.script_errors("GetInferenceProfile", "AccessDeniedException"),
            "it cannot be described (AccessDeniedException",
        ),
    ],
)
def test_a_refused_model_is_named_with_the_setting_to_change(
    bedrock: BedrockFake, model_id: str, prepare: Any, expected: str | None
) -> None:
    from search_router.adapters.bedrock_catalog import BedrockCatalog
    from search_router.pipeline.model_checks import Requirement, judge_model

    prepare(bedrock)
    verdict = judge_model(Requirement("baseline router", model_id, "baseline_model_id"),
                          BedrockCatalog(bedrock.control, "us-east-1").facts(model_id))  # fmt: skip
    if expected is None:
        assert verdict.usable and verdict.lifecycle == "ACTIVE"
        return
    message = verdict.message("us-east-1")
    assert not verdict.usable
    assert expected in message
    assert "'baseline_model_id'" in message


def test_the_student_must_be_offered_for_distillation_in_the_region(bedrock: BedrockFake) -> None:
    from search_router.adapters.bedrock_catalog import BedrockCatalog
    from search_router.pipeline.model_checks import STUDENT_SIDE, Requirement, judge_model

    catalog = BedrockCatalog(bedrock.control, "us-east-1")

    def verdict(model_id: str) -> Any:
        requirement = Requirement("student (customization base)", model_id, "student_job_model_id", STUDENT_SIDE)
        return judge_model(requirement, catalog.facts(model_id))

    # The on-demand id is not what distillation takes; the customization id is
    refused = verdict("amazon.nova-micro-v1:0")
    assert "not offered for DISTILLATION in us-east-1" in refused.reason()
    assert "amazon.nova-micro-v1:0:128k" in refused.reason()  # what the Region does list
    assert verdict("amazon.nova-micro-v1:0:128k").usable
    assert bedrock.calls_to("ListFoundationModels") == [{"byCustomizationType": "DISTILLATION"}]  # read once


def test_a_job_running_past_the_limit_is_stopped_and_fails_the_run(
    bedrock: BedrockFake, run_state: dict[str, Any], pipeline_env: None
) -> None:
    from search_router.handlers.distillation import check, job_request

    # Given a job created two hours ago with a one-hour limit
    request = job_request(RunState.model_validate(run_state), train_uri="s3://bucket/runs/r1/dataset/train.jsonl")
    arn = bedrock.control.create_model_customization_job(**request)["jobArn"]
    bedrock.job_polls_to_complete = 100
    real_get = bedrock.control.get_model_customization_job

    def aged(**kwargs: Any) -> dict[str, Any]:
        job = real_get(**kwargs)
        return {**job, "creationTime": datetime.now(UTC) - timedelta(hours=2)}

    bedrock.control.get_model_customization_job = aged  # type: ignore[method-assign]
    # When the job is checked, Then it is stopped and the run fails with advice
    with pytest.raises(DistillationTimedOut, match="max_distillation_hours=1"):
        job = {"job_arn": arn, "job_name": request["jobName"], "custom_model_name": request["customModelName"]}
        check({"run": run_state, "distillation": job}, Context())
    assert bedrock.calls_to("StopModelCustomizationJob") == [{"jobIdentifier": arn}]


def test_a_deployment_stuck_in_creating_fails_the_run(
    bedrock: BedrockFake, run_state: dict[str, Any], pipeline_env: None
) -> None:
    from search_router.handlers.deployment import check, deployment_request
    from search_router.handlers.distillation import job_request

    # Given a real (fake) deployment of a finished job's model that was created four hours ago
    run = RunState.model_validate(run_state)
    bedrock.job_polls_to_complete = 1
    job_arn = bedrock.control.create_model_customization_job(**job_request(run, train_uri="s3://b/t.jsonl"))["jobArn"]
    model_arn = bedrock.control.get_model_customization_job(jobIdentifier=job_arn)["outputModelArn"]
    bedrock.deployment_polls_to_active = 100
    arn = bedrock.control.create_custom_model_deployment(**deployment_request(run, model_arn=model_arn))[
        "customModelDeploymentArn"
    ]
    real_get = bedrock.control.get_custom_model_deployment

    def aged(**kwargs: Any) -> dict[str, Any]:
        return {**real_get(**kwargs), "createdAt": datetime.now(UTC) - timedelta(hours=4)}

    bedrock.control.get_custom_model_deployment = aged  # type: ignore[method-assign]
    # When it is checked while still Creating, Then the run fails instead of waiting forever
    with pytest.raises(DeploymentFailed, match=r"still Creating after 4\.0 h"):
        deployment = {"deployment_arn": arn, "deployment_name": "stuck", "model_arn": model_arn}
        check({"run": run_state, "deployment": deployment}, Context())


def _failure_notice(compensation: dict[str, Any], stack_name: str = "S") -> tuple[str, str]:
    """The subject and message of the notification of a failed run whose compensation reported ``compensation``."""
    from search_router.handlers.notify import compose

    return compose({"outcome": "failed", "compensation": compensation}, stack_name=stack_name, region="us-east-1")


def test_a_failure_refused_in_preflight_is_announced_with_its_cause_and_a_fix() -> None:
    subject, message = _failure_notice(
        {
            "run_id": "exec-1",
            "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sm:exec-1",
            "status": "FAILED",
            "failed_state": "Preflight",
            "error": "InvalidRunInput",
            "cause": json.dumps({"errorMessage": "the execution input must be a JSON object"}),
            "removed": [],
            "kept": [],
            "left": [],
        }
    )
    assert subject == "[S] run exec-1 FAILED in Preflight: InvalidRunInput"
    assert "Cause: the execution input must be a JSON object" in message
    assert "Fix what the cause says and start a new run" in message
    assert "- nothing was running or left" in message
    assert "console.aws.amazon.com/states" in message


def test_a_failure_notification_lists_what_was_removed_kept_and_left_and_how_to_continue() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:nightly"
    deployment = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc"
    model = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/xyz"
    job = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/j1"
    base = {"run_id": "nightly", "execution_arn": arn, "failed_state": "EvaluateCandidates"}
    # A transient failure after a deployment existed: removed, so a redrive would miss it
    _, removed = _failure_notice(
        {**base, "status": "FAILED", "error": "Lambda.Unknown",
         "removed": [{"kind": "custom model deployment", "arn": deployment, "state": "deleted"}]}
    )  # fmt: skip
    assert f"Removed:\n- custom model deployment {deployment} (deleted)" in removed
    assert f"a redrive continues from it: aws stepfunctions redrive-execution --execution-arn {arn}" in removed
    assert "set keep_failed_artifacts: true" in removed
    # Kept on request: the storage cost is named
    _, kept = _failure_notice(
        {**base, "status": "TIMED_OUT", "error": "States.Timeout",
         "kept": [{"kind": "custom model", "arn": model, "state": "exists; kept: keep_failed_artifacts is true"}]}
    )  # fmt: skip
    assert "TIMED OUT in EvaluateCandidates" in kept and "billed for storage every month" in kept
    # Left behind: listed, with the hand-removal hint
    subject, left = _failure_notice(
        {**base, "status": "ABORTED", "error": None,
         "left": [{"kind": "model customization job", "arn": job, "state": "InProgress; AccessDenied"}]}
    )  # fmt: skip
    assert subject == "[S] run nightly ABORTED in EvaluateCandidates: (stopped)"
    assert "LEFT (could not be removed; remove them by hand):" in left and job in left
    # The sweep itself failed: the run's failure is still announced
    _, broken = _failure_notice(
        {"execution_arn": arn, "execution_name": "nightly", "status": "FAILED",
         "cleanup_error": json.dumps({"errorMessage": "AccessDenied on ListCustomModels"})}
    )  # fmt: skip
    assert "Clean-up could not run: AccessDenied on ListCustomModels" in broken


def test_a_long_notification_subject_stays_a_valid_sns_subject() -> None:
    from search_router.handlers.notify import sns_subject

    # SNS: a Subject must be ASCII, without line breaks, and fewer than 100 characters (docs/bedrock-facts.md)
    subject, message = _failure_notice(
        {
            "status": "FAILED",
            "error": "DistillationTimedOut\nsecond line",
            "cause": "x",
            "run_id": "nightly-run-with-a-rather-long-name-é-" + "x" * 30,
        },
        stack_name="SearchRouterDistillation-Production-EuropeanVideoArchive-Team42",
    )
    assert len(subject) <= 99 and subject.endswith("...")
    assert subject.isascii() and "\n" not in subject and "\r" not in subject
    assert "nightly-run-with-a-rather-long-name" in message  # the body keeps it all
    assert sns_subject("run ok") == "run ok"
    assert sns_subject("a\tb\u00e9c") == "a b?c"
    assert len(sns_subject("y" * 99)) == 99 and len(sns_subject("y" * 100)) == 99


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("404", 404, "does not exist; upload it first"),
        ("403", 403, "cannot be read (403)"),
    ],
)
def test_a_query_file_that_cannot_be_found_or_read_is_named_in_preflight(code: str, status: int, expected: str) -> None:
    from botocore.stub import Stubber

    from search_router.adapters.clients import CLIENTS
    from search_router.handlers.preflight import check_input_file

    # Given S3 answering HeadObject with a 404 (or a 403, as it does without s3:ListBucket)
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error(
        "head_object",
        service_error_code=code,
        http_status_code=status,
        expected_params={"Bucket": "data-bucket", "Key": "inputs/queries.txt"},
    )
    CLIENTS.override("s3", client)
    # When Preflight checks the file, Then the message names the URI and what to do
    with stubber, pytest.raises(InvalidRunInput) as error:
        check_input_file("s3://data-bucket/inputs/queries.txt", "data-bucket")
    assert expected in str(error.value) and "s3://data-bucket/inputs/queries.txt" in str(error.value)


def test_evaluation_waits_out_a_deployment_that_is_not_ready_yet(bedrock: BedrockFake) -> None:
    import time

    from search_router.handlers.evaluate import answer_one
    from search_router.shared.channels import DEFAULT_CHANNELS

    item = {"query": "sunset", "category": "visual_dominant", "reference": {"visual": 0.7, "audio": 0.1,
            "transcription": 0.1, "metadata": 0.1}}  # fmt: skip
    pauses: list[float] = []
    # Given a model that answers ModelNotReadyException three times, then a valid answer
    bedrock.script_errors("Converse", "ModelNotReadyException", times=3)
    result = answer_one(
        bedrock.runtime, model_id="us.amazon.nova-micro-v1:0", system="s", item=item, channels=DEFAULT_CHANNELS,
        sleep=pauses.append,
    )  # fmt: skip
    # Then the query is answered after three backoffs, not scored as an error
    assert result.error_kind is None and result.weights is not None
    assert len(pauses) == 3 and all(0 <= p <= 20 for p in pauses)
    # And when the Lambda's deadline is near, the error is recorded instead of waiting
    bedrock.script_errors("Converse", "ModelNotReadyException", times=1)
    late = answer_one(
        bedrock.runtime, model_id="us.amazon.nova-micro-v1:0", system="s", item=item, channels=DEFAULT_CHANNELS,
        sleep=pauses.append, deadline=time.monotonic(),
    )  # fmt: skip
    assert late.error_kind == "ModelNotReadyException" and len(pauses) == 3


def _creates(bedrock: BedrockFake) -> dict[str, tuple[Any, dict[str, Any], str]]:
    """The three creates of the pipeline: kind → (create call, a valid request, the request's name)."""
    from tests.handlers.test_bedrock_fake import completed_model, distillation_request, evaluation_request

    control = bedrock.control
    job, evaluation = distillation_request(), evaluation_request()
    deployment = {"modelDeploymentName": "router-micro", "modelArn": completed_model(bedrock)}
    return {
        "job": (control.create_model_customization_job, job, job["jobName"]),
        "evaluation": (control.create_evaluation_job, evaluation, evaluation["jobName"]),
        "deployment": (control.create_custom_model_deployment, deployment, deployment["modelDeploymentName"]),
    }


@pytest.mark.parametrize("kind", ["job", "evaluation", "deployment"])
def test_a_create_re_entered_finds_what_the_first_attempt_created_and_creates_nothing_more(
    bedrock: BedrockFake, kind: str, pipeline_env: None
) -> None:
    from search_router.adapters.bedrock import create_once

    create, request, name = _creates(bedrock)[kind]
    first, created = create_once(bedrock.control, kind, name, create, request)
    assert created
    # Re-entered with another idempotency token (a redrive of a new attempt): the name is taken, the ARN found
    again = {**request, "clientRequestToken": "another-attempt"}
    assert create_once(bedrock.control, kind, name, create, again) == (first, False)
    operation = "".join(part.title() for part in create.__name__.split("_"))
    assert bedrock.calls_to(operation)[-1]["clientRequestToken"] == "another-attempt"  # the create was refused
    from search_router.adapters.bedrock import LISTINGS

    listing, key, name_field, _ = LISTINGS[kind]
    named = [s for s in getattr(bedrock.control, listing)()[key] if s[name_field] == name]
    assert len(named) == 1


@pytest.mark.parametrize("kind", ["job", "evaluation", "deployment"])
def test_a_create_throttled_is_retried_and_a_create_refused_is_the_callers_to_word(
    bedrock: BedrockFake, kind: str, pipeline_env: None
) -> None:
    from botocore.exceptions import ClientError

    from search_router.adapters.bedrock import create_once
    from search_router.contract.errors import TransientError

    create, request, name = _creates(bedrock)[kind]
    operation = "".join(part.title() for part in create.__name__.split("_"))
    bedrock.script_errors(operation, "ThrottlingException")
    with pytest.raises(TransientError, match="ThrottlingException"):
        create_once(bedrock.control, kind, name, create, request)
    bedrock.script_errors(operation, "AccessDeniedException", message="not authorized to perform this")
    with pytest.raises(ClientError, match="not authorized to perform this"):
        create_once(bedrock.control, kind, name, create, request)
