"""Query synthesis, user query files and query planning (search_router.pipeline.queries)."""

from __future__ import annotations

import json
import time

import pytest

from search_router.pipeline.queries.mix import DEFAULT_MIX, categories, default_mix, largest_remainder, resolve_mix
from search_router.pipeline.queries.planning import (
    PRODUCTION_CATEGORY,
    as_production,
    plan_queries,
    production_limit,
)
from search_router.pipeline.queries.query import PRODUCTION, Query, normalize_query
from search_router.pipeline.queries.synthesis import capacity, synthesize, synthesize_queries
from search_router.pipeline.queries.user_files import MAX_QUERY_CHARS, UserQueries, parse_user_queries
from search_router.shared.channels import DEFAULT_CHANNELS, ChannelSet

CUSTOM = ChannelSet.from_obj(
    [
        {"name": "visual", "description": "what can be seen", "examples": []},
        {
            "name": "mood",
            "description": "emotional tone: happy, sad, tense or romantic",
            "examples": ["melancholic rainy street", "joyful wedding dance"],
        },
        {
            "name": "camera_angle",
            "description": "how the shot is framed: close-up, wide, overhead, low angle",
            "examples": ["low angle shot of a skyscraper"],
        },
    ]
)


def keys(queries: list[Query]) -> list[str]:
    return [normalize_query(q.text) for q in queries]


def count(queries: list[Query], category: str) -> int:
    return sum(1 for q in queries if q.category == category)


# ------------------------------------------------------------------------------------------------ normalize
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('  "Sunset  over\tMountains?" ', "sunset over mountains"),
        ("«Dog barking»!!", "dog barking"),
        ("ＴＡＹＬＯＲ Swift 2023", "taylor swift 2023"),  # NFKC folds full-width letters
        ("rock 'n' roll", "rock 'n' roll"),  # inner punctuation stays
        ("AC/DC live.", "ac/dc live"),
        ("...", ""),
    ],
)
def test_normalize_query(raw: str, expected: str) -> None:
    assert normalize_query(raw) == expected
    assert normalize_query(normalize_query(raw)) == expected  # idempotent


# ------------------------------------------------------------------------------------------------ mix
def test_default_mix_is_the_documented_one_for_default_channels() -> None:
    assert default_mix(DEFAULT_CHANNELS) == DEFAULT_MIX
    assert sum(DEFAULT_MIX.values()) == pytest.approx(1.0)
    assert set(DEFAULT_MIX) == set(categories(DEFAULT_CHANNELS))


def test_default_mix_spreads_channel_shares_evenly_for_custom_channels() -> None:
    mix = default_mix(CUSTOM)
    assert set(mix) == {"visual_dominant", "mood_dominant", "camera_angle_dominant", "balanced", "complex"}
    assert mix["mood_dominant"] == pytest.approx(mix["visual_dominant"]) == pytest.approx(0.7 / 3)
    assert sum(mix.values()) == pytest.approx(1.0)


def test_resolve_mix_rejects_unknown_categories_and_negative_shares() -> None:
    with pytest.raises(ValueError, match=r"unknown query categories.*camera_dominant.*allowed: visual_dominant"):
        resolve_mix(DEFAULT_CHANNELS, {"camera_dominant": 1.0})
    with pytest.raises(ValueError, match="'balanced' must be a finite number >= 0"):
        resolve_mix(DEFAULT_CHANNELS, {"balanced": -1})
    with pytest.raises(ValueError, match="must not all be zero"):
        resolve_mix(DEFAULT_CHANNELS, {"balanced": 0})
    resolved = resolve_mix(DEFAULT_CHANNELS, {"balanced": 3, "complex": 1})
    assert resolved["balanced"] == 0.75
    assert resolved["visual_dominant"] == 0.0


def test_largest_remainder_sums_exactly_and_stays_within_one_of_the_exact_share() -> None:
    weights = {"a": 0.22, "b": 0.17, "c": 0.17, "d": 0.14, "e": 0.15, "f": 0.15}
    for total in (0, 1, 7, 99, 1001, 12_345):
        parts = largest_remainder(total, weights)
        assert sum(parts.values()) == total
        for key, weight in weights.items():
            assert abs(parts[key] - total * weight) < 1


