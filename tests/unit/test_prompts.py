"""Teacher and student system prompts, derived only from the channel set."""

from __future__ import annotations

import re

import pytest

from search_router.shared.answer.decision import ParseSuccess
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS, Channel, ChannelSet
from search_router.shared.prompts import (
    KEYWORD_RULE,
    PROMPT_NAMES,
    STUDENT_WEIGHTS_ONLY,
    TEACHER_RULES,
    PromptKind,
    keyword_like_channel,
    named_prompt,
    prompt_for,
    student_prompt,
    teacher_prompt,
)

WITH_MOOD = ChannelSet(
    (
        *DEFAULT_CHANNELS.channels,
        Channel("mood", "the feeling of the scene: calm, tense, joyful, melancholic", ("a tense chase at night",)),
    )
)
NO_KEYWORDS = ChannelSet(
    (
        Channel("scene", "what is shown on screen", ("a red car",)),
        Channel("speech", "what people say", ("someone says hello",)),
    )
)


def example_answers(prompt: str) -> list[tuple[str, str]]:
    """(query, answer JSON) pairs from the prompt's worked examples."""
    lines = prompt.splitlines()
    return [
        (line.removeprefix("Query: "), lines[index + 1])
        for index, line in enumerate(lines)
        if line.startswith("Query: ") and index + 1 < len(lines)
    ]


def test_teacher_prompt_names_and_describes_every_channel() -> None:
    prompt = teacher_prompt(DEFAULT_CHANNELS)

    for channel in DEFAULT_CHANNELS:
        assert f"- {channel.name}: {channel.description}" in prompt


def test_teacher_prompt_states_rules_and_format_in_channel_order() -> None:
    prompt = teacher_prompt(DEFAULT_CHANNELS)

    assert "sum to exactly 1.0" in prompt
    assert "between 0.0 and 1.0" in prompt
    assert "0.0 to a channel that clearly does not apply" in prompt
    assert "no code fences" in prompt
    assert "visual, audio, transcription, metadata" in prompt
    assert '"reasoning"' in prompt


def test_proper_noun_rule_points_at_the_keyword_channel_when_there_is_one() -> None:
    assert keyword_like_channel(DEFAULT_CHANNELS) == DEFAULT_CHANNELS.get("metadata")
    assert "proper nouns are matched by keywords: they move weight to metadata" in teacher_prompt(DEFAULT_CHANNELS)

    assert keyword_like_channel(NO_KEYWORDS) is None
    assert "proper nouns" not in teacher_prompt(NO_KEYWORDS)


def test_the_teacher_example_is_a_valid_answer_dominated_by_its_channel() -> None:
    # Given
    prompt = teacher_prompt(DEFAULT_CHANNELS)

    # When
    examples = example_answers(prompt)

    # Then one worked example (issue 12 shortened the prompt from one per channel), the first channel's first
    # example query, a clean answer that the parser accepts, with the reasoning after the last weight
    assert [query for query, _ in examples] == [DEFAULT_CHANNELS.channels[0].examples[0]]
    ((_query, answer),) = examples
    result = parse_routing_answer(answer, DEFAULT_CHANNELS)
    assert isinstance(result, ParseSuccess), answer
    assert result.clean and not result.renormalized
    assert result.decision.dominant_channel == DEFAULT_CHANNELS.names[0]
    assert result.decision.reasoning
    assert answer.index('"reasoning"') > answer.index(f'"{DEFAULT_CHANNELS.names[-1]}"')


def test_every_json_object_in_the_teacher_prompt_parses() -> None:
    prompt = teacher_prompt(WITH_MOOD)
    objects = re.findall(r"^\{.*\}$", prompt, flags=re.MULTILINE)

    assert len(objects) == 1
    for text in objects:
        assert parse_routing_answer(text, WITH_MOOD).ok, text


def test_teacher_prompt_length_for_the_defaults() -> None:
    assert 800 <= len(teacher_prompt(DEFAULT_CHANNELS)) <= 2_500


def test_the_teacher_prompt_is_about_half_of_the_issue_12_one_and_keeps_every_rule() -> None:
    # Given the prompt of the default channels (2,101 characters before issue 12)
    prompt = teacher_prompt(DEFAULT_CHANNELS)

    # Then it is at most 60% of that and still states every rule, word for word
    assert len(prompt) <= 0.6 * 2_101
    expected_rules = (
        "between 0.0 and 1.0",
        "sum to exactly 1.0",
        "0.0 to a channel that clearly does not apply",
        "split by how central each aspect is",
        "one JSON object on a single line, nothing else",
        "no prose, no code fences",
        '"reasoning"',
    )
    assert expected_rules == TEACHER_RULES
    for rule in expected_rules:
        assert rule in prompt, rule
    assert f"{KEYWORD_RULE} metadata" in prompt
    # every channel with its whole description, and the answer order
    for channel in DEFAULT_CHANNELS:
        assert f"- {channel.name}: {channel.description}" in prompt
    assert "in the order visual, audio, transcription, metadata" in prompt


