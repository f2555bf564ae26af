"""Model selection from the SSM parameter: promotions take effect after the TTL, broken values fall back."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from search_router.adapters.clients import CLIENTS
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import student_prompt, teacher_prompt
from simulation.bedrock_fake import BedrockFake
from tests.handlers.router_harness import (
    FALLBACK,
    FALLBACK_ANSWER,
    PARAMETER_NAME,
    PRIMARY,
    VALID_ANSWER,
    RouterHarness,
    by_model,
    promotion,
)

LITE = "us.amazon.nova-lite-v1:0"
NAMES = list(DEFAULT_CHANNELS.names)


def _deploy_distilled_model(bedrock: BedrockFake) -> str:
    """A custom model deployment created the way the pipeline creates it, polled until Active."""
    control = bedrock.control
    bedrock.job_polls_to_complete = 1
    bedrock.deployment_polls_to_active = 1
    job_arn = control.create_model_customization_job(
        jobName="router-distill-1",
        customModelName="router-micro-1",
        roleArn="arn:aws:iam::123456789012:role/bedrock",
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        customizationType="DISTILLATION",
        customizationConfig={
            "distillationConfig": {
                "teacherModelConfig": {
                    "teacherModelIdentifier": "us.amazon.nova-premier-v1:0",
                    "maxResponseLengthForInference": 1000,
                }
            }
        },
        trainingDataConfig={"s3Uri": "s3://bucket/train.jsonl"},
        outputDataConfig={"s3Uri": "s3://bucket/out/"},
    )["jobArn"]
    model_arn = control.get_model_customization_job(jobIdentifier=job_arn)["outputModelArn"]
    deployment_arn = control.create_custom_model_deployment(modelDeploymentName="router-micro-1", modelArn=model_arn)[
        "customModelDeploymentArn"
    ]
    assert control.get_custom_model_deployment(customModelDeploymentIdentifier=deployment_arn)["status"] == "Active"
    return deployment_arn


def test_a_promotion_takes_effect_after_the_ttl_without_a_redeploy(router: RouterHarness) -> None:
    router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, LITE: FALLBACK_ANSWER})
    # Given the router has read the parameter (the default model, teacher prompt)
    assert router.route("first").body["model"] == PRIMARY
    # When the pipeline promotes another model
    router.set_parameter(promotion(LITE, "student"))
    # Then requests within the TTL keep the model they had
    router.clock.advance(29)
    assert router.route("second").body["model"] == PRIMARY
    # And the first request after the TTL uses the promoted model with its prompt
    router.clock.advance(2)
    reply = router.route("third")
    assert reply.body["model"] == LITE
    assert reply.body["source"] == "model"
    assert router.calls("ConverseStream", LITE)[0]["system"] == [{"text": student_prompt(DEFAULT_CHANNELS)}]
    assert router.calls("ConverseStream", PRIMARY)[0]["system"] == [{"text": teacher_prompt(DEFAULT_CHANNELS)}]


def test_a_promoted_custom_model_deployment_is_invoked_by_its_arn(router: RouterHarness) -> None:
    deployment_arn = _deploy_distilled_model(router.bedrock)
    router.bedrock.responder = by_model({deployment_arn: VALID_ANSWER})
    router.set_parameter(promotion(deployment_arn, "student"))
    router.clock.advance(31)
    reply = router.route("sunset", include_reasoning=False)
    assert reply.body["model"] == deployment_arn
    assert reply.body["source"] == "model"
    (call,) = router.calls("ConverseStream")
    # issue 12: without include_reasoning a student model gets its weights-only prompt
    assert call["system"] == [{"text": student_prompt(DEFAULT_CHANNELS, reasoning=False)}]


def test_when_the_promoted_model_fails_the_default_model_is_the_first_fallback(router: RouterHarness) -> None:
    deployment_arn = _deploy_distilled_model(router.bedrock)
    router.set_parameter(promotion(deployment_arn, "student"))
    router.clock.advance(31)
    router.bedrock.script_errors("ConverseStream", "ModelErrorException", times=None, model_id=deployment_arn)
    reply = router.route("sunset")
    assert reply.body["source"] == "fallback_model"
    assert reply.body["model"] == PRIMARY  # the configured default model, with its teacher prompt
    assert router.calls("ConverseStream", PRIMARY)[0]["system"] == [{"text": teacher_prompt(DEFAULT_CHANNELS)}]
    assert router.calls("ConverseStream", FALLBACK) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "invalid_json"),
        ('["us.amazon.nova-lite-v1:0"]', "invalid_value"),
        (
            json.dumps({"model_id": LITE, "prompt_kind": "expert", "channels": list(DEFAULT_CHANNELS.names)}),
            "invalid_value",
        ),
        (
            json.dumps({"model_id": "", "prompt_kind": "student", "channels": list(DEFAULT_CHANNELS.names)}),
            "invalid_value",
        ),
        (json.dumps({"model_id": LITE, "prompt_kind": "student"}), "invalid_value"),
        (promotion(LITE, channels=["visual", "audio", "mood"]), "channel_mismatch"),
    ],
    ids=["not-json", "not-an-object", "bad-prompt-kind", "empty-model-id", "no-channels", "other-channels"],
)
def test_a_broken_parameter_selects_the_default_model_and_is_reported_once_per_ttl(
    router: RouterHarness, value: str, problem: str
) -> None:
    router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, LITE: FALLBACK_ANSWER})
    # Given the parameter holds a broken value
    router.set_parameter(value)
    router.clock.advance(31)
    # When queries are routed
    first = router.route("one")
    second = router.route("two")
    # Then the configured default model answers, as the selected model (never a 5xx)
    assert first.body["model"] == second.body["model"] == PRIMARY
    assert first.body["source"] == "model"
    # And the problem is logged as an error and counted once per refresh
    assert router.metric("ModelParameterInvalid", problem=problem) == 1
    errors = [line for line in router.logs() if line.get("level") == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["problem"] == problem
    assert errors[0]["parameter"] == PARAMETER_NAME
    router.clock.advance(31)
    router.route("three")
    assert router.metric("ModelParameterInvalid", problem=problem) == 2


def test_a_deleted_parameter_selects_the_default_model(router: RouterHarness) -> None:
    router.ssm.delete_parameter(Name=PARAMETER_NAME)
    router.clock.advance(31)
    assert router.route("sunset").body["model"] == PRIMARY
    assert router.metric("ModelParameterInvalid", problem="parameter_not_found") == 1


def test_an_unreadable_parameter_keeps_the_last_good_promotion(router: RouterHarness) -> None:
    router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, LITE: FALLBACK_ANSWER})
    router.set_parameter(promotion(LITE, "student"))
    router.clock.advance(31)
    assert router.route("one").body["model"] == LITE
    # Given SSM now throttles the read (a real client whose requests botocore validates, answered by a stub)
    ssm = boto3.client("ssm", region_name="us-east-1")
    stubber = Stubber(ssm)
    stubber.add_client_error("get_parameter", "ThrottlingException", expected_params={"Name": PARAMETER_NAME})
    stubber.activate()
    CLIENTS.override("ssm", ssm)
    router.clock.advance(31)
    # Then the router keeps the promoted model and reports the problem
    reply = router.route("two")
    stubber.assert_no_pending_responses()
    assert reply.body["model"] == LITE
    assert reply.body["source"] == "model"
    assert router.metric("ModelParameterInvalid", problem="parameter_unavailable") == 1


@pytest.mark.parametrize(
    ("model_id", "why"),
    [
        ("arn:aws:bedrock:us-east-1:999999999999:custom-model-deployment/abc123", "account 999999999999"),
        ("arn:aws:bedrock:us-west-2:123456789012:custom-model-deployment/abc123", "Region us-west-2"),
        ("arn:aws-cn:bedrock:us-east-1:123456789012:custom-model-deployment/abc123", "partition aws-cn"),
        ("arn:aws:sagemaker:us-east-1:123456789012:endpoint/router", "of service 'sagemaker', not bedrock"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0", "account (none)"),
        ("arn:aws:bedrock:us-east-1", "is not an ARN"),
    ],
    ids=["other-account", "other-region", "other-partition", "other-service", "no-account", "truncated"],
)
def test_a_promoted_arn_outside_this_account_and_region_is_not_called(
    router: RouterHarness, model_id: str, why: str
) -> None:
    # Given the parameter names a model ARN the router must not call from here
    router.set_parameter(promotion(model_id, "student"))
    router.clock.advance(31)
    # When a query is routed
    reply = router.route("sunset")
    # Then the configured default model answers, the ARN is never invoked, and the problem is counted and logged
    assert (reply.body["model"], reply.body["source"]) == (PRIMARY, "model")
    assert [c["modelId"] for c in router.bedrock.calls_to("ConverseStream")] == [PRIMARY]
    assert router.metric("ModelParameterInvalid", problem="foreign_arn") == 1
    (error,) = [line for line in router.logs() if line.get("problem") == "foreign_arn"]
    assert why in error["detail"]
    if "account" in why or "Region" in why or "partition" in why:
        assert error["detail"].endswith("; the router runs in partition aws, Region us-east-1, account 123456789012")


def test_model_ids_that_are_not_arns_need_no_account(router: RouterHarness) -> None:
    router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, LITE: VALID_ANSWER})
    router.set_parameter(promotion(LITE, "student"))
    router.clock.advance(31)
    assert router.route("sunset").body["model"] == LITE
    assert router.metric("ModelParameterInvalid", problem="foreign_arn") == 0
