"""Reading the micro-router's training pairs back from the bedrock-conversation-2024 file PrepareDataset writes."""

from __future__ import annotations

import pytest

from search_router.pipeline.dataset import LabeledExample, training_jsonl
from search_router.pipeline.micro_router_training import examples_from_training_jsonl
from search_router.shared.channels import DEFAULT_CHANNELS

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
