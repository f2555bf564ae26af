"""Workflow fixtures: the app synthesized with fast polling, moto executing its state machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from simulation.bedrock_fake import BedrockFake
from simulation.harness import PipelineHarness
from simulation.synth import Synthesized
from tests.conftest import FAST_POLLING, SMALL_STACK

# FAST_POLLING: the stack's own defaults except the waits between status checks (the definition is the same).


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return Synthesized(tmp_path_factory.mktemp("workflow-cdk-out"), FAST_POLLING)


# SMALL_STACK: a stack deployed with small sizes, so that an execution started with {} runs in seconds.


@pytest.fixture(scope="session")
def synthesized_small(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return Synthesized(tmp_path_factory.mktemp("workflow-small-cdk-out"), {**FAST_POLLING, **SMALL_STACK})


def running(synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineHarness]:
    """The harness of ``synthesized``, in moto with its Step Functions interpreter on (a fixture's body)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        harness = PipelineHarness(synthesized)
        harness.install(monkeypatch)
        yield harness


@pytest.fixture
def small_pipeline(
    synthesized_small: Synthesized, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PipelineHarness]:
    yield from running(synthesized_small, monkeypatch)


@pytest.fixture
def pipeline(
    synthesized: Synthesized, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PipelineHarness]:
    """A fresh moto account with the stack's resources, the state machine, and the Bedrock fake."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        harness = PipelineHarness(synthesized)
        harness.install(monkeypatch)
        yield harness
