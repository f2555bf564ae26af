"""Shadow evaluation on production traffic (search_router.pipeline.shadow) and the gate's production-rubric check:
which records are replayed, the agreement of two models on the same queries, the report's section, and the
check's pass, fail and not-applicable outcomes."""

from __future__ import annotations

from typing import Any

import pytest

from search_router.pipeline.gate import GateThresholds, ProductionEvidence, evaluate_gate
from search_router.pipeline.metrics import QueryResult
from search_router.pipeline.report import build_report, render_markdown
from search_router.pipeline.report_html import render_html
from search_router.pipeline.shadow import agreement, figures, production_sample, production_traffic
from search_router.shared.channels import DEFAULT_CHANNELS

NAMES = DEFAULT_CHANNELS.names
VISUAL = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
AUDIO = {"visual": 0.1, "audio": 0.7, "transcription": 0.1, "metadata": 0.1}
CLOSE = {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}


def result(query: str, weights: dict[str, float] | None, *, reference: dict[str, float] = VISUAL) -> QueryResult:
    return QueryResult(
        query=query,
        category=None,
        reference=reference,
        raw_text="{}",
        weights=weights,
        parse_failure=None if weights else "invalid_json",
        split="production",
    )


def test_every_production_record_is_replayed_up_to_the_limit_then_a_seeded_sample() -> None:
    items = [{"query": f"q{i}", "split": "production" if i % 2 else "seen"} for i in range(40)]

    all_of_them, total = production_sample(items, limit=50, seed=1)
    assert total == 20 and [i["query"] for i in all_of_them] == [f"q{i}" for i in range(1, 40, 2)]

    sample, total = production_sample(items, limit=5, seed=1)
    assert total == 20 and len(sample) == 5 and all(item["split"] == "production" for item in sample)
    assert sample == production_sample(items, limit=5, seed=1)[0]  # the same seed, the same sample
    assert [i["query"] for i in sample] == sorted((i["query"] for i in sample), key=lambda q: int(q[1:]))  # file order
    assert {i["query"] for i in production_sample(items, limit=5, seed=2)[0]} != {i["query"] for i in sample}
    with pytest.raises(ValueError, match="at least 1"):
        production_sample(items, limit=0, seed=1)


def test_agreement_pairs_the_queries_by_text_and_compares_only_usable_answers() -> None:
    candidate = [result("a", VISUAL), result("b", CLOSE), result("c", None), result("only-candidate", VISUAL)]
    service = [result("b", AUDIO), result("a", CLOSE), result("c", VISUAL)]

    found = agreement(candidate, service, NAMES)

    # a, b and c are paired; c has no usable candidate answer: a and b are compared
    assert (found["paired"], found["compared"]) == (3, 2)
    assert found["dominant_agreement"] == pytest.approx(0.5)  # a: visual/visual; b: visual/audio
    # a: |0.7-0.6| + |0.1-0.2| over 4 channels = 0.05; b: (0.5 + 0.5 + 0 + 0) / 4 = 0.25
    assert found["mean_abs_weight_difference"] == pytest.approx((0.05 + 0.25) / 2)
    nothing = agreement([result("a", None)], [result("a", VISUAL)], NAMES)
    assert nothing["compared"] == 0 and nothing["dominant_agreement"] is None
    assert nothing["mean_abs_weight_difference"] is None


def test_figures_are_the_metrics_definitions_against_the_teachers_labels() -> None:
    shown = figures([result("a", CLOSE), result("b", None), result("c", AUDIO)], NAMES)
    assert shown["n"] == 3
    assert shown["valid_json_rate"] == pytest.approx(2 / 3)  # "invalid_json" is no JSON object
    assert shown["dominant_accuracy"] == pytest.approx(1 / 3)
    assert shown["mae_overall"] == pytest.approx((0.05 + 0.3) / 2)


def _section(**shadow: Any) -> dict[str, Any]:
    candidate = [result("a", CLOSE), result("b", VISUAL), result("c", VISUAL)]
    service = [result("a", VISUAL), result("b", AUDIO)] if shadow.get("status") == "ok" else None
    return production_traffic(
        candidate="distilled",
        candidate_results=candidate,
        shadow=shadow,
        service_results=service,
        channels=NAMES,
        judge={"rubric": 3.75, "rated": 3, "reason": None},
    )


