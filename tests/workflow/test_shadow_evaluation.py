"""Shadow evaluation on production traffic, executed on the small stack: a run given production held-out queries
(``production_heldout_s3_uri``) replays them against the model in service (ShadowReplay), the report shows the
gated candidate and that model on them ("Production traffic"), the gate's production-rubric check passes or
refuses the candidate, and a replay that fails costs the run nothing but the evidence (the report says why).

The Bedrock fake validates every request against botocore's model; the router's default model (what the promotion
parameter names before the first promotion) answers with weights of its own when asked with the teacher prompt.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from cli.status import build_snapshot
from search_router.pipeline.judge import JUDGE_PROMPT_PREFIX
from search_router.pipeline.report import CHART_FILES, CHART_TITLES
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import named_prompt
from simulation.bedrock.values import ConverseRequest
from simulation.bedrock_fake import BedrockFake
from simulation.harness import REGION, PipelineHarness
from tests.html_page import check_report_page
from tests.workflow.test_evaluation_and_promotion import (
    BASE_STUDENT,
    _candidate,
    _parameter,
    judge_writes_scores,
    scripted_routers,
)

PRODUCTION = [
    "drone shot of a lighthouse at dawn",
    "podcast episode about sourdough baking",
    "lecture where the professor explains black holes",
    "street interview with a marathon runner",
    "vintage cartoon with a brass band soundtrack",
    "tutorial on fixing a flat bicycle tyre",
]
PRODUCTION_URI_KEY = "inputs/production-sample.txt"
IN_SERVICE_ANSWER = {"visual": 0.5, "audio": 0.3, "transcription": 0.1, "metadata": 0.1}
GOOD, POOR = 4.5, 2.0


def _routers_with_a_model_in_service() -> Any:
    """The scripted routers, and the router's default model answering weights when asked as the router asks it
    (the teacher prompt); with the student prompt it is the base-student candidate, which answers prose."""
    scripted = scripted_routers()
    teacher_prompt = named_prompt("teacher", DEFAULT_CHANNELS)

    def responder(request: ConverseRequest) -> str:
        if request.model_id == BASE_STUDENT and request.system_text == teacher_prompt:
            return json.dumps({**IN_SERVICE_ANSWER, "reasoning": "in service"})
        return scripted(request)

    return responder


def _judge(production_score: float) -> Any:
    """Every candidate rated GOOD, except the gated one's production answers, rated ``production_score``."""
    production_prompts = {f"{JUDGE_PROMPT_PREFIX}{q}" for q in PRODUCTION}

    def by_prompt(candidate: str, prompt: str) -> float | None:
        return production_score if candidate == "distilled" and prompt in production_prompts else None

    names = ("distilled", "distilled-weights", "base-student", "baseline")
    return judge_writes_scores(dict.fromkeys(names, GOOD), by_prompt=by_prompt)


def _require_production_rubric(pipeline: PipelineHarness, minimum: float) -> None:
    """The stack deployed with gate_min_production_rubric = ``minimum`` (the Report function's environment)."""
    report = pipeline.function_for("search_router.handlers.report.handler")
    report.environment["GATE"] = json.dumps(
        {**json.loads(report.environment["GATE"]), "min_production_rubric": minimum}
    )


def _arrange(
    pipeline: PipelineHarness, bedrock: BedrockFake, *, production_score: float = GOOD, minimum: float | None = None
) -> None:
    """The routers and the model in service answer; the judge rates the gated candidate's production answers
    ``production_score``; the stack requires ``minimum`` of them (None: off)."""
    bedrock.responder = _routers_with_a_model_in_service()
    bedrock.on_evaluation_complete = _judge(production_score)
    if minimum is not None:
        _require_production_rubric(pipeline, minimum)


