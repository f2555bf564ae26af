"""Report + quality gate: metrics of every candidate, the judge's scores, the gate decision, Markdown and charts.

Writes ``runs/<run>/report/{report.json, report.md, report.html, latency.png, mae_per_channel.png,
rubric_distribution.png, cascade_tau.png, confusion.png}`` (report.html inlines the charts). The state machine's
QualityGate choice reads ``gate_passed``.

With a micro-router trained (``$.micro_router``), two more candidates are reported: the micro-router alone and
the cascade at the τ chosen on the hardest held-out split (micro-router when confident, else the distilled model
with the weights-only prompt, what the router sends when the caller does not ask for the reasoning). The cascade
is held to the same gate thresholds; ``micro_router`` in the output says whether Promote enables it, and why.
Every candidate's metrics are also given per held-out split.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError, error_message
from search_router.adapters.bedrock import stop_evaluation_jobs
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.layout import RunLayout
from search_router.contract.names import DISTILLED
from search_router.contract.run import RunSettings
from search_router.contract.tasks import (
    CascadeOutcome,
    MicroRouterFailure,
    MicroRouterTraining,
    ReportInput,
    ReportOutput,
    ShadowFailure,
    ShadowReplay,
)
from search_router.handlers.drift_check import latest_drift_summary
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.analysis import CandidateAnalysis, Comparison, analyse, compare, sample_size_warning
from search_router.pipeline.cascade import (
    CASCADE_CANDIDATE,
    FREE,
    MICRO_CANDIDATE,
    CascadeEvaluation,
    cascade_outcome,
    evaluate_cascade,
)
from search_router.pipeline.dataset import PRODUCTION_SPLIT
from search_router.pipeline.fusion import ScoreShape, ScoreSource, drawn_lists, parse_score_samples, sampled_lists
from search_router.pipeline.gate import GateDecision, GateThresholds, ProductionEvidence, evaluate_gate
from search_router.pipeline.judge import (
    MAX_FAILURE_CHARS,
    JudgeOutputUnreadable,
    JudgeRatings,
    JudgeReadout,
    judge_ratings,
    judge_reliability,
    per_query_judge,
    read_judge,
)
from search_router.pipeline.metrics import Price, QueryResult, compute_metrics, metrics_by_split
from search_router.pipeline.report import build_report, headline, render_markdown
from search_router.pipeline.shadow import (
    SHADOW_FAILED,
    SHADOW_OK,
    SHADOW_SKIPPED,
    judge_mean,
    production_results,
    production_traffic,
)
from search_router.shared.channels import ChannelSet, load_channels
from search_router.shared.prompts import STUDENT_WEIGHTS_ONLY, PromptKind

JUDGE_NOT_APPLICABLE = "the judge scores model answers; the micro-router writes none"
CASCADE_JUDGE_NOT_APPLICABLE = "the judge scores model answers; the cascade's micro-router answers are none"


def _price(candidate: dict[str, Any]) -> Price | None:
    price = candidate["metrics"].get("price")
    return Price.from_dict(price) if isinstance(price, dict) else None


NO_FALLBACK = (
    "eval_candidates has no weights-only candidate of the distilled model (prompt_kind student_weights_only): the "
    "micro-router answers only requests without reasoning, which that prompt serves, so the cascade cannot be judged"
)


def _fallback(candidates: list[dict[str, Any]], distilled_names: set[str]) -> dict[str, Any] | None:
    """The distilled candidate the cascade falls back to: the weights-only prompt (the micro-router answers only
    requests without reasoning, and the router asks the model those with that prompt); None without one."""
    return next(
        (c for c in candidates if c["name"] in distilled_names and c["prompt_kind"] == STUDENT_WEIGHTS_ONLY),
        None,
    )


def _read_predictions(training: MicroRouterTraining) -> list[dict[str, Any]]:
    text = s3io.get_text(*s3io.parse_s3_uri(training.predictions_uri))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _cascade_candidates(
    training: MicroRouterTraining | None,
    fallback: dict[str, Any] | None,
    results: dict[str, list[QueryResult]],
    channels: ChannelSet,
    margin: float,
) -> tuple[CascadeEvaluation | None, str | None, list[dict[str, Any]]]:
    """The micro-router and the cascade as candidates (their results added to ``results``), or why not."""
    if training is None:
        return None, None, []
    if fallback is None:
        return None, NO_FALLBACK, []
    try:
        evaluation = evaluate_cascade(
            _read_predictions(training),
            results[fallback["name"]],
            channels.names,
            price=_price(fallback),
            margin=margin,
        )
    except ValueError as exc:  # reported, and the cascade stays off; the model's own report is not lost
        logger.warning("cascade not evaluated", error=str(exc))
        return None, str(exc), []
    results[MICRO_CANDIDATE], results[CASCADE_CANDIDATE] = evaluation.micro, evaluation.cascade
    tau = evaluation.choice.tau if evaluation.choice.enabled else None
    micro = {
        "name": MICRO_CANDIDATE,
        "model_id": training.artifact_uri,
        "prompt_kind": None,
        "metrics": compute_metrics(evaluation.micro, channels, price=FREE),
        "judge": {"score": None, "status": "skipped", "reason": JUDGE_NOT_APPLICABLE},
    }
    cascade = {
        "name": CASCADE_CANDIDATE,
        "model_id": f"{MICRO_CANDIDATE} (τ = {'never' if tau is None else f'{tau:.3f}'}) + {fallback['model_id']}",
        "prompt_kind": fallback["prompt_kind"],
        "metrics": compute_metrics(evaluation.cascade, channels, price=_price(fallback)),
        "judge": {"score": None, "status": "skipped", "reason": CASCADE_JUDGE_NOT_APPLICABLE},
    }
    return evaluation, None, [micro, cascade]


@dataclass(frozen=True)
class _CascadeGates:
    """The gate's thresholds applied to the cascade and to the model it falls back to (the weights-only prompt:
    judged like the gated candidate, its judge score included)."""

    baseline: dict[str, Any] | None
    thresholds: GateThresholds
    judge: bool
    comparisons: dict[str, Comparison]

    def _evaluate(self, candidate: dict[str, Any], **judge: Any) -> GateDecision:
        comparison = self.comparisons.get(candidate["name"])
        return evaluate_gate(
            candidate["metrics"],
            baseline=self.baseline["metrics"] if self.baseline else None,
            thresholds=self.thresholds,
            judge_requested=self.judge,
            comparison=comparison.to_dict() if comparison else None,
            intervals=candidate["intervals"],
            **judge,
        )

    def cascade(self, cascade: dict[str, Any] | None) -> GateDecision | None:
        if cascade is None:
            return None
        return self._evaluate(cascade, judge_score=None, judge_not_applicable=CASCADE_JUDGE_NOT_APPLICABLE)

    def fallback(self, fallback: dict[str, Any] | None) -> GateDecision | None:
        if fallback is None:
            return None
        judged = fallback["judge"]
        return self._evaluate(fallback, judge_score=judged.get("score"), judge_missing_reason=judged.get("reason"))


def fusion_source(settings: RunSettings, channels: ChannelSet) -> tuple[ScoreSource, dict[str, Any]]:
    """Where the fusion metric's score lists come from, and how the report says it: the user's samples
    (``fusion_scores_s3_uri``, one per query, seeded) or lists drawn in ``fusion_shape``."""
    shape = ScoreShape(**settings.fusion_shape)
    drawn = drawn_lists(channels.names, shape, seed=settings.seed)
    if settings.fusion_scores_s3_uri:
        # Preflight checked the file, but hours or days ago: it may have been removed (inputs/ retention) or
        # changed since. The report is not lost for it: the lists are drawn, and the report says why.
        try:
            text = s3io.get_text(*s3io.parse_s3_uri(settings.fusion_scores_s3_uri))
            samples = parse_score_samples(text, channels.names)
        except (ClientError, ValueError) as exc:
            detail = error_message(exc) if isinstance(exc, ClientError) else str(exc)
            logger.warning("score samples unusable; lists drawn instead", error=detail)
            unusable = f"{settings.fusion_scores_s3_uri} could no longer be used ({detail}); lists drawn instead"
            return drawn, {"kind": "drawn", "shape": shape.to_dict(), "samples_unusable": unusable}
        source = sampled_lists(samples, seed=settings.seed)
        return source, {"kind": "samples", "uri": settings.fusion_scores_s3_uri, "samples": len(samples)}
    return drawn, {"kind": "drawn", "shape": shape.to_dict()}


def _analyse(
    candidates: list[dict[str, Any]],
    results: dict[str, list[QueryResult]],
    channels: ChannelSet,
    source: ScoreSource,
    *,
    seed: int,
) -> dict[str, CandidateAnalysis]:
    """Per split, intervals, fusion impact, breakdowns, confusion and worst queries of every candidate (added to
    the candidate's report entry); the fusion lists are drawn per query, the same for every candidate."""
    analyses: dict[str, CandidateAnalysis] = {}
    for candidate in candidates:
        rows = results[candidate["name"]]
        candidate["metrics_by_split"] = metrics_by_split(rows, channels, price=_price(candidate))
        analyses[candidate["name"]] = analysis = analyse(rows, channels, source, seed=seed)
        candidate.update(analysis.to_fields())
    return analyses


def _comparisons(
    names: list[str],
    baseline: str,
    analyses: dict[str, CandidateAnalysis],
    results: dict[str, list[QueryResult]],
    thresholds: GateThresholds,
    *,
    seed: int,
) -> dict[str, Comparison]:
    """The gate's paired non-inferiority test of each of ``names`` against the baseline (none without one)."""
    if baseline not in analyses:
        return {}
    return {
        name: compare(
            (name, analyses[name].values, results[name]),
            (baseline, analyses[baseline].values, results[baseline]),
            metric=thresholds.noninferiority_metric,
            margin=thresholds.noninferiority_margin,
            seed=seed,
        )
        for name in names
    }


def _load_candidates(task: ReportInput, judged: Any) -> tuple[list[dict[str, Any]], dict[str, list[QueryResult]]]:
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
    return candidates, results


def _write_html(bucket: str, key: str, report: dict[str, Any], charts: dict[str, bytes]) -> str | None:
    """report.html, the report as one page with the charts inlined; a failure never costs the run its report."""
    try:
        from search_router.pipeline.report_html import render_html

        return s3io.put_text(bucket, key, render_html(report, charts), "text/html; charset=utf-8")
    except Exception:
        logger.exception("report.html could not be written", key=key)
        metrics.add_metric(name="ReportHtmlFailed", unit="Count", value=1)
        return None


def _judge_ratings(judged: JudgeReadout, results: dict[str, list[QueryResult]], bucket: str) -> dict[str, JudgeRatings]:
    """Each judged candidate's per-query ratings (none with the judge off); results that cannot be read are a
    reason in the candidate's entry, never a failed report."""

    def read(key: str) -> str:
        try:
            return s3io.get_text(bucket, key)
        except (ClientError, UnicodeDecodeError) as exc:
            detail = error_message(exc) if isinstance(exc, ClientError) else str(exc)
            raise JudgeOutputUnreadable(f"s3://{bucket}/{key}: {detail}") from exc

    return {name: judge_ratings(runs, read) for name, runs in judged.runs.items() if name in results}


def _reliability(
    ratings: dict[str, JudgeRatings], results: dict[str, list[QueryResult]], channels: ChannelSet
) -> dict[str, dict[str, Any]] | None:
    """The judge's repeats and its per-query agreement with the rubric (None with the judge off)."""
    return judge_reliability(ratings, results, channels) if ratings else None


def _shadow(shadow: ShadowReplay | ShadowFailure | None) -> tuple[dict[str, Any], list[QueryResult] | None]:
    """What ShadowReplay did (``status`` ok, skipped or failed, with the reason) and the model in service's
    answers when it replayed; results that cannot be read make it failed, with the reason."""
    if shadow is None:
        return {"status": SHADOW_SKIPPED, "reason": "the shadow replay did not run"}, None
    if isinstance(shadow, ShadowFailure):
        return {"status": SHADOW_FAILED, "reason": shadow.reason[:MAX_FAILURE_CHARS]}, None
    state = shadow.model_dump(mode="json", exclude={"results_uri", "summary_uri"})
    if shadow.status != SHADOW_OK or shadow.results_uri is None:
        return state, None
    try:
        text = s3io.get_text(*s3io.parse_s3_uri(shadow.results_uri))
        return state, [QueryResult.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
    except (ClientError, ValueError) as exc:
        detail = error_message(exc) if isinstance(exc, ClientError) else str(exc)
        return {**state, "status": SHADOW_FAILED, "reason": f"its results are unreadable: {detail}"}, None


def _production_judge(
    ratings: JudgeRatings | None, results: list[QueryResult], judge: dict[str, Any], *, enabled: bool
) -> dict[str, Any]:
    """The judge's mean rating of the candidate's answers to the production queries, or why there is none."""
    if not enabled:
        return {"rubric": None, "rated": 0, "reason": "the judge was off for this run"}
    if ratings is None:
        return {"rubric": None, "rated": 0, "reason": judge.get("reason") or "the judge gave no ratings"}
    values = [
        value
        for value, result in zip(per_query_judge(ratings.ratings, results), results, strict=True)
        if result.split == PRODUCTION_SPLIT
    ]
    rubric, rated = judge_mean(values)
    reason = None if rated else (ratings.reason or "the judge's results rate none of the production queries")
    return {"rubric": rubric, "rated": rated, "reason": reason}


def _production(
    task: ReportInput,
    gated: dict[str, Any],
    results: list[QueryResult],
    ratings: JudgeRatings | None,
    channels: ChannelSet,
) -> tuple[dict[str, Any] | None, ProductionEvidence]:
    """The report's "Production traffic" section (None when the run has no production queries and the replay
    skipped) and what the gate knows of the gated candidate there."""
    shadow, service = _shadow(task.shadow)
    mine = production_results(results)
    judge = _production_judge(ratings, results, gated["judge"], enabled=task.run.settings.judge)
    evidence = ProductionEvidence(queries=len(mine), rubric=judge["rubric"], missing_reason=judge["reason"])
    if not mine and shadow["status"] == SHADOW_SKIPPED:
        return None, evidence
    section = production_traffic(
        candidate=gated["name"],
        candidate_results=mine,
        shadow=shadow,
        service_results=service,
        channels=channels,
        judge=judge,
    )
    return section, evidence


def _write_charts(
    report: dict[str, Any], results: dict[str, list[QueryResult]], bucket: str, layout: RunLayout
) -> tuple[dict[str, str], dict[str, bytes]]:
    """Render and write the charts (their URIs go into ``report["charts"]``); their bytes are kept for
    report.html, which inlines them. A chart failure never costs the run its report."""
    chart_uris: dict[str, str] = {}
    chart_bytes: dict[str, bytes] = {}
    try:
        from search_router.pipeline.charts import render_charts  # matplotlib: imported only here

        with tempfile.TemporaryDirectory() as tmp:
            for name, path in render_charts(report, results, Path(tmp)).items():
                chart_bytes[name] = path.read_bytes()
                chart_uris[name] = s3io.put_bytes(
                    bucket, layout.report_chart(path.name), chart_bytes[name], "image/png"
                )
    except Exception as exc:  # charts must never cost the run its report
        logger.exception("charts could not be rendered")
        metrics.add_metric(name="ChartsFailed", unit="Count", value=1)
        report["charts_error"] = f"{type(exc).__name__}: {exc}"
    report["charts"] = chart_uris
    return chart_uris, chart_bytes


def _drift(bucket: str) -> dict[str, Any] | None:
    """The latest production drift summary (capture on and its daily check run), None otherwise or unreadable."""
    try:
        return latest_drift_summary(bucket)
    except (ClientError, ValueError) as exc:
        logger.warning("drift summary not read", error=str(exc))
        return None


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
    candidates, results = _load_candidates(task, judged)

    # The gate judges the distilled model with the student prompt (weights then reasoning), what POST /route serves
    # by default (include_reasoning true); a weights-only candidate of the same model is reported beside it.
    distilled_names = {name for name, c in candidates_config.items() if c.get("model") == DISTILLED}
    distilled = next(c for c in candidates if c["name"] in distilled_names and c["prompt_kind"] == PromptKind.STUDENT)
    baseline_name = environment.baseline_candidate
    baseline = next((c for c in candidates if c["name"] == baseline_name), None)
    thresholds = GateThresholds.from_dict(environment.gate)

    fallback = _fallback(candidates, distilled_names)
    training = task.micro_router if isinstance(task.micro_router, MicroRouterTraining) else None
    evaluation, unavailable, extra = _cascade_candidates(
        training, fallback, results, channels, run.settings.cascade_margin
    )
    candidates += extra
    source, fusion_description = fusion_source(run.settings, channels)
    analyses = _analyse(candidates, results, channels, source, seed=run.settings.seed)
    comparisons = _comparisons(
        [distilled["name"], *([fallback["name"]] if fallback and extra else []), *(c["name"] for c in extra[1:])],
        baseline_name,
        analyses,
        results,
        thresholds,
        seed=run.settings.seed,
    )
    distilled_comparison = comparisons.get(distilled["name"])
    ratings = _judge_ratings(judged, results, bucket)
    production, evidence = _production(
        task, distilled, results[distilled["name"]], ratings.get(distilled["name"]), channels
    )
    decision = evaluate_gate(
        distilled["metrics"],
        baseline=baseline["metrics"] if baseline else None,
        judge_score=distilled["judge"].get("score"),
        thresholds=thresholds,
        judge_requested=run.settings.judge,
        judge_missing_reason=distilled["judge"].get("reason"),
        comparison=distilled_comparison.to_dict() if distilled_comparison else None,
        intervals=distilled["intervals"],
        production=evidence,
    )
    gate = {**decision.to_dict(), "candidate": distilled["name"], "thresholds": thresholds.to_dict()}
    gates = _CascadeGates(baseline, thresholds, run.settings.judge, comparisons)
    cascade_gate = gates.cascade(extra[1] if extra else None)
    fallback_gate = gates.fallback(fallback if extra else None)
    warnings = [w for w in (sample_size_warning(c) for c in comparisons.values()) if w]
    if fusion_description.get("samples_unusable"):
        warnings.append(f"fusion_scores_s3_uri: {fusion_description['samples_unusable']}")
    reliability = _reliability(ratings, results, channels)
    # (a candidate with no judge score at all already shows why in its judge column)
    warnings += [
        f"judge of {name}: {entry['reason']}"
        for name, entry in (reliability or {}).items()
        if entry.get("reason") and any(score is not None for score in entry["scores"])
    ]
    outcome = CascadeOutcome.model_validate(
        cascade_outcome(
            setting=run.settings.router_cascade,
            artifact_uri=training.artifact_uri if training else None,
            evaluation=evaluation,
            unavailable=unavailable,
            model_passed=decision.passed,
            cascade_passed=cascade_gate.passed if cascade_gate else None,
            cascade_failures=cascade_gate.failures if cascade_gate else (),
            fallback=(fallback["name"], fallback_gate.failures) if fallback and fallback_gate else None,
            untrained=task.micro_router.reason if isinstance(task.micro_router, MicroRouterFailure) else None,
        )
    )
    manifest_bucket, manifest_key = s3io.parse_s3_uri(task.dataset.manifest_uri)
    report = build_report(
        run_id=run.run_id,
        channels=channels,
        candidates=candidates,
        gate=gate,
        dataset=s3io.get_json(manifest_bucket, manifest_key),
        prices=environment.prices,
        teacher=run.teacher.model_dump() if run.teacher else {"model_id": run.teacher_model_id},
        comparison=distilled_comparison.to_dict() if distilled_comparison else None,
        warnings=warnings,
        fusion_source=fusion_description,
        drift=_drift(bucket),
        production=production,
        judge_reliability=reliability,
        cascade=None
        if task.micro_router is None
        else {
            "setting": run.settings.router_cascade,
            "fallback_candidate": fallback["name"] if fallback else None,
            "fallback_gate": fallback_gate.to_dict() if fallback_gate else None,
            "choice": evaluation.choice.to_dict() if evaluation else None,
            "sweep": evaluation.sweep if evaluation else [],
            "gate": cascade_gate.to_dict() if cascade_gate else None,
            "outcome": outcome.to_state(),
            "training": task.micro_router.model_dump(mode="json"),
        },
    )

    chart_uris, chart_bytes = _write_charts(report, results, bucket, run.layout)

    report_uri = s3io.put_json(bucket, run.layout.report_json, report)
    markdown = render_markdown(report)
    markdown_uri = s3io.put_text(bucket, run.layout.report_markdown, markdown, "text/markdown; charset=utf-8")
    _write_html(bucket, run.layout.report_html, report, chart_bytes)
    summary = headline(report)
    metrics.add_metric(name="QualityGatePassed" if decision.passed else "QualityGateFailed", unit="Count", value=1)
    logger.info(
        "report written",
        report_uri=report_uri,
        gate_passed=decision.passed,
        failures=decision.failures,
        cascade_enabled=outcome.enabled,
        cascade_reason=outcome.reason,
    )
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
        micro_router=outcome,
    ).to_state()