def test_the_section_compares_the_candidate_with_the_model_in_service_on_the_replayed_queries() -> None:
    section = _section(status="ok", model_id="m-in-service", prompt_kind="teacher", replayed=2, production_queries=3)

    assert section["production_queries"] == 3
    assert section["candidate_figures"]["n"] == 2  # only the replayed queries a and b
    assert section["service_figures"]["n"] == 2 and section["service_figures"]["dominant_accuracy"] == 0.5
    assert section["agreement"]["compared"] == 2 and section["agreement"]["dominant_agreement"] == 0.5

    report = build_report(
        run_id="r", channels=NAMES, candidates=[], gate=None, dataset=None, prices={}, production=section
    )
    markdown = render_markdown(report)
    assert "## Production traffic" in markdown
    # a: the teacher's own weights (error 0); b: audio for visual (error (0.6 + 0.6) / 4 = 0.3)
    assert "| m-in-service (in service) | 2 | 100.0% | 0.150 | 50.0% |" in markdown
    assert "the router's default model, nothing promoted yet" in markdown
    assert "same dominant channel 50.0%" in markdown and "Judge rubric of the candidate on 3 of the 3" in markdown
    page = render_html(report)
    assert 'id="production"' in page and "m-in-service (in service)" in page


def test_a_failed_replay_is_said_with_its_reason_and_the_candidate_is_shown_on_every_query() -> None:
    section = _section(status="failed", reason="AccessDeniedException: not allowed")

    assert section["service_figures"] is None and section["agreement"] is None
    assert section["candidate_figures"]["n"] == 3
    markdown = render_markdown(
        build_report(run_id="r", channels=NAMES, candidates=[], gate=None, dataset=None, prices={}, production=section)
    )
    assert "Shadow replay FAILED: AccessDeniedException: not allowed." in markdown
    assert "(in service)" not in markdown
    plain = build_report(run_id="r", channels=NAMES, candidates=[], gate=None, dataset=None, prices={})
    without = render_markdown(plain)
    assert "Production traffic" not in without


METRICS = {"valid_json_rate": 1.0, "mae_overall": 0.04}


def _gate(evidence: ProductionEvidence | None, *, minimum: float | None = 4.0, judge: bool = True) -> Any:
    thresholds = GateThresholds(min_production_rubric=minimum)
    return evaluate_gate(
        METRICS, baseline=None, judge_score=4.0, thresholds=thresholds, judge_requested=judge, production=evidence
    )


def test_the_production_rubric_check_passes_at_the_threshold_and_fails_below() -> None:
    passed = _gate(ProductionEvidence(queries=12, rubric=4.0))
    check = passed.checks[-1]
    assert passed.passed and check.name == "production_rubric" and not check.skipped
    assert check.message == "judge rubric on 12 production queries 4.00 ≥ 4.00"

    refused = _gate(ProductionEvidence(queries=12, rubric=3.2))
    assert not refused.passed
    assert refused.failures == ["judge rubric on 12 production queries 3.20 < 4.00"]


def test_the_production_rubric_check_is_not_applicable_without_production_queries_and_off_when_unset() -> None:
    for evidence in (None, ProductionEvidence(queries=0, rubric=None, missing_reason="none")):
        decision = _gate(evidence)
        assert decision.passed and decision.checks[-1].skipped
        assert decision.checks[-1].message == "not applicable: the run has no production held-out queries"
    off = _gate(ProductionEvidence(queries=12, rubric=1.0), minimum=None)
    assert off.passed and "production_rubric" not in [c.name for c in off.checks]


def test_the_production_rubric_check_fails_without_the_judges_ratings_and_says_why() -> None:
    judge_off = _gate(ProductionEvidence(queries=5, rubric=None), judge=False)
    assert not judge_off.passed
    assert (
        "the judge was off for this run" in judge_off.failures[0]
        and "gate_min_production_rubric" in (judge_off.failures[0])
    )
    unrated = _gate(ProductionEvidence(queries=5, rubric=None, missing_reason="the judge step failed: boom"))
    assert unrated.failures == ["no judge rating of the 5 production queries (the judge step failed: boom)"]


@pytest.mark.parametrize("value", [0.5, 5.5, True, "high"])
def test_the_production_rubric_threshold_is_a_score_from_1_to_5(value: Any) -> None:
    with pytest.raises(ValueError, match="min_production_rubric must be null"):
        GateThresholds(min_production_rubric=value)


def test_the_production_rubric_threshold_reads_from_the_environments_gate_block() -> None:
    assert GateThresholds.from_dict({"min_production_rubric": None}).min_production_rubric is None
    assert GateThresholds.from_dict({"gate_min_production_rubric": "3.5"}).min_production_rubric == 3.5
