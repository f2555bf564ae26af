"""The fusion-impact metric (pipeline/fusion.py) against rankings computed by hand.

Every expected ranking below is worked out in the comment next to it: min-max normalize each kept channel's
list, take the weighted mean (a document absent from a list scores 0 there), sort by score, ties by id.
"""

from __future__ import annotations

import math
import re

import pytest

from search_router.pipeline.fusion import (
    FusionItem,
    ScoreShape,
    draw_lists,
    drawn_lists,
    fuse,
    fusion_impact,
    given_lists,
    items_from_results,
    kept_channels,
    min_max,
    query_impact,
    top_k,
)
from search_router.pipeline.metrics import QueryResult
from search_router.shared.channels import DEFAULT_CHANNELS

NAMES = DEFAULT_CHANNELS.names  # visual, audio, transcription, metadata


def w(visual: float, audio: float, transcription: float = 0.0, metadata: float = 0.0) -> dict[str, float]:
    return {"visual": visual, "audio": audio, "transcription": transcription, "metadata": metadata}


# Case A, normalized by hand:
#   visual {d1: 10, d2: 5, d3: 0} -> d1 1.0, d2 0.5, d3 0.0   (min 0, max 10)
#   audio  {d2: 4, d3: 2, d4: 0}  -> d2 1.0, d3 0.5, d4 0.0   (min 0, max 4)
CASE_A = {
    "visual": {"d1": 10.0, "d2": 5.0, "d3": 0.0},
    "audio": {"d2": 4.0, "d3": 2.0, "d4": 0.0},
    "transcription": {},
    "metadata": {},
}

# Case B: two disjoint lists of ten, scores 9..0: v_i and a_i both normalize to (9 - i) / 9.
CASE_B = {
    "visual": {f"v{i}": float(9 - i) for i in range(10)},
    "audio": {f"a{i}": float(9 - i) for i in range(10)},
    "transcription": {},
    "metadata": {},
}
V = [f"v{i}" for i in range(10)]


