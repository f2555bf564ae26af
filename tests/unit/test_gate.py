"""The quality gate: each threshold fails on its own with a readable message; missing optional inputs skip. The
comparison with the baseline is the paired non-inferiority test of search_router.pipeline.stats, built here from
per-query values."""

from __future__ import annotations

from typing import Any

import pytest

from search_router.pipeline.gate import Check, GateThresholds, evaluate_gate
from search_router.pipeline.stats import non_inferiority, paired_difference

THRESHOLDS = GateThresholds()  # 0.99 valid JSON, non-inferior on the rubric by 0.2, 0.08 MAE, 3.5 judge


def comparison(candidate_values: list[float], baseline_values: list[float], margin: float = 0.2) -> dict[str, Any]:
    """The gate's comparison input from per-query rubric scores (query i of one with query i of the other)."""
    difference = paired_difference(
        [(f"q{i}", v) for i, v in enumerate(candidate_values)], [(f"q{i}", v) for i, v in enumerate(baseline_values)]
    )
    decision = non_inferiority(difference, metric="rubric_mean", margin=margin, direction="higher_is_better")
    return {"candidate": "distilled", "baseline": "baseline", **decision.to_dict()}


PASSING = comparison([4.0, 5.0] * 50, [4.0, 5.0] * 50)  # the same answers: a zero difference


