"""Report + quality gate: metrics of every candidate, the judge's scores, the gate decision, Markdown and charts.

Writes ``runs/<run>/report/{report.json, report.md, latency.png, mae_per_channel.png,
rubric_distribution.png}``. The state machine's QualityGate choice reads ``gate_passed``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.bedrock import stop_evaluation_jobs
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.names import DISTILLED
from search_router.contract.tasks import ReportInput, ReportOutput
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.gate import GateThresholds, evaluate_gate
from search_router.pipeline.judge import read_judge
from search_router.pipeline.metrics import QueryResult
from search_router.pipeline.report import build_report, headline, render_markdown
from search_router.shared.channels import load_channels
from search_router.shared.prompts import PromptKind


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ReportInput.model_validate(event)
    run = task.run
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    channels = load_channels(environment.channels)
    candidates_config = {c["name"]: c for c in environment.candidates}
    judged = read_judge(task.judge.to_state() if task.judge else None, enabled=run.settings.judge)
    if judged.unfinished:  # the judge loop broke off: do not leave its jobs running (and billing)
        stop_evaluation_jobs(judged.unfinished)

    candidates: list[dict[str, Any]] = []
    results: dict[str, list[QueryResult]] = {}
    for evaluation in task.evaluations:
        name = evaluation.name
        metrics_bucket, metrics_key = s3io.parse_s3_uri(evaluation.metrics_uri)
        results_bucket, results_key = s3io.parse_s3_uri(evaluation.results_uri)
        results[name] = [
            QueryResult.from_dict(json.loads(line))
            for line in s3io.get_text(results_bucket, results_key).splitlines()
            if line.strip()
        ]
        candidates.append(
            {
                "name": name,
                "model_id": evaluation.model_id,
                "prompt_kind": evaluation.prompt_kind,
                "metrics": s3io.get_json(metrics_bucket, metrics_key),
                "judge": judged.for_candidate(name),
            }
        )

    # The gate judges the distilled model with the student prompt (weights then reasoning), what POST /route serves
    # by default (include_reasoning true); a weights-only candidate of the same model is reported beside it.
    distilled = next(
        c
        for c in candidates
        if candidates_config.get(c["name"], {}).get("model") == DISTILLED and c["prompt_kind"] == PromptKind.STUDENT
    )
    baseline_name = environment.baseline_candidate
    baseline = next((c for c in candidates if c["name"] == baseline_name), None)
    thresholds = GateThresholds.from_dict(environment.gate)
    decision = evaluate_gate(
        distilled["metrics"],
        baseline=baseline["metrics"] if baseline else None,
        judge_score=distilled["judge"].get("score"),
        thresholds=thresholds,
        judge_requested=run.settings.judge,
        judge_missing_reason=distilled["judge"].get("reason"),
    )
    gate = {**decision.to_dict(), "candidate": distilled["name"], "thresholds": thresholds.to_dict()}
    manifest_bucket, manifest_key = s3io.parse_s3_uri(task.dataset.manifest_uri)
    report = build_report(
        run_id=run.run_id,
        channels=channels,
        candidates=candidates,
        gate=gate,
        dataset=s3io.get_json(manifest_bucket, manifest_key),
        prices=environment.prices,
        teacher=run.teacher.model_dump() if run.teacher else {"model_id": run.teacher_model_id},
    )

    chart_uris: dict[str, str] = {}
    try:
        from search_router.pipeline.charts import render_charts  # matplotlib: imported only here

        with tempfile.TemporaryDirectory() as tmp:
            for name, path in render_charts(report, results, Path(tmp)).items():
                chart_uris[name] = s3io.put_bytes(
                    bucket, run.layout.report_chart(path.name), path.read_bytes(), "image/png"
                )
    except Exception as exc:  # charts must never cost the run its report
        logger.exception("charts could not be rendered")
        metrics.add_metric(name="ChartsFailed", unit="Count", value=1)
        report["charts_error"] = f"{type(exc).__name__}: {exc}"
    report["charts"] = chart_uris

    report_uri = s3io.put_json(bucket, run.layout.report_json, report)
    markdown = render_markdown(report)
    markdown_uri = s3io.put_text(bucket, run.layout.report_markdown, markdown, "text/markdown; charset=utf-8")
    summary = headline(report)
    metrics.add_metric(name="QualityGatePassed" if decision.passed else "QualityGateFailed", unit="Count", value=1)
    logger.info("report written", report_uri=report_uri, gate_passed=decision.passed, failures=decision.failures)
    return ReportOutput(
        report_uri=report_uri,
        markdown_uri=markdown_uri,
        charts=chart_uris,
        gate_passed=decision.passed,
        failures=decision.failures,
        headline=summary,
        candidate=distilled["name"],
        summary={
            k: distilled["metrics"].get(k)
            for k in ("valid_json_rate", "mae_overall", "rubric_mean", "dominant_accuracy")
        }
        | {"judge_score": distilled["judge"].get("score"), "latency_mean_ms": distilled["metrics"]["latency"]["mean"]},
    ).to_state()
