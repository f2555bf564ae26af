"""The template-disjoint held-out split (search_router.pipeline.dataset.split_heldout_disjoint) and the template
id that synthetic queries carry from the synthesizer through the shard file, the labeled example and the
checkpoint to the split."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from search_router.pipeline.checkpoint import outcome_from_record, outcome_record
from search_router.pipeline.dataset import (
    PRODUCTION_SPLIT,
    SEEN,
    UNSEEN_TEMPLATE,
    USER_SPLIT,
    HeldOutSplit,
    LabeledExample,
    heldout_record,
    split_heldout_disjoint,
    split_heldout_for_run,
)
from search_router.pipeline.labeling import LABELED, QueryOutcome
from search_router.pipeline.queries.plan_output import shard_document
from search_router.pipeline.queries.planning import plan_queries, unseen_template_queries
from search_router.pipeline.queries.query import PRODUCTION, USER, Query
from search_router.pipeline.queries.synthesis import heldout_templates, synthesize, synthesize_queries
from search_router.pipeline.queries.vocabulary import BUILTIN
from search_router.shared.channels import DEFAULT_CHANNELS, ChannelSet

WEIGHTS = {"visual": 0.4, "audio": 0.3, "transcription": 0.2, "metadata": 0.1}


def labeled(query: Query) -> LabeledExample:
    return LabeledExample(
        query=query.text,
        category=query.category,
        source=query.source,
        weights=dict(WEIGHTS),
        reasoning="r",
        template=query.template,
    )


def corpus(n: int = 2_000, *, seed: int = 3, user: int = 0, unseen: int = 0) -> list[LabeledExample]:
    """What PlanQueries plans (``unseen`` of them from the reserved templates), labeled by a stand-in teacher."""
    users = [Query(text=f"my own query {i}", category="user", source=USER) for i in range(user)]
    planned = plan_queries(
        DEFAULT_CHANNELS, n_total=n + user, seed=seed, user=users, mix_user=True, unseen_heldout=unseen
    )
    return [labeled(q) for q in planned]


def split(examples: list[LabeledExample], n_heldout: int, *, seed: int = 3, share: float) -> HeldOutSplit:
    return split_heldout_for_run(examples, DEFAULT_CHANNELS, n_heldout, seed=seed, unseen_template_share=share)


def test_every_synthetic_query_names_a_builtin_template_of_its_category() -> None:
    # When queries are synthesized for the built-in channels
    queries = synthesize_queries(DEFAULT_CHANNELS, 500, seed=1)
    # Then each one carries "builtin/<category>/<pattern>" for a pattern of vocabulary.json in that category
    for query in queries:
        assert query.template is not None
        vocabulary, category, pattern = query.template.split("/", 2)
        assert (vocabulary, category) == ("builtin", query.category)
        assert pattern in {t.pattern for t in BUILTIN.templates[category]}


def test_a_custom_channel_query_names_the_channel_vocabulary() -> None:
    channels = ChannelSet.from_obj(
        [
            *({"name": c.name, "description": c.description} for c in DEFAULT_CHANNELS),
            {"name": "mood", "description": "mood: happy, sad or tense", "examples": ["gloomy scenes"]},
        ]
    )
    queries = synthesize_queries(channels, 300, seed=1, mix={"mood_dominant": 1.0})
    assert queries and all(q.template and q.template.startswith("channels/mood_dominant/") for q in queries)


def test_unseen_split_shares_no_template_with_training() -> None:
    # Given 2,000 planned and teacher-labeled queries, 30 of them from the reserved templates, and 20 user queries
    examples = corpus(user=20, unseen=30)
    # When 100 are held out, 30% of them from unseen templates
    result = split(examples, 100, share=0.3)
    # Then no held-out "unseen_template" query comes from a template any training example comes from
    train_templates = {e.template for e in result.train}
    unseen = [e for e, s in zip(result.heldout, result.splits, strict=True) if s == UNSEEN_TEMPLATE]
    assert len(unseen) == 30
    assert not {e.template for e in unseen} & train_templates
    assert set(result.unseen_templates) == {e.template for e in unseen}
    # and every "seen" query's template is trained on; user queries are their own split
    for held, name in zip(result.heldout, result.splits, strict=True):
        if name == SEEN:
            assert held.template in train_templates
        assert (name == USER_SPLIT) == (held.source == USER)
    assert result.per_split()[USER_SPLIT] > 0
    # and every category is still trained on
    assert {e.category for e in result.train} == {e.category for e in examples}


def test_every_example_is_accounted_for_and_training_keeps_its_size() -> None:
    # Given the planned queries (1,900 + 100 held out) and one near-duplicate
    examples = corpus(2_000, unseen=30)
    first = examples[5]
    duplicate = LabeledExample(
        query=first.query.upper() + "!",
        category=first.category,
        source=first.source,
        weights=dict(WEIGHTS),
        reasoning=None,
        template=first.template,
    )
    result = split([*examples, duplicate], 100, share=0.3)
    # Then training gets exactly what the stratified split gave before: nothing withheld, nothing lost
    assert result.withheld == 0 and result.duplicates == 1
    assert len(result.train) == 1_900 and len(result.heldout) == 100 == sum(result.per_split().values())
    assert not {e.query for e in result.train} & {e.query for e in result.heldout}


def test_more_examples_of_unseen_templates_than_wanted_are_withheld_and_counted() -> None:
    # Given a plan that drew 60 queries from the reserved templates, but a split that holds out 30 of them
    examples = corpus(1_000, unseen=60)
    n_unseen = 30
    reserved = heldout_templates(DEFAULT_CHANNELS, seed=3, wanted=60)
    result = split_heldout_disjoint(examples, 100, seed=3, unseen_templates=reserved, n_unseen=n_unseen)
    # Then the other 30 are neither trained on nor held out, and say so
    assert result.withheld == 30
    assert len(result.train) + len(result.heldout) + result.withheld == len(examples)
    assert not {e.template for e in result.train} & reserved
    assert result.summary()["withheld_unseen_template"] == 30


def test_share_zero_is_the_stratified_split_and_the_result_is_deterministic() -> None:
    plain = corpus(800)
    none = split(plain, 50, share=0.0)
    assert none.withheld == 0 and none.unseen_templates == ()
    assert Counter(none.splits) == {SEEN: 50}
    examples = corpus(800, unseen=20)
    again = split(examples, 50, share=0.4)
    assert again == split(examples, 50, share=0.4)
    assert again.heldout != split(examples, 50, seed=4, share=0.4).heldout


def test_reserving_templates_keeps_the_mix_exact_and_every_category_in_training() -> None:
    # When 40 of 1,000 synthesized queries come from the reserved templates
    plain = synthesize(DEFAULT_CHANNELS, 1_000, seed=9)
    result = synthesize(DEFAULT_CHANNELS, 1_000, seed=9, reserved=40)
    reserved = heldout_templates(DEFAULT_CHANNELS, seed=9, wanted=40)
    # Then the counts per category are the mix's, 40 queries come from the reserved templates, and every
    # category keeps templates that are not reserved
    assert result.produced == plain.produced == plain.targets
    assert sum(q.template in reserved for q in result.queries) == 40
    for category, templates in BUILTIN.templates.items():
        ids = {f"builtin/{category}/{t.pattern}" for t in templates}
        assert ids - reserved
    with pytest.raises(ValueError, match=r"reserved must be within 0\.\.n"):
        synthesize(DEFAULT_CHANNELS, 10, seed=9, reserved=11)


def test_examples_without_templates_give_no_unseen_split_but_the_same_total() -> None:
    # Old shards (no template recorded) and user queries cannot be template-disjoint: all held out by stratum
    examples = [
        LabeledExample(query=f"q {i}", category="user", source=USER, weights=dict(WEIGHTS), reasoning=None)
        for i in range(200)
    ]
    result = split(examples, 40, share=0.5)
    assert result.per_split() == {SEEN: 0, UNSEEN_TEMPLATE: 0, USER_SPLIT: 40, PRODUCTION_SPLIT: 0}
    assert result.withheld == 0 and len(result.train) == 160


def test_production_queries_are_always_held_out_beyond_eval_examples_and_never_trained_on() -> None:
    def example(text: str, source: str) -> LabeledExample:
        return LabeledExample(query=text, category="user", source=source, weights=dict(WEIGHTS), reasoning=None)

    user = [example(f"user query {i}", USER) for i in range(100)]
    production = [example(f"production query {i}", PRODUCTION) for i in range(30)]
    # a production query that repeats a user query is one query: the first seen (the user's) is kept
    result = split([*production, *user, example("User Query 3", PRODUCTION)], 20, share=0.0)
    assert result.per_split() == {SEEN: 0, UNSEEN_TEMPLATE: 0, USER_SPLIT: 20, PRODUCTION_SPLIT: 30}
    assert len(result.heldout) == 50 and len(result.train) == 80 and result.duplicates == 1
    trained = {e.query for e in result.train}
    assert not trained & {e.query for e in production}
    assert [s for e, s in zip(result.heldout, result.splits, strict=True) if e.source == PRODUCTION] == [
        PRODUCTION_SPLIT
    ] * 30


def test_bad_share_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unseen-template share must be within 0\.\.1"):
        unseen_template_queries(10, 1.5)


def test_heldout_record_says_its_split() -> None:
    record = heldout_record(corpus(10)[0], UNSEEN_TEMPLATE)
    assert record["split"] == UNSEEN_TEMPLATE


def test_the_template_survives_the_shard_file_the_labeled_line_and_the_checkpoint() -> None:
    # Given a synthetic and a user query in a shard file
    query = synthesize_queries(DEFAULT_CHANNELS, 1, seed=4)[0]
    user = Query(text="mine", category="user", source=USER)
    items = json.loads(json.dumps(shard_document([query, user])))["queries"]
    assert items[0]["template"] == query.template and "template" not in items[1]
    # When labeled and written as a shard line and as a checkpoint record
    example = labeled(Query(**items[0]))
    assert LabeledExample.from_json_line(example.to_json_line()) == example
    restored = outcome_from_record(
        json.loads(json.dumps(outcome_record(0, QueryOutcome(LABELED, query=query.text, example=example))))
    )
    # Then the template is still there
    assert restored.example is not None and restored.example.template == query.template
    with pytest.raises(ValueError, match="'template' must be a string"):
        LabeledExample.from_json_line(json.dumps({**json.loads(example.to_json_line()), "template": 3}))
