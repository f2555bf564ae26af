"""Run identity: names valid for Bedrock whatever the execution name, stable idempotency tokens."""

from __future__ import annotations

import re

import pytest

from search_router.contract.errors import InvalidRunInput
from search_router.contract.run import (
    RunState,
    bedrock_name,
    evaluation_job_name,
    run_id_from_execution,
    settings_from_input,
)

# Patterns from botocore's bedrock service model (botocore checks none of them client-side).
CUSTOM_MODEL_NAME = re.compile(r"^([0-9a-zA-Z][_-]?){1,63}$")
EVALUATION_JOB_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
TOKEN = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$")

DEFAULTS = {
    "num_examples": 10_000,
    "eval_examples": 100,
    "heldout_unseen_template_share": 0.3,
    "teacher_model_id": "us.amazon.nova-premier-v1:0",
    "poll_seconds": 300,
    "deployment_poll_seconds": 60,
    "concurrency": 10,
    "threads": 16,
    "evaluation_concurrency": 6,
    "shard_size": 250,
    "seed": 42,
    "max_distillation_hours": 48,
    "judge": True,
    "queries_s3_uri": None,
    "production_heldout_s3_uri": None,
    "mix_user_queries": True,
    "throttle_budget_seconds": 240,
    "keep_failed_artifacts": False,
    "max_failed_shards_percent": 10,
    "reasoning_share": 0.5,
    "router_cascade": "auto",
    "cascade_margin": 0.1,
}


@pytest.mark.parametrize(
    "execution_name",
    [
        "happy-path",
        "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        "My_Run__2026.11.28",
        "---",
        "a" * 80,
        "run with spaces and ünïcödé",
    ],
)
def test_names_derived_from_any_execution_name_are_valid_for_bedrock(execution_name: str) -> None:
    run_id = run_id_from_execution(execution_name)
    assert 1 <= len(run_id) <= 40
    for name in (
        bedrock_name("SearchRouterDistillation", run_id),
        bedrock_name("A-very-long-stack-name-that-goes-on-and-on", run_id, "router"),
    ):
        assert len(name) <= 63 and CUSTOM_MODEL_NAME.match(name), name
    job = evaluation_job_name("SearchRouterDistillation", run_id, "base-student", "judge")
    assert EVALUATION_JOB_NAME.match(job), job


def test_long_names_are_shortened_with_a_hash_so_they_stay_distinct() -> None:
    a = bedrock_name("stack", "x" * 70 + "a")
    b = bedrock_name("stack", "x" * 70 + "b")
    assert len(a) == len(b) == 63 and a != b


def test_idempotency_tokens_are_stable_per_execution_and_distinct_per_purpose() -> None:
    settings = settings_from_input(DEFAULTS, {})
    run = RunState(
        run_id="r", execution_arn="arn:aws:states:us-east-1:1:execution:sm:r", started_at="t", settings=settings
    )
    again = RunState(run_id="r", execution_arn=run.execution_arn, started_at="later", settings=settings)
    other = RunState(run_id="r", execution_arn=run.execution_arn + "2", started_at="t", settings=settings)
    assert run.token("distill") == again.token("distill")
    assert run.token("distill") != run.token("deploy") != other.token("deploy")
    assert TOKEN.match(run.token("judge-base-student"))


def test_empty_input_takes_every_default() -> None:
    settings = settings_from_input(DEFAULTS, {})
    assert settings.num_examples == 10_000 and settings.eval_examples == 100
    assert settings.total_queries == 10_100


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_examples": 99}, "num_examples"),
        ({"eval_examples": 5000}, "eval_examples"),
        ({"num_examples": 100, "eval_examples": 100}, "eval_examples must be smaller than num_examples"),
        ({"queries_s3_uri": "https://example.com/q.txt"}, "queries_s3_uri"),
        ({"teacher_model_id": "Nova Premier"}, "teacher_model_id"),
        ({"concurrency": 0}, "concurrency"),
        ({"judge": "maybe"}, "judge"),
        ({"colour": "blue"}, "unknown input field(s) colour"),
    ],
)
def test_bad_overrides_name_the_field(overrides: dict, message: str) -> None:
    with pytest.raises(InvalidRunInput, match=re.escape(message)):
        settings_from_input(DEFAULTS, overrides)


def test_status_checks_wait_longer_as_a_job_runs_so_the_history_stays_bounded() -> None:
    from search_router.contract.run import next_wait_seconds

    assert next_wait_seconds(300, 0, cap=1800) == 300  # the run's interval to begin with
    assert next_wait_seconds(0, 5, cap=1800) == 0  # tests poll as fast as they like at first
    assert next_wait_seconds(60, 6 * 3600, cap=1800) == 1800  # hours in: capped
    # A 168 h job polled with a 0 s interval takes a few hundred checks, far from 25,000 history events
    elapsed, checks = 0.0, 0
    while elapsed < 168 * 3600:
        elapsed += max(1.0, next_wait_seconds(0, elapsed, cap=1800))  # each check itself takes ~1 s
        checks += 1
    assert checks * 9 < 25_000


def test_judge_repeats_get_distinct_valid_job_names_even_when_shortened() -> None:
    # the judge handler names repeat N of a candidate (stack, run, candidate, "judge", N); the first without N
    run_id = run_id_from_execution("a" * 80)
    for stack in ("S", "A-very-long-stack-name-that-goes-on-and-on"):
        names = [
            evaluation_job_name(stack, run_id, candidate, "judge", *(() if n == 1 else (str(n),)))
            for candidate in ("distilled", "distilled-weights", "base-student")
            for n in (1, 2, 3)
        ]
        assert len(set(names)) == len(names), names
        assert all(len(n) <= 63 and EVALUATION_JOB_NAME.match(n) for n in names), names
