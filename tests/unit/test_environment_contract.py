"""The functions' environment contract (search_router.contract.environment): encoding, validation, and the
template's variables against it."""

from __future__ import annotations

from typing import Any

import pytest

from search_router.contract.environment import (
    CompensationEnvironment,
    EnvironmentInvalid,
    PipelineEnvironment,
)
from tests.handlers.conftest import pipeline_environment


def test_a_pipeline_environment_survives_the_round_trip_through_strings() -> None:
    environ = pipeline_environment()
    assert all(isinstance(v, str) for v in environ.values())
    assert environ["EVAL_THREADS"] == "8" and environ["DELETE_REJECTED_DEPLOYMENTS"] == "false"
    assert environ["TEACHER_PREFERENCE"].startswith('["')
    loaded = PipelineEnvironment.load(environ)
    assert loaded.to_environment() == environ
    assert loaded.eval_threads == 8 and loaded.delete_rejected_deployments is False
    assert loaded.gate["require_judge"] is True and loaded.teacher_backoff_base_s == 0.5


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"DATA_BUCKET": None}, "environment variable DATA_BUCKET is not set"),
        ({"MODELS": "{not json"}, "environment variable MODELS is not JSON"),
        ({"DELETE_REJECTED_DEPLOYMENTS": "yes"}, "DELETE_REJECTED_DEPLOYMENTS must be true or false"),
        ({"EVAL_THREADS": "eight"}, "environment variable EVAL_THREADS is invalid"),
        ({"TEACHER_PREFERENCE": '{"a": 1}'}, "environment variable TEACHER_PREFERENCE is invalid"),
    ],
)
def test_a_missing_or_bad_variable_is_named(change: dict[str, Any], expected: str) -> None:
    environ = {k: v for k, v in {**pipeline_environment(), **change}.items() if v is not None}
    with pytest.raises(EnvironmentInvalid, match=expected):
        PipelineEnvironment.load(environ)


def test_optional_knobs_may_be_absent_and_are_read_when_set() -> None:
    environ = {"TEACHER_BACKOFF_BASE_S": "0.01", **pipeline_environment()}
    assert PipelineEnvironment.load(environ).teacher_backoff_base_s == 0.01
    compensation = {
        "STACK_NAME": "S",
        "STATE_MACHINE_ARN": "arn:sm",
        "DATA_BUCKET": "b",
        "MODEL_PARAMETER": "/S/p",
        "SETTLE_SECONDS": "960",
        "DEADLINE_SECONDS": "7200",
        "PIPELINE_DEFAULTS": "{}",
        "COMPENSATION_STATE_MACHINE_ARN": "arn:c",
    }
    assert CompensationEnvironment.load(compensation).poll_seconds is None
    assert CompensationEnvironment.load({**compensation, "POLL_SECONDS": "1"}).poll_seconds == 1


def test_a_load_is_parsed_once_per_set_of_values() -> None:
    environ = pipeline_environment()
    assert PipelineEnvironment.load(environ) is PipelineEnvironment.load(dict(environ))
    other = {**environ, "DATA_BUCKET": "other"}
    assert PipelineEnvironment.load(other).data_bucket == "other"