# ------------------------------------------------------------------------------------------------ synthesis
def test_synthesis_is_deterministic_for_a_seed() -> None:
    first = synthesize_queries(DEFAULT_CHANNELS, 500, seed=42)
    again = synthesize_queries(DEFAULT_CHANNELS, 500, seed=42)
    other = synthesize_queries(DEFAULT_CHANNELS, 500, seed=43)
    assert first == again
    assert first != other
    assert all(q.source == "synthetic" for q in first)


def test_synthesis_yields_12000_distinct_queries_quickly() -> None:
    # When
    started = time.perf_counter()
    queries = synthesize_queries(DEFAULT_CHANNELS, 12_000, seed=7)
    elapsed = time.perf_counter() - started
    # Then
    assert len(queries) == 12_000
    assert len(set(keys(queries))) == 12_000
    assert all(3 <= len(q.text) <= 200 for q in queries)
    assert all(q.text == q.text.strip() and "  " not in q.text for q in queries)
    assert elapsed < 5.0


def test_capacity_is_far_above_the_reference_dataset_size() -> None:
    sizes = capacity(DEFAULT_CHANNELS)
    assert set(sizes) == set(categories(DEFAULT_CHANNELS))
    assert all(size >= 10_000 for size in sizes.values())


@pytest.mark.parametrize("n", [100, 1001, 5000])
def test_category_counts_follow_the_mix_within_one(n: int) -> None:
    queries = synthesize_queries(DEFAULT_CHANNELS, n, seed=3)
    assert len(queries) == n
    for category, share in DEFAULT_MIX.items():
        assert abs(count(queries, category) - n * share) < 1, category


def test_custom_mix_is_followed_and_zero_share_categories_are_absent() -> None:
    mix = {"audio_dominant": 0.5, "metadata_dominant": 0.3, "complex": 0.2}
    queries = synthesize_queries(DEFAULT_CHANNELS, 333, seed=1, mix=mix)
    assert count(queries, "audio_dominant") in (166, 167)
    assert count(queries, "metadata_dominant") in (99, 100)
    assert count(queries, "complex") in (66, 67)
    assert count(queries, "visual_dominant") == 0
    assert count(queries, "balanced") == 0


def test_complex_queries_are_longer_than_dominant_ones() -> None:
    queries = synthesize_queries(DEFAULT_CHANNELS, 2000, seed=5)

    def mean_words(category: str) -> float:
        lengths = [len(q.text.split()) for q in queries if q.category == category]
        return sum(lengths) / len(lengths)

    assert mean_words("complex") > 1.5 * mean_words("metadata_dominant")
    assert mean_words("complex") >= 14


def test_exclude_removes_raw_and_normalized_texts() -> None:
    # Given the first 300 queries of a seed
    base = synthesize_queries(DEFAULT_CHANNELS, 300, seed=11)
    excluded = {base[0].text.upper() + "?", *(q.text for q in base[1:150]), *keys(base[150:])}
    # When the same seed runs again with them excluded
    again = synthesize_queries(DEFAULT_CHANNELS, 300, seed=11, exclude=excluded)
    # Then nothing repeats and the count is still exact
    assert len(again) == 300
    assert not set(keys(again)) & set(keys(base))


def test_custom_channels_build_queries_from_examples_and_description() -> None:
    result = synthesize(CUSTOM, 600, seed=2)
    queries = result.queries
    assert len(queries) == 600
    assert len(set(keys(queries))) == 600
    assert {q.category for q in queries} == set(categories(CUSTOM))
    mood = [q.text.lower() for q in queries if q.category == "mood_dominant"]
    # the examples, the description's phrases and the channel name itself
    vocabulary: tuple[str, ...] = ("melancholic rainy street", "joyful wedding dance", "emotional tone", "happy")
    vocabulary += ("sad", "tense", "romantic", "mood")
    assert mood and all(any(term in text for term in vocabulary) for text in mood)
    angle = [q.text.lower() for q in queries if q.category == "camera_angle_dominant"]
    assert any("low angle" in text for text in angle)
    assert synthesize_queries(CUSTOM, 600, seed=2) == queries


