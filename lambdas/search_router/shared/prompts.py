"""System prompts for the router, derived from the channel set and nothing else.

The teacher (and the undistilled baseline router) gets a detailed prompt: the task, every channel with its
description, the rules, the exact output format and worked examples. The distilled student gets one short
sentence: it learned the task from the training examples, so every call saves the long prompt's input tokens.
Both are pure functions of the :class:`ChannelSet`, so training records and serving send the exact same text.
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


def prompt_for(kind: PromptKind | str, channels: ChannelSet) -> str:
    """The system prompt of ``kind`` ("teacher" or "student"); ``ValueError`` for another kind."""
    if PromptKind(kind) is PromptKind.TEACHER:
        return teacher_prompt(channels)
    return student_prompt(channels)


def student_prompt(channels: ChannelSet) -> str:
    """One sentence naming the channels in order; identical for training records and serving."""
    return (
        "Route this video search query: reply with one JSON object of weights for "
        f"{_join(channels.names)} summing to 1, then a short reasoning."
    )


def teacher_prompt(channels: ChannelSet) -> str:
    """The detailed prompt for the teacher model and the baseline router."""
    names = channels.names
    keyword_channel = keyword_like_channel(channels)
    lines = [
        "You route search queries for a video search engine. The engine keeps one index per channel and "
        "blends their results by weight. Decide how much each channel should count for the user's query.",
        "",
        "Channels, in answer order:",
        *(f"- {channel.name}: {channel.description}" for channel in channels),
        "",
        "Rules:",
        "- Give every channel a weight between 0.0 and 1.0; the weights must sum to exactly 1.0.",
        "- Give 0.0 to a channel that clearly does not apply to the query.",
        "- When a query mixes aspects, split the weight by how central each aspect is to what the user wants.",
    ]
    if keyword_channel is not None:
        lines.append(
            "- Names of people, titles, brands, places, dates and other proper nouns are matched by keywords: "
            f"they move weight to {keyword_channel.name}."
        )
    lines += [
        "",
        "Output: exactly one JSON object on a single line and nothing else (no prose, no code fences). "
        f'Put the weights first, in this order: {", ".join(names)}; then a "reasoning" string of one short '
        "sentence.",
    ]
    examples = [_worked_example(channel, channels, keyword_channel) for channel in channels if channel.examples]
    if examples:
        lines += ["", "Examples:"]
        for query, answer in examples:
            lines += [f"Query: {query}", answer]
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
