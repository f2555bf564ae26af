"""The drift figures (pipeline/drift.py) on constructed traffic and training data: each figure against a count made
by hand, too little traffic, no training data, malformed captured lines counted by reason, and the report section."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest

from search_router.pipeline.dataset import LabeledExample
from search_router.pipeline.drift import (
    INSUFFICIENT_TRAFFIC,
    NO_TRAINING_DATA,
    OK,
    DriftSettings,
    RoutedQuery,
    drift_section,
    drift_summary,
    figures,
    read_routes,
    total_variation,
    window_days,
    words,
)
from search_router.router.capture import REDACTED, capture_record
from search_router.shared.channels import DEFAULT_CHANNELS

CHANNELS = DEFAULT_CHANNELS.names
VISUAL = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
AUDIO = {"visual": 0.1, "audio": 0.7, "transcription": 0.1, "metadata": 0.1}
SETTINGS = DriftSettings(min_records=4, micro_router_promoted=False)


def example(query: str, weights: dict[str, float]) -> LabeledExample:
    return LabeledExample(query=query, category="", source="training-file", weights=weights, reasoning=None)


def route(query: str, weights: dict[str, float] = VISUAL, source: str = "model") -> RoutedQuery:
    return RoutedQuery(query=query, weights=weights, source=source, model="m")


TRAINING = [example("sunset over mountains", VISUAL), example("Jazz piano solo!", AUDIO)]


def test_unseen_vocabulary_counts_queries_with_any_word_not_in_training() -> None:
    # Given two queries made only of training words (case and edge punctuation as normalize_query folds them)
    # and one with a new word
    routes = [route("SUNSET mountains"), route("piano jazz?"), route("sunset drone"), route("over")]
    # When
    summary = drift_summary(routes, TRAINING, CHANNELS, SETTINGS)
    # Then only "sunset drone" has an unseen word
    assert summary["status"] == OK
    assert summary["unseen_vocabulary"] == {"count": 1, "total": 4, "share": 0.25, "top_words": ["drone"]}


def test_the_redaction_marker_is_not_an_unseen_word() -> None:
    assert words(f"sunset {REDACTED} mountains") == {"sunset", "mountains"}


def test_fallback_default_and_escalation_shares_count_sources() -> None:
    routes = [
        route("sunset", source="model"),
        route("sunset", source="micro"),
        route("sunset", source="micro"),
        route("sunset", source="fallback_model"),
        route("sunset", source="default"),
        route("sunset", source="default"),
        route("sunset", source="cache"),
        route("sunset", source="model"),
    ]
    with_micro = drift_summary(routes, TRAINING, CHANNELS, DriftSettings(min_records=1, micro_router_promoted=True))
    without = drift_summary(routes, TRAINING, CHANNELS, DriftSettings(min_records=1, micro_router_promoted=False))
    assert with_micro["fallback"] == {"count": 1, "total": 8, "share": 0.125}
    assert with_micro["default"] == {"count": 2, "total": 8, "share": 0.25}
    assert with_micro["escalated"] == {"count": 2, "total": 8, "share": 0.25}
    assert without["escalated"] is None  # no cascade without a promoted micro-router
    assert "EscalatedShare" not in figures(without)
    assert figures(with_micro)["EscalatedShare"] == 0.25


def test_dominant_channel_shift_is_the_total_variation_distance() -> None:
    # Given training half visual, half audio, and traffic 3/4 visual, 1/4 audio
    routes = [route("sunset"), route("sunset"), route("sunset"), route("jazz", AUDIO)]
    # When
    shift = drift_summary(routes, TRAINING, CHANNELS, SETTINGS)["dominant_channel_shift"]
    # Then ½(|0.75-0.5| + |0.25-0.5|) = 0.25
    assert shift["measure"] == "total_variation_distance"
    assert shift["value"] == pytest.approx(0.25)
    assert shift["served"] == {"visual": 3, "audio": 1, "transcription": 0, "metadata": 0}
    assert shift["training"] == {"visual": 1, "audio": 1, "transcription": 0, "metadata": 0}


def test_total_variation_is_zero_for_equal_shares_one_for_disjoint_and_defined_with_empty_channels() -> None:
    assert total_variation({"visual": 2, "audio": 2}, {"visual": 5, "audio": 5}, CHANNELS) == 0.0
    assert total_variation({"visual": 3}, {"audio": 7}, CHANNELS) == 1.0
    with pytest.raises(ValueError, match="a count on each side"):
        total_variation({}, {"audio": 1}, CHANNELS)


def test_too_little_traffic_gives_counts_and_no_figures() -> None:
    summary = drift_summary([route("sunset"), route("drone")], TRAINING, CHANNELS, SETTINGS)
    assert summary["status"] == INSUFFICIENT_TRAFFIC
    assert summary["records"] == 2
    assert summary["min_records"] == 4
    assert "unseen_vocabulary" not in summary
    assert figures(summary) == {}
    assert any("Too little traffic" in line and "fewer than 4" in line for line in drift_section(summary))


def test_no_promoted_training_data_is_its_own_status() -> None:
    routes = [route("sunset")] * 5
    for training in (None, []):
        summary = drift_summary(routes, training, CHANNELS, SETTINGS)
        assert summary["status"] == NO_TRAINING_DATA
        assert figures(summary) == {}


def _object(lines: list[str]) -> bytes:
    return gzip.compress("".join(f"{line}\n" for line in lines).encode("utf-8"))


def test_captured_objects_read_as_routes_and_malformed_lines_counted_by_reason() -> None:
    # Given a record as the router writes it, and lines that are not records
    good = capture_record(query="sunset", weights=VISUAL, source="micro", model=None, latency_ms=1.0, timestamp=0)
    no_source = json.dumps({"query": "a", "weights": VISUAL})
    bad_weights = json.dumps({"query": "a", "weights": {"visual": "high"}, "source": "model"})
    objects = [
        ("k1", _object([good.decode().strip(), no_source, bad_weights, "not json"])),
        ("k2", b"not gzip"),
    ]
    # When
    routes = read_routes(objects, CHANNELS)
    # Then
    assert routes.routes == [RoutedQuery(query="sunset", weights=VISUAL, source="micro", model=None)]
    assert dict(routes.malformed) == {"missing_source": 1, "bad_weights": 1, "not_json": 1, "not_gzip": 1}
    assert routes.records == 1


def test_window_days_end_with_the_given_day() -> None:
    assert window_days(date(2026, 12, 1), 3) == [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)]


def test_report_section_shows_each_figure_and_says_when_there_is_no_summary() -> None:
    routes = [route("sunset"), route("drone", source="fallback_model"), route("x", source="default"), route("jazz")]
    summary = drift_summary(
        routes, TRAINING, CHANNELS, SETTINGS, context={"window_start": "2026-11-24", "window_end": "2026-11-30"}
    )
    text = "\n".join(drift_section(summary))
    assert "| fallback model | 25.0% (1 of 4) |" in text
    assert "| default weights | 25.0% (1 of 4) |" in text
    assert "| queries with words unseen in training | 50.0% (2 of 4) |" in text
    assert "| escalated by the cascade | n/a |" in text
    assert "2026-11-24 to 2026-11-30" in text
    assert "No drift summary yet" in "\n".join(drift_section(None))


def test_more_routes_than_the_cap_keep_a_bounded_uniform_sample_and_count_every_route() -> None:
    # Given 2,000 routes, the first half "model", the second half "default"
    records = [
        capture_record(
            query=f"q{i}",
            weights=VISUAL,
            source="model" if i < 1000 else "default",
            model="m",
            latency_ms=1.0,
            timestamp=0,
        )
        .decode()
        .strip()
        for i in range(2000)
    ]
    objects = [("k", _object(records))]
    # When at most 400 are kept
    routes = read_routes(objects, CHANNELS, max_routes=400)
    again = read_routes(objects, CHANNELS, max_routes=400)
    # Then every route is counted, 400 kept, the same ones on a re-run, drawn from both halves alike
    assert (routes.records, len(routes.routes), routes.sampled) == (2000, 400, True)
    assert routes.routes == again.routes
    defaults = sum(1 for r in routes.routes if r.source == "default")
    assert 150 <= defaults <= 250  # binomial(400, 0.5): mean 200, sd 10
    unsampled = read_routes(objects, CHANNELS)
    assert (len(unsampled.routes), unsampled.sampled) == (2000, False)