def test_an_exhausted_category_is_filled_from_the_others_and_recorded() -> None:
    tiny = ChannelSet.from_obj(
        [
            {"name": "visual", "description": "what can be seen", "examples": []},
            {"name": "mood", "description": "tone", "examples": ["gloomy"]},
        ]
    )
    space = capacity(tiny)["mood_dominant"]
    # When mood needs more than its space holds
    result = synthesize(tiny, 1000, seed=1, mix={"mood_dominant": 0.5, "visual_dominant": 0.5})
    # Then mood is used up, visual fills the gap and the report says so
    assert result.exhausted == ["mood_dominant"]
    assert result.targets == {"visual_dominant": 500, "mood_dominant": 500, "balanced": 0, "complex": 0}
    assert result.produced["mood_dominant"] <= space < 500
    assert result.produced["visual_dominant"] == 1000 - result.produced["mood_dominant"]
    assert len(result.queries) == 1000
    assert result.shortfall == 0


def test_when_every_category_is_exhausted_fewer_queries_come_back() -> None:
    tiny = ChannelSet.from_obj(
        [
            {"name": "mood", "description": "tone", "examples": ["gloomy"]},
            {"name": "pace", "description": "speed", "examples": ["fast cuts"]},
        ]
    )
    total = sum(capacity(tiny).values())
    result = synthesize(tiny, total + 500, seed=1)
    assert 0 < len(result.queries) <= total
    assert result.shortfall == total + 500 - len(result.queries)
    assert len(set(keys(result.queries))) == len(result.queries)


# ------------------------------------------------------------------------------------------------ user files
def test_txt_file_counts_every_skipped_line() -> None:
    long_query = "x" * (MAX_QUERY_CHARS + 1)
    body = (
        "\ufeffsunset over mountains\n"  # BOM
        "# a comment\n"
        "\n"
        "   \n"
        "Sunset over mountains!\n"  # duplicate after normalization
        f"{long_query}\n"
        "  dog   barking  \r\n"  # CRLF and extra spaces
        "!!!\n"  # punctuation only
        "Taylor Swift concert 2023\n"
    ).encode()
    result = parse_user_queries(body, key="logs/queries.txt")
    assert [q.text for q in result.queries] == ["sunset over mountains", "dog barking", "Taylor Swift concert 2023"]
    assert all(q.category == "user" and q.source == "user" for q in result.queries)
    assert (result.total_lines, result.blank, result.comments) == (9, 2, 1)
    assert (result.duplicates, result.too_long, result.invalid) == (1, 1, 1)
    assert any("line 6" in sample and "1001 characters" in sample for sample in result.invalid_samples)
    assert any("line 8" in sample for sample in result.invalid_samples)
    assert_accounted(result)


def test_jsonl_file_counts_invalid_lines_by_reason() -> None:
    lines = [
        json.dumps({"query": "drone shot of a beach", "category": "visual_dominant"}),
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"text": "no query key"}),
        json.dumps({"query": 42}),
        json.dumps({"query": "ok", "category": 7}),
        "",
        json.dumps({"query": "DRONE SHOT of a beach."}),  # duplicate
        json.dumps({"query": "y" * 1001}),
        json.dumps({"query": "speech where the CEO mentions quarterly revenue", "extra": True}),
        json.dumps({"query": "   "}),
    ]
    body = ("\n".join(lines) + "\n").encode("utf-8-sig")
    result = parse_user_queries(body, key="s3://bucket/queries.JSONL")
    assert [(q.text, q.category) for q in result.queries] == [
        ("drone shot of a beach", "visual_dominant"),
        ("speech where the CEO mentions quarterly revenue", "user"),
    ]
    assert (result.total_lines, result.blank, result.invalid, result.too_long, result.duplicates) == (11, 1, 6, 1, 1)
    assert result.invalid_samples[0] == "line 2: not valid JSON (Expecting property name enclosed in double quotes)"
    assert any(sample.startswith("line 3: expected a JSON object, got list") for sample in result.invalid_samples)
    assert 'line 4: missing "query" string' in result.invalid_samples
    assert any("line 6" in sample and "category" in sample for sample in result.invalid_samples)
    assert "line 11: empty query" in result.invalid_samples
    assert_accounted(result)