# ---------------------------------------------------------------------------------------------------------
# fuse
# ---------------------------------------------------------------------------------------------------------
def test_min_max_normalizes_and_a_constant_list_is_all_ones() -> None:
    assert min_max({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert min_max({"a": 3.0, "b": 3.0}) == {"a": 1.0, "b": 1.0}
    assert min_max({"only": -7.0}) == {"only": 1.0}
    assert min_max({}) == {}


def test_the_weighted_mean_of_normalized_scores_by_hand() -> None:
    # visual 0.7, audio 0.3 (sum 1):
    #   d1 = 0.7 * 1.0 + 0.3 * 0   = 0.70
    #   d2 = 0.7 * 0.5 + 0.3 * 1.0 = 0.65
    #   d3 = 0.7 * 0.0 + 0.3 * 0.5 = 0.15
    #   d4 = 0.7 * 0   + 0.3 * 0.0 = 0.00
    ranking = fuse(CASE_A, w(0.7, 0.3))
    assert [doc for doc, _ in ranking] == ["d1", "d2", "d3", "d4"]
    assert [score for _, score in ranking] == pytest.approx([0.70, 0.65, 0.15, 0.0])
    # visual 0.3, audio 0.7: d1 = 0.30, d2 = 0.15 + 0.70 = 0.85, d3 = 0 + 0.35 = 0.35, d4 = 0.
    assert top_k(CASE_A, w(0.3, 0.7), k=3) == ("d2", "d3", "d1")


def test_a_channel_under_the_floor_is_skipped() -> None:
    # visual 0.96, audio 0.04: audio is skipped; over visual alone (weights sum 0.96):
    #   d1 = 0.96 * 1.0 / 0.96 = 1.0, d2 = 0.5, d3 = 0.0; d4 is in no kept list, so it is not ranked.
    # Had audio been kept, d2 would be 0.96 * 0.5 + 0.04 * 1.0 = 0.52 and d4 would be ranked.
    ranking = fuse(CASE_A, w(0.96, 0.04))
    assert ranking == [("d1", 1.0), ("d2", 0.5), ("d3", 0.0)]
    assert kept_channels(w(0.96, 0.04)) == ("visual",)


def test_a_weight_of_exactly_the_floor_is_kept_with_float_noise() -> None:
    assert kept_channels(w(0.95, 0.05)) == ("visual", "audio")
    assert kept_channels(w(0.95, 0.05 - 1e-12)) == ("visual", "audio")
    assert "d4" in dict(fuse(CASE_A, w(0.95, 0.05)))


def test_when_every_channel_is_under_the_floor_none_is_skipped() -> None:
    # visual 0.04, audio 0.01, the rest 0: nothing reaches 0.05, so all are kept (weights sum 0.05):
    #   d1 = (0.04 * 1.0) / 0.05 = 0.8; d2 = (0.04 * 0.5 + 0.01 * 1.0) / 0.05 = 0.6;
    #   d3 = (0.01 * 0.5) / 0.05 = 0.1; d4 = 0.
    ranking = fuse(CASE_A, w(0.04, 0.01))
    assert [doc for doc, _ in ranking] == ["d1", "d2", "d3", "d4"]
    assert [score for _, score in ranking] == pytest.approx([0.8, 0.6, 0.1, 0.0])


def test_equal_scores_are_ordered_by_document_id() -> None:
    # visual {d2: 3, d1: 3} is constant -> both 1.0; audio {d3: 1, d0: 0} -> d3 1.0, d0 0.0.
    # Weights 0.5 / 0.5: d1 = d2 = d3 = 0.5 (ties, by id: d1, d2, d3), d0 = 0.
    lists = {"visual": {"d2": 3.0, "d1": 3.0}, "audio": {"d3": 1.0, "d0": 0.0}, "transcription": {}, "metadata": {}}
    assert top_k(lists, w(0.5, 0.5)) == ("d1", "d2", "d3", "d0")


def test_float_noise_does_not_break_a_tie() -> None:
    # x is at the top of two lists weighted 0.1 and 0.2, w at the top of one weighted 0.3: both score
    # 0.3 / 0.6 = 0.5, but 0.1 + 0.2 is 0.30000000000000004 in floats. The tie goes by id: w before x.
    lists = {
        "visual": {"x": 1.0, "y0": 0.0},
        "audio": {"x": 1.0, "y1": 0.0},
        "transcription": {"w": 1.0, "y2": 0.0},
        "metadata": {},
    }
    assert math.fsum([0.1, 0.2]) != 0.3  # the noise is real
    assert top_k(lists, w(0.1, 0.2, 0.3), k=2) == ("w", "x")


@pytest.mark.parametrize(
    ("lists", "weights", "message"),
    [
        (CASE_A, {"visual": 1.0}, "the weights name channels .* but the score lists .*: they must be the same"),
        (CASE_A, w(1.2, -0.2), "weight of channel 'audio' must be a finite number >= 0"),
        (CASE_A, w(math.nan, 0.5), "weight of channel 'visual' must be a finite number >= 0"),
        (CASE_A, w(0.0, 0.0), "sum to 0: nothing to rank by"),
        (
            {**CASE_A, "visual": {"d1": math.inf}},
            w(1.0, 0.0),
            "channel 'visual': score of document 'd1' must be a finite number",
        ),
        ({**CASE_A, "visual": [1.0]}, w(1.0, 0.0), "the score list of channel 'visual' must map document ids"),
        # A skipped channel's list (audio, weight 0) is checked too.
        (
            {**CASE_A, "audio": {"d9": math.nan}},
            w(1.0, 0.0),
            "channel 'audio': score of document 'd9' must be a finite",
        ),
    ],
)
def test_bad_input_is_named(lists: object, weights: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fuse(lists, weights)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# overlap@k
# ---------------------------------------------------------------------------------------------------------
def test_overlap_of_two_rankings_by_hand() -> None:
    # Case A, teacher 0.7 / 0.3 -> d1, d2, d3, d4; candidate 0.3 / 0.7 -> d2, d3, d1, d4.
    # Top 2: {d1, d2} vs {d2, d3}: 1 shared of 2 -> overlap 0.5, 1 changed. Top 3: all shared.
    two = query_impact("q", CASE_A, w(0.3, 0.7), w(0.7, 0.3), k=2)
    assert (two.candidate_top, two.teacher_top, two.overlap, two.changed) == (("d2", "d3"), ("d1", "d2"), 0.5, 1)
    assert query_impact("q", CASE_A, w(0.3, 0.7), w(0.7, 0.3), k=3).overlap == 1.0


def test_overlap_when_fewer_than_k_documents_are_ranked() -> None:
    # Teacher 0.96 / 0.04 ranks d1, d2, d3 (audio skipped); the candidate 0.5 / 0.5 ranks all four.
    # k = 10: 3 shared of max(4, 3) = 4 -> 0.75, 1 changed.
    impact = query_impact("q", CASE_A, w(0.5, 0.5), w(0.96, 0.04))
    assert (impact.overlap, impact.changed) == (0.75, 1)


@pytest.mark.parametrize(
    ("candidate", "expected_top", "overlap", "changed"),
    [
        # x 9: visual 0.8 * (9 - i) = 7.2, 6.4, ..., 2.4 (v0..v6), 1.6 (v7); audio 0.2 * (9 - j) = 1.8 (a0), 1.6 (a1).
        # v0..v6, a0 1.8, then a1 = v7 = 1.6 (tie, a1 first): 8 of the teacher's ten kept.
        (w(0.8, 0.2), [*V[:7], "a0", "a1", "v7"], 0.8, 2),
        # visual 0.7: 6.3 .. 2.8 (v0..v5), 2.1 (v6); audio 0.3: 2.7 (a0), 2.4 (a1), 2.1 (a2): a2 = v6, a2 first.
        (w(0.7, 0.3), [*V[:6], "a0", "a1", "a2", "v6"], 0.7, 3),
        # visual 0.6: 5.4, 4.8, 4.2, 3.6, 3.0, 2.4; audio 0.4: 3.6, 3.2, 2.8, 2.4:
        # v0 v1 v2, a0 = v3 (a0 first), a1, v4, a2, a3 = v5 (a3 first).
        (w(0.6, 0.4), [*V[:3], "a0", "v3", "a1", "v4", "a2", "a3", "v5"], 0.6, 4),
        # 0.5 / 0.5: a_i = v_i for every i, a first: a0 v0 a1 v1 ... a4 v4.
        (w(0.5, 0.5), [doc for i in range(5) for doc in (f"a{i}", f"v{i}")], 0.5, 5),
    ],
)
def test_top_10_against_the_teachers_by_hand(
    candidate: dict[str, float], expected_top: list[str], overlap: float, changed: int
) -> None:
    # The teacher, 1.0 / 0.0: audio is skipped, the top 10 are v0..v9. (Without the skip rule the audio
    # documents would tie v9 at 0 and a0 would take its place.)
    impact = query_impact("q", CASE_B, candidate, w(1.0, 0.0))
    assert impact.teacher_top == tuple(V)
    assert impact.candidate_top == tuple(expected_top)
    assert (impact.overlap, impact.changed) == (pytest.approx(overlap), changed)


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        query_impact("q", CASE_A, w(0.5, 0.5), w(0.5, 0.5), k=0)


def test_no_document_at_all_is_an_error_naming_the_query() -> None:
    empty: dict[str, dict[str, float]] = {name: {} for name in NAMES}
    with pytest.raises(ValueError, match="query 'q7': the score lists hold no document"):
        query_impact("q7", empty, w(0.5, 0.5), w(0.5, 0.5))


# ---------------------------------------------------------------------------------------------------------
# fusion_impact
# ---------------------------------------------------------------------------------------------------------
def case_b_items() -> list[FusionItem]:
    teacher = w(1.0, 0.0)
    return [
        FusionItem("q08", w(0.8, 0.2), teacher),
        FusionItem("q07", w(0.7, 0.3), teacher),
        FusionItem("q06", w(0.6, 0.4), teacher),
        FusionItem("q05", w(0.5, 0.5), teacher),
    ]


def test_mean_overlap_and_share_changed_by_hand() -> None:
    # From the four rows above: overlaps 0.8, 0.7, 0.6, 0.5 -> mean 0.65; changed 2, 3, 4, 5 -> more than 3
    # for 2 of 4 -> share 0.5.
    source = given_lists({f"q0{i}": CASE_B for i in (5, 6, 7, 8)})
    impact = fusion_impact(case_b_items(), source, resamples=200, seed=1)
    assert impact.mean_overlap.estimate == pytest.approx(0.65)
    assert impact.share_changed.estimate == pytest.approx(0.5)
    assert impact.mean_overlap.low is not None and impact.mean_overlap.high is not None
    assert 0.5 <= impact.mean_overlap.low <= 0.65 <= impact.mean_overlap.high <= 0.8
    assert (impact.n, impact.without_weights, impact.substituted) == (4, 0, False)
    assert [q.changed for q in impact.queries if q is not None] == [2, 3, 4, 5]
    assert impact.to_dict()["mean_overlap"]["n"] == 4


def test_a_query_without_candidate_weights_is_counted_or_ranked_with_the_default_weights() -> None:
    items = [*case_b_items(), FusionItem("q00", None, w(1.0, 0.0))]
    source = given_lists({f"q0{i}": CASE_B for i in (0, 5, 6, 7, 8)})
    # Without default weights: excluded from the mean, counted as missing.
    excluded = fusion_impact(items, source, resamples=100)
    assert (excluded.n, excluded.without_weights, excluded.substituted) == (5, 1, False)
    assert (excluded.mean_overlap.n, excluded.mean_overlap.missing) == (4, 1)
    assert excluded.queries[-1] is None
    # With the router's default weights (0.25 each: all four kept, but transcription and metadata hold no
    # document, so this is the 0.5 / 0.5 ranking of audio and visual): overlap 0.5 -> mean (2.6 + 0.5) / 5 = 0.62.
    ranked = fusion_impact(items, source, resamples=100, unanswered_weights=w(0.25, 0.25, 0.25, 0.25))
    assert (ranked.mean_overlap.n, ranked.mean_overlap.missing, ranked.substituted) == (5, 0, True)
    assert ranked.mean_overlap.estimate == pytest.approx(0.62)


def test_given_lists_name_a_query_they_lack() -> None:
    with pytest.raises(ValueError, match="no score lists were given for query 'q07'"):
        fusion_impact(case_b_items(), given_lists({"q08": CASE_B}))


def test_a_bad_changed_threshold_is_named() -> None:
    with pytest.raises(ValueError, match="changed_threshold must be a whole number >= 0"):
        fusion_impact(case_b_items(), given_lists({}), changed_threshold=-1)


def test_items_from_results_use_the_weights_of_answered_queries_only() -> None:
    reference = w(0.4, 0.3, 0.2, 0.1)
    results = [
        QueryResult(query="ok", category=None, reference=reference, weights=w(0.5, 0.3, 0.1, 0.1)),
        QueryResult(query="unparsed", category=None, reference=reference, parse_failure="invalid_json"),
        QueryResult(query="timeout", category=None, reference=reference, error_kind="Timeout"),
    ]
    items = items_from_results(results)
    assert [(i.query, i.candidate, i.teacher) for i in items] == [
        ("ok", w(0.5, 0.3, 0.1, 0.1), reference),
        ("unparsed", None, reference),
        ("timeout", None, reference),
    ]


# ---------------------------------------------------------------------------------------------------------
# drawn lists
# ---------------------------------------------------------------------------------------------------------
def test_drawn_lists_are_seeded_per_query() -> None:
    shape = ScoreShape()
    first = draw_lists("red car chase", NAMES, shape, seed=3)
    assert first == draw_lists("red car chase", NAMES, shape, seed=3)
    assert first != draw_lists("red car chase", NAMES, shape, seed=4)
    assert first != draw_lists("jazz piano solo", NAMES, shape, seed=3)


def test_drawn_lists_follow_the_shape() -> None:
    # 40 documents per channel from 100; a core of round(0.25 * 40) = 10 in every channel's list.
    shape = ScoreShape(documents=100, list_length=40, overlap=0.25, distribution="uniform")
    lists = draw_lists("q", NAMES, shape, seed=0)
    assert set(lists) == set(NAMES)
    assert all(len(scores) == 40 for scores in lists.values())
    common = set.intersection(*(set(scores) for scores in lists.values()))
    assert len(common) >= 10
    assert all(0.0 <= s < 1.0 for scores in lists.values() for s in scores.values())
    same = draw_lists("q", NAMES, ScoreShape(documents=100, list_length=40, overlap=1.0), seed=0)
    assert len({frozenset(scores) for scores in same.values()}) == 1


def test_fully_correlated_identical_lists_make_any_weights_rank_alike() -> None:
    # Every channel holds the same documents with the same scores: the fused ranking is that list's whatever
    # the weights, so every overlap is 1.
    source = drawn_lists(NAMES, ScoreShape(overlap=1.0, correlation=1.0), seed=2)
    items = [FusionItem(f"query {i}", w(0.1, 0.2, 0.3, 0.4), w(0.7, 0.1, 0.1, 0.1)) for i in range(20)]
    impact = fusion_impact(items, source, resamples=100)
    assert impact.mean_overlap.estimate == 1.0
    assert impact.share_changed.estimate == 0.0


def test_the_result_does_not_depend_on_the_order_of_the_queries() -> None:
    source = drawn_lists(NAMES, seed=5)
    teacher = w(0.55, 0.25, 0.15, 0.05)
    items = [FusionItem(f"query {i}", w(0.25 + i / 100, 0.35 - i / 100, 0.25, 0.15), teacher) for i in range(30)]
    forward = fusion_impact(items, source, resamples=200)
    backward = fusion_impact(list(reversed(items)), source, resamples=200)
    assert forward.mean_overlap == backward.mean_overlap
    assert forward.share_changed == backward.share_changed
    assert {q.query: q for q in forward.queries if q} == {q.query: q for q in backward.queries if q}
    # The candidate is not the teacher: some results change.
    assert forward.mean_overlap.estimate is not None and forward.mean_overlap.estimate < 1.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"documents": 0}, "score shape documents must be a whole number >= 1"),
        ({"documents": 20, "list_length": 30}, r"list_length \(30\) must not exceed documents \(20\)"),
        ({"overlap": 1.5}, "score shape overlap must be a number in 0..1"),
        ({"correlation": -0.1}, "score shape correlation must be a number in 0..1"),
        ({"distribution": "pareto"}, "distribution must be normal, uniform or exponential"),
    ],
)
def test_a_bad_shape_is_named(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScoreShape(**settings)  # type: ignore[arg-type]


def test_drawn_lists_need_unique_channels() -> None:
    with pytest.raises(ValueError, match="channels must be a non-empty list of unique names"):
        drawn_lists(["visual", "visual"])


def test_the_user_s_score_samples_are_parsed_and_named_when_bad() -> None:
    from search_router.pipeline.fusion import parse_score_samples

    good = '{"visual": {"a": 3, "b": 1}, "audio": {"a": 0.5}}\n\n{"visual": {"c": 2}, "audio": {"d": 1}}\n'
    samples = parse_score_samples(good, ("visual", "audio"))
    assert samples == [
        {"visual": {"a": 3.0, "b": 1.0}, "audio": {"a": 0.5}},
        {"visual": {"c": 2.0}, "audio": {"d": 1.0}},
    ]
    bad = {
        "not json": "score samples line 1: not valid JSON",
        "[1]": "score samples line 1: expected an object",
        '{"visual": {"a": 1}}': "score samples line 1: no list for channel(s) audio",
        '{"visual": {}, "audio": {"a": 1}}': "'visual' must be a non-empty object",
        '{"visual": {"a": NaN}, "audio": {"a": 1}}': "must be a finite number",
        "": "holds no sample",
    }
    for text, message in bad.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_score_samples(text, ("visual", "audio"))


def test_each_query_gets_one_sample_chosen_by_its_text_and_the_seed() -> None:
    from search_router.pipeline.fusion import query_seed, sampled_lists

    samples = [{"visual": {f"d{i}": float(i)}, "audio": {"x": 1.0}} for i in range(7)]
    source = sampled_lists(samples, seed=11)
    for query in ("cats", "rain on a window", "a goal in the last minute"):
        assert source(query) is samples[query_seed(11, query) % 7]
        assert sampled_lists(list(reversed(samples[::-1])), seed=11)(query) == source(query)
    with pytest.raises(ValueError, match="at least one score sample"):
        sampled_lists([])
