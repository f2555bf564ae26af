"""System prompts for the router, derived from the channel set and nothing else.

The teacher (and the undistilled baseline router) gets the detailed prompt: the task, every channel with its
description, the rules (:data:`TEACHER_RULES` lists the ones that must stay), the exact output format and one worked
example. The distilled student gets one short sentence, in two variants trained into the same model:
weights only (what the router sends unless the caller asks for reasoning) and weights then reasoning. It learned the
task from the training examples, so every call saves the long prompt's input tokens. All are pure functions of the
:class:`ChannelSet`, so training records and serving send the exact same text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from search_router.shared.answer.decision import RoutingDecision
from search_router.shared.answer.formatting import format_answer
from search_router.shared.channels import Channel, ChannelSet

EXAMPLE_DOMINANT_WEIGHT: Final = 0.8
"""In the teacher's worked examples the example's own channel gets this weight, one other channel the rest."""

_KEYWORD_HINTS: Final = ("keyword", "bm25", "proper noun")
_CLAUSE_CHARS: Final = 70


class PromptKind(StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"


STUDENT_WEIGHTS_ONLY: Final = "student_weights_only"
"""An evaluation candidate's ``prompt_kind`` for the student's weights-only prompt (``eval_candidates``)."""
PROMPT_NAMES: Final = (PromptKind.TEACHER.value, PromptKind.STUDENT.value, STUDENT_WEIGHTS_ONLY)
"""Every prompt an evaluation candidate can be asked with: a :class:`PromptKind` or the weights-only student."""


def named_prompt(name: str, channels: ChannelSet) -> str:
    """The prompt an evaluation candidate names (one of :data:`PROMPT_NAMES`); ``ValueError`` for another."""
    if name == STUDENT_WEIGHTS_ONLY:
        return student_prompt(channels, reasoning=False)
    return prompt_for(name, channels)


def prompt_for(kind: PromptKind | str, channels: ChannelSet, *, reasoning: bool = True) -> str:
    """The system prompt of ``kind`` ("teacher" or "student"); ``ValueError`` for another kind.

    ``reasoning`` chooses the student's variant (weights then reasoning, or weights only); the teacher prompt
    always asks for the reasoning (its answers are the training targets of both variants).
    """
    if PromptKind(kind) is PromptKind.TEACHER:
        return teacher_prompt(channels)
    return student_prompt(channels, reasoning=reasoning)


def student_prompt(channels: ChannelSet, *, reasoning: bool = True) -> str:
    """One sentence naming the channels in order; identical for training records and serving.

    ``reasoning=False`` is the weights-only variant: the answer ends after the last weight.
    """
    tail = "then a short reasoning" if reasoning else "weights only, no reasoning"
    return (
        "Route this video search query: reply with one JSON object of weights for "
        f"{_join(channels.names)} summing to 1, {tail}."
    )


TEACHER_RULES: Final = (
    "between 0.0 and 1.0",
    "sum to exactly 1.0",
    "0.0 to a channel that clearly does not apply",
    "split by how central each aspect is",
    "one JSON object on a single line, nothing else",
    "no prose, no code fences",
    '"reasoning"',
)
KEYWORD_RULE: Final = "proper nouns are matched by keywords: they move weight to"
"""The rule the teacher prompt adds when a channel is matched by keywords (followed by that channel's name)."""
"""The rules every teacher prompt states, word for word (the tests check that each one stays)."""


def teacher_prompt(channels: ChannelSet) -> str:
    """The detailed prompt for the teacher model and the baseline router."""
    rules = TEACHER_RULES
    keyword_channel = keyword_like_channel(channels)
    lines = [
        "Weight the channels of a video search engine for the query; results are blended by weight.",
        *(f"- {channel.name}: {channel.description}" for channel in channels),
        f"Each weight {rules[0]}; weights {rules[1]}; give {rules[2]}; mixed queries: {rules[3]}.",
    ]
    if keyword_channel is not None:
        lines.append(f"Names, titles, dates and other {KEYWORD_RULE} {keyword_channel.name}.")
    lines.append(
        f"Output {rules[4]} ({rules[5]}): weights in the order {', '.join(channels.names)}, then {rules[6]}: "
        "one short sentence."
    )
    example = next((channel for channel in channels if channel.examples), None)
    if example is not None:
        query, answer = _worked_example(example, channels, keyword_channel)
        lines += ["Example:", f"Query: {query}", answer]
    return "\n".join(lines)


def keyword_like_channel(channels: ChannelSet) -> Channel | None:
    """The first channel matched by keywords (its description mentions keywords, BM25 or proper nouns)."""
    for channel in channels:
        if any(hint in channel.description.lower() for hint in _KEYWORD_HINTS):
            return channel
    return None


def _worked_example(channel: Channel, channels: ChannelSet, keyword_channel: Channel | None) -> tuple[str, str]:
    """The channel's first example query and an answer where that channel dominates."""
    if keyword_channel is not None and keyword_channel != channel:
        secondary = keyword_channel
    else:
        secondary = next(other for other in channels if other != channel)
    weights = {other.name: 0.0 for other in channels}
    weights[channel.name] = EXAMPLE_DOMINANT_WEIGHT
    weights[secondary.name] = round(1.0 - EXAMPLE_DOMINANT_WEIGHT, 10)
    reasoning = f"Mostly {_clause(channel)}, so {channel.name} leads; {secondary.name} adds a weaker signal."
    decision = RoutingDecision.from_weights(weights, channels, reasoning=reasoning)
    return channel.examples[0], format_answer(decision, channels)


def _clause(channel: Channel) -> str:
    """The head of a description ("what can be seen: ..." -> "what can be seen"), cut at a word boundary."""
    head = channel.description.split(":", 1)[0].strip().rstrip(".")
    if len(head) > _CLAUSE_CHARS:
        head = head[:_CLAUSE_CHARS].rsplit(" ", 1)[0]
    return head


def _join(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