def test_csv_file_with_bom_header_case_and_quoted_fields() -> None:
    body = (
        "\ufeffid,Query,Category\r\n"
        '1,"dog barking, then thunder",audio_dominant\r\n'
        "2,Taylor Swift concert 2023,\r\n"
        ",,\r\n"  # blank row
        "3\r\n"  # short row: no query cell
        "4,dog barking then thunder,\r\n"  # not a duplicate (comma differs inside)
        "5,Dog barking  then thunder!,\r\n"  # duplicate of row 4 after normalization
        f"6,{'z' * 1001},\r\n"
        '7,"a query with a ""quote""",x\r\n'
    ).encode()
    result = parse_user_queries(body, key="queries.csv")
    assert [(q.text, q.category) for q in result.queries] == [
        ("dog barking, then thunder", "audio_dominant"),
        ("Taylor Swift concert 2023", "user"),
        ("dog barking then thunder", "user"),
        ('a query with a "quote"', "x"),
    ]
    assert (result.total_lines, result.blank, result.invalid, result.too_long, result.duplicates) == (8, 1, 1, 1, 1)
    assert_accounted(result)


def test_control_characters_are_rejected_and_invisible_format_characters_removed() -> None:
    body = "\n".join(
        [
            "\x00\x01\x02\x1b\x7f",  # nothing but control characters
            "rain \x1b[2J on a roof",  # an escape sequence inside a query
            "next\x9bline",  # C1 control (CSI)
            "\u200b\u200e\ufeff",  # nothing but invisible format characters
            "\u200bjazz\u00adsaxophone solo\ufeff",  # format characters around real text
            "family \U0001f468\u200d\U0001f469\u200d\U0001f467 picnic",  # zero-width joiners in an emoji: kept
            "tab\tseparated words",  # ordinary whitespace: collapsed
        ]
    ).encode()
    result = parse_user_queries(body, key="q.txt")
    assert [q.text for q in result.queries] == [
        "jazzsaxophone solo",
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467 picnic",
        "tab separated words",
    ]
    assert result.rejected == {"control_characters": 3, "empty": 1}
    assert result.format_characters_stripped == 1
    # the samples show what was rejected escaped, never the raw control characters
    assert all(not any(ch in sample for ch in "\x00\x1b\x7f\x9b") for sample in result.invalid_samples)
    assert any("\\x1b" in sample for sample in result.invalid_samples)
    assert_accounted(result)
    assert result.to_stats()["rejected"] == {"control_characters": 3, "empty": 1}


def test_the_judges_reserved_category_is_refused_in_a_query_file() -> None:
    body = (json.dumps({"query": "sunset", "category": "calibration-unparseable"}) + "\n").encode()
    result = parse_user_queries(body, key="q.jsonl")
    assert result.queries == [] and result.rejected == {"reserved_category": 1}
    assert_accounted(result)


def test_csv_without_query_column_is_rejected() -> None:
    with pytest.raises(ValueError, match="'query' column"):
        parse_user_queries(b"text,category\nhello,x\n", key="q.csv")


def test_unknown_extension_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"\.txt, \.jsonl, \.csv"):
        parse_user_queries(b"hello", key="queries.parquet")


def test_non_utf8_file_is_rejected_with_the_offset() -> None:
    with pytest.raises(ValueError, match="not UTF-8 text: invalid byte at offset 6"):
        parse_user_queries(b"hello\n\xff\xfe", key="q.txt")


def test_empty_file_gives_no_queries() -> None:
    result = parse_user_queries(b"", key="q.txt")
    assert result.queries == [] and result.total_lines == 0


def assert_accounted(result: UserQueries) -> None:
    skipped = result.blank + result.comments + result.invalid + result.too_long + result.duplicates
    assert result.total_lines == len(result.queries) + skipped
    stats = result.to_stats()
    assert stats["accepted"] == len(result.queries)
    assert sum(result.rejected.values()) == result.invalid + result.too_long  # every rejection has its reason
    json.dumps(stats)


# ------------------------------------------------------------------------------------------------ planning
def user_queries(n: int, prefix: str = "real user query") -> list[Query]:
    return [Query(text=f"{prefix} {i}", category="user", source="user") for i in range(n)]


def test_plan_without_user_queries_is_all_synthetic() -> None:
    plan = plan_queries(DEFAULT_CHANNELS, n_total=400, seed=1, user=None, mix_user=False)
    assert plan == synthesize_queries(DEFAULT_CHANNELS, 400, seed=1)


