"""What PlanQueries reports and writes (search_router.pipeline.queries.plan_output): shard sizes, shards, plan.json, the
statistics of a user's query file."""

from __future__ import annotations

import json

from search_router.pipeline.queries.plan_output import (
    MAX_SHARDS,
    MAX_USER_SAMPLES,
    QueryPlan,
    UserFileStats,
    shard_document,
    shard_size_for,
)
from search_router.pipeline.queries.planning import plan_queries
from search_router.pipeline.queries.query import Query
from search_router.pipeline.queries.user_files import parse_user_queries
from search_router.shared.channels import DEFAULT_CHANNELS

URI = "s3://data-bucket/inputs/queries.txt"


def queries(*categories: str) -> list[Query]:
    return [Query(text=f"q{index}", category=category, source="synthetic") for index, category in enumerate(categories)]


def test_the_shard_size_grows_only_to_keep_the_shards_under_the_cap() -> None:
    assert shard_size_for(1000, 50) == 50
    assert shard_size_for(MAX_SHARDS * 50 + 1, 50) == 51
    assert shard_size_for(0, 50) == 50


def test_shards_keep_the_plan_order_and_the_last_one_holds_the_rest() -> None:
    planned = queries(*["visual"] * 5, *["audio"] * 2)
    plan = QueryPlan.of(planned, requested=7, shard_size=3)
    assert [[q.text for q in shard] for shard in plan.shards()] == [["q0", "q1", "q2"], ["q3", "q4", "q5"], ["q6"]]
    assert shard_document(plan.shards()[2]) == {"queries": [{"text": "q6", "category": "audio", "source": "synthetic"}]}


def test_the_plan_summary_counts_what_was_planned_against_what_was_asked() -> None:
    plan = QueryPlan.of(queries("visual", "audio", "visual"), requested=5, shard_size=2)
    summary = plan.summary()
    assert summary == {
        "requested": 5,
        "planned": 3,
        "shortfall": 2,
        "shard_size": 2,
        "shards": 2,
        "per_category": {"visual": 2, "audio": 1},
        "user_queries": None,
        "production_queries": None,
    }
    assert list(summary["per_category"]) == ["visual", "audio"]  # in order of first appearance
    json.dumps(summary)


def test_a_synthesized_plan_has_one_shard_per_shard_size() -> None:
    planned = plan_queries(DEFAULT_CHANNELS, n_total=400, seed=1, user=None, mix_user=False)
    plan = QueryPlan.of(planned, requested=400, shard_size=50)
    assert plan.summary()["shards"] == 8 and sum(len(s) for s in plan.shards()) == 400
    assert sum(plan.per_category().values()) == 400


def test_the_user_files_statistics_say_what_was_rejected_and_quote_at_most_ten_lines() -> None:
    lines = ["sunset over mountains", "\x00\x07", "x" * 5000, "drums \x1b[31mred", *[f"ok {i}" for i in range(3)]]
    lines += ["\x01"] * 20
    stats = UserFileStats(URI, parse_user_queries("\n".join(lines).encode(), key="inputs/queries.txt"))
    assert stats.rejected == stats.parsed.invalid + stats.parsed.too_long == 23
    assert stats.control_character_lines == 22
    entry = stats.to_dict()
    assert entry["uri"] == URI and entry["accepted"] == 4 and entry["rejected"]["control_characters"] == 22
    assert len(entry["invalid_samples"]) == MAX_USER_SAMPLES < len(stats.parsed.invalid_samples)
    assert "invalid_samples" not in stats.log_fields()
    assert {k: v for k, v in entry.items() if k != "invalid_samples"} == stats.log_fields()
    plan = QueryPlan.of(stats.parsed.queries, requested=10, shard_size=50, user=stats)
    assert plan.summary()["user_queries"] == entry
