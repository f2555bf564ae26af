"""The run report: JSON document, Markdown tables with the expected numbers, and the SNS headline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from search_router.pipeline.gate import GateThresholds, evaluate_gate
from search_router.pipeline.metrics import Price, QueryResult, compute_metrics
from search_router.pipeline.report import SCHEMA_VERSION, build_report, fmt_usd, headline, render_markdown
from search_router.pipeline.stats import non_inferiority, paired_difference
from search_router.shared.channels import DEFAULT_CHANNELS

CHANNELS = DEFAULT_CHANNELS
NOVA_MICRO = {"input": 0.000035, "output": 0.00014}
HAIKU = {"input": 0.001, "output": 0.005}
PRICES = {"us.amazon.nova-micro-v1:0": NOVA_MICRO, "us.anthropic.claude-haiku-4-5-20251001-v1:0": HAIKU}
REF = {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}
OFF = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}  # mean error 0.05, rubric 4


def _results(latencies: list[float], input_tokens: int, output_tokens: int) -> list[QueryResult]:
    """One exact answer (rubric 5) and one off by 0.1 on two channels (rubric 4), at the given latencies."""
    return [
        QueryResult(
            f"q{number}",
            "visual",
            REF,
            "{}",
            weights=dict(answer),
            latency_ms=latency,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        for number, answer, latency in zip((1, 2), (REF, OFF), latencies, strict=True)
    ]


def _garbage() -> list[QueryResult]:
    return [
        QueryResult("q1", "visual", REF, "visual mostly", parse_failure="no_json", latency_ms=400.0),
        QueryResult("q2", "visual", REF, None, error_kind="ThrottlingException"),
    ]


_DEFAULT: Any = object()
DATASET = {"labeled": 9876, "invalid": 12, "per_category": {"visual": 30, "audio": 20}}


def _report(*, gate: Any = _DEFAULT, dataset: dict[str, Any] | None = DATASET) -> dict[str, Any]:
    """Three candidates: distilled (judge 4.0), base student (garbage, judge skipped), baseline (judge missing)."""
    distilled = compute_metrics(_results([800.0, 866.0], 100, 50), CHANNELS, price=Price.from_dict(NOVA_MICRO))
    haiku = compute_metrics(_results([1700.0, 1782.0], 400, 80), CHANNELS, price=Price.from_dict(HAIKU))
    base = compute_metrics(_garbage(), CHANNELS, price=Price.from_dict(NOVA_MICRO))
    if gate is _DEFAULT:
        # the same per-query rubric scores on 50 queries: a zero paired difference, non-inferior
        same = [(f"q{i}", 4.0 + i % 2) for i in range(50)]
        decision_ni = non_inferiority(
            paired_difference(same, same), metric="rubric_mean", margin=0.2, direction="higher_is_better"
        )
        comparison = {"candidate": "distilled", "baseline": "baseline", **decision_ni.to_dict()}
        decision = evaluate_gate(
            distilled, baseline=haiku, comparison=comparison, judge_score=4.0, thresholds=GateThresholds()
        )
        gate = {**decision.to_dict(), "candidate": "distilled"}
    candidates = [
        {
            "name": "distilled",
            "model_id": "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123",
            "prompt_kind": "student",
            "metrics": distilled,
            "judge": {"score": 4.0, "status": "ok", "reason": None},
        },
        {
            "name": "base-student",
            "model_id": "us.amazon.nova-micro-v1:0",
            "prompt_kind": "student",
            "metrics": base,
            "judge": {"score": None, "status": "skipped", "reason": None},
        },
        {
            "name": "baseline",
            "model_id": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "prompt_kind": "teacher",
            "metrics": haiku,
            "judge": {"score": None, "status": "missing", "reason": "evaluation job failed: AccessDenied"},
        },
    ]
    return build_report(
        run_id="exec-42",
        channels=CHANNELS,
        candidates=candidates,
        gate=gate,
        dataset=dataset,
        prices=PRICES,
    )


def _row(markdown: str, name: str) -> list[str]:
    """The cells of the first table row whose first cell is ``name`` (bold or not)."""
    for line in markdown.splitlines():
        if line.startswith("| ") and line.split(" | ")[0].strip("| *") == name:
            return [cell.strip() for cell in line.strip().strip("|").split(" | ")]
    raise AssertionError(f"no table row for {name!r} in:\n{markdown}")


def test_report_json_has_a_schema_version_and_every_candidate() -> None:
    report = _report()

    assert report["schema_version"] == SCHEMA_VERSION
    assert report["run_id"] == "exec-42"
    assert report["channels"] == ["visual", "audio", "transcription", "metadata"]
    assert [c["name"] for c in report["candidates"]] == ["distilled", "base-student", "baseline"]
    assert report["charts"] == {
        "latency": "latency.png",
        "mae_per_channel": "mae_per_channel.png",
        "rubric_distribution": "rubric_distribution.png",
    }
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_candidate_price_is_the_one_its_cost_used_else_looked_up_by_model_id() -> None:
    report = _report()
    distilled, base, baseline = report["candidates"]
    assert distilled["price"] == {"input_per_1k": 0.000035, "output_per_1k": 0.00014}  # from its metrics
    assert baseline["price"] == {"input_per_1k": 0.001, "output_per_1k": 0.005}
    # without a price in the metrics, the entry for the model id is used
    base_metrics = {**base["metrics"], "price": None}
    rebuilt = build_report(
        run_id="r",
        channels=CHANNELS,
        candidates=[{"name": "b", "model_id": "us.amazon.nova-micro-v1:0", "metrics": base_metrics}],
        gate=None,
        dataset=None,
        prices=PRICES,
    )
    assert rebuilt["candidates"][0]["price"] == {"input_per_1k": 0.000035, "output_per_1k": 0.00014}
    assert rebuilt["candidates"][0]["judge"] == {"score": None, "status": "skipped", "reason": None}


def test_markdown_side_by_side_row_has_the_expected_numbers() -> None:
    markdown = render_markdown(_report())

    assert markdown.startswith("# Routing evaluation report — run `exec-42`")
    # candidate, model, prompt, judge, rubric, MAE, dominant, valid JSON, mean, p95, in $, out $, $ per 1M
    assert _row(markdown, "distilled") == [
        "**distilled**",
        "`arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123`",
        "student",
        "4.00",
        "4.50",  # (5 + 4) / 2
        "0.025",  # (0 + 0.05) / 2
        "100.0%",
        "100.0%",
        "833",  # (800 + 866) / 2
        "863",  # rank 0.95 between 800 and 866: 800 + 0.95 × 66 = 862.7
        "$0.000035",
        "$0.00014",
        "$10.50",  # (0.1 × 0.000035 + 0.05 × 0.00014) × 1e6
    ]
    baseline = _row(markdown, "baseline")
    assert baseline[3] == "missing (evaluation job failed: AccessDenied)"
    assert baseline[8:] == ["1,741", "1,778", "$0.001", "$0.005", "$800.00"]  # (0.4 × 0.001 + 0.08 × 0.005) × 1e6
    base = _row(markdown, "base-student")
    assert base[3] == "skipped"
    assert base[4:8] == ["1.00", "n/a", "0.0%", "0.0%"]


def test_markdown_per_channel_mae_and_rubric_tables() -> None:
    markdown = render_markdown(_report())
    mae_section = markdown.split("## Mean absolute error per channel")[1].split("## Rubric distribution")[0]
    rubric_section = markdown.split("## Rubric distribution")[1].split("## ")[0]

    # visual off by 0.1 in one of two answers → 0.05; audio likewise; the others never off
    assert _row(mae_section, "distilled") == ["distilled", "0.050", "0.050", "0.000", "0.000", "0.025"]
    assert _row(mae_section, "base-student")[1:] == ["n/a"] * 5
    assert _row(rubric_section, "distilled") == ["distilled", "0", "0", "0", "1", "1", "4.50"]
    assert _row(rubric_section, "base-student") == ["base-student", "2", "0", "0", "0", "0", "1.00"]


def test_markdown_gate_section_lists_each_check() -> None:
    markdown = render_markdown(_report())
    gate = markdown.split("## Quality gate")[1].split("## ")[0]

    assert "**PASSED** ✅ for **distilled**" in gate
    assert "- ✅ `valid_json_rate`: valid-JSON rate 100.0% ≥ 99.0%" in gate
    assert "- ✅ `mae_overall`: overall MAE 0.025 ≤ 0.080" in gate
    assert gate.count("- ✅") == 4


def test_markdown_failed_and_skipped_checks_are_marked() -> None:
    metrics = {"valid_json_rate": 0.97, "rubric_mean": 4.0, "mae_overall": 0.02}
    decision = evaluate_gate(
        metrics, baseline=None, judge_score=None, thresholds=GateThresholds(), judge_requested=False
    )
    markdown = render_markdown(_report(gate=decision.to_dict()))

    assert "Quality gate: **FAILED** ❌" in markdown
    assert "- ❌ `valid_json_rate`: valid-JSON rate 97.0% < 99.0%" in markdown
    assert "- ⏭️ `judge_score`: skipped: the judge was off for this run" in markdown


def test_a_missing_judge_fails_the_gate_in_the_report_and_the_headline_with_the_reason() -> None:
    metrics = {"valid_json_rate": 1.0, "rubric_mean": 4.0, "mae_overall": 0.02}
    reason = "could not create the judge job: User is not authorized to perform: bedrock:CreateEvaluationJob"
    decision = evaluate_gate(
        metrics, baseline=None, judge_score=None, thresholds=GateThresholds(), judge_missing_reason=reason
    )
    report = _report(gate={**decision.to_dict(), "candidate": "distilled"})
    assert f"- ❌ `judge_score`: the judge was asked for but produced no score ({reason})" in render_markdown(report)
    first = headline(report).splitlines()[0]
    assert first.startswith("Routing evaluation run exec-42: quality gate FAILED for distilled (the judge was asked")
    assert reason in first


def test_the_report_names_the_teacher_and_why_it_was_chosen() -> None:
    report = _report()
    report["teacher"] = {
        "model_id": "us.amazon.nova-pro-v1:0",
        "requested": "auto",
        "refused": [{"model_id": "us.amazon.nova-premier-v1:0", "reason": "it is LEGACY in us-east-1"}],
    }
    text = (
        "us.amazon.nova-pro-v1:0 (chosen automatically from teacher_preference; us.amazon.nova-premier-v1:0 "
        "refused: it is LEGACY in us-east-1)"
    )
    assert f"Teacher: `us.amazon.nova-pro-v1:0` — {text}" in render_markdown(report)
    assert f"Teacher: {text}" in headline(report).splitlines()
    report["teacher"] = {"model_id": "us.amazon.nova-pro-v1:0", "requested": "us.amazon.nova-pro-v1:0"}
    assert "Teacher: `us.amazon.nova-pro-v1:0` — us.amazon.nova-pro-v1:0 (set explicitly)" in render_markdown(report)


def test_markdown_without_gate_dataset_or_failures() -> None:
    markdown = render_markdown(_report(gate=None, dataset=None))
    assert "Quality gate: **NOT EVALUATED**" in markdown
    assert "The quality gate was not evaluated." in markdown
    assert "No dataset manifest was given." in markdown


def test_markdown_dataset_errors_and_chart_links() -> None:
    markdown = render_markdown(_report())

    assert "- **labeled**: 9,876" in markdown
    assert "- **per_category**: visual: 30, audio: 20" in markdown
    assert "- **base-student**: errors: ThrottlingException × 1; parse failures: no_json × 1" in markdown
    for name in ("latency.png", "mae_per_channel.png", "rubric_distribution.png"):
        assert f"]({name})" in markdown


def test_table_cells_escape_pipes() -> None:
    report = _report()
    report["candidates"][2]["judge"]["reason"] = "a | b"
    assert "missing (a \\| b)" in render_markdown(report)


def test_headline_says_pass_or_fail_and_one_line_per_candidate() -> None:
    passed = headline(_report())
    lines = passed.splitlines()

    assert lines[0] == "Routing evaluation run exec-42: quality gate PASSED for distilled"
    # every check of the gate, passed or not, with its message (issue 13: the notification says which passed)
    checks = lines[1:5]
    assert [line.split("]")[0] for line in checks] == ["  [pass"] * 4
    assert checks[1].startswith("  [pass] distilled − baseline on rubric_mean: +0.000 [+0.000, +0.000]")
    candidates = lines[5:]
    assert len(candidates) == 3
    assert candidates[0].startswith("- distilled: judge 4.00, rubric 4.50, MAE 0.025, valid JSON 100.0%")
    assert "latency mean 833 ms" in candidates[0]
    assert "$10.50 per 1M routes" in candidates[0]
    assert "judge missing (evaluation job failed: AccessDenied)" in candidates[2]

    decision = evaluate_gate(
        {"valid_json_rate": 1.0, "rubric_mean": 4.0, "mae_overall": 0.2},
        baseline=None,
        judge_score=4.0,
        thresholds=GateThresholds(),
    )
    failed = headline(_report(gate=decision.to_dict()))
    assert failed.splitlines()[0] == "Routing evaluation run exec-42: quality gate FAILED (overall MAE 0.200 > 0.080)"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (10.5, "$10.50"),
        (800, "$800.00"),
        (1234.5, "$1,234.50"),
        (0.0105, "$0.0105"),
        (0.000035, "$0.000035"),
        (0.00014, "$0.00014"),
        (0.001, "$0.001"),
        (0.5, "$0.50"),
        (0, "$0"),
        (None, "n/a"),
    ],
)
def test_usd_formatting_keeps_enough_precision(value: float | None, text: str) -> None:
    assert fmt_usd(value) == text


@pytest.mark.parametrize(
    ("candidates", "match"),
    [
        ([{"name": "", "metrics": {}}], "name"),
        ([{"name": "a", "metrics": {}}, {"name": "a", "metrics": {}}], "duplicated"),
        ([{"name": "a"}], "metrics"),
        ([{"name": "a", "metrics": {}, "judge": {"status": "done"}}], "judge.status"),
        ([{"name": "a", "metrics": {}, "judge": {"status": "ok", "score": None}}], "no score"),
    ],
)
def test_build_report_rejects_malformed_candidates(candidates: list[dict[str, Any]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_report(run_id="r", channels=CHANNELS, candidates=candidates, gate=None, dataset=None, prices={})


def test_markdown_shows_every_candidate_per_split_and_the_cascade_decision() -> None:
    from search_router.pipeline.cascade import FREE, cascade_outcome, evaluate_cascade
    from search_router.pipeline.metrics import metrics_by_split

    # Given twenty queries, half of them of unseen templates; the micro-router exact on its confident half
    price = Price.from_dict(NOVA_MICRO)
    model = [
        QueryResult(
            f"q{i}",
            "visual",
            REF,
            "{}",
            weights=OFF,
            latency_ms=800.0,
            input_tokens=50,
            output_tokens=15,
            split="seen" if i % 2 else "unseen_template",
        )
        for i in range(20)
    ]
    predictions = [
        {
            "query": r.query,
            "split": r.split,
            "reference": REF,
            "micro": REF if i < 10 else {**OFF, "visual": 0.0, "audio": 0.8},
            "confidence": 1 - i / 20,
            "latency_ms": 0.04,
        }
        for i, r in enumerate(model)
    ]
    evaluation = evaluate_cascade(predictions, model, CHANNELS.names, price=price)
    outcome = cascade_outcome(
        setting="auto",
        artifact_uri="s3://b/runs/r/micro-router/model.bin",
        evaluation=evaluation,
        unavailable=None,
        model_passed=True,
        cascade_passed=True,
    )
    candidates = [
        {
            "name": name,
            "model_id": name,
            "prompt_kind": None,
            "metrics": compute_metrics(rows, CHANNELS, price=p),
            "metrics_by_split": metrics_by_split(rows, CHANNELS, price=p),
        }
        for name, rows, p in (
            ("distilled-weights", model, price),
            ("micro-router", evaluation.micro, FREE),
            ("cascade", evaluation.cascade, price),
        )
    ]
    report = build_report(
        run_id="r",
        channels=CHANNELS,
        candidates=candidates,
        gate=None,
        dataset=None,
        prices={},
        cascade={
            "setting": "auto",
            "fallback_candidate": "distilled-weights",
            "choice": evaluation.choice.to_dict(),
            "sweep": evaluation.sweep,
            "gate": None,
            "outcome": outcome,
        },
    )
    markdown = render_markdown(report)

    # Then each candidate has one row per split, with that split's figures
    section = markdown.split("## Per held-out split", 1)[1].split("\n## ", 1)[0]
    for candidate in candidates:
        for split, metrics in candidate["metrics_by_split"].items():
            row = next(line for line in section.splitlines() if line.startswith(f"| {candidate['name']} | {split} |"))
            assert f"| {metrics['n']} | {metrics['rubric_mean']:.2f} |" in row
    # the micro-router's sub-millisecond latency is not rounded to 0
    assert "| micro-router | seen | 10 |" in section and "| 0.04 |" in section
    # And the cascade section gives τ, the split it was chosen on, the shares and the decision
    cascade = markdown.split("## Micro-router and cascade", 1)[1]
    choice = evaluation.choice
    assert f"τ = **{choice.tau:.3f}**, chosen on the hardest split `{choice.split}`" in cascade
    assert "✅ enabled" in cascade and outcome["reason"] in cascade
    assert f"{choice.answered_share_overall:.1%} of all held-out queries" in cascade
    assert "| never (model only) | 0.0% |" in cascade and report["charts"]["cascade_tau"] == "cascade_tau.png"


def test_the_latest_drift_summary_is_a_section_when_there_is_one() -> None:
    from search_router.pipeline.drift import drift_section

    summary = {
        "status": "insufficient_traffic",
        "records": 3,
        "min_records": 100,
        "window_start": "2026-11-24",
        "window_end": "2026-11-30",
    }
    with_drift = build_report(
        run_id="r", channels=CHANNELS, candidates=[], gate=None, dataset=None, prices={}, drift=summary
    )
    markdown = render_markdown(with_drift)
    assert with_drift["drift"] == summary
    section = drift_section(summary)
    assert "\n".join(section).strip() in markdown
    without = render_markdown(
        build_report(run_id="r", channels=CHANNELS, candidates=[], gate=None, dataset=None, prices={})
    )
    assert "## Production drift" not in without and section[0] == "## Production drift"
