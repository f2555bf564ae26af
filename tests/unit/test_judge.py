"""The judge metric stays within Bedrock's limits and its scores are read on the 1-5 scale."""

from __future__ import annotations

import json

import pytest

from routing.judge import JUDGE_METRIC, judge_custom_metric, parse_judge_scores


def _line(score: object, metric: str = JUDGE_METRIC) -> str:
    return json.dumps({"automatedEvaluationResult": {"scores": [{"metricName": metric, "result": score}]}})


def test_metric_definition_respects_the_service_limits() -> None:
    definition = judge_custom_metric()["customMetricDefinition"]
    assert definition["name"] == JUDGE_METRIC
    assert len(definition["instructions"]) <= 5000
    for variable in ("{{prompt}}", "{{prediction}}", "{{ground_truth}}"):
        assert variable in definition["instructions"]
    assert 1 <= len(definition["ratingScale"]) <= 10
    assert all(len(item["definition"]) <= 100 for item in definition["ratingScale"])


def test_raw_ratings_are_kept() -> None:
    assert parse_judge_scores([_line(4.0), _line(5), _line(2.0)]) == [4.0, 5.0, 2.0]


def test_normalized_results_are_mapped_to_the_1_to_5_scale() -> None:
    assert parse_judge_scores([_line(0.75), _line(1.0), _line(0.0)]) == pytest.approx([4.0, 5.0, 1.0])


def test_all_ones_are_read_conservatively_as_the_lowest_rating() -> None:
    assert parse_judge_scores([_line(1.0), _line(1.0)]) == [1.0, 1.0]


def test_other_metrics_blank_and_broken_lines_are_ignored() -> None:
    lines = ["", "not json", _line(3.0, metric="Correctness"), _line(True), _line(3.0)]
    assert parse_judge_scores(lines) == [3.0]
