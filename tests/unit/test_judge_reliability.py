"""The judge's reliability: its repeats (``judge_repeats``) aggregated per candidate, the per-query ratings read back
by judged prompt, and its agreement with the deterministic rubric (Spearman, disagreement share).

The expected correlations are computed by hand below (ranks with ties averaged, then Pearson on the ranks).
"""

from __future__ import annotations

import json
import math

import pytest

from search_router.pipeline.analysis import per_query_values
from search_router.pipeline.judge import (
    CALIBRATION_CATEGORY,
    JUDGE_METRIC,
    JudgeOutputUnreadable,
    JudgeRatings,
    average_ranks,
    judge_prompt,
    judge_ratings,
    judge_reliability,
    parse_judge_scores,
    read_judge,
    spearman,
)
from search_router.pipeline.metrics import QueryResult

CHANNELS = ["visual", "audio", "transcription", "metadata"]
REFERENCE = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
OFF_BY_01 = {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}


def _line(prompt: str | None, score: float | None, *, calibration: bool = False) -> str:
    record: dict[str, object] = {"inputRecord": {"category": CALIBRATION_CATEGORY if calibration else "visual"}}
    if prompt is not None:
        record["inputRecord"]["prompt"] = prompt  # type: ignore[index]
    if score is not None:
        record["automatedEvaluationResult"] = {"scores": [{"metricName": JUDGE_METRIC, "result": score}]}
    return json.dumps(record)


def _results() -> list[QueryResult]:
    """Four held-out answers whose rubric is 5 (exact), 4 (0.1 off on two channels), 1 and 1 (not JSON)."""
    return [
        QueryResult("cats", "visual", REFERENCE, "{}", weights=dict(REFERENCE)),
        QueryResult("dogs", "visual", REFERENCE, "{}", weights=dict(OFF_BY_01)),
        QueryResult("birds", "visual", REFERENCE, "prose", parse_failure="invalid_json"),
        QueryResult("fish", "visual", REFERENCE, "prose", parse_failure="invalid_json"),
    ]


# --- ranks and Spearman ---------------------------------------------------------------------------------------------
def test_tied_values_share_the_mean_of_the_ranks_they_span() -> None:
    assert average_ranks([1, 2, 2, 3, 5]) == [1.0, 2.5, 2.5, 4.0, 5.0]
    assert average_ranks([2, 1, 4, 4, 5]) == [2.0, 1.0, 3.5, 3.5, 5.0]
    assert average_ranks([3, 3, 3]) == [2.0, 2.0, 2.0]


def test_spearman_with_ties_matches_the_hand_computed_value() -> None:
    # ranks [1, 2.5, 2.5, 4, 5] and [2, 1, 3.5, 3.5, 5], both with mean 3:
    # deviations [-2, -.5, -.5, 1, 2] and [-1, -2, .5, .5, 2]; products sum to 7.25; squares to 9.5 and 9.5
    assert spearman([1, 2, 2, 3, 5], [2, 1, 4, 4, 5]) == pytest.approx(7.25 / 9.5)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 5, 100]) == pytest.approx(1.0)  # ranks, not values


def test_spearman_is_none_with_fewer_than_three_pairs_or_no_variance() -> None:
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([3, 3, 3, 3], [1, 2, 3, 4]) is None
    assert spearman([1, 2, 3, 4], [5, 5, 5, 5]) is None
    with pytest.raises(ValueError, match="paired"):
        spearman([1, 2, 3], [1, 2])


# --- the per-record ratings ----------------------------------------------------------------------------------------
def test_ratings_are_keyed_by_the_judged_prompt_and_the_calibration_record_is_left_out() -> None:
    judged = parse_judge_scores(
        [
            _line(judge_prompt("cats"), 4.0),
            _line(judge_prompt("dogs"), 2.0),
            _line(judge_prompt("cats"), 5.0),  # the same query a second time
            _line(None, 3.0),  # a record that does not say its prompt: counted, not keyed
            _line(judge_prompt("birds"), None),  # no score: not rated
            _line(judge_prompt("calibration record (not a held-out query)"), 1.0, calibration=True),
        ]
    )
    assert dict(judged.by_prompt) == {
        judge_prompt("cats"): 4.0,
        judge_prompt("dogs"): 2.0,
        judge_prompt("cats") + " #2": 5.0,
    }
    assert judged.records == 5 and judged.calibration == 1.0


def test_normalized_ratings_are_keyed_on_the_1_to_5_scale() -> None:
    judged = parse_judge_scores([_line(judge_prompt("cats"), 0.75), _line(judge_prompt("dogs"), 0.0)])
    assert dict(judged.by_prompt) == {judge_prompt("cats"): 4.0, judge_prompt("dogs"): 1.0}


# --- repeats in the report's reading of the judge step ---------------------------------------------------------------
def _job(repeat: int | None, status: str, score: float | None, reason: str | None = None) -> dict[str, object]:
    job: dict[str, object] = {"candidate": "distilled", "status": status, "score": score, "job_arn": f"arn:{repeat}"}
    if repeat is not None:
        job["repeat"] = repeat
    if reason is not None:
        job["reason"] = reason
    if status == "ok":
        job["output_keys"] = [f"runs/r/evaluation/judge-output/distilled--repeat-{repeat}/x_output.jsonl"]
    return job