def test_plan_uses_only_user_queries_when_enough_and_not_mixing() -> None:
    users = user_queries(1000)
    plan = plan_queries(DEFAULT_CHANNELS, n_total=300, seed=1, user=users, mix_user=False)
    assert len(plan) == 300
    assert all(q.source == "user" for q in plan)
    positions = [users.index(q) for q in plan]
    assert positions == sorted(positions)  # file order kept
    assert plan == plan_queries(DEFAULT_CHANNELS, n_total=300, seed=1, user=users, mix_user=False)


def test_plan_tops_up_user_queries_with_synthetic_ones_without_repeats() -> None:
    # Given user queries that include texts the synthesizer would produce, and a duplicate
    synthetic_texts = [q.text for q in synthesize_queries(DEFAULT_CHANNELS, 50, seed=9)]
    users = [Query(text=t.upper(), category="user", source="user") for t in synthetic_texts]
    users += [Query(text=users[0].text + "!", category="user", source="user")]
    # When
    plan = plan_queries(DEFAULT_CHANNELS, n_total=200, seed=9, user=users, mix_user=False)
    # Then: user queries first (duplicate removed), then synthetic ones that never repeat them
    assert len(plan) == 200
    assert [q.source for q in plan[:50]] == ["user"] * 50
    assert all(q.source == "synthetic" for q in plan[50:])
    assert len(set(keys(plan))) == 200


def test_plan_mixing_caps_the_user_share() -> None:
    users = user_queries(1000)
    plan = plan_queries(DEFAULT_CHANNELS, n_total=400, seed=1, user=users, mix_user=True)
    assert len(plan) == 400
    assert sum(q.source == "user" for q in plan) == 200
    few = plan_queries(DEFAULT_CHANNELS, n_total=400, seed=1, user=users[:30], mix_user=True)
    assert sum(q.source == "user" for q in few) == 30 and len(few) == 400


def test_plan_returns_fewer_when_sources_run_out() -> None:
    tiny = ChannelSet.from_obj(
        [
            {"name": "mood", "description": "tone", "examples": ["gloomy"]},
            {"name": "pace", "description": "speed", "examples": ["fast cuts"]},
        ]
    )
    total = sum(capacity(tiny).values())
    plan = plan_queries(tiny, n_total=total + 1000, seed=1, user=user_queries(10), mix_user=False)
    assert total + 10 - 50 < len(plan) < total + 1000
    assert len(set(keys(plan))) == len(plan)


def test_production_queries_come_first_beyond_n_total_and_nothing_else_repeats_them() -> None:
    # Given captured production queries, one of which the synthesizer would produce and one the user file has
    synthetic_text = synthesize_queries(DEFAULT_CHANNELS, 1, seed=4)[0].text
    users = user_queries(120)
    captured = [Query(text=f"production query {i}", category="user", source="user") for i in range(30)]
    captured += [Query(text=synthetic_text.title(), category="user", source="user"), users[7], captured[0]]
    held, over = as_production(captured, limit=31)
    # Then: the distinct ones up to the limit are production queries; the one over it is counted
    assert over == 1 and len(held) == 31
    assert {(q.source, q.category) for q in held} == {(PRODUCTION, PRODUCTION_CATEGORY)}
    # When planned next to the user's queries (topped up) and synthetic ones
    plan = plan_queries(DEFAULT_CHANNELS, n_total=200, seed=4, user=users, mix_user=False, production=held)
    # Then: production first, then n_total others, none of which repeats a production query
    assert plan[:31] == held and len(plan) == 31 + 200
    rest = plan[31:]
    assert not set(keys(rest)) & set(keys(held))
    assert sum(q.source == "user" for q in rest) == 120  # the user's queries in full: none of them was held
    assert len(set(keys(plan))) == len(plan)
    # a user's query that is a production query is left out of training (it is held out)
    overlap = plan_queries(DEFAULT_CHANNELS, n_total=50, seed=4, user=users, mix_user=False, production=[users[7]])
    assert normalize_query(users[7].text) not in set(keys(overlap[1:]))


def test_the_production_limit_leaves_room_for_eval_examples_in_one_judge_job() -> None:
    assert production_limit(300) == 699 and production_limit(999) == 0 and production_limit(10) == 989