def _with_production_queries(pipeline: PipelineHarness) -> dict[str, Any]:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=pipeline.bucket, Key=PRODUCTION_URI_KEY, Body="\n".join(PRODUCTION).encode()
    )
    return {"production_heldout_s3_uri": f"s3://{pipeline.bucket}/{PRODUCTION_URI_KEY}"}


def _evaluation_phase(execution: Any) -> str:
    """What ``cli status`` shows for the run's evaluation phase."""
    snapshot = build_snapshot(execution.description, execution.history, datetime.now(UTC), None)
    return next(view.detail for view in snapshot.phases if view.phase.key == "evaluate")


def _check(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["gate"]["checks"] if c["name"] == "production_rubric")


def test_a_run_with_production_queries_shows_production_traffic_and_passes_the_production_check(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    pipeline = small_pipeline
    _arrange(pipeline, bedrock, minimum=4.0)
    in_service = _parameter(pipeline)["model_id"]

    execution = pipeline.run(_with_production_queries(pipeline), name="shadow")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    states = execution.entered_states()
    assert states.index("EvaluateCandidates") < states.index("ShadowReplay") < states.index("StartJudge")
    assert "ShadowFailed" not in states and "Promote" in states
    # The model in service was asked exactly the production queries, as the router asks it
    replayed = [
        c for c in bedrock.calls_to("Converse")
        if c["modelId"] == in_service and c["system"][0]["text"] == named_prompt("teacher", DEFAULT_CHANNELS)
    ]  # fmt: skip
    assert sorted(c["messages"][0]["content"][0]["text"] for c in replayed) == sorted(PRODUCTION)
    report = pipeline.s3_json("runs/shadow/report/report.json")
    production = report["production"]
    assert production["production_queries"] == 6 and production["candidate"] == "distilled"
    assert production["shadow"]["status"] == "ok" and production["shadow"]["model_id"] == in_service
    # The candidate is off by 0.1 on two channels (MAE 0.05), the model in service by 0.2 (MAE 0.1): both keep the
    # teacher's dominant channel, and they differ by (0.1 + 0.1) / 4 = 0.05 on average
    assert production["candidate_figures"]["mae_overall"] == pytest.approx(0.05)
    assert production["service_figures"]["mae_overall"] == pytest.approx(0.1)
    assert production["service_figures"]["dominant_accuracy"] == 1.0
    assert production["agreement"]["compared"] == 6 and production["agreement"]["dominant_agreement"] == 1.0
    assert production["agreement"]["mean_abs_weight_difference"] == pytest.approx(0.05)
    assert production["judge"] == {"rubric": GOOD, "rated": 6, "reason": None}
    # The gate's check passed on the judge's production ratings
    check = _check(report)
    assert check["passed"] is True and check["skipped"] is False and check["actual"] == GOOD
    assert report["gate"]["passed"] is True
    # ... and the section is in report.md and report.html, next to the per-split table
    markdown = pipeline.s3_text("runs/shadow/report/report.md")
    assert markdown.index("## Per held-out split") < markdown.index("## Production traffic")
    assert f"| {in_service} (in service) | 6 | 100.0% | 0.100 | 100.0% |" in markdown
    page = check_report_page(
        pipeline.s3_text("runs/shadow/report/report.html"),
        candidates=[c["name"] for c in report["candidates"]],
        charts=[CHART_TITLES[key] for key in CHART_FILES if key in report["charts"]],
        gate="PASSED",
    )
    assert f"{in_service} (in service)" in page.by_id["production"].text
    assert _evaluation_phase(execution).endswith("6 production queries replayed against the model in service")
    # The replay's own files are under the run's evaluation/shadow/
    assert set(pipeline.s3_keys("runs/shadow/evaluation/shadow/")) == {
        "runs/shadow/evaluation/shadow/results.jsonl",
        "runs/shadow/evaluation/shadow/summary.json",
    }


def test_the_gate_refuses_a_candidate_below_gate_min_production_rubric(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    pipeline = small_pipeline
    # Given a judge that rates the candidate well overall but poorly on the production queries
    _arrange(pipeline, bedrock, production_score=POOR, minimum=3.0)
    before = _parameter(pipeline)

    execution = pipeline.run(_with_production_queries(pipeline), name="shadow-poor")

    assert execution.status == "SUCCEEDED", execution.cause
    assert "Reject" in execution.entered_states() and _parameter(pipeline) == before
    report = pipeline.s3_json("runs/shadow-poor/report/report.json")
    # (20 held-out answers at 4.5 and 6 production ones at 2.0: the overall judge score still passes)
    assert _candidate(report, "distilled")["judge"]["score"] == pytest.approx((20 * GOOD + 6 * POOR) / 26)
    assert next(c for c in report["gate"]["checks"] if c["name"] == "judge_score")["passed"] is True
    assert report["gate"]["failures"] == ["judge rubric on 6 production queries 2.00 < 3.00"]
    (note,) = pipeline.notifications()
    assert "rejected" in note["subject"] and "judge rubric on 6 production queries 2.00 < 3.00" in note["message"]


def test_a_run_without_production_queries_shows_the_check_as_not_applicable(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    pipeline = small_pipeline
    _arrange(pipeline, bedrock, minimum=4.0)

    execution = pipeline.run({}, name="no-production")

    assert execution.status == "SUCCEEDED", execution.cause
    report = pipeline.s3_json("runs/no-production/report/report.json")
    assert report["production"] is None
    check = _check(report)
    assert check["skipped"] is True and check["message"] == "not applicable: the run has no production held-out queries"
    assert report["gate"]["passed"] is True and "Promote" in execution.entered_states()
    assert "not applicable: the run has no production held-out queries" in pipeline.s3_text(
        "runs/no-production/report/report.md"
    )
    # ShadowReplay skipped without asking the model in service anything
    shadow = json.loads(
        next(
            e["stateExitedEventDetails"]["output"]
            for e in execution.history
            if e.get("stateExitedEventDetails", {}).get("name") == "ShadowReplay"
        )
    )["shadow"]
    assert shadow["status"] == "skipped" and shadow["replayed"] == 0


def test_a_replay_that_fails_does_not_fail_the_run_and_the_report_says_why(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    pipeline = small_pipeline
    _arrange(pipeline, bedrock)
    # Given a model in service this stack may not call (a promotion written by hand, say)
    parameter = next(
        v["Properties"]["Name"]
        for v in pipeline.synthesized.template["Resources"].values()
        if v["Type"] == "AWS::SSM::Parameter"
    )
    elsewhere = "us.amazon.nova-lite-v1:0"
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=parameter, Value=json.dumps({**_parameter(pipeline), "model_id": elsewhere}), Overwrite=True
    )
    bedrock.script_errors("Converse", "AccessDeniedException", times=None, model_id=elsewhere)

    execution = pipeline.run(_with_production_queries(pipeline), name="shadow-fails")

    assert execution.status == "SUCCEEDED", execution.cause
    states = execution.entered_states()
    assert states.index("ShadowReplay") < states.index("ShadowFailed") < states.index("Report")
    report = pipeline.s3_json("runs/shadow-fails/report/report.json")
    shadow = report["production"]["shadow"]
    assert shadow["status"] == "failed"
    assert shadow["reason"] == (
        f"ShadowReplayFailed: the model in service ({elsewhere}) answered none of 6 production queries (errors: "
        "AccessDeniedException × 6)"
    )
    assert report["production"]["service_figures"] is None
    assert report["production"]["candidate_figures"]["n"] == 6  # the candidate is still shown on them
    assert "Shadow replay FAILED" in pipeline.s3_text("runs/shadow-fails/report/report.md")
    assert report["gate"]["passed"] is True and "Promote" in states  # the gate does not require the replay
    assert _evaluation_phase(execution).endswith("; shadow replay failed")
