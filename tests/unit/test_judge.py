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
    read_judge,
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


# --- the report's reading of the judge step ------------------------------------------------------------------------
def test_a_finished_judge_gives_each_candidate_its_own_verdict() -> None:
    state = {
        "jobs": [
            {"candidate": "distilled", "status": "ok", "score": 4.2, "job_arn": "arn:1"},
            {"candidate": "baseline", "status": "missing", "score": None, "reason": "no scores", "job_arn": "arn:2"},
        ]
    }
    judged = read_judge(state, enabled=True)
    assert judged.for_candidate("distilled") == {"score": 4.2, "status": "ok", "reason": None}
    assert judged.for_candidate("baseline") == {"score": None, "status": "missing", "reason": "no scores"}
    assert judged.unfinished == []


def test_jobs_the_poll_loop_left_running_are_missing_and_listed_to_be_stopped() -> None:
    state = {"jobs": [{"candidate": "distilled", "status": "InProgress", "score": None, "job_arn": "arn:1"}]}
    judged = read_judge(state, enabled=True)
    assert judged.for_candidate("distilled") == {"score": None, "status": "missing", "reason": "judge unfinished"}
    assert judged.unfinished == ["arn:1"]
    # stopped even when the run has the judge off (they bill while they run)
    assert read_judge(state, enabled=False).unfinished == ["arn:1"]


def test_a_failed_judge_step_is_the_reason_for_every_candidate() -> None:
    failed = {"error": {"Error": "States.TaskFailed", "Cause": "x" * 1000}}
    verdict = read_judge(failed, enabled=True).for_candidate("any")
    assert verdict["status"] == "missing" and verdict["score"] is None
    assert verdict["reason"] == "the judge step failed: " + "x" * 300
    assert read_judge({"error": {"Error": "States.Timeout"}}, enabled=True).for_candidate("a")["reason"] == (
        "the judge step failed: States.Timeout"
    )


def test_a_judge_step_that_did_not_run_is_missing_when_asked_for_and_skipped_when_not() -> None:
    assert read_judge(None, enabled=True).for_candidate("distilled") == {
        "score": None,
        "status": "missing",
        "reason": "the judge step did not run",
    }
    assert read_judge(None, enabled=False).for_candidate("distilled") == {
        "score": None,
        "status": "skipped",
        "reason": "judge off",
    }


def test_a_candidate_the_judge_did_not_see_is_judge_off() -> None:
    state = {"jobs": [{"candidate": "distilled", "status": "ok", "score": 4.0, "job_arn": "arn:1"}]}
    assert read_judge(state, enabled=True).for_candidate("other")["status"] == "skipped"
