"""The micro-router and the cascade as evaluation candidates (search_router.pipeline.cascade): the results the
report scores them by, the τ sweep of its chart and the decision Promote acts on, checked against the report's
own metrics (search_router.pipeline.metrics.compute_metrics) on the same results."""

from __future__ import annotations

import math
from typing import Any

import pytest

from search_router.pipeline.cascade import (
    FREE,
    NEVER,
    cascade_outcome,
    compose,
    evaluate_cascade,
    micro_results,
)
from search_router.pipeline.metrics import UNSPLIT, Price, QueryResult, compute_metrics, metrics_by_split

NAMES = ("visual", "audio", "transcription", "metadata")
REFERENCE = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
CLOSE = {"visual": 0.63, "audio": 0.13, "transcription": 0.12, "metadata": 0.12}
WRONG = {"visual": 0.0, "audio": 0.9, "transcription": 0.05, "metadata": 0.05}
PRICE = Price(0.000035, 0.00014)


def prediction(number: int, micro: dict[str, float], confidence: float, split: str = "seen") -> dict[str, Any]:
    return {
        "query": f"query {number}",
        "split": split,
        "category": "visual",
        "reference": REFERENCE,
        "micro": micro,
        "confidence": confidence,
        "mae": 0.0,
        "latency_ms": 0.05,
    }


def model_result(number: int, weights: dict[str, float] | None = CLOSE, split: str = "seen") -> QueryResult:
    return QueryResult(
        query=f"query {number}",
        category="visual",
        reference=dict(REFERENCE),
        raw_text="{}",
        weights=weights,
        error_kind=None if weights is not None else "ThrottlingException",
        latency_ms=400.0,
        input_tokens=50,
        output_tokens=15,
        split=split,
    )


def held_out(n: int = 20) -> tuple[list[dict[str, Any]], list[QueryResult]]:
    """n queries: the more confident half of the micro-router's answers exact, the rest wrong; the model close."""
    predictions = [
        prediction(i, REFERENCE if i < n // 2 else WRONG, round(1 - i / n, 6), "seen" if i % 2 else "unseen_template")
        for i in range(n)
    ]
    models = [model_result(i, split="seen" if i % 2 else "unseen_template") for i in range(n)]
    return predictions, models


def test_the_micro_router_candidate_is_its_predictions_with_no_tokens() -> None:
    predictions, _ = held_out(4)
    results = micro_results(predictions)
    assert [r.weights for r in results] == [p["micro"] for p in predictions]
    assert [r.split for r in results] == [p["split"] for p in predictions]
    metrics = compute_metrics(results, NAMES, price=FREE)
    assert metrics["tokens"] == {"input_mean": 0.0, "output_mean": 0.0}
    assert metrics["cost_per_1m_routes"] == 0.0
    assert metrics["latency"]["mean"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"micro": None}, "has no 'micro' weights"),
        ({"confidence": 1.5}, "'confidence' must be a number within 0..1"),
        ({"confidence": True}, "'confidence' must be a number within 0..1"),
        ({"reference": "x"}, "'reference'"),
        ({"query": 3}, "'query'"),
    ],
)
def test_a_malformed_prediction_is_named_by_its_line(line: dict[str, Any], message: str) -> None:
    predictions, _ = held_out(3)
    predictions[1] = {**predictions[1], **line}
    with pytest.raises(ValueError, match="micro-router prediction 2") as caught:
        micro_results(predictions)
    assert message in str(caught.value)


def test_the_cascade_answers_from_the_micro_router_only_at_or_above_tau() -> None:
    predictions, models = held_out(10)
    micro = micro_results(predictions)
    confidences = [p["confidence"] for p in predictions]
    for tau in (0.0, 0.35, 0.5, 0.9, 1.0, NEVER):
        composed = compose(micro, confidences, models, tau)
        for result, m, c, d in zip(composed, micro, confidences, models, strict=True):
            assert result is (m if c >= tau else d)