def test_channels_without_examples_give_no_examples_section() -> None:
    bare = ChannelSet((Channel("scene", "what is shown"), Channel("speech", "what is said")))

    prompt = teacher_prompt(bare)

    assert "Examples:" not in prompt
    assert "- scene: what is shown" in prompt


def test_student_prompt_is_one_sentence_naming_each_channel_in_order() -> None:
    prompt = student_prompt(DEFAULT_CHANNELS)

    assert 100 <= len(prompt) <= 160
    assert "\n" not in prompt
    assert prompt.endswith(".")
    assert len(re.findall(r"[.!?](\s|$)", prompt)) == 1
    positions = [prompt.index(name) for name in DEFAULT_CHANNELS.names]
    assert positions == sorted(positions)
    assert "JSON" in prompt
    assert "sum" in prompt
    assert "reasoning" in prompt


@pytest.mark.parametrize("build", [teacher_prompt, student_prompt], ids=["teacher", "student"])
def test_prompts_are_deterministic(build) -> None:
    # Given an equal channel set rebuilt from its JSON form
    rebuilt = ChannelSet.from_obj(DEFAULT_CHANNELS.to_json())

    # Then the exact same text, every time
    assert build(DEFAULT_CHANNELS) == build(DEFAULT_CHANNELS) == build(rebuilt)


def test_a_custom_channel_changes_both_prompts() -> None:
    teacher, student = teacher_prompt(WITH_MOOD), student_prompt(WITH_MOOD)

    assert teacher != teacher_prompt(DEFAULT_CHANNELS)
    assert student != student_prompt(DEFAULT_CHANNELS)
    assert "- mood: the feeling of the scene" in teacher
    assert "visual, audio, transcription, metadata, mood" in teacher
    assert "mood" in teacher.rsplit("\n", 1)[-1]  # the worked example answers for every channel
    assert "metadata and mood" in student


def test_prompt_for_each_kind() -> None:
    assert prompt_for(PromptKind.TEACHER, DEFAULT_CHANNELS) == teacher_prompt(DEFAULT_CHANNELS)
    assert prompt_for(PromptKind.STUDENT, DEFAULT_CHANNELS) == student_prompt(DEFAULT_CHANNELS)
    assert prompt_for("student", DEFAULT_CHANNELS) == student_prompt(DEFAULT_CHANNELS)
    assert {kind.value for kind in PromptKind} == {"teacher", "student"}
    assert prompt_for(PromptKind.STUDENT, DEFAULT_CHANNELS, reasoning=False) == student_prompt(
        DEFAULT_CHANNELS, reasoning=False
    )
    assert prompt_for(PromptKind.TEACHER, DEFAULT_CHANNELS, reasoning=False) == teacher_prompt(DEFAULT_CHANNELS)
    with pytest.raises(ValueError, match="baseline"):
        prompt_for("baseline", DEFAULT_CHANNELS)


def test_the_weights_only_student_prompt_asks_for_no_reasoning_and_differs_only_at_the_end() -> None:
    # Given the two student prompts one distilled model is trained on
    with_reasoning = student_prompt(DEFAULT_CHANNELS)
    weights_only = student_prompt(DEFAULT_CHANNELS, reasoning=False)

    # Then both are one sentence naming the channels in order; only the requested tail differs
    assert with_reasoning != weights_only
    assert weights_only.endswith("weights only, no reasoning.")
    assert with_reasoning.endswith("then a short reasoning.")
    common = "reply with one JSON object of weights for visual, audio, transcription and metadata summing to 1"
    assert common in weights_only and common in with_reasoning
    assert len(re.findall(r"[.!?](\s|$)", weights_only)) == 1


def test_named_prompts_are_the_evaluation_candidates_prompts() -> None:
    assert PROMPT_NAMES == ("teacher", "student", STUDENT_WEIGHTS_ONLY)
    assert named_prompt("teacher", DEFAULT_CHANNELS) == teacher_prompt(DEFAULT_CHANNELS)
    assert named_prompt("student", DEFAULT_CHANNELS) == student_prompt(DEFAULT_CHANNELS)
    assert named_prompt("student_weights_only", DEFAULT_CHANNELS) == student_prompt(DEFAULT_CHANNELS, reasoning=False)
    with pytest.raises(ValueError, match="student_weights"):
        named_prompt("student_weights", DEFAULT_CHANNELS)
