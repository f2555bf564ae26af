"""The judge metric stays within Bedrock's limits, and its results are read on the 1-5 scale whatever Bedrock's
(undocumented) reporting convention: raw ratings, or normalized scores (rating - 1) / 4.

A calibration record (an answer that is not JSON, rated 1 by the rubric) rides along in every judge job, so a job
whose every result is 1.0 is never mistaken: all perfect (normalized) and all worst (raw) are told apart.
"""

from __future__ import annotations

import json

import pytest

from search_router.pipeline.judge import (
    CALIBRATION_CATEGORY,
    CALIBRATION_QUERY,
    CALIBRATION_RESPONSE,
    JUDGE_METRIC,
    SCALE_NORMALIZED,
    SCALE_RATING,
    calibration_record,
    judge_custom_metric,
    parse_judge_scores,
)


def _line(score: object, metric: str = JUDGE_METRIC, *, calibration: bool = False) -> str:
    record: dict[str, object] = {"automatedEvaluationResult": {"scores": [{"metricName": metric, "result": score}]}}
    record["inputRecord"] = {"prompt": "q", "category": CALIBRATION_CATEGORY if calibration else "visual_dominant"}
    return json.dumps(record)


def test_metric_definition_respects_the_service_limits() -> None:
    definition = judge_custom_metric()["customMetricDefinition"]
    assert definition["name"] == JUDGE_METRIC
    assert len(definition["instructions"]) <= 5000
    for variable in ("{{prompt}}", "{{prediction}}", "{{ground_truth}}"):
        assert variable in definition["instructions"]
    assert 1 <= len(definition["ratingScale"]) <= 10
    assert all(len(item["definition"]) <= 100 for item in definition["ratingScale"])


def test_raw_ratings_are_kept() -> None:
    judged = parse_judge_scores([_line(4.0), _line(5), _line(2.0), _line(1.0, calibration=True)])
    assert judged.ratings == [4.0, 5.0, 2.0]
    assert (judged.scale, judged.calibration, judged.records, judged.problem) == (SCALE_RATING, 1.0, 3, None)


def test_normalized_results_are_mapped_to_the_1_to_5_scale() -> None:
    judged = parse_judge_scores([_line(0.75), _line(1.0), _line(0.0)])
    assert judged.ratings == pytest.approx([4.0, 5.0, 1.0])
    assert judged.scale == SCALE_NORMALIZED


def test_a_perfect_normalized_score_is_read_as_the_best_not_the_worst() -> None:
    # Every held-out answer normalized 1.0; the calibration record (not JSON) 0.0: all perfect
    judged = parse_judge_scores([_line(1.0), _line(1.0), _line(1.0), _line(0.0, calibration=True)])
    assert judged.ratings == [5.0, 5.0, 5.0]
    assert judged.scale == SCALE_NORMALIZED and judged.calibration == 1.0


def test_all_worst_raw_ratings_are_read_as_the_worst() -> None:
    # Every answer rated 1 on the raw scale, like the calibration record: all worst
    judged = parse_judge_scores([_line(1.0), _line(1.0), _line(1.0, calibration=True)])
    assert judged.ratings == [1.0, 1.0]
    assert judged.scale == SCALE_RATING


def test_all_ones_without_the_calibration_result_give_no_score() -> None:
    judged = parse_judge_scores([_line(1.0), _line(1.0)])
    assert judged.ratings == []
    assert judged.problem is not None and "cannot be told" in judged.problem


def test_a_judge_that_rates_the_unparseable_answer_well_is_not_trusted() -> None:
    judged = parse_judge_scores([_line(4.0), _line(5.0), _line(4.0, calibration=True)])
    assert judged.ratings == []
    assert judged.problem is not None and "not following the rubric" in judged.problem


def test_the_calibration_record_is_found_by_its_prompt_when_its_category_is_not_echoed() -> None:
    prompt = {"inputRecord": {"prompt": f"Route this video search query to the search channels: {CALIBRATION_QUERY}"}}
    calibration = json.dumps(
        {**prompt, "automatedEvaluationResult": {"scores": [{"metricName": JUDGE_METRIC, "result": 0.0}]}}
    )
    judged = parse_judge_scores([_line(1.0), _line(1.0), calibration])
    assert judged.ratings == [5.0, 5.0] and judged.records == 2 and judged.calibration == 1.0


def test_other_metrics_blank_and_broken_lines_are_ignored() -> None:
    lines = ["", "not json", "[1]", _line(3.0, metric="Correctness"), _line(True), _line(float("nan")), _line(3.0)]
    judged = parse_judge_scores(lines)
    assert judged.ratings == [3.0]
    assert judged.records == 4  # the lines that are records, with or without an OverallQuality score


def test_the_calibration_record_is_a_judge_dataset_line() -> None:
    record = calibration_record("Route this video search query: x", '{"visual": 1.0}', "distilled")
    assert record["category"] == CALIBRATION_CATEGORY
    assert record["modelResponses"] == [{"response": CALIBRATION_RESPONSE, "modelIdentifier": "distilled"}]
    with pytest.raises(json.JSONDecodeError):
        json.loads(CALIBRATION_RESPONSE)  # the rubric's 1: not parseable
