"""Reading the micro-router's training pairs back from the bedrock-conversation-2024 file PrepareDataset writes, and
their calibration groups (templates) from the groups file written beside it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from search_router.pipeline.dataset import (
    LabeledExample,
    examples_from_training_jsonl,
    read_training_groups,
    reasoning_assignment,
    training_groups_jsonl,
    training_groups_summary,
    training_jsonl,
    validate_training_jsonl,
)
from search_router.pipeline.micro_router_training import (
    CALIBRATION_BY_QUERIES,
    CALIBRATION_BY_TEMPLATES,
    TrainingGroupsMismatch,
    TrainingSettings,
    assign_training_groups,
    calibration_slice,
    train_micro_router,
)
from search_router.pipeline.queries.query import USER
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.micro_router import FeatureSettings
from tests.unit.test_micro_router import labeled

WEIGHTS = (
    {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1},
    {"visual": 0.05, "audio": 0.05, "transcription": 0.8, "metadata": 0.1},
)


def _examples() -> list[LabeledExample]:
    return [
        LabeledExample(query=f"query {i}", category="c", source="synthetic", weights=dict(w), reasoning="because")
        for i, w in enumerate(WEIGHTS)
    ]


@pytest.mark.parametrize("reasoning", [True, False])
def test_the_training_file_gives_back_each_query_and_the_teachers_weights(reasoning: bool) -> None:
    # Given the training file of two examples, with either student prompt
    text = training_jsonl(_examples(), DEFAULT_CHANNELS, reasoning=[reasoning, reasoning])

    # When it is read back
    read = examples_from_training_jsonl(text, DEFAULT_CHANNELS)

    # Then each record gives its query and the teacher's weights
    assert [e.query for e in read] == ["query 0", "query 1"]
    assert [e.weights for e in read] == [dict(w) for w in WEIGHTS]


def test_a_line_that_is_not_a_conversation_is_named() -> None:
    text = training_jsonl(_examples(), DEFAULT_CHANNELS) + '{"messages": []}\n'
    with pytest.raises(ValueError, match="training file line 3: not a user turn then an assistant turn"):
        examples_from_training_jsonl(text, DEFAULT_CHANNELS)


def test_an_assistant_turn_without_weights_is_named() -> None:
    line = '{"messages": [{"content": [{"text": "q"}]}, {"content": [{"text": "no idea"}]}]}\n'
    with pytest.raises(ValueError, match="training file line 1: the assistant turn does not parse"):
        examples_from_training_jsonl(line, DEFAULT_CHANNELS)


# --- the groups file (train-groups.jsonl) --------------------------------------------------------------------------


def _planned(n: int = 400) -> list[LabeledExample]:
    """Synthesized queries with their templates and the simulated teacher's weights, two of them made user queries
    (no template), with reasoning so that both student prompts occur."""
    examples = [replace(e, reasoning="because") for e in labeled()[:n]]
    for index in (3, n - 10):
        examples[index] = replace(examples[index], source=USER, category="user", template=None)
    return examples


def _files(examples: list[LabeledExample]) -> tuple[str, str]:
    flags = reasoning_assignment(examples, 0.5, seed=1)
    return training_jsonl(examples, DEFAULT_CHANNELS, reasoning=flags), training_groups_jsonl(examples)


def test_the_groups_file_has_one_line_per_training_line_with_its_query_and_template() -> None:
    # Given the training file and the groups file written for the same examples
    examples = _planned()
    training, groups = _files(examples)

    # Then line by line, the groups file names the training line's user text and the example's template (null for a
    # user's query), and the training file is still valid bedrock-conversation-2024 (it gained nothing)
    training_lines, group_lines = training.splitlines(), groups.splitlines()
    assert len(group_lines) == len(training_lines) == len(examples)
    for record, group, example in zip(training_lines, group_lines, examples, strict=True):
        user_text = json.loads(record)["messages"][0]["content"][0]["text"]
        assert json.loads(group) == {
            "query": user_text,
            "template": example.template,
            "category": example.category,
            "source": example.source,
        }
    assert validate_training_jsonl(training, DEFAULT_CHANNELS).ok
    assert sum(json.loads(line)["template"] is None for line in group_lines) == 2
    assert training_groups_summary(examples) == {
        "lines": 400,
        "with_template": 398,
        "without_template": 2,
        "templates": len({e.template for e in examples if e.template}),
    }


def test_the_groups_give_the_examples_read_back_their_templates_and_the_slice_is_whole_templates() -> None:
    # Given both files of the same examples, read back as TrainMicroRouter reads them
    examples = _planned()
    training, groups = _files(examples)
    read = assign_training_groups(
        examples_from_training_jsonl(training, DEFAULT_CHANNELS), read_training_groups(groups)
    )

    # Then each example has its template, category and source back, and the teacher's weights from the training file
    assert [(e.query, e.template, e.category, e.source) for e in read] == [
        (e.query, e.template, e.category, e.source) for e in examples
    ]
    assert [e.weights for e in read] == [e.weights for e in examples]

    # And the calibration slice is made of whole templates: none of its templates has an example outside it
    held = calibration_slice(read, 0.15, seed=0)
    inside = {read[i].template for i in held if read[i].template}
    outside = {e.template for i, e in enumerate(read) if i not in held}
    assert inside and not inside & outside
    # while without the groups file each query is its own group: the slice's templates are also trained on
    bare = examples_from_training_jsonl(training, DEFAULT_CHANNELS)
    held_bare = calibration_slice(bare, 0.15, seed=0)
    assert {examples[i].template for i in held_bare} & {
        e.template for i, e in enumerate(examples) if i not in held_bare
    }


def test_the_training_figures_say_which_grouping_calibrated_the_confidence() -> None:
    examples = _planned(200)
    training, groups = _files(examples)
    bare = examples_from_training_jsonl(training, DEFAULT_CHANNELS)
    settings = TrainingSettings(epochs=5, features=FeatureSettings(buckets=1 << 12))

    with_groups = train_micro_router(
        assign_training_groups(bare, read_training_groups(groups)),
        DEFAULT_CHANNELS.names,
        settings,
    )
    without = train_micro_router(bare, DEFAULT_CHANNELS.names, settings)

    assert with_groups.training["calibration_groups"] == CALIBRATION_BY_TEMPLATES
    assert without.training["calibration_groups"] == CALIBRATION_BY_QUERIES
    # one group per calibration example without templates; whole templates (fewer groups than examples) with them
    assert without.training["calibration_group_count"] == without.training["calibration_examples"]
    assert with_groups.training["calibration_group_count"] < with_groups.training["calibration_examples"]


def test_a_groups_file_with_another_number_of_lines_is_named() -> None:
    examples = _planned(120)
    training, groups = _files(examples)
    read = examples_from_training_jsonl(training, DEFAULT_CHANNELS)
    shorter = read_training_groups("".join(groups.splitlines(keepends=True)[:-1]))
    with pytest.raises(TrainingGroupsMismatch, match="the groups file has 119 lines for the training file's 120"):
        assign_training_groups(read, shorter)


def test_a_groups_line_whose_query_is_not_the_training_lines_user_text_is_named() -> None:
    # Given a groups file whose lines 5 and 6 are swapped
    examples = _planned(120)
    training, groups = _files(examples)
    lines = groups.splitlines(keepends=True)
    lines[4], lines[5] = lines[5], lines[4]

    # Then the first line that disagrees is named, with both texts
    with pytest.raises(TrainingGroupsMismatch, match=r"groups file line 5: query .* is not the training line's user"):
        assign_training_groups(
            examples_from_training_jsonl(training, DEFAULT_CHANNELS), read_training_groups("".join(lines))
        )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "groups file line 2: not valid JSON"),
        ("[1]", "groups file line 2: expected a JSON object, got list"),
        ('{"query": "q", "template": null, "category": "c"}', "groups file line 2: 'source' must be a string"),
        (
            '{"query": "q", "template": 7, "category": "c", "source": "s"}',
            "line 2: 'template' must be a string or null",
        ),
    ],
)
def test_a_groups_line_that_is_not_a_group_is_named(line: str, message: str) -> None:
    good = training_groups_jsonl(_examples())
    with pytest.raises(ValueError, match=message):
        read_training_groups(good.splitlines(keepends=True)[0] + line + "\n")