def test_a_candidates_score_is_the_mean_of_its_usable_repeats_and_the_missing_one_is_named() -> None:
    # Given three repeats, the second of which failed (listed out of order, as a state may hold them)
    state = {
        "jobs": [
            _job(3, "ok", 3.0),
            _job(None, "ok", 4.0),
            _job(2, "missing", None, "judge job Failed: quota"),
        ]
    }
    judged = read_judge(state, enabled=True)
    verdict = judged.for_candidate("distilled")
    assert verdict["status"] == "ok" and verdict["score"] == pytest.approx(3.5)
    assert "1 of 3 judge repeats gave no score" in verdict["reason"]
    assert "repeat 2: judge job Failed: quota" in verdict["reason"] and "repeat(s) 1, 3" in verdict["reason"]
    assert [(r.repeat, r.score) for r in judged.runs["distilled"]] == [(1, 4.0), (2, None), (3, 3.0)]


def test_a_candidate_none_of_whose_repeats_scored_is_missing_with_every_reason() -> None:
    state = {"jobs": [_job(None, "missing", None, "denied"), _job(2, "InProgress", None)]}
    verdict = read_judge(state, enabled=True).for_candidate("distilled")
    assert verdict["status"] == "missing" and verdict["score"] is None
    assert verdict["reason"] == "no repeat of the judge gave a score (repeat 1: denied; repeat 2: judge unfinished)"


def test_the_ratings_of_each_usable_repeat_are_read_and_an_unreadable_one_is_a_reason() -> None:
    state = {"jobs": [_job(None, "ok", 4.0), _job(2, "ok", 3.0), _job(3, "missing", None, "stopped")]}
    runs = read_judge(state, enabled=True).runs["distilled"]
    texts = {runs[0].output_keys[0]: _line(judge_prompt("cats"), 4.0)}

    def read(key: str) -> str:
        if key not in texts:
            raise JudgeOutputUnreadable(f"s3://b/{key}: Access Denied")
        return texts[key]

    ratings = judge_ratings(runs, read)
    assert ratings.scores == [4.0, 3.0, None]
    assert [dict(r) for r in ratings.ratings] == [{judge_prompt("cats"): 4.0}]
    assert ratings.reason is not None
    assert "repeat 2: its results could not be read (s3://b/" in ratings.reason and "Access Denied" in ratings.reason
    assert "repeat 3 gave no score (stopped)" in ratings.reason


# --- judge_reliability ---------------------------------------------------------------------------------------------
def test_reliability_pairs_the_judge_mean_over_repeats_with_the_rubric_per_query() -> None:
    results = _results()
    assert per_query_values(results, CHANNELS)["rubric_mean"] == [5.0, 4.0, 1.0, 1.0]  # the fixture's premise
    repeat_1 = {judge_prompt("cats"): 5.0, judge_prompt("dogs"): 2.0, judge_prompt("birds"): 3.0}
    repeat_2 = {judge_prompt("cats"): 5.0, judge_prompt("dogs"): 4.0, judge_prompt("birds"): 4.0}
    repeat_2[judge_prompt("fish")] = 1.0
    judged = {"distilled": JudgeRatings(scores=[4.0, None, 3.5], ratings=[repeat_1, repeat_2], reason="repeat 2 lost")}

    (entry,) = judge_reliability(judged, {"distilled": results}, CHANNELS).values()

    # judge per query: cats 5, dogs 3, birds 3.5, fish 1 (only repeat 2 rated it); rubric 5, 4, 1, 1
    # |judge - rubric|: 0, 1, 2.5, 0 → one query of four differs by 2 or more
    assert entry["disagreement_share"] == pytest.approx(0.25)
    # ranks judge [4, 2, 3, 1], rubric [4, 3, 1.5, 1.5] (means 2.5): products 3.0, squares 5 and 4.5
    assert entry["rank_correlation"] == pytest.approx(3.0 / math.sqrt(5 * 4.5))
    assert entry["repeats"] == 3 and entry["scores"] == [4.0, None, 3.5]
    assert entry["spread"] == pytest.approx(0.5)
    assert entry["paired_queries"] == 4 and entry["reason"] == "repeat 2 lost"


def test_one_repeat_has_no_spread_and_too_few_pairs_no_correlation() -> None:
    results = _results()
    judged = {"base": JudgeRatings(scores=[2.0], ratings=[{judge_prompt("cats"): 1.0, judge_prompt("dogs"): 5.0}])}
    (entry,) = judge_reliability(judged, {"base": results}, CHANNELS).values()
    assert entry["repeats"] == 1 and entry["spread"] is None
    assert entry["rank_correlation"] is None and entry["paired_queries"] == 2
    assert entry["disagreement_share"] == pytest.approx(0.5)  # |1 - 5| = 4 counts, |5 - 4| = 1 does not
    assert "reason" not in entry


def test_no_readable_ratings_leave_the_agreement_unknown_not_zero() -> None:
    judged = {"distilled": JudgeRatings(scores=[4.0, 4.5], ratings=[], reason="repeat 1: no per-query ratings")}
    (entry,) = judge_reliability(judged, {"distilled": _results()}, CHANNELS).values()
    assert entry["spread"] == pytest.approx(0.5)
    assert entry["rank_correlation"] is None and entry["disagreement_share"] is None and entry["paired_queries"] == 0
