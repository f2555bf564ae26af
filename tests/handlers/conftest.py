"""Handler-tier fixtures: the pipeline functions' environment (pipeline-task and cleanup tests), and the router
Lambda with its manual clock (the router tests, through :mod:`tests.handlers.router_harness`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from search_router.handlers import router_api
from search_router.handlers.observability import metrics
from simulation.bedrock_fake import BedrockFake
from tests.handlers.router_harness import PRIMARY, RouterHarness, promotion
from tests.manual_clock import ManualClock

STACK = "TestStack"
ACCOUNT_ID = "123456789012"
PIPELINE_MODELS = {
    "student_job": "amazon.nova-micro-v1:0:128k",
    "student": "us.amazon.nova-micro-v1:0",
    "baseline": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "judge": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
}


def pipeline_environment(**changes: str) -> dict[str, str]:
    """The complete environment the stack gives pipeline functions (infra.pipeline.pipeline_environment, with
    this stack's cdk.json and test names for the deployed resources), ``changes`` applied by field name."""
    from infra.config import load_config
    from infra.pipeline import pipeline_environment as build

    environment = build(
        load_config(),
        data_bucket="data-bucket",
        stack_name=STACK,
        bedrock_role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/bedrock",
        topic_arn=f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:{STACK}-notifications",
        model_parameter=f"/{STACK}/router/promoted-model",
    )
    models = {**environment.models, **PIPELINE_MODELS}
    return environment.model_copy(update={"models": models, **changes}).to_environment()


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment the stack gives pipeline functions (stack name, bucket, Bedrock role, models, ...)."""
    for name, value in pipeline_environment().items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def router(
    aws: None,
    bedrock: BedrockFake,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clock: ManualClock,
) -> Iterator[RouterHarness]:
    """The real router handler with the default settings of these tests, the parameter naming :data:`PRIMARY`."""
    del aws
    # The Powertools objects were created when the handler was imported (at collection, before the test
    # environment existed); in Lambda the environment is there first.
    monkeypatch.setattr(metrics, "namespace", os.environ["POWERTOOLS_METRICS_NAMESPACE"])
    monkeypatch.setattr(metrics, "service", "router_api")
    harness = RouterHarness(bedrock=bedrock, monkeypatch=monkeypatch, capsys=capsys, clock=clock)
    harness.set_parameter(promotion(PRIMARY, "teacher"))
    harness.configure()
    harness.capture_logs()
    router_api.freeze_long_lived_objects()  # as the function's init does (initialize_container)
    yield harness
    harness.release_logs()
    router_api.use_service(None)
