"""ShadowReplay with moto's S3 and SSM and the Bedrock fake: the held-out file's production queries asked of the
model the promotion parameter names (with its prompt), the results and the summary under the run's
evaluation/shadow/, a seeded sample beyond shadow_max_queries, no Bedrock call without production queries, and a
named failure when the model in service is unknown, routes elsewhere or answers nothing."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from search_router.contract.errors import InvalidRunInput, ShadowReplayFailed
from search_router.contract.layout import RunLayout
from search_router.contract.promotion import PromotionDocument
from search_router.contract.run import settings_from_input
from search_router.contract.tasks import ShadowReplay
from search_router.handlers.preflight import check_gate_needs
from search_router.handlers.shadow import handler
from search_router.pipeline.gate import GateThresholds
from search_router.pipeline.metrics import QueryResult
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import named_prompt
from simulation.bedrock.values import ConverseRequest
from simulation.bedrock_fake import BedrockFake
from tests.handlers.conftest import STACK
from tests.handlers.runs import task_run
from tests.handlers.test_compact_captured import Context  # the same Lambda context
from tests.unit.test_run_naming import DEFAULTS

BUCKET = "data-bucket"
PARAMETER = f"/{STACK}/router/promoted-model"
IN_SERVICE = "us.amazon.nova-micro-v1:0"
REFERENCE = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
SERVED = {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}


@pytest.fixture
def s3(aws: None, pipeline_env: pytest.MonkeyPatch, bedrock: BedrockFake) -> Any:
    del aws, pipeline_env
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    bedrock.responder = lambda request: json.dumps({**SERVED, "reasoning": "served"})
    return client


def _promote(**changes: Any) -> None:
    document = {"model_id": IN_SERVICE, "prompt_kind": "teacher", "channels": list(DEFAULT_CHANNELS.names), **changes}
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=PARAMETER, Value=PromotionDocument(**document).to_parameter(), Type="String", Overwrite=True
    )


def _heldout(s3: Any, splits: dict[str, int]) -> dict[str, Any]:
    """A held-out file with ``splits[split]`` records of each split; the ``dataset`` a task receives."""
    lines = [
        json.dumps({"query": f"{split} query {i}", "category": "visual", "reference": REFERENCE, "split": split})
        for split, count in splits.items()
        for i in range(count)
    ]
    key = RunLayout("r1").heldout
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode())
    return {
        "train_uri": f"s3://{BUCKET}/{RunLayout('r1').train}",
        "heldout_uri": f"s3://{BUCKET}/{key}",
        "manifest_uri": f"s3://{BUCKET}/{RunLayout('r1').manifest}",
        "train_records": 100,
        "heldout_records": len(lines),
        "labeled": 100 + len(lines),
        "invalid": 0,
        "duplicates": 0,
        "errors": 0,
        "unlabeled": 0,
    }


def _replay(dataset: dict[str, Any], **settings: Any) -> ShadowReplay:
    return ShadowReplay.model_validate(handler({"run": task_run(**settings), "dataset": dataset}, Context()))


def test_the_production_queries_are_replayed_against_the_model_in_service_with_its_prompt(
    s3: Any, bedrock: BedrockFake
) -> None:
    # Given a held-out file with 3 production queries among others, and the router's default model in service
    _promote()
    dataset = _heldout(s3, {"seen": 4, "production": 3, "user": 2})
    asked: list[ConverseRequest] = []
    bedrock.responder = lambda request: asked.append(request) or json.dumps({**SERVED, "reasoning": "served"})

    # When the replay runs
    output = _replay(dataset)

    # Then only the production queries were asked, of the model in service, with the prompt it serves with
    assert sorted(r.user_text for r in asked) == ["production query 0", "production query 1", "production query 2"]
    assert {r.model_id for r in asked} == {IN_SERVICE}
    assert {r.system_text for r in asked} == {named_prompt("teacher", DEFAULT_CHANNELS)}
    # And the output says what was replayed against what, with the figures against the teacher's labels
    assert (output.status, output.production_queries, output.replayed) == ("ok", 3, 3)
    assert (output.model_id, output.prompt_kind, output.promoted_run_id) == (IN_SERVICE, "teacher", None)
    assert output.valid_json_rate == 1.0 and output.mae_overall == pytest.approx(0.05)
    # And the results and the summary are under the run's evaluation/shadow/
    layout = RunLayout("r1")
    assert output.results_uri == f"s3://{BUCKET}/{layout.shadow_results}"
    body = s3.get_object(Bucket=BUCKET, Key=layout.shadow_results)["Body"].read().decode()
    results = [QueryResult.from_dict(json.loads(line)) for line in body.splitlines()]
    assert [r.split for r in results] == ["production"] * 3 and all(r.weights == SERVED for r in results)
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=layout.shadow_summary)["Body"].read())
    assert summary["model_id"] == IN_SERVICE and summary["metrics"]["n"] == 3 and summary["production_queries"] == 3


def test_a_promoted_model_is_replayed_with_the_prompt_it_was_promoted_with(s3: Any, bedrock: BedrockFake) -> None:
    # Given a promotion of an earlier run (a base model here: the fake serves deployments only it created)
    _promote(model_id="us.amazon.nova-pro-v1:0", prompt_kind="student", run_id="earlier-run")
    dataset = _heldout(s3, {"production": 2})

    output = _replay(dataset)

    calls = bedrock.calls_to("Converse")
    assert {c["modelId"] for c in calls} == {"us.amazon.nova-pro-v1:0"}
    assert {c["system"][0]["text"] for c in calls} == {named_prompt("student", DEFAULT_CHANNELS)}
    assert (output.promoted_run_id, output.prompt_kind) == ("earlier-run", "student")


def test_more_production_queries_than_the_setting_allows_are_sampled_with_the_run_seed(
    s3: Any, bedrock: BedrockFake
) -> None:
    _promote()
    dataset = _heldout(s3, {"production": 30, "seen": 5})

    first = _replay(dataset, shadow_max_queries=10, seed=7)
    asked_first = sorted(c["messages"][0]["content"][0]["text"] for c in bedrock.calls_to("Converse"))
    again = _replay(dataset, shadow_max_queries=10, seed=7)
    asked_again = sorted(c["messages"][0]["content"][0]["text"] for c in bedrock.calls_to("Converse")[10:])

    assert (first.production_queries, first.replayed) == (30, 10)
    assert len(set(asked_first)) == 10 and all(q.startswith("production query") for q in asked_first)
    assert asked_again == asked_first and again.replayed == 10  # the same run replays the same queries


def test_without_production_queries_the_replay_is_skipped_without_a_model_call(s3: Any, bedrock: BedrockFake) -> None:
    _promote()
    dataset = _heldout(s3, {"seen": 5, "user": 3})

    output = _replay(dataset)

    assert (output.status, output.production_queries, output.replayed) == ("skipped", 0, 0)
    assert output.reason is not None and "no production held-out queries" in output.reason
    assert bedrock.calls_to("Converse") == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=RunLayout("r1").shadow_prefix)


def test_an_unknown_model_in_service_fails_the_replay_naming_the_parameter(s3: Any, bedrock: BedrockFake) -> None:
    dataset = _heldout(s3, {"production": 2})  # no parameter at all

    with pytest.raises(ShadowReplayFailed, match=f"promotion parameter {PARAMETER} does not exist"):
        _replay(dataset)
    assert bedrock.calls_to("Converse") == []


def test_a_model_in_service_routing_to_other_channels_fails_the_replay(s3: Any, bedrock: BedrockFake) -> None:
    _promote(channels=["visual", "audio"])
    dataset = _heldout(s3, {"production": 2})

    with pytest.raises(ShadowReplayFailed, match="routes to channels visual, audio"):
        _replay(dataset)
    assert bedrock.calls_to("Converse") == []


def test_a_model_in_service_that_answers_nothing_fails_the_replay_with_the_errors(
    s3: Any, bedrock: BedrockFake
) -> None:
    _promote()
    dataset = _heldout(s3, {"production": 3})
    bedrock.script_errors("Converse", "AccessDeniedException", times=None)

    with pytest.raises(ShadowReplayFailed, match=r"answered none of 3 production queries .*AccessDeniedException × 3"):
        _replay(dataset)


def test_preflight_refuses_a_run_without_the_judge_when_the_gate_needs_its_production_rubric() -> None:
    production = {"production_heldout_s3_uri": f"s3://{BUCKET}/inputs/captured/2026-11-30.jsonl"}
    settings = settings_from_input(DEFAULTS, {"judge": False, **production})
    with pytest.raises(InvalidRunInput, match=r"judge is false but the stack's gate_min_production_rubric is 3\.5"):
        check_gate_needs(settings, GateThresholds(min_production_rubric=3.5))
    check_gate_needs(settings, GateThresholds())  # the setting off: nothing to refuse
    on = settings_from_input(DEFAULTS, {"judge": True, **production})
    check_gate_needs(on, GateThresholds(min_production_rubric=3.5))
    # a run without production queries is not held to the check (not applicable): nothing to refuse either
    check_gate_needs(settings_from_input(DEFAULTS, {"judge": False}), GateThresholds(min_production_rubric=3.5))
