"""The scheduled retraining's decision (search_router.pipeline.retraining): new queries since the last scheduled run,
the production held-out sample drawn by traffic, the training queries most frequent first, and every malformed line
of a compacted file counted."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from search_router.contract.layout import captured_day, captured_queries
from search_router.pipeline.queries.captured import query_file
from search_router.pipeline.queries.query import normalize_query
from search_router.pipeline.queries.user_files import parse_user_queries
from search_router.pipeline.retraining import (
    START,
    TOO_FEW_NEW_QUERIES,
    CapturedQueries,
    decide,
    weighted_sample,
)

DAY1, DAY2, DAY3 = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)


def day_file(*queries: tuple[str, int]) -> str:
    return query_file(queries).decode()


def captured_days(days: dict[date, list[tuple[str, int]]]) -> CapturedQueries:
    captured = CapturedQueries()
    for day, queries in days.items():
        captured.add_day(day, day_file(*queries), where=captured_queries(day))
    return captured


def test_new_queries_are_the_distinct_ones_no_day_up_to_the_last_run_had() -> None:
    captured = captured_days(
        {
            DAY1: [("sunset over mountains", 5), ("jazz piano", 2)],
            DAY2: [("Sunset over mountains!", 3), ("cat videos", 1)],
            DAY3: [("cat videos", 4), ("rain on a tin roof", 2)],
        }
    )
    assert set(captured.new_counts(None)) == {"sunset over mountains", "jazz piano", "cat videos", "rain on a tin roof"}
    assert captured.new_counts(DAY1) == Counter({"cat videos": 5, "rain on a tin roof": 2})
    assert captured.new_counts(DAY3) == Counter()


def test_too_few_new_queries_skip_with_the_numbers_and_the_setting_to_change() -> None:
    captured = captured_days({DAY1: [(f"old query {i}", 1) for i in range(50)], DAY2: [("one new query", 9)]})
    decision = decide(captured, through=DAY1, min_new=10, heldout=2, max_training=100, seed="s")
    assert decision.status == TOO_FEW_NEW_QUERIES and not decision.start
    assert (decision.new_queries, decision.days, decision.since, decision.captured_queries) == (1, 1, DAY2, 51)
    assert decision.training == () and decision.heldout == ()
    assert "1 new distinct queries since 2026-11-28" in decision.explanation()
    assert "retrain_min_new_queries" in decision.explanation()
    nothing = decide(captured, through=DAY2, min_new=10, heldout=2, max_training=100, seed="s")
    assert nothing.new_queries == 0 and nothing.days == 0 and "in all captured days" in nothing.explanation()


def test_a_start_holds_out_new_queries_and_trains_on_the_rest_most_frequent_first() -> None:
    old = [(f"old query {i}", 100 - i) for i in range(40)]
    new = [(f"new query {i}", 1 + i % 7) for i in range(60)]
    captured = captured_days({DAY1: old, DAY2: new[:30], DAY3: [*new[30:], ("old query 39", 500)]})
    decision = decide(captured, through=DAY1, min_new=50, heldout=15, max_training=80, seed="run-1")
    assert decision.status == START and decision.new_queries == 60 and decision.through == DAY3
    held = {normalize_query(q) for q, _ in decision.heldout}
    trained = [normalize_query(q) for q, _ in decision.training]
    assert len(held) == 15 and held <= {normalize_query(q) for q, _ in new}  # drawn from the new traffic
    assert not held & set(trained)  # never trained on
    # every other captured query trains (85 of them, 80 kept, 5 counted over the limit), most frequent first,
    # counts summed over the days
    assert len(trained) == 80 and decision.training_over_limit == 5
    assert decision.training[0] == ("old query 39", 561)
    counts = [n for _, n in decision.training]
    assert counts == sorted(counts, reverse=True)
    # deterministic for the seed; another seed draws another sample
    assert decide(captured, through=DAY1, min_new=50, heldout=15, max_training=80, seed="run-1") == decision
    other = decide(captured, through=DAY1, min_new=50, heldout=15, max_training=80, seed="run-2")
    assert {q for q, _ in other.heldout} != {q for q, _ in decision.heldout}


def test_the_heldout_sample_follows_the_traffic() -> None:
    counts = {"frequent": 1_000, **{f"rare {i}": 1 for i in range(99)}}
    picked = Counter(key for seed in range(300) for key in weighted_sample(counts, 5, seed=str(seed)))
    assert picked["frequent"] > 290  # ~91% of the traffic: in nearly every sample of 5
    assert weighted_sample({"a": 1, "b": 2}, 5, seed="x") == ["a", "b"]


def test_the_heldout_must_leave_new_queries_to_train_on() -> None:
    with pytest.raises(ValueError, match=r"held-out sample \(10\) must be smaller than the new queries required"):
        decide(CapturedQueries(), through=None, min_new=10, heldout=10, max_training=5, seed="s")


def test_malformed_lines_are_counted_by_reason_with_where() -> None:
    captured = CapturedQueries()
    text = "\n".join(
        [
            json.dumps({"query": "fine", "count": 2}),
            "not json",
            json.dumps(["a list"]),
            json.dumps({"query": "  ?! "}),
            json.dumps({"query": "zero", "count": 0}),
            json.dumps({"query": "bool", "count": True}),
            "",
        ]
    )
    captured.add_day(DAY1, text, where="inputs/captured/2026-11-27.jsonl")
    assert captured.days[DAY1] == Counter({"fine": 2})
    assert captured.malformed == Counter({"not_json": 1, "not_an_object": 1, "missing_query": 1, "bad_count": 2})
    assert captured.samples[0] == "inputs/captured/2026-11-27.jsonl line 2: not_json"
    decision = decide(captured, through=None, min_new=5, heldout=1, max_training=5, seed="s")
    assert decision.summary()["malformed"] == {"bad_count": 2, "missing_query": 1, "not_an_object": 1, "not_json": 1}


def test_the_run_files_are_query_files_the_pipeline_reads_in_order() -> None:
    queries = [("sunset over mountains", 9), ("jazz piano", 3), ("cat videos", 1)]
    parsed = parse_user_queries(query_file(queries), key="inputs/retrain/x/queries.jsonl")
    assert [q.text for q in parsed.queries] == [q for q, _ in queries] and parsed.invalid == 0


@pytest.mark.parametrize(
    ("key", "day"),
    [
        ("inputs/captured/2026-11-27.jsonl", DAY1),
        ("inputs/captured/2026-11-27.json", None),
        ("inputs/captured/sub/2026-11-27.jsonl", None),
        ("inputs/captured/yesterday.jsonl", None),
        ("inputs/other/2026-11-27.jsonl", None),
    ],
)
def test_only_compacted_day_files_have_a_day(key: str, day: date | None) -> None:
    assert captured_day(key) == day