def test_the_cascade_at_the_chosen_tau_and_its_sweep() -> None:
    # Given 20 queries whose 10 most confident micro answers are exact and the model close on every one
    predictions, models = held_out(20)
    evaluation = evaluate_cascade(predictions, models, NAMES, price=PRICE, margin=0.1)
    choice = evaluation.choice
    # Then the micro-router answers exactly the queries at or above τ, and the model the others
    tau = choice.tau
    # both splits are as hard (5 exact, 5 wrong): the first by name, seen (the odd queries, confidences 0.95, 0.85
    # ... 0.05, the five most confident exact); τ = 0.45 lets it answer 5 exact + 1 wrong (26 / 6 against the
    # model's 4); at 0.35, 27 / 7 < 4 - 0.1
    assert choice.split == "seen" and math.isclose(tau, 0.45)
    assert choice.answered_share_overall == 12 / 20  # confidences 1 - i / 20 >= 0.45: i = 0 ... 11
    for result, line, model in zip(evaluation.cascade, predictions, models, strict=True):
        assert (result.raw_text is None) == (line["confidence"] >= tau)
        assert result is model or line["confidence"] >= tau
    # the sweep has the grid, the chosen τ and "never"; its ends are the micro-router alone and the model alone
    taus = [point["tau"] for point in evaluation.sweep]
    assert taus[0] == 0.0 and taus[-1] is None and tau in taus and 0.5 in taus
    alone = {p["tau"]: p for p in evaluation.sweep}
    micro_metrics = compute_metrics(evaluation.micro, NAMES, price=FREE)
    model_metrics = compute_metrics(models, NAMES, price=PRICE)
    assert alone[0.0]["rubric_mean"] == micro_metrics["rubric_mean"] and alone[0.0]["answered_share"] == 1.0
    assert alone[0.0]["cost_per_1k_routes"] == 0.0
    assert alone[None]["rubric_mean"] == model_metrics["rubric_mean"] and alone[None]["answered_share"] == 0.0
    assert alone[None]["cost_per_1k_routes"] == pytest.approx(model_metrics["cost_per_1k_routes"])
    # at τ the cost is the model's over the share it still answers (the micro-router's tokens are none)
    at = alone[tau]
    assert at["cost_per_1k_routes"] == pytest.approx(model_metrics["cost_per_1k_routes"] * (1 - at["answered_share"]))
    assert at["rubric_mean"] == compute_metrics(evaluation.cascade, NAMES, price=PRICE)["rubric_mean"]


def test_predictions_and_model_results_of_different_held_out_sets_are_named() -> None:
    predictions, models = held_out(6)
    models[2] = model_result(99)
    with pytest.raises(ValueError, match="not of the same held-out set: 1 predicted queries have no model result"):
        evaluate_cascade(predictions, models, NAMES, price=PRICE)
    with pytest.raises(ValueError, match="1 model results have no prediction"):
        evaluate_cascade(predictions[:-1], held_out(6)[1], NAMES, price=PRICE)


def test_an_unanswered_model_query_counts_as_the_model_s_miss() -> None:
    # The model throttled on every query: the cascade can only gain, τ is the lowest confidence
    predictions, _ = held_out(10)
    models = [model_result(i, weights=None, split=p["split"]) for i, p in enumerate(predictions)]
    evaluation = evaluate_cascade(predictions, models, NAMES, price=PRICE)
    assert evaluation.choice.tau == min(p["confidence"] for p in predictions)


def test_metrics_per_split_cover_every_result_once() -> None:
    _, models = held_out(9)
    models.append(QueryResult(query="old", category=None, reference=dict(REFERENCE), weights=CLOSE))
    by_split = metrics_by_split(models, NAMES, price=PRICE)
    assert list(by_split) == ["seen", "unseen_template", UNSPLIT]
    assert sum(m["n"] for m in by_split.values()) == len(models)
    seen = [r for r in models if r.split == "seen"]
    assert by_split["seen"] == compute_metrics(seen, NAMES, price=PRICE)


def _outcome(**overrides: Any) -> dict[str, Any]:
    predictions, models = held_out(20)
    arguments: dict[str, Any] = {
        "setting": "auto",
        "artifact_uri": "s3://bucket/runs/r/micro-router/model.bin",
        "evaluation": evaluate_cascade(predictions, models, NAMES, price=PRICE),
        "unavailable": None,
        "model_passed": True,
        "cascade_passed": True,
        "cascade_failures": (),
    }
    return cascade_outcome(**{**arguments, **overrides})


def test_the_cascade_is_enabled_only_when_everything_allows_it() -> None:
    enabled = _outcome()
    assert enabled["enabled"] and enabled["tau"] is not None and "passed the quality gate at τ" in enabled["reason"]
    predictions, _ = held_out(20)
    answered = sum(p["confidence"] >= enabled["tau"] for p in predictions) / len(predictions)
    assert 0 < answered < 1 and math.isclose(enabled["answered_share"], answered)
    cases = {
        "off": (_outcome(setting="off"), "router_cascade is 'off'"),
        "model failed": (_outcome(model_passed=False), "the distilled model did not pass"),
        "cascade failed": (
            _outcome(cascade_passed=False, cascade_failures=["overall MAE 0.2 > 0.08"]),
            "failed the quality gate: overall MAE 0.2 > 0.08",
        ),
        "not trained": (_outcome(artifact_uri=None), "no micro-router was trained"),
        "not evaluated": (_outcome(evaluation=None, unavailable="broken"), "could not be evaluated: broken"),
    }
    for name, (outcome, reason) in cases.items():
        assert not outcome["enabled"], name
        assert reason in outcome["reason"], name


def test_no_tau_within_the_margin_keeps_the_cascade_off() -> None:
    predictions = [prediction(i, WRONG, 0.9) for i in range(12)]
    models = [model_result(i) for i in range(12)]
    outcome = _outcome(evaluation=evaluate_cascade(predictions, models, NAMES, price=PRICE))
    assert not outcome["enabled"] and outcome["tau"] is None
    assert "no τ lets the micro-router answer" in outcome["reason"]