def candidate(**overrides: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {"valid_json_rate": 1.0, "rubric_mean": 4.0, "mae_overall": 0.04}
    metrics.update(overrides)
    return metrics


BASELINE = {"valid_json_rate": 0.93, "rubric_mean": 4.0, "mae_overall": 0.05}


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_a_good_candidate_passes_every_check() -> None:
    decision = evaluate_gate(candidate(), baseline=BASELINE, comparison=PASSING, judge_score=4.0, thresholds=THRESHOLDS)

    assert decision.passed
    assert decision.failures == []
    assert [c.name for c in decision.checks] == ["valid_json_rate", "non_inferiority", "mae_overall", "judge_score"]
    assert all(c.passed and not c.skipped for c in decision.checks)
    assert by_name(decision.checks)["valid_json_rate"].message == "valid-JSON rate 100.0% ≥ 99.0%"


def test_low_valid_json_rate_fails_alone() -> None:
    decision = evaluate_gate(
        candidate(valid_json_rate=0.97), baseline=BASELINE, comparison=PASSING, judge_score=4.0, thresholds=THRESHOLDS
    )

    assert not decision.passed
    assert decision.failures == ["valid-JSON rate 97.0% < 99.0%"]
    check = by_name(decision.checks)["valid_json_rate"]
    assert (check.actual, check.threshold) == (0.97, 0.99)


def test_a_candidate_clearly_worse_than_the_baseline_fails_alone() -> None:
    # one point lower on every query: the whole interval is below -0.2
    worse = comparison([3.0, 4.0] * 50, [4.0, 5.0] * 50)
    decision = evaluate_gate(candidate(), baseline=BASELINE, comparison=worse, judge_score=4.0, thresholds=THRESHOLDS)

    assert not decision.passed
    (failure,) = decision.failures
    assert failure.startswith("distilled − baseline on rubric_mean: -1.000 [-1.000, -1.000], margin 0.2: inferior")
    check = by_name(decision.checks)["non_inferiority"]
    assert (check.actual, check.threshold) == (-1.0, -0.2)


def test_a_set_too_small_to_show_non_inferiority_fails_with_the_reason() -> None:
    # 12 queries, equal on average but noisy: the interval straddles -0.2
    noisy = comparison([1.0, 5.0, 3.0] * 4, [5.0, 1.0, 3.0] * 4)
    assert noisy["outcome"] == "inconclusive"
    decision = evaluate_gate(candidate(), baseline=BASELINE, comparison=noisy, judge_score=4.0, thresholds=THRESHOLDS)

    assert not decision.passed
    (failure,) = decision.failures
    assert "not shown non-inferior" in failure and "too small for the margin" in failure


def test_a_baseline_without_a_computed_comparison_fails() -> None:
    decision = evaluate_gate(candidate(), baseline=BASELINE, judge_score=4.0, thresholds=THRESHOLDS)
    assert decision.failures == ["the comparison with the baseline was not computed"]


def test_intervals_are_shown_in_the_checks_messages() -> None:
    intervals = {"mae_overall": {"low": 0.031, "high": 0.052}, "valid_json_rate": {"low": 0.97, "high": 1.0}}
    decision = evaluate_gate(candidate(), baseline=None, judge_score=4.0, thresholds=THRESHOLDS, intervals=intervals)
    checks = by_name(decision.checks)
    assert checks["mae_overall"].message == "overall MAE 0.040 [0.031, 0.052] ≤ 0.080"
    assert checks["valid_json_rate"].message == "valid-JSON rate 100.0% [97.0%, 100.0%] ≥ 99.0%"


def test_the_non_inferiority_metric_must_be_one_the_report_computes() -> None:
    assert (
        GateThresholds.from_dict({"gate_noninferiority_metric": "mae_overall"}).noninferiority_metric == "mae_overall"
    )
    with pytest.raises(ValueError, match="noninferiority_metric must be one of rubric_mean, mae_overall"):
        GateThresholds(noninferiority_metric="latency")


def test_high_mae_fails_alone() -> None:
    decision = evaluate_gate(
        candidate(mae_overall=0.09), baseline=BASELINE, comparison=PASSING, judge_score=4.0, thresholds=THRESHOLDS
    )

    assert not decision.passed
    assert decision.failures == ["overall MAE 0.090 > 0.080"]


def test_missing_mae_fails() -> None:
    decision = evaluate_gate(
        candidate(mae_overall=None), baseline=BASELINE, comparison=PASSING, judge_score=4.0, thresholds=THRESHOLDS
    )

    assert not decision.passed
    assert decision.failures == ["overall MAE unavailable (no schema-valid answers)"]


def test_low_judge_score_fails_alone() -> None:
    decision = evaluate_gate(candidate(), baseline=BASELINE, comparison=PASSING, judge_score=3.0, thresholds=THRESHOLDS)

    assert not decision.passed
    assert decision.failures == ["judge score 3.00 < 3.50"]


def test_a_judge_asked_for_but_missing_fails_the_gate_with_its_reason() -> None:
    # The judge was asked for; its job failed (e.g. AccessDenied): no score is not a pass
    decision = evaluate_gate(
        candidate(),
        baseline=BASELINE,
        comparison=PASSING,
        judge_score=None,
        thresholds=THRESHOLDS,
        judge_missing_reason="could not create the judge job: AccessDeniedException",
    )
    assert not decision.passed
    judge = by_name(decision.checks)["judge_score"]
    assert not judge.passed and not judge.skipped
    assert decision.failures == [
        "the judge was asked for but produced no score (could not create the judge job: AccessDeniedException); "
        "set gate_require_judge=false to promote without it"
    ]


def test_a_missing_judge_is_skipped_only_when_not_required_or_not_asked_for() -> None:
    lenient = GateThresholds(require_judge=False)
    decision = evaluate_gate(
        candidate(),
        baseline=BASELINE,
        comparison=PASSING,
        judge_score=None,
        thresholds=lenient,
        judge_missing_reason="job failed",
    )
    assert decision.passed
    judge = by_name(decision.checks)["judge_score"]
    assert judge.skipped and judge.message == "skipped: judge missing (job failed)"

    off = evaluate_gate(
        candidate(),
        baseline=BASELINE,
        comparison=PASSING,
        judge_score=None,
        thresholds=THRESHOLDS,
        judge_requested=False,
    )
    assert off.passed
    assert by_name(off.checks)["judge_score"].message == "skipped: the judge was off for this run"


def test_no_baseline_skips_the_comparison() -> None:
    decision = evaluate_gate(candidate(rubric_mean=1.0), baseline=None, judge_score=4.0, thresholds=THRESHOLDS)

    assert decision.passed
    rubric = by_name(decision.checks)["non_inferiority"]
    assert rubric.skipped
    assert "no baseline" in rubric.message


def test_several_failures_are_all_listed() -> None:
    decision = evaluate_gate(
        candidate(valid_json_rate=0.5, mae_overall=0.2),
        baseline=BASELINE,
        comparison=PASSING,
        judge_score=2.0,
        thresholds=THRESHOLDS,
    )
    assert len(decision.failures) == 3


def test_decision_serialises_with_failures() -> None:
    decision = evaluate_gate(candidate(mae_overall=0.09), baseline=None, judge_score=4.0, thresholds=THRESHOLDS)
    data = decision.to_dict()
    assert data["passed"] is False
    assert data["failures"] == ["overall MAE 0.090 > 0.080"]
    assert data["checks"][1] == {
        "name": "non_inferiority",
        "passed": True,
        "actual": None,
        "threshold": None,
        "message": "skipped: no baseline to compare with",
        "skipped": True,
    }


def test_custom_thresholds_change_the_verdict() -> None:
    strict = GateThresholds(max_overall_mae=0.03)
    decision = evaluate_gate(candidate(), baseline=None, judge_score=None, thresholds=strict, judge_requested=False)
    assert decision.failures == ["overall MAE 0.040 > 0.030"]


def test_thresholds_from_dict_accepts_config_keys_and_strings() -> None:
    thresholds = GateThresholds.from_dict({"gate_max_overall_mae": "0.1", "min_judge_score": 4})
    assert thresholds == GateThresholds(max_overall_mae=0.1, min_judge_score=4.0)
    assert GateThresholds.from_dict({"gate_require_judge": "false"}).require_judge is False
    assert GateThresholds.from_dict({"require_judge": True}).require_judge is True
    with pytest.raises(ValueError, match="require_judge must be true or false"):
        GateThresholds.from_dict({"require_judge": "maybe"})
    assert GateThresholds.from_dict(None) == GateThresholds()
    assert GateThresholds.from_dict(thresholds.to_dict()) == thresholds


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"max_mae": 0.1}, "unknown gate threshold 'max_mae'"),
        ({"min_valid_json_rate": 1.5}, "min_valid_json_rate"),
        ({"max_overall_mae": "low"}, "max_overall_mae"),
        ({"min_judge_score": -1}, "min_judge_score"),
    ],
)
def test_thresholds_from_dict_rejects_bad_values(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GateThresholds.from_dict(data)


def test_a_judge_that_cannot_score_the_candidate_is_skipped_with_the_reason() -> None:
    candidate = {"valid_json_rate": 1.0, "rubric_mean": 4.5, "mae_overall": 0.03}
    decision = evaluate_gate(
        candidate,
        baseline=None,
        judge_score=None,
        thresholds=GateThresholds(require_judge=True),
        judge_requested=True,
        judge_not_applicable="the cascade's micro-router answers are none",
    )
    (judge,) = [c for c in decision.checks if c.name == "judge_score"]
    assert decision.passed and judge.skipped and judge.passed
    assert judge.message == "skipped: the cascade's micro-router answers are none"
    # without it, the same missing score fails the gate (require_judge)
    assert not evaluate_gate(
        candidate, baseline=None, judge_score=None, thresholds=GateThresholds(require_judge=True)
    ).passed


def test_the_mae_comparison_decides_on_the_upper_bound_against_plus_the_margin() -> None:
    # MAE: lower is better; the candidate's error is 0.01 above the baseline's on every query
    difference = paired_difference([(f"q{i}", 0.05) for i in range(50)], [(f"q{i}", 0.04) for i in range(50)])
    decision = non_inferiority(difference, metric="mae_overall", margin=0.02, direction="lower_is_better")
    ni = {"candidate": "distilled", "baseline": "baseline", **decision.to_dict()}
    gate = evaluate_gate(candidate(), baseline=BASELINE, comparison=ni, judge_score=4.0, thresholds=THRESHOLDS)
    check = by_name(gate.checks)["non_inferiority"]
    assert check.passed and check.threshold == 0.02 and check.actual == pytest.approx(0.01)
    worse = non_inferiority(difference, metric="mae_overall", margin=0.005, direction="lower_is_better")
    failed = evaluate_gate(
        candidate(),
        baseline=BASELINE,
        comparison={"candidate": "distilled", "baseline": "baseline", **worse.to_dict()},
        judge_score=4.0,
        thresholds=THRESHOLDS,
    )
    assert not failed.passed and "inferior" in failed.failures[0]
