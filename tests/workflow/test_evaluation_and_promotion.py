"""Evaluation, LLM judge, report, quality gate and promotion, executed from ``{}`` on a small stack.

The Bedrock fake plays scripted routers: the teacher always answers the reference weights, the distilled
deployment is off by exactly 0.1 on two channels, the baseline likewise, and the base student answers prose.
The report's numbers are then checked against those answers.
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from matplotlib import image as mpimg

from search_router.pipeline import report_html
from search_router.pipeline.judge import CALIBRATION_CATEGORY
from search_router.pipeline.report import CHART_FILES, CHART_TITLES
from simulation.bedrock.values import ConverseRequest, EvaluationJobRequest
from simulation.bedrock_fake import BedrockFake
from simulation.harness import REGION, PipelineHarness
from tests.html_page import check_report_page

TEACHER = "us.amazon.nova-pro-v1:0"  # what teacher_model_id "auto" picks: Nova Premier is LEGACY
BASE_STUDENT = "us.amazon.nova-micro-v1:0"
BASELINE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
REFERENCE = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
DISTILLED_ANSWER = {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}
BASELINE_ANSWER = {"visual": 0.6, "audio": 0.1, "transcription": 0.2, "metadata": 0.1}
PARAMETER_KEY = "ModelParameter"


def _answer(weights: dict[str, float]) -> str:
    return json.dumps({**weights, "reasoning": "scripted"})


def scripted_routers(distilled: dict[str, float] = DISTILLED_ANSWER):
    def responder(request: ConverseRequest) -> str:
        if request.target_kind == "deployment":
            return _answer(distilled)
        if request.model_id == TEACHER:
            return _answer(REFERENCE)
        if request.model_id == BASELINE:
            return _answer(BASELINE_ANSWER)
        if request.model_id == BASE_STUDENT:
            return "Sure! This query is about a video, probably visual things."
        raise AssertionError(f"unexpected model {request.model_id}")

    return responder


def judge_writes_scores(
    scores: dict[str, float],
    *,
    calibration: float = 1.0,
    repeats: dict[int, dict[str, float]] | None = None,
    by_prompt: Callable[[str, str], float | None] | None = None,
):
    """On completion, write Bedrock-style ``*_output.jsonl`` results for each judged record (``calibration``: the
    result of the calibration record, whose answer is not JSON: the lowest rating, raw 1.0 or normalized 0.0;
    ``repeats``: the scores of a judge repeat N ≥ 2, told by the job's output prefix, instead of ``scores``;
    ``by_prompt``: (candidate, judged prompt) → the record's score, where it gives one, instead of ``scores``)."""

    def on_complete(job: EvaluationJobRequest) -> None:
        candidate = job.params["inferenceConfig"]["models"][0]["precomputedInferenceSource"][
            "inferenceSourceIdentifier"
        ]
        repeat = re.search(r"--repeat-(\d+)/?$", job.output_s3_uri)
        chosen = (repeats or {}).get(int(repeat.group(1)), scores) if repeat else scores
        dataset_uri = job.params["evaluationConfig"]["automated"]["datasetMetricConfigs"][0]["dataset"][
            "datasetLocation"
        ]["s3Uri"]
        s3 = boto3.client("s3", region_name=REGION)
        bucket, key = dataset_uri[5:].split("/", 1)
        records = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        out_bucket, out_prefix = job.output_s3_uri[5:].split("/", 1)
        lines = []
        for record in records:
            item = json.loads(record)
            # The calibration record's answer is not JSON: a judge following the rubric rates it 1.
            own = by_prompt(candidate, item["prompt"]) if by_prompt is not None else None
            score = (
                calibration
                if item.get("category") == CALIBRATION_CATEGORY
                else (own if own is not None else chosen[candidate])
            )
            lines.append(
                json.dumps(
                    {
                        "inputRecord": item,
                        "automatedEvaluationResult": {"scores": [{"metricName": "OverallQuality", "result": score}]},
                    }
                )
            )
        s3.put_object(
            Bucket=out_bucket,
            Key=f"{out_prefix.rstrip('/')}/{job.job_name}/{job.job_id}/models/{candidate}/taskTypes/General/"
            f"datasets/heldout-{candidate}/abc_output.jsonl",
            Body="\n".join(lines).encode(),
        )

    return on_complete


def _parameter(pipeline: PipelineHarness) -> dict[str, Any]:
    name = next(
        v["Properties"]["Name"]
        for k, v in pipeline.synthesized.template["Resources"].items()
        if v["Type"] == "AWS::SSM::Parameter"
    )
    return json.loads(boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]["Value"])


