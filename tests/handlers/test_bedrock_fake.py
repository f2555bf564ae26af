"""The Bedrock fake behaves like the service where the project depends on it, and fails where the service would."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError, HTTPClientError, ParamValidationError

from search_router.adapters.clients import CLIENTS, PIPELINE_CONFIG
from simulation.bedrock.rules import (
    AVAILABILITY_MODEL_ID,
    CLIENT_REQUEST_TOKEN,
    CUSTOM_MODEL_NAME,
    CUSTOMIZATION_JOB_NAME,
    DEPLOYMENT_NAME,
    EVALUATION_JOB_NAME,
    NameRule,
)
from simulation.bedrock.values import ConverseReply, ConverseRequest, EvaluationJobRequest, FakeError
from simulation.bedrock_fake import BedrockFake
from tests.conftest import NetworkBlockedError

ROLE_ARN = "arn:aws:iam::123456789012:role/BedrockDistillationRole"
TEACHER = "us.amazon.nova-pro-v1:0"
STUDENT_JOB = "amazon.nova-micro-v1:0:128k"
STUDENT = "us.amazon.nova-micro-v1:0"
JUDGE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def distillation_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "jobName": "router-distill-run-1",
        "customModelName": "router-micro-run-1",
        "roleArn": ROLE_ARN,
        "baseModelIdentifier": STUDENT_JOB,
        "customizationType": "DISTILLATION",
        "customizationConfig": {
            "distillationConfig": {
                "teacherModelConfig": {"teacherModelIdentifier": TEACHER, "maxResponseLengthForInference": 1000}
            }
        },
        "trainingDataConfig": {"s3Uri": "s3://data-bucket/runs/1/train.jsonl"},
        "outputDataConfig": {"s3Uri": "s3://data-bucket/runs/1/output/"},
        "clientRequestToken": "run-1",
        "jobTags": [{"key": "project", "value": "router"}],
        "customModelTags": [{"key": "project", "value": "router"}, {"key": "run", "value": "1"}],
    }
    request.update(overrides)
    return request


def evaluation_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "jobName": "judge-distilled-micro-1",
        "roleArn": ROLE_ARN,
        "applicationType": "ModelEvaluation",
        "evaluationConfig": {
            "automated": {
                "datasetMetricConfigs": [
                    {
                        "taskType": "General",
                        "dataset": {"name": "heldout", "datasetLocation": {"s3Uri": "s3://data-bucket/eval.jsonl"}},
                        "metricNames": ["OverallQuality"],
                    }
                ],
                "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": JUDGE}]},
            }
        },
        "inferenceConfig": {
            "models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "distilled-micro"}}]
        },
        "outputDataConfig": {"s3Uri": "s3://data-bucket/judge/"},
    }
    request.update(overrides)
    return request


def user_turn(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def completed_model(fake: BedrockFake, **overrides: Any) -> str:
    """Run a distillation job to completion and return its custom model ARN."""
    job_arn = fake.control.create_model_customization_job(**distillation_request(**overrides))["jobArn"]
    for _ in range(fake.job_polls_to_complete):
        job = fake.control.get_model_customization_job(jobIdentifier=job_arn)
    assert job["status"] == "Completed"
    return job["outputModelArn"]


def active_deployment(fake: BedrockFake, model_arn: str, name: str = "router-micro") -> str:
    arn = fake.control.create_custom_model_deployment(modelDeploymentName=name, modelArn=model_arn)[
        "customModelDeploymentArn"
    ]
    for _ in range(fake.deployment_polls_to_active):
        status = fake.control.get_custom_model_deployment(customModelDeploymentIdentifier=arn)["status"]
    assert status == "Active"
    return arn


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


# ------------------------------------------------------------------------------------------ request validation
def test_misspelled_customization_parameter_is_rejected_before_the_fake(bedrock: BedrockFake) -> None:
    # Given a request with the British spelling of customizationConfig
    request = distillation_request()
    request["customisationConfig"] = request.pop("customizationConfig")

    # When / Then botocore rejects it against the service model, and the fake never sees the call
    with pytest.raises(ParamValidationError, match='Unknown parameter in input: "customisationConfig"'):
        bedrock.control.create_model_customization_job(**request)
    assert bedrock.calls == []


def test_misspelled_converse_parameter_is_rejected(bedrock: BedrockFake) -> None:
    with pytest.raises(ParamValidationError, match="modelID"):
        bedrock.runtime.converse(modelID=STUDENT, messages=user_turn("sunset"))


def test_nested_misspelling_is_rejected(bedrock: BedrockFake) -> None:
    request = distillation_request(trainingDataConfig={"s3URI": "s3://data-bucket/train.jsonl"})
    with pytest.raises(ParamValidationError, match="s3URI"):
        bedrock.control.create_model_customization_job(**request)


def test_missing_required_parameter_is_rejected(bedrock: BedrockFake) -> None:
    request = distillation_request()
    del request["roleArn"]
    with pytest.raises(ParamValidationError, match='Missing required parameter in input: "roleArn"'):
        bedrock.control.create_model_customization_job(**request)


@pytest.mark.parametrize(
    ("operation", "overrides", "member"),
    [
        ("create_model_customization_job", {"jobName": "router_distill"}, "jobName"),
        ("create_model_customization_job", {"jobName": "r" * 64}, "jobName"),
        ("create_model_customization_job", {"customModelName": "router.micro.v1"}, "customModelName"),
        ("create_model_customization_job", {"customModelName": "router--micro"}, "customModelName"),
        ("create_model_customization_job", {"clientRequestToken": "run_1"}, "clientRequestToken"),
        ("create_evaluation_job", {"jobName": "Judge-Run-1"}, "jobName"),
        ("create_evaluation_job", {"jobName": "judge-run-"}, "jobName"),
        ("create_custom_model_deployment", {"modelDeploymentName": "router.micro"}, "modelDeploymentName"),
    ],
)
def test_names_botocore_does_not_check_fail_with_validation_exception(
    bedrock: BedrockFake, operation: str, overrides: dict[str, Any], member: str
) -> None:
    # Given a request whose name breaks a documented pattern or length (botocore checks neither)
    if operation == "create_model_customization_job":
        request = distillation_request(**overrides)
    elif operation == "create_evaluation_job":
        request = evaluation_request(**overrides)
    else:
        request = {"modelDeploymentName": "router-micro", "modelArn": completed_model(bedrock), **overrides}

    def created() -> int:
        control = bedrock.control
        return (
            len(control.list_model_customization_jobs()["modelCustomizationJobSummaries"])
            + len(control.list_evaluation_jobs().get("jobSummaries", []))
            + len(control.list_custom_model_deployments()["modelDeploymentSummaries"])
        )

    before = created()

    # When / Then the fake answers 400 ValidationException naming the member, and creates nothing
    with pytest.raises(ClientError) as excinfo:
        getattr(bedrock.control, operation)(**request)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert f"at '{member}'" in message
    assert created() == before


@pytest.mark.parametrize(
    ("rule", "samples"),
    [
        (CUSTOMIZATION_JOB_NAME, ["a", "run-1", "run.1+x", "a--b", "-a", "a_b", "", "A-"]),
        (CUSTOM_MODEL_NAME, ["a", "router-micro_1", "a.b", "a--b", "-a", "a-", "a_"]),
        (DEPLOYMENT_NAME, ["router-micro", "router.micro", "x_"]),
        (CLIENT_REQUEST_TOKEN, ["a", "run-1", "run-", "-run", "run_1", "a" * 256]),
        (EVALUATION_JOB_NAME, ["judge-1", "judge--1", "Judge", "judge-", "-judge", "a"]),
        (
            AVAILABILITY_MODEL_ID,
            ["amazon.nova-pro-v1:0", "us.amazon.nova-pro-v1:0", "Amazon.nova", "nova", "a.b:c:d:e"],
        ),
    ],
)
def test_name_rules_agree_with_the_service_model_patterns(
    bedrock: BedrockFake, rule: NameRule, samples: list[str]
) -> None:
    # The fake matches with rewritten (backtracking-safe) expressions; they must accept what the model accepts.
    shapes = {
        CUSTOMIZATION_JOB_NAME: ("CreateModelCustomizationJob", "jobName"),
        CUSTOM_MODEL_NAME: ("CreateModelCustomizationJob", "customModelName"),
        DEPLOYMENT_NAME: ("CreateCustomModelDeployment", "modelDeploymentName"),
        CLIENT_REQUEST_TOKEN: ("CreateModelCustomizationJob", "clientRequestToken"),
        EVALUATION_JOB_NAME: ("CreateEvaluationJob", "jobName"),
        AVAILABILITY_MODEL_ID: ("GetFoundationModelAvailability", "modelId"),
    }
    operation, member = shapes[rule]
    shape = bedrock.control.meta.service_model.operation_model(operation).input_shape.members[member]
    assert shape.metadata["pattern"] == rule.pattern
    assert (shape.metadata.get("min", 0), shape.metadata["max"]) == (rule.min_len, rule.max_len)
    model_regex = re.compile(shape.metadata["pattern"])
    for sample in samples:
        assert bool(rule.regex.fullmatch(sample)) == bool(model_regex.fullmatch(sample)), sample


# ----------------------------------------------------------------------------------------------------- catalog
def test_catalog_answers_by_id_and_arn_and_can_turn_a_model_legacy(bedrock: BedrockFake) -> None:
    # Nova Premier is past its end of life (docs/bedrock-facts.md): LEGACY by default, with its teacher variant
    details = bedrock.control.get_foundation_model(modelIdentifier="amazon.nova-premier-v1:0")["modelDetails"]
    assert details["modelLifecycle"]["status"] == "LEGACY"
    assert details["inferenceTypesSupported"] == ["INFERENCE_PROFILE"]

    bedrock.set_model_lifecycle("amazon.nova-premier-v1:0", "ACTIVE")
    by_arn = bedrock.control.get_foundation_model(modelIdentifier=details["modelArn"])["modelDetails"]
    assert by_arn["modelLifecycle"]["status"] == "ACTIVE"
    variant = bedrock.control.get_foundation_model(modelIdentifier="amazon.nova-premier-v1:0:1000k")["modelDetails"]
    assert variant["modelLifecycle"]["status"] == "ACTIVE"  # the whole family flips together

    student = bedrock.control.get_foundation_model(modelIdentifier=STUDENT_JOB)["modelDetails"]
    assert "DISTILLATION" in student["customizationsSupported"]

    profile = bedrock.control.get_inference_profile(inferenceProfileIdentifier=TEACHER)
    assert profile["status"] == "ACTIVE"
    assert profile["type"] == "SYSTEM_DEFINED"
    assert profile["inferenceProfileArn"].endswith(f":inference-profile/{TEACHER}")
    assert all(m["modelArn"].endswith("foundation-model/amazon.nova-pro-v1:0") for m in profile["models"])


def test_model_access_is_granted_by_default_and_can_be_withdrawn(bedrock: BedrockFake) -> None:
    granted = bedrock.control.get_foundation_model_availability(modelId="amazon.nova-pro-v1:0")
    assert granted["authorizationStatus"] == "AUTHORIZED"
    assert granted["agreementAvailability"] == {"status": "AVAILABLE"}
    assert {granted["entitlementAvailability"], granted["regionAvailability"]} == {"AVAILABLE"}

    # Access is per model family: the profile id and the customization id share it
    bedrock.set_model_access("us.amazon.nova-pro-v1:0", authorization="NOT_AUTHORIZED", agreement="PENDING")
    for model_id in ("amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0:300k"):
        withdrawn = bedrock.control.get_foundation_model_availability(modelId=model_id)
        assert (withdrawn["authorizationStatus"], withdrawn["agreementAvailability"]["status"]) == (
            "NOT_AUTHORIZED",
            "PENDING",
        )
    with pytest.raises(ClientError) as excinfo:
        bedrock.control.get_foundation_model_availability(modelId="amazon.nova-ultra-v9:0")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)


def test_a_completed_jobs_model_can_stay_creating_and_cannot_be_deployed_until_active(bedrock: BedrockFake) -> None:
    bedrock.job_polls_to_complete = 1
    bedrock.model_polls_to_active = 2
    arn = bedrock.control.create_model_customization_job(**distillation_request())["jobArn"]
    model_arn = bedrock.control.get_model_customization_job(jobIdentifier=arn)["outputModelArn"]
    deployment = {"modelDeploymentName": "router", "modelArn": model_arn}
    # Before the model is Active, a deployment is refused (docs/bedrock-facts.md)
    with pytest.raises(ClientError) as excinfo:
        bedrock.control.create_custom_model_deployment(**deployment)
    code, _, message = error_of(excinfo)
    assert code == "ValidationException" and "must be Active" in message
    statuses = [bedrock.control.get_custom_model(modelIdentifier=model_arn)["modelStatus"] for _ in range(3)]
    assert statuses == ["Creating", "Active", "Active"]
    assert bedrock.control.create_custom_model_deployment(**deployment)["customModelDeploymentArn"]


def test_backdate_makes_a_job_older(bedrock: BedrockFake) -> None:
    arn = bedrock.control.create_model_customization_job(**distillation_request())["jobArn"]
    before = bedrock.job(arn)["creationTime"]
    bedrock.backdate(arn, hours=5)
    assert before - bedrock.job(arn)["creationTime"] == timedelta(hours=5)


def test_unknown_model_and_profile_are_not_found(bedrock: BedrockFake) -> None:
    with pytest.raises(bedrock.control.exceptions.ResourceNotFoundException) as excinfo:
        bedrock.control.get_foundation_model(modelIdentifier="amazon.nova-nano-v9:0")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(bedrock.control.exceptions.ResourceNotFoundException):
        bedrock.control.get_inference_profile(inferenceProfileIdentifier="eu.amazon.nova-micro-v1:0")


def test_custom_catalog_entries(bedrock: BedrockFake) -> None:
    bedrock.add_foundation_model("amazon.nova-2-lite-v1:0", inference_types=("ON_DEMAND",))
    bedrock.add_inference_profile("global.amazon.nova-2-lite-v1:0", ["amazon.nova-2-lite-v1:0"])

    reply = bedrock.runtime.converse(modelId="amazon.nova-2-lite-v1:0", messages=user_turn("rain"))
    assert reply["stopReason"] == "end_turn"
    profile = bedrock.control.get_inference_profile(inferenceProfileIdentifier="global.amazon.nova-2-lite-v1:0")
    assert profile["models"] == [{"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-2-lite-v1:0"}]


# ------------------------------------------------------------------------------------------ customization jobs
def test_distillation_job_lifecycle(bedrock: BedrockFake) -> None:
    # Given a distillation job
    job_arn = bedrock.control.create_model_customization_job(**distillation_request())["jobArn"]
    assert re.fullmatch(
        r"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon\.nova-micro-v1:0:128k/[a-z0-9]{12}",
        job_arn,
    )

    # When it is polled, Then it progresses through its phases and completes on the configured poll
    first = bedrock.control.get_model_customization_job(jobIdentifier=job_arn)
    assert first["status"] == "InProgress"
    assert first["statusDetails"]["validationDetails"]["status"] == "Completed"
    assert first["statusDetails"]["dataProcessingDetails"]["status"] == "InProgress"
    assert first["statusDetails"]["trainingDetails"]["status"] == "NotStarted"
    assert "outputModelArn" not in first

    done = bedrock.control.get_model_customization_job(jobIdentifier="router-distill-run-1")  # by name
    assert done["status"] == "Completed"
    assert done["outputModelName"] == "router-micro-run-1"
    assert done["outputModelArn"].startswith(
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/"
    )
    assert done["trainingMetrics"]["trainingLoss"] == pytest.approx(bedrock.training_loss)
    assert done["customizationConfig"]["distillationConfig"]["teacherModelConfig"]["teacherModelIdentifier"] == TEACHER

    # And the custom model exists, carrying the customModelTags
    model = bedrock.control.get_custom_model(modelIdentifier=done["outputModelArn"])
    assert model["modelName"] == "router-micro-run-1"
    assert model["jobArn"] == job_arn
    tags = bedrock.control.list_tags_for_resource(resourceARN=done["outputModelArn"])["tags"]
    assert {t["key"]: t["value"] for t in tags} == {"project": "router", "run": "1"}
    job_tags = bedrock.control.list_tags_for_resource(resourceARN=job_arn)["tags"]
    assert job_tags == [{"key": "project", "value": "router"}]


def test_client_request_token_makes_create_idempotent(bedrock: BedrockFake) -> None:
    first = bedrock.control.create_model_customization_job(**distillation_request())["jobArn"]
    second = bedrock.control.create_model_customization_job(**distillation_request())["jobArn"]

    assert second == first
    assert len(bedrock.calls_to("CreateModelCustomizationJob")) == 2
    summaries = bedrock.control.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert [s["jobArn"] for s in summaries] == [first]

    # The same token with different parameters is a conflict, not a silent second job
    with pytest.raises(bedrock.control.exceptions.ConflictException):
        bedrock.control.create_model_customization_job(**distillation_request(jobName="router-distill-run-2"))


def test_botocore_fills_a_missing_token_so_repeated_creates_are_not_idempotent(bedrock: BedrockFake) -> None:
    request = distillation_request()
    del request["clientRequestToken"]
    bedrock.control.create_model_customization_job(**request)

    token = bedrock.calls_to("CreateModelCustomizationJob")[0]["clientRequestToken"]
    assert re.fullmatch(r"[0-9a-f-]{36}", token)
    with pytest.raises(bedrock.control.exceptions.ConflictException, match="already exists"):
        bedrock.control.create_model_customization_job(**request)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"baseModelIdentifier": STUDENT}, "base model identifier"),
        ({"baseModelIdentifier": "amazon.nova-micro-v1:0"}, "does not support DISTILLATION"),
        (
            {
                "customizationConfig": {
                    "distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": "us.amazon.nova-x-v1:0"}}
                }
            },
            "teacher model",
        ),
    ],
)
def test_wrong_model_ids_are_rejected(bedrock: BedrockFake, overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(bedrock.control.exceptions.ValidationException, match=fragment):
        bedrock.control.create_model_customization_job(**distillation_request(**overrides))


def test_scripted_job_failure(bedrock: BedrockFake) -> None:
    bedrock.fail_next_job("Insufficient training records: 42 < 100")
    job_arn = bedrock.control.create_model_customization_job(**distillation_request())["jobArn"]

    statuses = [bedrock.control.get_model_customization_job(jobIdentifier=job_arn) for _ in range(3)]

    assert [s["status"] for s in statuses] == ["InProgress", "Failed", "Failed"]
    assert statuses[-1]["failureMessage"] == "Insufficient training records: 42 < 100"
    assert "outputModelArn" not in statuses[-1]
    assert bedrock.custom_model_arns == []
    # Only the next job fails
    assert completed_model(bedrock, jobName="run-2", customModelName="router-2", clientRequestToken="run-2")


def test_stop_job(bedrock: BedrockFake) -> None:
    job_arn = bedrock.control.create_model_customization_job(**distillation_request())["jobArn"]
    bedrock.control.stop_model_customization_job(jobIdentifier=job_arn)

    assert bedrock.job(job_arn)["status"] == "Stopping"
    assert bedrock.control.get_model_customization_job(jobIdentifier=job_arn)["status"] == "Stopped"
    with pytest.raises(bedrock.control.exceptions.ValidationException):
        bedrock.control.stop_model_customization_job(jobIdentifier=job_arn)


def test_list_jobs_filters_and_paginates(bedrock: BedrockFake) -> None:
    arns = [
        bedrock.control.create_model_customization_job(
            **distillation_request(jobName=f"run-{i}", customModelName=f"router-{i}", clientRequestToken=f"t-{i}")
        )["jobArn"]
        for i in range(3)
    ]
    bedrock.job_polls_to_complete = 1
    bedrock.control.get_model_customization_job(jobIdentifier=arns[0])  # polls_to_complete was 2 at creation

    in_progress = bedrock.control.list_model_customization_jobs(statusEquals="InProgress")
    assert len(in_progress["modelCustomizationJobSummaries"]) == 3

    paginator = bedrock.control.get_paginator("list_model_customization_jobs")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 2}))
    listed = [s["jobArn"] for page in pages for s in page["modelCustomizationJobSummaries"]]
    assert [len(p["modelCustomizationJobSummaries"]) for p in pages] == [2, 1]
    assert listed == list(reversed(arns))  # newest first


# ------------------------------------------------------------------------------------------------- deployments
def test_deployment_lifecycle_and_invocation(bedrock: BedrockFake) -> None:
    model_arn = completed_model(bedrock)
    request = {
        "modelDeploymentName": "router-micro",
        "modelArn": model_arn,
        "description": "distilled router",
        "tags": [{"key": "project", "value": "router"}],
        "clientRequestToken": "deploy-run-1",
    }
    arn = bedrock.control.create_custom_model_deployment(**request)["customModelDeploymentArn"]
    assert re.fullmatch(r"arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/[a-z0-9]{12}", arn)

    # A deployment that is still Creating can't serve
    assert bedrock.deployment(arn)["status"] == "Creating"
    with pytest.raises(bedrock.runtime.exceptions.ValidationException, match="Creating"):
        bedrock.runtime.converse(modelId=arn, messages=user_turn("sunset"))

    statuses = [
        bedrock.control.get_custom_model_deployment(customModelDeploymentIdentifier=arn)["status"] for _ in range(2)
    ]
    assert statuses == ["Creating", "Active"]

    # Once Active, the deployment ARN is the modelId; the custom model ARN is not
    reply = bedrock.runtime.converse(modelId=arn, messages=user_turn("sunset"))
    assert set(json.loads(reply["output"]["message"]["content"][0]["text"])) >= {"visual", "reasoning"}
    with pytest.raises(bedrock.runtime.exceptions.ValidationException, match="deployment ARN"):
        bedrock.runtime.converse(modelId=model_arn, messages=user_turn("sunset"))

    # The same request (the same token) returns the same deployment
    again = bedrock.control.create_custom_model_deployment(**request)["customModelDeploymentArn"]
    assert again == arn
    assert bedrock.deployment_arns == [arn]
    assert bedrock.control.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "project", "value": "router"}]

    # A model in use can't be deleted; after the deployment goes, it can
    with pytest.raises(bedrock.control.exceptions.ConflictException):
        bedrock.control.delete_custom_model(modelIdentifier=model_arn)
    bedrock.control.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
    bedrock.control.delete_custom_model(modelIdentifier=model_arn)
    with pytest.raises(bedrock.control.exceptions.ResourceNotFoundException):
        bedrock.control.get_custom_model(modelIdentifier=model_arn)


def test_scripted_deployment_failure(bedrock: BedrockFake) -> None:
    model_arn = completed_model(bedrock)
    bedrock.fail_next_deployment("Model artifacts could not be loaded")
    arn = bedrock.control.create_custom_model_deployment(modelDeploymentName="router-micro", modelArn=model_arn)[
        "customModelDeploymentArn"
    ]

    views = [bedrock.control.get_custom_model_deployment(customModelDeploymentIdentifier=arn) for _ in range(2)]

    assert [v["status"] for v in views] == ["Creating", "Failed"]
    assert views[-1]["failureMessage"] == "Model artifacts could not be loaded"
    listed = bedrock.control.list_custom_model_deployments(statusEquals="Failed")["modelDeploymentSummaries"]
    assert [d["customModelDeploymentArn"] for d in listed] == [arn]


def test_deployment_for_unknown_model_is_not_found(bedrock: BedrockFake) -> None:
    missing = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/abcdefghijkl"
    with pytest.raises(bedrock.control.exceptions.ResourceNotFoundException):
        bedrock.control.create_custom_model_deployment(modelDeploymentName="router-micro", modelArn=missing)


def test_update_deployment_switches_the_model(bedrock: BedrockFake) -> None:
    first = completed_model(bedrock)
    second = completed_model(bedrock, jobName="run-2", customModelName="router-2", clientRequestToken="run-2")
    arn = active_deployment(bedrock, first)

    bedrock.control.update_custom_model_deployment(customModelDeploymentIdentifier=arn, modelArn=second)
    updating = bedrock.deployment(arn)
    assert (updating["modelArn"], updating["updateDetails"]["updateStatus"]) == (first, "Updating")

    views = [bedrock.control.get_custom_model_deployment(customModelDeploymentIdentifier=arn) for _ in range(2)]
    assert views[-1]["modelArn"] == second
    assert views[-1]["updateDetails"]["updateStatus"] == "UpdateCompleted"
    assert views[-1]["status"] == "Active"


def test_list_custom_model_deployments_paginates_and_filters(bedrock: BedrockFake) -> None:
    model_a = completed_model(bedrock)
    model_b = completed_model(bedrock, jobName="run-2", customModelName="router-2", clientRequestToken="run-2")
    arns = [active_deployment(bedrock, model_a, name=f"router-a-{i}") for i in range(3)]
    arns += [active_deployment(bedrock, model_b, name=f"router-b-{i}") for i in range(2)]

    # Manual pagination with nextToken / maxResults
    seen: list[str] = []
    page_sizes = []
    kwargs: dict[str, Any] = {"maxResults": 2}
    while True:
        page = bedrock.control.list_custom_model_deployments(**kwargs)
        page_sizes.append(len(page["modelDeploymentSummaries"]))
        seen += [d["customModelDeploymentArn"] for d in page["modelDeploymentSummaries"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert page_sizes == [2, 2, 1]
    assert seen == list(reversed(arns))

    # botocore's paginator drives the same API
    paginator = bedrock.control.get_paginator("list_custom_model_deployments")
    result = paginator.paginate(sortOrder="Ascending", PaginationConfig={"PageSize": 3}).build_full_result()
    assert [d["customModelDeploymentArn"] for d in result["modelDeploymentSummaries"]] == arns

    # Filters
    by_model = bedrock.control.list_custom_model_deployments(modelArnEquals=model_b)["modelDeploymentSummaries"]
    assert {d["customModelDeploymentName"] for d in by_model} == {"router-b-0", "router-b-1"}
    by_name = bedrock.control.list_custom_model_deployments(nameContains="a-1")["modelDeploymentSummaries"]
    assert [d["customModelDeploymentName"] for d in by_name] == ["router-a-1"]
    assert bedrock.control.list_custom_model_deployments(statusEquals="Creating")["modelDeploymentSummaries"] == []

    with pytest.raises(bedrock.control.exceptions.ValidationException, match="nextToken"):
        bedrock.control.list_custom_model_deployments(nextToken="not-a-token")


# --------------------------------------------------------------------------------------------- evaluation jobs
def test_evaluation_job_completes_and_calls_the_extension_point(bedrock: BedrockFake) -> None:
    completed: list[EvaluationJobRequest] = []
    bedrock.on_evaluation_complete = completed.append

    arn = bedrock.control.create_evaluation_job(**evaluation_request())["jobArn"]
    statuses = [bedrock.control.get_evaluation_job(jobIdentifier=arn)["status"] for _ in range(3)]

    assert statuses == ["InProgress", "Completed", "Completed"]
    assert len(completed) == 1
    assert completed[0].job_arn == arn
    assert completed[0].job_name == "judge-distilled-micro-1"
    assert arn.endswith(f"/{completed[0].job_id}")
    assert completed[0].output_s3_uri == "s3://data-bucket/judge/"
    summaries = bedrock.control.list_evaluation_jobs(statusEquals="Completed")["jobSummaries"]
    assert summaries[0]["evaluationTaskTypes"] == ["General"]
    assert summaries[0]["inferenceConfigSummary"]["modelConfigSummary"]["precomputedInferenceSourceIdentifiers"] == [
        "distilled-micro"
    ]


def test_scripted_evaluation_failure_and_stop(bedrock: BedrockFake) -> None:
    bedrock.fail_next_evaluation("Judge model access denied", "No results")
    failed = bedrock.control.create_evaluation_job(**evaluation_request())["jobArn"]
    views = [bedrock.control.get_evaluation_job(jobIdentifier=failed) for _ in range(2)]
    assert views[-1]["status"] == "Failed"
    assert views[-1]["failureMessages"] == ["Judge model access denied", "No results"]

    stopped = bedrock.control.create_evaluation_job(**evaluation_request(jobName="judge-2"))["jobArn"]
    bedrock.control.stop_evaluation_job(jobIdentifier=stopped)
    assert bedrock.control.get_evaluation_job(jobIdentifier=stopped)["status"] == "Stopped"


# ------------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),
        ("ModelNotReadyException", 429),
        ("ServiceUnavailableException", 503),
        ("ModelTimeoutException", 408),
        ("ModelErrorException", 424),
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("ResourceNotFoundException", 404),
        ("InternalServerException", 500),
    ],
)
def test_scripted_runtime_errors_surface_as_modelled_client_errors(
    bedrock: BedrockFake, code: str, status: int
) -> None:
    bedrock.script_errors("Converse", code, times=2, message="try later")

    for _ in range(2):
        with pytest.raises(getattr(bedrock.runtime.exceptions, code)) as excinfo:
            bedrock.runtime.converse(modelId=STUDENT, messages=user_turn("sunset"))
        assert error_of(excinfo) == (code, status, "try later")
    # No botocore retries happen behind a before-call answer: one recorded call per attempt
    assert len(bedrock.calls_to("Converse")) == 2
    assert bedrock.runtime.converse(modelId=STUDENT, messages=user_turn("sunset"))["stopReason"] == "end_turn"
    assert bedrock.pending_scripted_errors == 0


def test_scripted_throttling_is_not_retried_even_by_a_retrying_client(bedrock: BedrockFake) -> None:
    # Given a client with the pipeline's retry config (adaptive, 5 attempts) answered by the same fake
    client = bedrock.attach(boto3.client("bedrock", region_name="us-east-1", config=PIPELINE_CONFIG))
    job_arn = client.create_model_customization_job(**distillation_request())["jobArn"]
    bedrock.script_errors("GetModelCustomizationJob", "ThrottlingException", times=1)

    # When the throttled call is made, Then botocore does not retry it: the error surfaces on the first attempt
    with pytest.raises(client.exceptions.ThrottlingException) as excinfo:
        client.get_model_customization_job(jobIdentifier=job_arn)
    assert error_of(excinfo)[:2] == ("ThrottlingException", 429)
    assert len(bedrock.calls_to("GetModelCustomizationJob")) == 1
    # And the throttled Get did not count as a poll
    assert bedrock.job(job_arn)["status"] == "InProgress"
    assert bedrock.control.get_model_customization_job(jobIdentifier=job_arn)["status"] == "InProgress"


def test_scripted_errors_can_target_one_model(bedrock: BedrockFake) -> None:
    bedrock.script_errors("Converse", "AccessDeniedException", times=None, model_id=TEACHER)

    for _ in range(3):
        with pytest.raises(bedrock.runtime.exceptions.AccessDeniedException):
            bedrock.runtime.converse(modelId=TEACHER, messages=user_turn("q"))
    assert bedrock.runtime.converse(modelId=STUDENT, messages=user_turn("q"))["stopReason"] == "end_turn"


def test_scripting_rejects_unknown_codes_and_operations(bedrock: BedrockFake) -> None:
    with pytest.raises(ValueError, match="not an error of bedrock-runtime"):
        bedrock.script_errors("Converse", "TooManyRequests")
    with pytest.raises(ValueError, match="does not model"):
        bedrock.script_errors("InvokeModel", "ThrottlingException")
    with pytest.raises(ValueError, match="model_id only applies"):
        bedrock.script_errors("GetCustomModel", "ThrottlingException", model_id=STUDENT)


def test_error_rate_is_random_but_reproducible() -> None:
    def failures(seed: int) -> list[int]:
        fake = BedrockFake().with_default_catalog()
        fake.error_rate("ThrottlingException", 0.3, seed=seed)
        failed = []
        for index in range(100):
            try:
                fake.runtime.converse(modelId=STUDENT, messages=user_turn("q"))
            except fake.runtime.exceptions.ThrottlingException:
                failed.append(index)
        return failed

    first = failures(seed=7)
    assert 15 <= len(first) <= 45
    assert failures(seed=7) == first
    assert failures(seed=8) != first


def test_on_demand_rules_for_model_ids(bedrock: BedrockFake) -> None:
    # Nova base ids need the us. profile; customization ids are not invocable; unknown ids are invalid
    for model_id, fragment in [
        ("amazon.nova-micro-v1:0", "on-demand throughput isn't supported"),
        (STUDENT_JOB, "on-demand throughput isn't supported"),
        ("us.amazon.nova-nano-v1:0", "model identifier is invalid"),
    ]:
        with pytest.raises(bedrock.runtime.exceptions.ValidationException, match=fragment):
            bedrock.runtime.converse(modelId=model_id, messages=user_turn("q"))


def test_unmodelled_operation_raises_not_implemented(bedrock: BedrockFake) -> None:
    with pytest.raises(NotImplementedError, match="InvokeModel"):
        bedrock.runtime.invoke_model(modelId=STUDENT, body=b"{}")
    with pytest.raises(NotImplementedError, match="CreateModelInvocationJob"):
        bedrock.control.create_model_invocation_job(
            jobName="label-1",
            roleArn=ROLE_ARN,
            modelId=TEACHER,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://data-bucket/in/"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://data-bucket/out/"}},
        )


# ----------------------------------------------------------------------------------------- Converse responder
def test_responder_sees_the_prompt_and_shapes_the_answer(bedrock: BedrockFake) -> None:
    seen: list[ConverseRequest] = []

    def responder(request: ConverseRequest) -> ConverseReply:
        seen.append(request)
        return ConverseReply('{"visual": 1.0}', input_tokens=120, output_tokens=8, latency_ms=321)

    bedrock.responder = responder
    response = bedrock.runtime.converse(
        modelId=STUDENT,
        system=[{"text": "You route search queries."}],
        messages=user_turn("sunset over mountains"),
        inferenceConfig={"maxTokens": 200, "temperature": 0.0},
    )

    assert response["output"]["message"]["content"][0]["text"] == '{"visual": 1.0}'
    assert response["usage"] == {"inputTokens": 120, "outputTokens": 8, "totalTokens": 128}
    assert response["metrics"] == {"latencyMs": 321}
    assert seen[0].model_id == STUDENT
    assert seen[0].target_kind == "inference-profile"
    assert seen[0].system_text == "You route search queries."
    assert seen[0].user_text == "sunset over mountains"
    assert seen[0].inference_config == {"maxTokens": 200, "temperature": 0.0}


def test_responder_can_fail_a_call(bedrock: BedrockFake) -> None:
    bedrock.responder = lambda request: FakeError("ModelTimeoutException", "took too long")
    with pytest.raises(bedrock.runtime.exceptions.ModelTimeoutException) as excinfo:
        bedrock.runtime.converse(modelId=STUDENT, messages=user_turn("q"))
    assert error_of(excinfo) == ("ModelTimeoutException", 408, "took too long")


def test_default_responder_answers_valid_equal_weights(bedrock: BedrockFake) -> None:
    text = bedrock.runtime.converse(modelId=STUDENT, messages=user_turn("q"))["output"]["message"]["content"][0]["text"]
    answer = json.loads(text)
    weights = {k: v for k, v in answer.items() if k != "reasoning"}
    assert set(weights) == {"visual", "audio", "transcription", "metadata"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert list(answer)[-1] == "reasoning"


def test_concurrent_calls_are_all_recorded_and_scripts_consumed_exactly(bedrock: BedrockFake) -> None:
    bedrock.delay_s = 0.005
    bedrock.script_errors("Converse", "ThrottlingException", times=5)
    outcomes: list[str] = []
    guard = threading.Lock()

    def call(index: int) -> None:
        try:
            bedrock.runtime.converse(modelId=STUDENT, messages=user_turn(f"query {index}"))
            result = "ok"
        except bedrock.runtime.exceptions.ThrottlingException:
            result = "throttled"
        with guard:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(call, range(40)))

    assert outcomes.count("throttled") == 5
    assert outcomes.count("ok") == 35
    assert len(bedrock.calls_to("Converse")) == 40


# ------------------------------------------------------------------------------------------------ ConverseStream
def test_converse_stream_yields_events_in_order(bedrock: BedrockFake) -> None:
    bedrock.responder = lambda request: "abcdefghij"
    bedrock.stream_chunk_chars = 4

    events = list(bedrock.runtime.converse_stream(modelId=STUDENT, messages=user_turn("q"))["stream"])

    assert events[0] == {"messageStart": {"role": "assistant"}}
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert deltas == ["abcd", "efgh", "ij"]
    assert [next(iter(e)) for e in events[-3:]] == ["contentBlockStop", "messageStop", "metadata"]
    assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
    assert set(events[-1]["metadata"]) == {"usage", "metrics"}
    assert bedrock.last_stream.fully_read


def test_converse_stream_reader_can_stop_early(bedrock: BedrockFake) -> None:
    bedrock.responder = lambda request: '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}'
    stream = bedrock.runtime.converse_stream(modelId=STUDENT, messages=user_turn("q"))["stream"]

    received = ""
    for event in stream:
        received += event.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
        if '"visual"' in received:
            break
    stream.close()

    recorded = bedrock.last_stream
    assert recorded is stream
    assert recorded.closed
    assert recorded.events_read == 4  # messageStart + 3 chunks of 4 characters
    assert recorded.events_read < recorded.total_events
    assert list(stream) == []  # nothing more after close


def test_converse_stream_in_stream_error(bedrock: BedrockFake) -> None:
    bedrock.script_stream_error("ThrottlingException", after_events=2)
    stream = bedrock.runtime.converse_stream(modelId=STUDENT, messages=user_turn("q"))["stream"]

    read = []
    with pytest.raises(EventStreamError) as excinfo:
        read.extend(stream)

    assert len(read) == 2
    assert excinfo.value.response["Error"]["Code"] == "throttlingException"


def test_converse_stream_errors_before_the_stream(bedrock: BedrockFake) -> None:
    bedrock.script_errors("ConverseStream", "ServiceUnavailableException")
    with pytest.raises(bedrock.runtime.exceptions.ServiceUnavailableException):
        bedrock.runtime.converse_stream(modelId=STUDENT, messages=user_turn("q"))
    assert bedrock.streams == []


# ---------------------------------------------------------------------------------------------------- harness
def test_install_serves_the_fake_through_routing_clients(bedrock: BedrockFake) -> None:
    assert CLIENTS.get("bedrock") is bedrock.control
    assert CLIENTS.get("bedrock-runtime") is bedrock.runtime


@pytest.fixture
def moto_bedrock(aws: None) -> Iterator[Any]:
    """A plain boto3 bedrock client: inside mock_aws, moto answers it."""
    yield boto3.client("bedrock", region_name="us-east-1")


def test_fake_wins_inside_moto(aws: None, bedrock: BedrockFake, moto_bedrock: Any) -> None:
    # Given moto is active and S3 works through the project's clients
    s3 = CLIENTS.get("s3")
    s3.create_bucket(Bucket="data-bucket")
    s3.put_object(Bucket="data-bucket", Key="train.jsonl", Body=b"{}\n")

    # When the pipeline's bedrock client creates a job
    job_arn = CLIENTS.get("bedrock").create_model_customization_job(**distillation_request())["jobArn"]

    # Then the fake answered (moto's own Bedrock backend never saw the job)
    assert bedrock.calls_to("CreateModelCustomizationJob")
    assert bedrock.job(job_arn)["status"] == "InProgress"
    assert moto_bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"] == []
    assert s3.get_object(Bucket="data-bucket", Key="train.jsonl")["Body"].read() == b"{}\n"


def test_network_is_blocked_except_loopback() -> None:
    with pytest.raises(NetworkBlockedError, match="network access is blocked"):
        socket.create_connection(("192.0.2.10", 443), timeout=0.5)
    with socket.socket() as sock, pytest.raises(NetworkBlockedError):
        sock.connect(("198.51.100.7", 80))

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1) as client:
            assert client.getpeername() == server.getsockname()


def test_real_aws_endpoints_are_unreachable() -> None:
    # Without moto or a fake, a client call must fail fast instead of reaching AWS
    client = boto3.client("sts", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(HTTPClientError, match="network access is blocked"):
        client.get_caller_identity()
