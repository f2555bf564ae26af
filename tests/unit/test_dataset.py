"""Labeled examples, training records, validation, held-out split and manifest (search_router.pipeline.dataset)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from search_router.pipeline.dataset import (
    MAX_RECORDS,
    MIN_RECORDS,
    SCHEMA_VERSION,
    DatasetTooSmall,
    LabeledExample,
    build_manifest,
    ensure_trainable,
    heldout_record,
    read_examples,
    reasoning_assignment,
    sha256_text,
    split_heldout,
    training_jsonl,
    training_record,
    validate_training_jsonl,
    write_examples,
)
from search_router.pipeline.queries.query import normalize_query
from search_router.pipeline.queries.user_files import parse_user_queries
from search_router.shared.answer.formatting import format_answer
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import student_prompt, teacher_prompt

WEIGHTS = {"visual": 0.7, "audio": 0.1, "transcription": 0.0, "metadata": 0.2}


def example(query: str = "sunset over snowy mountains", category: str = "visual_dominant", **kw: Any) -> LabeledExample:
    return LabeledExample(
        query=query,
        category=category,
        source=kw.get("source", "synthetic"),
        weights=kw.get("weights", dict(WEIGHTS)),
        reasoning=kw.get("reasoning", "Scenery is visual."),
    )


def dominant(channel: str) -> dict[str, float]:
    weights = dict.fromkeys(DEFAULT_CHANNELS.names, 0.0)
    weights[channel] = 1.0
    return weights


def valid_file(n: int = MIN_RECORDS) -> list[dict[str, Any]]:
    return [training_record(example(f"query number {i}"), DEFAULT_CHANNELS) for i in range(n)]


def as_jsonl(records: list[Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


# ------------------------------------------------------------------------------------------------ examples
def test_labeled_example_round_trips_through_json_lines() -> None:
    original = example(query="Beyoncé concert «live»", reasoning=None)
    line = original.to_json_line()
    assert "\n" not in line and "Beyoncé" in line
    assert LabeledExample.from_json_line(line) == original
    assert read_examples(write_examples([original, example()])) == [original, example()]


def test_labeled_example_decision_and_dominant_channel() -> None:
    decision = example().decision
    assert decision.weights == WEIGHTS
    assert decision.reasoning == "Scenery is visual."
    assert example().dominant_channel == "visual"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"query": "q", "category": "c", "source": "s", "reasoning": null}', "non-empty 'weights'"),
        ('{"query": "q", "category": "c", "source": "s", "weights": {"visual": 0.5, "audio": 0.4}}', "sum to 1"),
        ('{"query": 1, "category": "c", "source": "s", "weights": {"visual": 1.0}}', "'query' must be a string"),
    ],
)
def test_bad_labeled_example_lines_are_rejected(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LabeledExample.from_json_line(line)


def test_read_examples_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match="line 2: "):
        read_examples(example().to_json_line() + "\n{oops\n")


# ------------------------------------------------------------------------------------------------ records
def test_training_record_has_the_bedrock_conversation_shape() -> None:
    record = training_record(example(), DEFAULT_CHANNELS)
    assistant = format_answer(example().decision, DEFAULT_CHANNELS)
    assert record == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": student_prompt(DEFAULT_CHANNELS)}],
        "messages": [
            {"role": "user", "content": [{"text": "sunset over snowy mountains"}]},
            {"role": "assistant", "content": [{"text": assistant}]},
        ],
    }
    # weights first (channel order), reasoning last, and the target parses back to the teacher's weights
    assert assistant.startswith('{"visual":0.7,"audio":0.1,"transcription":0.0,"metadata":0.2,"reasoning"')
    parsed = parse_routing_answer(assistant, DEFAULT_CHANNELS, sum_tolerance=0.01)
    assert parsed.ok and parsed.decision.weights == WEIGHTS
    assert len(student_prompt(DEFAULT_CHANNELS)) < len(teacher_prompt(DEFAULT_CHANNELS)) / 3


def test_a_weights_only_record_has_the_weights_only_prompt_and_target() -> None:
    record = training_record(example(), DEFAULT_CHANNELS, reasoning=False)

    assert record["system"] == [{"text": student_prompt(DEFAULT_CHANNELS, reasoning=False)}]
    (assistant,) = record["messages"][1]["content"]
    assert assistant == {"text": '{"visual":0.7,"audio":0.1,"transcription":0,"metadata":0.2}'}
    parsed = parse_routing_answer(assistant["text"], DEFAULT_CHANNELS, sum_tolerance=0.01)
    assert parsed.ok and parsed.clean and parsed.decision.weights == WEIGHTS and parsed.decision.reasoning is None


def test_an_example_without_reasoning_cannot_train_the_reasoning_prompt() -> None:
    with pytest.raises(ValueError, match="has no reasoning: it can only train the weights-only prompt"):
        training_record(example(reasoning=None), DEFAULT_CHANNELS, reasoning=True)


def test_the_two_prompt_file_puts_each_query_once_with_one_prompt_in_the_configured_share() -> None:
    # Given 400 examples, 40 of them without reasoning, and a share of 30% with reasoning
    examples = [example(f"query {i}", reasoning=None if i % 10 == 0 else f"reason {i}") for i in range(400)]

    # When the records are assigned and written
    flags = reasoning_assignment(examples, 0.3, seed=7)
    text = training_jsonl(examples, DEFAULT_CHANNELS, reasoning=flags)

    # Then the file is valid bedrock-conversation-2024 with one record per query
    report = validate_training_jsonl(text, DEFAULT_CHANNELS)
    assert report.ok, report.errors
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["messages"][0]["content"][0]["text"] for r in records] == [e.query for e in examples]
    # 120 with the reasoning prompt, never an example without reasoning; each target matches its prompt
    prompts = {True: student_prompt(DEFAULT_CHANNELS), False: student_prompt(DEFAULT_CHANNELS, reasoning=False)}
    assert sum(flags) == 120
    for record, flag, source in zip(records, flags, examples, strict=True):
        assert record["system"] == [{"text": prompts[flag]}]
        parsed = parse_routing_answer(record["messages"][1]["content"][0]["text"], DEFAULT_CHANNELS)
        assert parsed.ok and parsed.clean and parsed.decision.weights == WEIGHTS
        assert parsed.decision.reasoning == (source.reasoning if flag else None)
        assert not (flag and source.reasoning is None)


def test_the_reasoning_assignment_is_seeded() -> None:
    examples = [example(f"query {i}") for i in range(200)]

    first = reasoning_assignment(examples, 0.5, seed=1)

    assert first == reasoning_assignment(examples, 0.5, seed=1)
    assert first != reasoning_assignment(examples, 0.5, seed=2)
    assert sum(first) == 100
    assert reasoning_assignment(examples, 0.0, seed=1) == [False] * 200
    assert reasoning_assignment(examples, 1.0, seed=1) == [True] * 200


def test_the_reasoning_share_is_capped_by_the_examples_that_have_a_reasoning() -> None:
    examples = [example(f"query {i}", reasoning=None if i < 150 else "why") for i in range(200)]

    assert sum(reasoning_assignment(examples, 0.9, seed=3)) == 50


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_reasoning_share_outside_0_to_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match=r"the reasoning share must be within 0\.\.1"):
        reasoning_assignment([example()], share, seed=0)


def test_reasoning_flags_must_match_the_examples() -> None:
    with pytest.raises(ValueError, match="1 reasoning flags for 2 examples"):
        training_jsonl([example("a"), example("b")], DEFAULT_CHANNELS, reasoning=[True])


def test_heldout_record_strips_reasoning() -> None:
    assert heldout_record(example()) == {
        "query": "sunset over snowy mountains",
        "category": "visual_dominant",
        "reference": WEIGHTS,
    }


# ------------------------------------------------------------------------------------------------ validation
def test_a_valid_training_file_passes() -> None:
    examples = [example(f"query {i}") for i in range(150)]
    report = validate_training_jsonl(training_jsonl(examples, DEFAULT_CHANNELS), DEFAULT_CHANNELS)
    assert report.ok, report.errors
    assert report.records == 150
    assert report.bytes > 0
    assert "valid" in report.summary()


def test_system_prompt_is_optional_and_a_trailing_user_turn_is_allowed() -> None:
    records = valid_file()
    del records[0]["system"]
    records[1]["messages"] = records[1]["messages"][:1]
    assert validate_training_jsonl(as_jsonl(records), DEFAULT_CHANNELS).ok


def _break_schema_version(record: dict[str, Any]) -> None:
    record["schemaVersion"] = "bedrock-conversion-2024"


def _assistant_first(record: dict[str, Any]) -> None:
    record["messages"].reverse()


def _two_content_items(record: dict[str, Any]) -> None:
    record["messages"][0]["content"].append({"text": "more"})


def _image_content(record: dict[str, Any]) -> None:
    record["messages"][0]["content"] = [{"image": {"format": "png", "source": {"bytes": "AAAA"}}}]


def _text_and_image_in_one_item(record: dict[str, Any]) -> None:
    record["messages"][0]["content"][0]["image"] = {"format": "png"}


def _empty_text(record: dict[str, Any]) -> None:
    record["messages"][0]["content"][0]["text"] = "  "


def _invalid_weights(record: dict[str, Any]) -> None:
    record["messages"][1]["content"][0]["text"] = '{"visual": 0.5, "audio": 0.3, "transcription": 0.1, "metadata": 0}'


def _missing_channel(record: dict[str, Any]) -> None:
    record["messages"][1]["content"][0]["text"] = '{"visual": 1.0}'


def _two_user_turns(record: dict[str, Any]) -> None:
    record["messages"][1]["role"] = "user"


def _empty_messages(record: dict[str, Any]) -> None:
    record["messages"] = []


def _bad_system(record: dict[str, Any]) -> None:
    record["system"] = [{"text": ""}]


def _unknown_key(record: dict[str, Any]) -> None:
    record["metadata"] = {"x": 1}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_break_schema_version, "schemaVersion must be 'bedrock-conversation-2024'"),
        (_assistant_first, "messages[0].role must be 'user'"),
        (_two_content_items, "messages[0].content must be a list with exactly one item, got 2"),
        (_image_content, "messages[0].content[0] must be text only"),
        (_text_and_image_in_one_item, "messages[0].content[0] must be text only"),
        (_empty_text, "messages[0].content[0].text must be a non-empty string"),
        (_invalid_weights, "assistant answer is not valid weights: bad_sum"),
        (_missing_channel, "assistant answer is not valid weights: missing_channels"),
        (_two_user_turns, "messages[1].role must be 'assistant'"),
        (_empty_messages, "messages must be a non-empty list"),
        (_bad_system, "system[0].text must be a non-empty string"),
        (_unknown_key, "unexpected key(s) ['metadata']"),
    ],
)
def test_validator_catches_each_violation_with_its_line_number(mutate: Any, message: str) -> None:
    # Given a valid file of 120 records with record 37 (line 37) broken
    records = valid_file(120)
    broken = copy.deepcopy(records[36])
    mutate(broken)
    records[36] = broken
    # When
    report = validate_training_jsonl(as_jsonl(records), DEFAULT_CHANNELS)
    # Then exactly that line is reported
    assert not report.ok
    assert all(error.startswith("line 37: ") for error in report.errors), report.errors
    assert any(message in error for error in report.errors), report.errors


def test_validator_reports_non_json_and_non_object_lines() -> None:
    text = as_jsonl(valid_file()) + "{not json\n" + "[1, 2]\n"
    report = validate_training_jsonl(text, DEFAULT_CHANNELS)
    assert report.records == 102
    assert report.errors[0].startswith("line 101: not valid JSON")
    assert report.errors[1] == "line 102: expected a JSON object, got list"


def test_validator_enforces_the_record_count_limits() -> None:
    too_few = validate_training_jsonl(as_jsonl(valid_file(MIN_RECORDS - 1)), DEFAULT_CHANNELS)
    assert too_few.errors == ["file has 99 records; Bedrock distillation needs at least 100"]
    assert validate_training_jsonl(as_jsonl(valid_file(MIN_RECORDS)), DEFAULT_CHANNELS).ok
    line = json.dumps(valid_file(1)[0]) + "\n"
    too_many = validate_training_jsonl(line * (MAX_RECORDS + 1), DEFAULT_CHANNELS)
    assert too_many.errors == ["file has 15001 records; Bedrock distillation accepts at most 15000"]


def test_validator_flags_blank_lines_inside_the_file() -> None:
    records = as_jsonl(valid_file()).split("\n")
    records.insert(5, "")
    report = validate_training_jsonl("\n".join(records), DEFAULT_CHANNELS)
    assert report.errors == ["line 6: blank line"]


def test_validator_caps_the_error_list_but_counts_everything() -> None:
    records = valid_file(300)
    for record in records:
        record["schemaVersion"] = "v1"
    report = validate_training_jsonl(as_jsonl(records), DEFAULT_CHANNELS)
    assert report.error_count == 300
    assert len(report.errors) == 100
    assert "(+295 more)" in report.summary()


# ------------------------------------------------------------------------------------------------ split
def corpus() -> list[LabeledExample]:
    """1,001 examples: five categories of uneven size, a category of two and a category of one."""
    sizes = {"visual_dominant": 300, "audio_dominant": 200, "transcription_dominant": 180, "balanced": 160}
    sizes["complex"] = 158
    examples = []
    for category, size in sizes.items():
        channel = category.split("_")[0] if category.endswith("_dominant") else "metadata"
        examples += [example(f"{category} query {i}", category, weights=dominant(channel)) for i in range(size)]
    examples += [example("rare one", "rare"), example("rare two", "rare"), example("single", "single")]
    return examples


def test_split_removes_duplicates_first_and_keeps_sets_disjoint() -> None:
    # Given the corpus with three near-duplicates appended
    examples = corpus()
    duplicates = [example("VISUAL_DOMINANT query 3!", "visual_dominant"), example("  rare one ", "rare")]
    duplicates.append(example("balanced Query 9", "balanced"))
    # When
    train, heldout, removed = split_heldout(examples + duplicates, 100, seed=1)
    # Then
    assert removed == 3
    assert len(train) + len(heldout) == len(examples)
    assert len(heldout) == 100
    train_keys = {normalize_query(e.query) for e in train}
    heldout_keys = {normalize_query(e.query) for e in heldout}
    assert not train_keys & heldout_keys
    assert len(train_keys) == len(train)


def test_split_is_stratified_by_category() -> None:
    train, heldout, _ = split_heldout(corpus(), 100, seed=1)
    per_category = Counter(e.category for e in heldout)
    # proportional (1001 examples, 100 held out): 300 -> 30, 200 -> 20, 180 -> 18, 160 -> 16, 158 -> 16, ...
    assert per_category["visual_dominant"] in (29, 30)
    assert per_category["audio_dominant"] in (19, 20)
    assert per_category["transcription_dominant"] in (17, 18)
    assert per_category["balanced"] in (15, 16)
    assert per_category["complex"] in (15, 16)
    # a category of two gets one held out, and keeps one for training
    assert per_category["rare"] == 1
    assert sum(1 for e in train if e.category == "rare") == 1
    assert sum(per_category.values()) == 100


def test_split_is_deterministic_by_seed_and_keeps_input_order() -> None:
    examples = corpus()
    first = split_heldout(examples, 100, seed=5)
    assert split_heldout(examples, 100, seed=5) == first
    assert split_heldout(examples, 100, seed=6)[1] != first[1]
    train, heldout, _ = first
    order = {e.query: i for i, e in enumerate(examples)}
    assert [order[e.query] for e in heldout] == sorted(order[e.query] for e in heldout)
    assert [order[e.query] for e in train] == sorted(order[e.query] for e in train)


def test_split_every_category_of_two_or_more_is_represented_when_n_allows() -> None:
    examples = [example(f"big {i}", "big") for i in range(500)]
    examples += [example(f"small {i}", f"small_{i // 2}") for i in range(8)]  # four categories of two
    _, heldout, _ = split_heldout(examples, 5, seed=1)
    assert Counter(e.category for e in heldout) == {"big": 1, "small_0": 1, "small_1": 1, "small_2": 1, "small_3": 1}


def test_split_edge_sizes() -> None:
    examples = corpus()
    train, heldout, _ = split_heldout(examples, 0, seed=1)
    assert heldout == [] and len(train) == len(examples)
    train, heldout, _ = split_heldout(examples, 10_000, seed=1)
    assert train == [] and len(heldout) == len(examples)
    with pytest.raises(ValueError, match="n_heldout must be >= 0"):
        split_heldout(examples, -1, seed=1)


# ------------------------------------------------------------------------------------------------ manifest
def test_manifest_reports_every_number() -> None:
    # Given
    train, heldout, duplicates = split_heldout(corpus(), 100, seed=1)
    user = parse_user_queries(b"a\n\nb\na\n", key="q.txt")
    # When
    manifest = build_manifest(
        channels=DEFAULT_CHANNELS,
        requested=1100,
        planned=1090,
        labeled=1001,
        invalid=Counter({"bad_sum": 7, "no_json": 2}),
        errors={"ValidationException": 1},
        duplicates=duplicates,
        unlabeled=80,
        train=train,
        heldout=heldout,
        teacher_model_id="us.amazon.nova-premier-v1:0",
        student_model_id="amazon.nova-micro-v1:0:128k",
        seed=1,
        user_queries=user,
        labeling={"input_tokens": 123},
    )
    # Then
    assert json.loads(json.dumps(manifest)) == manifest
    assert manifest["requested"] == 1100 and manifest["planned"] == 1090 and manifest["shortfall"] == 10
    assert manifest["labeled"] == 1001
    assert manifest["invalid"] == {"total": 9, "by": {"bad_sum": 7, "no_json": 2}}
    assert manifest["errors"] == {"total": 1, "by": {"ValidationException": 1}}
    assert manifest["duplicates"] == 0 and manifest["unlabeled"] == 80
    assert manifest["train_records"] == 901 and manifest["heldout_records"] == 100
    assert (
        manifest["per_category"]["visual_dominant"]["train"] + manifest["per_category"]["visual_dominant"]["heldout"]
        == 300
    )
    assert manifest["per_category"]["rare"] == {"train": 1, "heldout": 1}
    per_channel = manifest["per_dominant_channel"]
    assert list(per_channel) == ["visual", "audio", "transcription", "metadata"]
    assert sum(v["train"] for v in per_channel.values()) == 901
    assert sum(v["heldout"] for v in per_channel.values()) == 100
    assert per_channel["audio"]["train"] + per_channel["audio"]["heldout"] == 200
    assert manifest["per_source"] == {"synthetic": {"train": 901, "heldout": 100}}
    assert manifest["user_queries"]["accepted"] == 2 and manifest["user_queries"]["duplicates"] == 1
    assert manifest["models"] == {"teacher": "us.amazon.nova-premier-v1:0", "student": "amazon.nova-micro-v1:0:128k"}
    assert manifest["prompts"]["teacher"]["sha256"] == sha256_text(teacher_prompt(DEFAULT_CHANNELS))
    assert manifest["prompts"]["student"]["text"] == student_prompt(DEFAULT_CHANNELS)
    weights_only = student_prompt(DEFAULT_CHANNELS, reasoning=False)
    assert manifest["prompts"]["student_weights_only"]["text"] == weights_only
    assert manifest["schemaVersion"] == SCHEMA_VERSION
    assert manifest["labeling"] == {"input_tokens": 123}


def test_manifest_without_user_queries_has_no_user_section() -> None:
    manifest = build_manifest(
        channels=DEFAULT_CHANNELS,
        requested=10,
        planned=10,
        labeled=0,
        invalid={},
        errors={},
        duplicates=0,
        unlabeled=0,
        train=[],
        heldout=[],
        teacher_model_id="t",
        student_model_id="s",
    )
    assert "user_queries" not in manifest
    assert manifest["per_dominant_channel"]["metadata"] == {"train": 0, "heldout": 0}


# ------------------------------------------------------------------------------------------------ size check
def test_dataset_too_small_message_gives_the_numbers() -> None:
    with pytest.raises(DatasetTooSmall) as caught:
        ensure_trainable(87, requested=10_000, labeled=90, invalid=5, duplicates=3)
    assert str(caught.value) == (
        "only 87 valid training examples (requested 10000, labeled 90, invalid 5, duplicates 3); "
        "Bedrock distillation needs at least 100"
    )
    assert caught.value.valid == 87 and caught.value.requested == 10_000


def test_dataset_too_small_mentions_errors_and_unlabeled_when_present() -> None:
    message = str(DatasetTooSmall(valid=0, requested=500, labeled=0, invalid=0, duplicates=0, errors=500))
    assert "errors 500" in message and "only 0 valid" in message
    message = str(DatasetTooSmall(valid=50, requested=500, labeled=50, invalid=0, duplicates=0, unlabeled=450))
    assert "unlabeled 450" in message


def test_ensure_trainable_accepts_the_minimum() -> None:
    ensure_trainable(MIN_RECORDS, requested=100, labeled=100, invalid=0, duplicates=0)