def _candidate(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["candidates"] if c["name"] == name)


def test_from_empty_input_through_evaluation_report_gate_and_promotion(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    pipeline = small_pipeline
    bedrock.responder = scripted_routers()
    bedrock.on_evaluation_complete = judge_writes_scores(
        {"distilled": 4.0, "distilled-weights": 4.0, "base-student": 1.0, "baseline": 4.0}
    )
    before = _parameter(pipeline)

    execution = pipeline.run({}, name="full")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    for state in ("EvaluateCandidates", "StartJudge", "CheckJudge", "Report", "QualityGate", "Promote"):
        assert state in execution.entered_states()
    report = pipeline.s3_json("runs/full/report/report.json")

    # The distilled candidate is off by exactly 0.1 on visual and audio for every held-out query
    distilled = _candidate(report, "distilled")["metrics"]
    assert distilled["n"] == 20
    assert distilled["valid_json_rate"] == 1.0
    assert distilled["mae_per_channel"]["visual"] == pytest.approx(0.1)
    assert distilled["mae_per_channel"]["audio"] == pytest.approx(0.1)
    assert distilled["mae_per_channel"]["transcription"] == pytest.approx(0.0)
    assert distilled["mae_overall"] == pytest.approx(0.05)
    assert distilled["within_010_rate"] == 1.0 and distilled["within_005_rate"] == 0.0
    assert distilled["dominant_accuracy"] == 1.0
    assert distilled["rubric_mean"] == pytest.approx(4.0)
    # The base student answered prose: 0% valid JSON, rubric 1, no crash
    base = _candidate(report, "base-student")["metrics"]
    assert base["valid_json_rate"] == 0.0 and base["rubric_mean"] == pytest.approx(1.0) and base["mae_overall"] is None
    # The judge's scores reached the report
    assert _candidate(report, "distilled")["judge"]["score"] == pytest.approx(4.0)
    assert _candidate(report, "base-student")["judge"]["score"] == pytest.approx(1.0)

    # The gate passed and the router's parameter now names the new deployment with the student prompt
    assert report["gate"]["passed"] is True
    outputs = pipeline.s3_json("runs/full/outputs.json")
    after = _parameter(pipeline)
    assert after["model_id"] == outputs["deployment"]["deployment_arn"] != before.get("model_id")
    assert after["prompt_kind"] == "student" and after["run_id"] == "full"
    assert after["channels"] == ["visual", "audio", "transcription", "metadata"]

    # The Markdown report has a row per candidate, and the charts open as images
    markdown = pipeline.s3_text("runs/full/report/report.md")
    for name in ("distilled", "base-student", "baseline"):
        assert any(line.startswith(f"| {name}") or f"| {name} |" in line for line in markdown.splitlines()), name
    for chart in ("latency.png", "mae_per_channel.png", "rubric_distribution.png"):
        body = (
            boto3.client("s3", region_name=REGION)
            .get_object(Bucket=pipeline.bucket, Key=f"runs/full/report/{chart}")["Body"]
            .read()
        )
        assert body.startswith(b"\x89PNG\r\n\x1a\n")
        assert mpimg.imread(io.BytesIO(body), format="png").shape[0] > 100
    # and report.html holds the verdict, every candidate and every chart the Report step drew, inlined
    html_object = boto3.client("s3", region_name=REGION).get_object(
        Bucket=pipeline.bucket, Key="runs/full/report/report.html"
    )
    assert html_object["ContentType"] == "text/html; charset=utf-8"
    check_report_page(
        html_object["Body"].read().decode("utf-8"),
        candidates=[c["name"] for c in report["candidates"]],
        charts=[CHART_TITLES[key] for key in CHART_FILES if key in report["charts"]],
        gate="PASSED",
    )

    # Everyone is told, with the headline table and where the report is
    (note,) = pipeline.notifications()
    assert "full promoted" in note["subject"]
    assert "quality gate PASSED" in note["message"]
    assert "runs/full/report/report.md" in note["message"]


def test_a_failed_gate_keeps_the_router_model_and_says_why(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    pipeline = small_pipeline
    # Given a distilled model that routes everything to audio
    bedrock.responder = scripted_routers(distilled={"visual": 0.1, "audio": 0.7, "transcription": 0.1, "metadata": 0.1})
    bedrock.on_evaluation_complete = judge_writes_scores(
        {"distilled": 2.0, "distilled-weights": 2.0, "base-student": 1.0, "baseline": 4.0}
    )
    before = _parameter(pipeline)

    execution = pipeline.run({}, name="rejected")

    assert execution.status == "SUCCEEDED", execution.cause
    assert "Reject" in execution.entered_states() and "Promote" not in execution.entered_states()
    assert _parameter(pipeline) == before
    report = pipeline.s3_json("runs/rejected/report/report.json")
    assert report["gate"]["passed"] is False
    failures = " ".join(report["gate"]["failures"])
    # (every answer has the same error: its interval has no width)
    assert "overall MAE 0.300 [0.300, 0.300] > 0.080" in failures
    assert "judge score 2.00 < 3.50" in failures
    assert "distilled − baseline on rubric_mean: -2.000 [-2.000, -2.000], margin 0.2: inferior" in failures
    (note,) = pipeline.notifications()
    assert "rejected" in note["subject"]
    assert "overall MAE 0.300 [0.300, 0.300] > 0.080" in note["message"]
    page = check_report_page(
        pipeline.s3_text("runs/rejected/report/report.html"),
        candidates=[c["name"] for c in report["candidates"]],
        charts=[CHART_TITLES[key] for key in CHART_FILES if key in report["charts"]],
        gate="FAILED",
    )
    assert "overall MAE 0.300 [0.300, 0.300] > 0.080" in page.by_id["verdict"].text


def test_a_report_html_that_cannot_be_rendered_costs_the_run_nothing(
    small_pipeline: PipelineHarness,
    bedrock: BedrockFake,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a page renderer that breaks
    def broken(report: Any, charts: Any) -> str:
        raise RuntimeError("the page could not be laid out")

    monkeypatch.setattr(report_html, "render_html", broken)
    bedrock.responder = scripted_routers()
    bedrock.on_evaluation_complete = judge_writes_scores(
        {"distilled": 4.0, "distilled-weights": 4.0, "base-student": 1.0, "baseline": 4.0}
    )

    # When a run reaches its report
    execution = small_pipeline.run({}, name="no-html")

    # Then the run, its report, Markdown and charts are all there; only report.html is missing, and counted
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    keys = small_pipeline.s3_keys("runs/no-html/report/")
    assert {"runs/no-html/report/report.json", "runs/no-html/report/report.md"} <= set(keys)
    assert "runs/no-html/report/report.html" not in keys
    assert small_pipeline.s3_json("runs/no-html/report/report.json")["gate"]["passed"] is True
    assert '"ReportHtmlFailed"' in capsys.readouterr().out


def test_a_failed_judge_job_fails_the_gate_with_the_reason_but_not_the_run(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    pipeline = small_pipeline
    bedrock.responder = scripted_routers()
    bedrock.fail_next_evaluation(
        "Evaluator model quota exceeded", "Evaluator model quota exceeded", "Evaluator model quota exceeded"
    )
    before = _parameter(pipeline)

    execution = pipeline.run({}, name="judge-fails")

    # The run completes (report and all) ...
    assert execution.status == "SUCCEEDED", execution.cause
    report = pipeline.s3_json("runs/judge-fails/report/report.json")
    judge = _candidate(report, "distilled")["judge"]
    assert judge["status"] == "missing" and judge["score"] is None
    assert "Evaluator model quota exceeded" in judge["reason"]
    # ... but a judge that was asked for and gave no score is no pass: the router keeps its model
    judge_check = next(c for c in report["gate"]["checks"] if c["name"] == "judge_score")
    assert judge_check["passed"] is False and judge_check["skipped"] is False
    assert "Evaluator model quota exceeded" in judge_check["message"]
    assert report["gate"]["passed"] is False
    assert "Reject" in execution.entered_states() and _parameter(pipeline) == before
    # and the reason is in the report and the notification
    assert "the judge was asked for but produced no score" in pipeline.s3_text("runs/judge-fails/report/report.md")
    (note,) = pipeline.notifications()
    assert "rejected" in note["subject"] and "Evaluator model quota exceeded" in note["message"]


def test_a_judge_that_is_not_required_can_be_missing(
    synthesized_small: Any, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    from simulation.harness import PipelineHarness as Harness

    bedrock.responder = scripted_routers()
    bedrock.fail_next_evaluation("denied", "denied", "denied")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        harness = Harness(synthesized_small)
        harness.install(monkeypatch)
        report_fn = harness.function_for("search_router.handlers.report.handler")
        gate = json.loads(report_fn.environment["GATE"])
        report_fn.environment["GATE"] = json.dumps({**gate, "require_judge": False})
        execution = harness.run({}, name="judge-optional")
        assert execution.status == "SUCCEEDED", execution.cause
        report = harness.s3_json("runs/judge-optional/report/report.json")
    judge_check = next(c for c in report["gate"]["checks"] if c["name"] == "judge_score")
    assert judge_check["skipped"] is True and "denied" in judge_check["message"]
    assert report["gate"]["passed"] is True


def test_a_perfect_judge_score_in_normalized_form_promotes(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Bedrock may report custom-metric results normalized to 0..1: every answer 1.0 means every answer perfect
    bedrock.responder = scripted_routers()
    bedrock.on_evaluation_complete = judge_writes_scores(
        {"distilled": 1.0, "distilled-weights": 1.0, "base-student": 0.0, "baseline": 0.75}, calibration=0.0
    )
    assert small_pipeline.run({}, name="normalized").status == "SUCCEEDED"
    report = small_pipeline.s3_json("runs/normalized/report/report.json")
    assert _candidate(report, "distilled")["judge"]["score"] == pytest.approx(5.0)
    assert _candidate(report, "baseline")["judge"]["score"] == pytest.approx(4.0)
    assert report["gate"]["passed"] is True


def test_judge_off_runs_no_evaluation_jobs(small_pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    bedrock.responder = scripted_routers()
    execution = small_pipeline.run({"judge": False}, name="no-judge")
    assert execution.status == "SUCCEEDED", execution.cause
    assert not bedrock.calls_to("CreateEvaluationJob")
    report = small_pipeline.s3_json("runs/no-judge/report/report.json")
    assert _candidate(report, "distilled")["judge"]["status"] == "skipped"


def test_judge_job_request_uses_precomputed_responses_and_the_custom_metric(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    bedrock.responder = scripted_routers()
    bedrock.on_evaluation_complete = judge_writes_scores(
        {"distilled": 4.0, "distilled-weights": 4.0, "base-student": 1.0, "baseline": 4.0}
    )
    assert small_pipeline.run({}, name="judge-request").status == "SUCCEEDED"
    requests = {
        r["inferenceConfig"]["models"][0]["precomputedInferenceSource"]["inferenceSourceIdentifier"]: r
        for r in bedrock.calls_to("CreateEvaluationJob")
    }
    assert set(requests) == {"distilled", "distilled-weights", "base-student", "baseline"}  # cdk.json (issue 12)
    request = requests["distilled"]
    automated = request["evaluationConfig"]["automated"]
    assert automated["datasetMetricConfigs"][0]["taskType"] == "General"
    assert automated["datasetMetricConfigs"][0]["metricNames"] == ["OverallQuality"]
    metric = automated["customMetricConfig"]["customMetrics"][0]["customMetricDefinition"]
    assert metric["name"] == "OverallQuality"
    for variable in ("{{prompt}}", "{{prediction}}", "{{ground_truth}}"):
        assert variable in metric["instructions"]
    assert [s["value"]["floatValue"] for s in metric["ratingScale"]] == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert automated["evaluatorModelConfig"]["bedrockEvaluatorModels"][0]["modelIdentifier"] == (
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    dataset_uri = automated["datasetMetricConfigs"][0]["dataset"]["datasetLocation"]["s3Uri"]
    lines = small_pipeline.s3_text(dataset_uri.split("/", 3)[3]).splitlines()
    first = json.loads(lines[0])
    assert set(first) >= {"prompt", "referenceResponse", "modelResponses"}
    assert first["modelResponses"][0]["modelIdentifier"] == "distilled"
    assert json.loads(first["referenceResponse"]) == REFERENCE
    # every held-out answer, then the one calibration record (an answer that is not JSON)
    assert len(lines) == 20 + 1
    last = json.loads(lines[-1])
    assert last["category"] == CALIBRATION_CATEGORY
    assert last["modelResponses"][0]["modelIdentifier"] == "distilled"


EVALUATION_JOB_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")  # botocore's pattern, which botocore does not check


def test_repeated_judge_runs_are_separate_jobs_and_their_spread_reaches_the_report(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a judge that rates the distilled candidate 4 in its first run and 5 in its second
    bedrock.responder = scripted_routers()
    first = {"distilled": 4.0, "distilled-weights": 4.0, "base-student": 1.0, "baseline": 4.0}
    bedrock.on_evaluation_complete = judge_writes_scores(first, repeats={2: {**first, "distilled": 5.0}})

    execution = small_pipeline.run({"judge_repeats": 2}, name="judged-twice")

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    # Two jobs per candidate, each with its own name, token and output prefix (the first's as without repeats)
    requests = bedrock.calls_to("CreateEvaluationJob")
    assert len(requests) == 2 * 4
    names = [r["jobName"] for r in requests]
    assert len(set(names)) == 8 and all(EVALUATION_JOB_NAME.match(n) and len(n) <= 63 for n in names)
    assert len({r["clientRequestToken"] for r in requests}) == 8
    outputs = {r["outputDataConfig"]["s3Uri"].split("/", 3)[3] for r in requests}
    prefix = "runs/judged-twice/evaluation/judge-output/"
    assert {f"{prefix}distilled/", f"{prefix}distilled--repeat-2/", f"{prefix}distilled-weights/"} <= outputs
    assert len(outputs) == 8
    assert not any(a != b and b.startswith(a) for a in outputs for b in outputs)  # no prefix lists another's
    # CheckJudge kept each completed job's result keys (repeat given from the second on)
    judge_state = execution.output["judge"]
    distilled_jobs = [j for j in judge_state["jobs"] if j["candidate"] == "distilled"]
    assert [j.get("repeat") for j in distilled_jobs] == [None, 2]
    assert distilled_jobs[1]["output_keys"][0].startswith(f"{prefix}distilled--repeat-2/")

    # The candidate's score is the mean of its repeats, and the report says how far they are apart
    report = small_pipeline.s3_json("runs/judged-twice/report/report.json")
    assert _candidate(report, "distilled")["judge"] == {"score": pytest.approx(4.5), "status": "ok", "reason": None}
    reliability = report["judge_reliability"]["distilled"]
    assert reliability["repeats"] == 2 and reliability["scores"] == [pytest.approx(4.0), pytest.approx(5.0)]
    assert reliability["spread"] == pytest.approx(1.0)
    # every held-out query paired with its rubric (4: 0.1 off on two channels); judge mean 4.5 is never 2 away
    assert reliability["paired_queries"] == 20 and reliability["disagreement_share"] == 0.0
    assert reliability["rank_correlation"] is None  # the rubric is 4 for every query: no ranking to agree with
    base = report["judge_reliability"]["base-student"]
    assert base["spread"] == 0.0 and base["disagreement_share"] == 0.0
    markdown = small_pipeline.s3_text("runs/judged-twice/report/report.md")
    assert "## The judge's reliability" in markdown
    assert any(line.startswith("| distilled | 2 | 4.00, 5.00 | 1.00 |") for line in markdown.splitlines()), markdown

    # A result object that cannot be read is a reason in the report, never a failed report
    event = copy.deepcopy(
        next(e for h, e in reversed(small_pipeline.invocations) if h == "search_router.handlers.report.handler")
    )
    for job in event["judge"]["jobs"]:
        if job["candidate"] == "distilled" and job.get("repeat") == 2:
            job["output_keys"] = [f"{prefix}distilled--repeat-2/gone_output.jsonl"]
    headers: dict[str, str] = {}
    info = small_pipeline.function_for("search_router.handlers.report.handler")
    body = small_pipeline.invoke(info.arn, json.dumps(event).encode(), headers)
    assert not headers.get("x-amz-function-error"), body
    reread = small_pipeline.s3_json("runs/judged-twice/report/report.json")["judge_reliability"]["distilled"]
    assert "repeat 2: its results could not be read" in reread["reason"] and "gone_output.jsonl" in reread["reason"]
    assert reread["scores"] == [pytest.approx(4.0), pytest.approx(5.0)]  # the scores CheckJudge read stand
    assert reread["paired_queries"] == 20  # the first repeat's ratings still pair every query
    assert "judge of distilled: repeat 2: its results could not be read" in small_pipeline.s3_text(
        "runs/judged-twice/report/report.md"
    )


def test_a_throttled_judge_job_creation_is_retried_without_a_second_job(
    small_pipeline: PipelineHarness, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Bedrock throttling one CreateEvaluationJob once two judge jobs of the run exist
    from search_router.handlers import judge

    bedrock.responder = scripted_routers()
    bedrock.on_evaluation_complete = judge_writes_scores(
        {"distilled": 4.5, "distilled-weights": 4.5, "base-student": 1.0, "baseline": 4.0}
    )
    real = judge.create_once
    created: list[str] = []

    def throttle_after_two(client: Any, kind: str, name: str, create: Any, request: dict[str, Any]) -> Any:
        found = real(client, kind, name, create, request)
        created.append(name)
        if len(created) == 2:
            bedrock.script_errors("CreateEvaluationJob", "ThrottlingException", times=1)
        return found

    monkeypatch.setattr(judge, "create_once", throttle_after_two)
    execution = small_pipeline.run({}, name="judge-throttled")

    # Then StartJudge failed with TransientError and the state machine ran it again: the two jobs created before
    # were found again (create_once), no candidate got a second job, and every candidate was judged
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    names = [r["jobName"] for r in bedrock.calls_to("CreateEvaluationJob")]
    assert len(names) > len(set(names)) == 4  # a name asked for twice: the retry
    report = small_pipeline.s3_json("runs/judge-throttled/report/report.json")
    assert {c["name"]: c["judge"]["status"] for c in report["candidates"][:4]} == dict.fromkeys(
        ("distilled", "distilled-weights", "base-student", "baseline"), "ok"
    )
