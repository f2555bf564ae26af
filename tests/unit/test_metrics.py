"""Evaluation metrics against hand-computed expectations (every number below was worked out on paper)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from search_router.pipeline.metrics import (
    NO_JSON_OBJECT_REASONS,
    Price,
    QueryResult,
    compute_metrics,
    dominant_channel,
    percentile,
    rubric_score,
)
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS

CHANNELS = DEFAULT_CHANNELS  # visual, audio, transcription, metadata
NOVA_MICRO = Price(input_per_1k=0.000035, output_per_1k=0.00014)


def w(visual: float, audio: float, transcription: float, metadata: float) -> dict[str, float]:
    return {"visual": visual, "audio": audio, "transcription": transcription, "metadata": metadata}


def result(
    reference: dict[str, float],
    *,
    weights: dict[str, float] | None = None,
    parse_failure: str | None = None,
    error_kind: str | None = None,
    latency_ms: float | None = None,
    service_latency_ms: int | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    raw_text: str | None = "{...}",
) -> QueryResult:
    return QueryResult(
        query="q",
        category="visual",
        reference=reference,
        raw_text=raw_text,
        weights=weights,
        parse_failure=parse_failure,
        error_kind=error_kind,
        latency_ms=latency_ms,
        service_latency_ms=service_latency_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


# ---------------------------------------------------------------------------------------------------------
# rubric_score
# ---------------------------------------------------------------------------------------------------------
def test_off_by_a_tenth_on_two_channels_scores_4() -> None:
    # errors 0.1, 0.1, 0, 0: every channel within 0.10 but not within 0.05
    assert rubric_score(w(0.7, 0.1, 0.1, 0.1), w(0.6, 0.2, 0.1, 0.1), CHANNELS) == 4
    # 0.4 - 0.3 is 0.10000000000000003 in binary: still "within 0.10"
    assert rubric_score(w(0.4, 0.3, 0.2, 0.1), w(0.3, 0.4, 0.2, 0.1), CHANNELS) == 4


def test_exact_and_near_answers_score_5() -> None:
    assert rubric_score(w(0.6, 0.2, 0.1, 0.1), w(0.6, 0.2, 0.1, 0.1), CHANNELS) == 5
    # 0.35 - 0.3 is 0.04999999999999999 or 0.05000000000000002 in binary: the boundary is inclusive
    assert rubric_score(w(0.35, 0.15, 0.4, 0.1), w(0.3, 0.2, 0.4, 0.1), CHANNELS) == 5


def test_dominant_right_and_mean_error_under_015_scores_3() -> None:
    # errors 0.15, 0.05, 0.05, 0.15 → worst 0.15 (> 0.10), mean 0.10 (< 0.15), visual dominant in both
    assert rubric_score(w(0.45, 0.25, 0.15, 0.15), w(0.6, 0.2, 0.2, 0.0), CHANNELS) == 3


def test_dominant_right_but_mean_error_015_scores_2() -> None:
    # errors 0.3, 0.3, 0, 0 → mean exactly 0.15: "mean error ≥ 0.15" is a 2 even with the dominant right
    assert rubric_score(w(0.9, 0.1, 0.0, 0.0), w(0.6, 0.4, 0.0, 0.0), CHANNELS) == 2


def test_wrong_dominant_scores_2() -> None:
    # errors 0.4, 0.4, 0, 0 → mean 0.2 (not > 0.30), audio predicted dominant, visual in the reference
    assert rubric_score(w(0.3, 0.5, 0.1, 0.1), w(0.7, 0.1, 0.1, 0.1), CHANNELS) == 2


def test_mean_error_over_030_scores_1() -> None:
    # errors 1, 1, 0, 0 → mean 0.5
    assert rubric_score(w(0.0, 1.0, 0.0, 0.0), w(1.0, 0.0, 0.0, 0.0), CHANNELS) == 1


def test_unparseable_or_missing_keys_score_1() -> None:
    assert rubric_score(None, w(0.6, 0.2, 0.1, 0.1), CHANNELS) == 1
    assert rubric_score({"visual": 0.6, "audio": 0.4}, w(0.6, 0.4, 0.0, 0.0), CHANNELS) == 1


def test_reference_without_a_channel_is_an_error_not_a_score() -> None:
    with pytest.raises(ValueError, match="metadata"):
        rubric_score(w(0.6, 0.2, 0.1, 0.1), {"visual": 0.6, "audio": 0.2, "transcription": 0.2}, CHANNELS)


def test_dominant_ties_go_to_the_first_channel_in_channel_order() -> None:
    assert dominant_channel(w(0.2, 0.4, 0.4, 0.0), CHANNELS) == "audio"
    assert dominant_channel({"metadata": 0.5, "visual": 0.5, "audio": 0, "transcription": 0}, CHANNELS) == "visual"
    assert dominant_channel({"a": 0.5, "b": 0.5}, ["b", "a"]) == "b"


# ---------------------------------------------------------------------------------------------------------
# percentile
# ---------------------------------------------------------------------------------------------------------
def test_percentile_interpolates_linearly_between_closest_ranks() -> None:
    values = [50, 15, 40, 20, 35]  # sorted: 15, 20, 35, 40, 50
    assert percentile(values, 0) == 15
    assert percentile(values, 50) == 35
    assert percentile(values, 100) == 50
    assert percentile(values, 40) == pytest.approx(29.0)  # rank 1.6: 20 + 0.6 × 15
    assert percentile(values, 95) == pytest.approx(48.0)  # rank 3.8: 40 + 0.8 × 10
    assert percentile([7.5], 99) == 7.5


def test_percentile_rejects_no_values_and_bad_q() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1, 2], 101)


# ---------------------------------------------------------------------------------------------------------
# compute_metrics
# ---------------------------------------------------------------------------------------------------------
def _mixed_results() -> list[QueryResult]:
    return [
        # A: +0.1 visual, −0.1 audio → mean error 0.05, rubric 4, dominant right
        result(
            w(0.6, 0.2, 0.1, 0.1),
            weights=w(0.7, 0.1, 0.1, 0.1),
            latency_ms=100,
            service_latency_ms=90,
            input_tokens=100,
            output_tokens=50,
        ),
        # B: dominant wrong, errors 0.4, 0.4 → mean error 0.2, rubric 2
        result(
            w(0.7, 0.1, 0.1, 0.1),
            weights=w(0.3, 0.5, 0.1, 0.1),
            latency_ms=200,
            service_latency_ms=180,
            input_tokens=120,
            output_tokens=60,
        ),
        # C: prose, no JSON → rubric 1, not valid JSON
        result(
            w(0.1, 0.1, 0.1, 0.7),
            parse_failure="no_json",
            raw_text="metadata, mostly",
            latency_ms=300,
            input_tokens=80,
            output_tokens=40,
        ),
        # D: throttled → not answered, latency and tokens ignored, rubric 1
        result(w(0.25, 0.25, 0.25, 0.25), error_kind="ThrottlingException", raw_text=None, latency_ms=60_000),
        # E: exact → rubric 5
        result(
            w(0.5, 0.5, 0.0, 0.0), weights=w(0.5, 0.5, 0.0, 0.0), latency_ms=400, input_tokens=100, output_tokens=50
        ),
        # F: a JSON object whose weights sum to 2 → valid JSON, not schema-valid, rubric 1
        result(w(0.4, 0.2, 0.2, 0.2), parse_failure="bad_sum", latency_ms=1000, input_tokens=100, output_tokens=50),
    ]


def test_metrics_of_a_mixed_run_match_hand_computation() -> None:
    metrics = compute_metrics(_mixed_results(), CHANNELS, price=NOVA_MICRO)

    assert metrics["n"] == 6
    assert metrics["answered"] == 5
    assert metrics["answered_rate"] == pytest.approx(5 / 6)
    assert metrics["valid_json"] == 4  # A, B, E, F
    assert metrics["valid_json_rate"] == pytest.approx(4 / 6)
    assert metrics["schema_valid"] == 3  # A, B, E
    assert metrics["schema_valid_rate"] == pytest.approx(0.5)
    # visual: (0.1 + 0.4 + 0) / 3; audio likewise; transcription and metadata never off
    assert metrics["mae_per_channel"] == pytest.approx(
        {"visual": 0.5 / 3, "audio": 0.5 / 3, "transcription": 0.0, "metadata": 0.0}
    )
    assert metrics["mae_overall"] == pytest.approx((0.05 + 0.2 + 0.0) / 3)
    assert metrics["max_abs_error"] == pytest.approx(0.4)
    assert metrics["dominant_accuracy"] == pytest.approx(2 / 6)  # A and E, over all six queries
    assert metrics["within_005_rate"] == pytest.approx(1 / 6)  # E
    assert metrics["within_010_rate"] == pytest.approx(2 / 6)  # A, E
    assert metrics["rubric_distribution"] == {"1": 3, "2": 1, "3": 0, "4": 1, "5": 1}
    assert metrics["rubric_mean"] == pytest.approx((4 + 2 + 1 + 1 + 5 + 1) / 6)
    assert metrics["errors_by_kind"] == {"ThrottlingException": 1}
    assert metrics["parse_failures_by_reason"] == {"bad_sum": 1, "no_json": 1}


def test_latency_uses_answered_calls_only() -> None:
    latency = compute_metrics(_mixed_results(), CHANNELS, price=None)["latency"]

    # answered latencies: 100, 200, 300, 400, 1000 (the throttled call's 60 s is left out)
    assert latency["count"] == 5
    assert latency["mean"] == pytest.approx(400.0)
    assert latency["p50"] == pytest.approx(300.0)
    assert latency["p95"] == pytest.approx(880.0)  # rank 3.8: 400 + 0.8 × 600
    assert latency["p99"] == pytest.approx(976.0)  # rank 3.96: 400 + 0.96 × 600
    assert (latency["min"], latency["max"]) == (100.0, 1000.0)


def test_tokens_and_cost_from_known_tokens_at_the_nova_micro_price() -> None:
    metrics = compute_metrics(_mixed_results(), CHANNELS, price=NOVA_MICRO)

    assert metrics["service_latency_mean"] == pytest.approx(135.0)  # (90 + 180) / 2
    assert metrics["tokens"] == pytest.approx({"input_mean": 100.0, "output_mean": 50.0})
    # one route: 0.1 × $0.000035 + 0.05 × $0.00014 = $0.0000035 + $0.000007 = $0.0000105
    assert metrics["cost_per_1k_routes"] == pytest.approx(0.0105)
    assert metrics["cost_per_1m_routes"] == pytest.approx(10.5)
    assert metrics["price"] == {"input_per_1k": 0.000035, "output_per_1k": 0.00014}


def test_cost_is_none_without_a_price() -> None:
    metrics = compute_metrics(_mixed_results(), CHANNELS, price=None)
    assert metrics["cost_per_1k_routes"] is None
    assert metrics["cost_per_1m_routes"] is None


def test_metrics_are_json_serialisable() -> None:
    metrics = compute_metrics(_mixed_results(), CHANNELS, price=NOVA_MICRO)
    assert json.loads(json.dumps(metrics, allow_nan=False)) == metrics


def test_garbage_for_every_query_gives_zero_rates_and_no_mae() -> None:
    results = [
        result(w(0.6, 0.2, 0.1, 0.1), parse_failure="invalid_json", latency_ms=500, input_tokens=90, output_tokens=9),
        result(w(0.1, 0.1, 0.1, 0.7), parse_failure="empty", raw_text="", latency_ms=700),
    ]

    metrics = compute_metrics(results, CHANNELS, price=NOVA_MICRO)

    assert metrics["valid_json_rate"] == 0.0
    assert metrics["schema_valid_rate"] == 0.0
    assert metrics["mae_overall"] is None
    assert metrics["mae_per_channel"] == dict.fromkeys(CHANNELS.names)
    assert metrics["max_abs_error"] is None
    assert metrics["dominant_accuracy"] == 0.0
    assert metrics["within_010_rate"] == 0.0
    assert metrics["rubric_mean"] == 1.0
    assert metrics["rubric_distribution"]["1"] == 2
    assert metrics["latency"]["mean"] == pytest.approx(600.0)


def test_every_call_failing_gives_no_latency_and_no_cost() -> None:
    results = [result(w(0.6, 0.2, 0.1, 0.1), error_kind="Timeout", raw_text=None)]

    metrics = compute_metrics(results, CHANNELS, price=NOVA_MICRO)

    assert metrics["answered"] == 0
    assert metrics["latency"] == {
        "count": 0,
        "mean": None,
        "p50": None,
        "p95": None,
        "p99": None,
        "min": None,
        "max": None,
    }
    assert metrics["tokens"] == {"input_mean": None, "output_mean": None}
    assert metrics["cost_per_1m_routes"] is None
    assert metrics["errors_by_kind"] == {"Timeout": 1}


def test_no_queries_gives_none_rates_without_crashing() -> None:
    metrics = compute_metrics([], CHANNELS, price=NOVA_MICRO)
    assert metrics["n"] == 0
    assert metrics["valid_json_rate"] is None
    assert metrics["rubric_mean"] is None
    assert metrics["rubric_distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}


def test_valid_json_definition_excludes_exactly_the_no_object_reasons() -> None:
    assert {"empty", "no_json", "invalid_json", "not_an_object", "too_large"} <= NO_JSON_OBJECT_REASONS
    assert "missing_channels" not in NO_JSON_OBJECT_REASONS
    assert "bad_sum" not in NO_JSON_OBJECT_REASONS
    ref = w(0.6, 0.2, 0.1, 0.1)
    assert result(ref, parse_failure="missing_channels").valid_json
    assert not result(ref, parse_failure="not_an_object").valid_json
    assert not result(ref, weights=ref, error_kind="Timeout").valid_json


# ---------------------------------------------------------------------------------------------------------
# QueryResult
# ---------------------------------------------------------------------------------------------------------
def test_query_result_round_trips_through_json() -> None:
    original = result(
        w(0.6, 0.2, 0.1, 0.1),
        weights=w(0.7, 0.1, 0.1, 0.1),
        latency_ms=812.5,
        service_latency_ms=790,
        input_tokens=101,
        output_tokens=42,
    )
    restored = QueryResult.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("query", None),
        ("reference", None),
        ("reference", {"visual": "high"}),
        ("input_tokens", -1),
        ("latency_ms", "1"),
    ],
)
def test_query_result_from_dict_names_the_bad_field(field: str, value: Any) -> None:
    data = result(w(0.6, 0.2, 0.1, 0.1)).to_dict()
    data[field] = value
    with pytest.raises(ValueError, match=field):
        QueryResult.from_dict(data)


def test_query_result_from_parse_keeps_weights_or_the_failure_reason() -> None:
    ref = w(0.6, 0.2, 0.1, 0.1)
    text = '{"visual":0.7,"audio":0.1,"transcription":0.1,"metadata":0.1,"reasoning":"scenery"}'

    ok = QueryResult.from_parse(
        query="q",
        category=None,
        reference=ref,
        raw_text=text,
        parsed=parse_routing_answer(text, CHANNELS),
        latency_ms=10.0,
    )
    bad = QueryResult.from_parse(
        query="q", category=None, reference=ref, raw_text="visual!", parsed=parse_routing_answer("visual!", CHANNELS)
    )

    assert ok.weights == pytest.approx(w(0.7, 0.1, 0.1, 0.1))
    assert ok.parse_failure is None
    assert bad.weights is None
    assert bad.parse_failure == "no_json"
    assert rubric_score(ok.weights, ref, CHANNELS) == 4


def test_price_accepts_the_configuration_shape_and_rejects_negatives() -> None:
    assert Price.from_dict({"input": 0.001, "output": 0.005}) == Price(0.001, 0.005)
    assert Price.from_dict({"input_per_1k": 0.001, "output_per_1k": 0.005}) == Price(0.001, 0.005)
    with pytest.raises(ValueError, match="output"):
        Price.from_dict({"input": 0.001})
    with pytest.raises(ValueError, match="input_per_1k"):
        Price(-1.0, 0.0)
