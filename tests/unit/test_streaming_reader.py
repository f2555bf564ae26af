"""The streaming reader: weights as soon as they are complete, validated exactly like the parser."""

from __future__ import annotations

import time

import pytest

from search_router.shared.answer.decision import ParseFailureReason, ParseSuccess, RoutingDecision
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.answer.streaming import StreamingWeightsReader
from search_router.shared.channels import DEFAULT_CHANNELS, Channel, ChannelSet

R = ParseFailureReason
ANSWER = (
    '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1, '
    '"reasoning": "The query describes a landscape, so visual search matters most."}'
)


def feed_chars(reader: StreamingWeightsReader, text: str) -> int | None:
    """Feed one character at a time; the index of the character after which the decision arrived."""
    for index, char in enumerate(text):
        if reader.feed(char) is not None:
            return index
    return None


def test_decision_arrives_right_after_the_last_weights_terminator() -> None:
    # Given weights first, reasoning last
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)
    terminator = ANSWER.index(",", ANSWER.index('"metadata"'))

    # When
    arrived_at = feed_chars(reader, ANSWER)

    # Then the decision comes with the comma after metadata's value, before any reasoning text
    assert arrived_at == terminator
    assert reader.decision == RoutingDecision(
        {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}, None
    )
    assert not reader.failed


def test_no_decision_before_the_last_number_is_terminated() -> None:
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)
    prefix = '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1'

    assert feed_chars(reader, prefix) is None
    assert reader.feed(" ") is None  # whitespace alone does not complete the number
    decision = reader.feed(",")

    assert decision is not None
    assert decision.weights["metadata"] == 0.1


def test_closing_brace_terminates_the_last_weight() -> None:
    text = '{"reasoning": "Speech.", "visual": 0, "audio": 0, "transcription": 1, "metadata": 0 }'
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    arrived_at = feed_chars(reader, text)

    assert arrived_at == len(text) - 1
    assert reader.decision is not None
    assert reader.decision.reasoning is None  # the streamed decision never carries reasoning
    assert reader.decision.dominant_channel == "transcription"


def test_numbers_split_across_deltas() -> None:
    # Given deltas that cut numbers in the middle
    deltas = ['{"visual": 0.', '25, "audio": 0', '.25, "transcr', 'iption": 0.2', '5, "metadata": 0', ".25", "}"]
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    # When
    results = [reader.feed(delta) for delta in deltas]

    # Then nothing is decided from a partial "0." or "0", and the final values are whole
    assert results[:-1] == [None] * (len(deltas) - 1)
    assert results[-1] is not None
    assert results[-1].weights == {"visual": 0.25, "audio": 0.25, "transcription": 0.25, "metadata": 0.25}


def test_weights_in_another_order_come_back_in_channel_order() -> None:
    text = '{"metadata": 0.4, "transcription": 0.3, "audio": 0.2, "visual": 0.1, "reasoning": "x"}'
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    feed_chars(reader, text)

    assert reader.decision is not None
    assert list(reader.decision.weights) == ["visual", "audio", "transcription", "metadata"]
    assert list(reader.decision.weights.values()) == [0.1, 0.2, 0.3, 0.4]


def test_prose_fence_and_prose_braces_before_the_answer_are_skipped() -> None:
    text = 'Sure {it\'s easy}! {"note": 1}\n```json\n' + ANSWER + "\n```"
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    arrived_at = feed_chars(reader, text)

    assert arrived_at is not None
    assert reader.decision is not None
    assert reader.decision.weights["visual"] == 0.7


def test_nested_weights_wrapper() -> None:
    text = '{"weights": {"visual": 0, "audio": 0.5, "transcription": 0.5, "metadata": 0}, "reasoning": "x"}'
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    arrived_at = feed_chars(reader, text)

    assert arrived_at == text.index("}")
    assert reader.decision is not None
    assert reader.decision.weights["audio"] == 0.5


def test_near_sum_is_renormalized_like_the_parser() -> None:
    text = '{"visual": 0.49, "audio": 0.49, "transcription": 0, "metadata": 0, "reasoning": "x"}'
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    feed_chars(reader, text)

    assert reader.decision is not None
    assert reader.decision.weights == {"visual": 0.5, "audio": 0.5, "transcription": 0.0, "metadata": 0.0}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param('{"visual": 0.7, "audio": }, "transcription": 0.1', R.INVALID_JSON, id="syntax"),
        pytest.param('{"visual": 0.9, "audio": 0.9, "transcription": 0, "metadata": 0, "r', R.BAD_SUM, id="sum"),
        pytest.param('{"visual": NaN, "audio": 0, "transcription": 0, "metadata": 1, "r', R.NON_FINITE, id="nan"),
        pytest.param('{"visual": true, "audio": 0, "transcription": 0, "metadata": 1}', R.NOT_A_NUMBER, id="bool"),
        pytest.param('{"visual": 40, "audio": 20, "transcription": 20, "metadata": 20,', R.OUT_OF_RANGE, id="pct"),
        pytest.param('{"visual": 0.5, "audio": 0.5, "transcription": 0} and more', R.MISSING_CHANNELS, id="missing"),
    ],
)
def test_invalid_stream_fails_with_the_parsers_reason(text: str, reason: ParseFailureReason) -> None:
    # Given
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    # When
    arrived_at = feed_chars(reader, text)

    # Then
    assert arrived_at is None
    assert reader.failed
    assert reader.failure is not None
    assert reader.failure.reason is reason
    assert reader.feed('{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0}') is None


def test_decision_matches_the_parser_for_many_answers() -> None:
    answers = [
        ANSWER,
        '```json\n{"Visual": "0.2", " AUDIO ": 0.8, "transcription": 0, "metadata": 0}\n```',
        "{'visual': 0.25, 'audio': 0.25, /* c */ 'transcription': 0.25, 'metadata': 0.25,}",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.095, "reasoning": "{x}"}',
        '{"answer": {"weights": {"visual": 0, "audio": 0, "transcription": 0.5, "metadata": 0.5}}}',
    ]
    for answer in answers:
        parsed = parse_routing_answer(answer, DEFAULT_CHANNELS)
        assert isinstance(parsed, ParseSuccess), answer
        for chunk_size in (1, 3, 7, len(answer)):
            reader = StreamingWeightsReader(DEFAULT_CHANNELS)
            for start in range(0, len(answer), chunk_size):
                reader.feed(answer[start : start + chunk_size])
            assert reader.decision is not None, (answer, chunk_size)
            assert reader.decision.weights == parsed.decision.weights


def test_text_accumulates_and_finish_parses_it_with_reasoning() -> None:
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    feed_chars(reader, ANSWER[:40])
    reader.feed(ANSWER[40:])
    final = reader.finish()

    assert reader.text == ANSWER
    assert isinstance(final, ParseSuccess)
    assert final.decision.reasoning == "The query describes a landscape, so visual search matters most."
    assert reader.decision is not None
    assert final.decision.weights == reader.decision.weights


def test_later_feeds_return_the_same_decision() -> None:
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)
    first = reader.feed(ANSWER[:80])

    assert first is not None
    assert reader.feed(ANSWER[80:]) is first


def test_custom_channel_set() -> None:
    channels = ChannelSet((Channel("scene", "what is shown"), Channel("mood", "the feeling")))
    reader = StreamingWeightsReader(channels)

    arrived_at = feed_chars(reader, '{"mood": 0.6, "scene": 0.4, "visual": 1}')

    assert arrived_at is not None
    assert reader.decision is not None
    assert reader.decision.weights == {"scene": 0.4, "mood": 0.6}


def test_too_large_without_weights_fails() -> None:
    reader = StreamingWeightsReader(DEFAULT_CHANNELS, max_chars=100)

    for _ in range(20):
        reader.feed("still thinking ")

    assert reader.failure is not None
    assert reader.failure.reason is R.TOO_LARGE


def test_long_stream_fed_char_by_char_stays_linear() -> None:
    # Given a 19 K reasoning before the weights, with escapes and braces, fed one character at a time
    reasoning = ('a \\"quoted\\" {brace} word ' * 800)[:19_000]
    text = '{"reasoning": "' + reasoning + '", "visual": 1, "audio": 0, "transcription": 0, "metadata": 0}'
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)

    # When
    started = time.perf_counter()
    arrived_at = feed_chars(reader, text)
    elapsed = time.perf_counter() - started

    # Then
    assert arrived_at == len(text) - 1
    assert elapsed < 1.0


@pytest.mark.parametrize(
    "text",
    [
        ANSWER,
        '{"reasoning": "Seen first.", "visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}',
        '{"weights": {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}, "reasoning": "Nested."}',
    ],
    ids=["weights-first", "reasoning-first", "nested-weights"],
)
def test_whole_object_mode_decides_at_the_closing_brace_with_the_reasoning(text: str) -> None:
    # Given the answer followed by prose the model kept generating
    reader = StreamingWeightsReader(DEFAULT_CHANNELS, whole_object=True)

    # When it is fed one character at a time
    index = feed_chars(reader, text + "\nI hope this helps with your search!")

    # Then the decision arrives with the answer's last character, holding what the full parser reads
    assert index == len(text) - 1
    expected = parse_routing_answer(text, DEFAULT_CHANNELS)
    assert isinstance(expected, ParseSuccess)
    assert reader.decision == expected.decision
    assert reader.decision is not None and reader.decision.reasoning
    assert reader.leads


def test_whole_object_mode_does_not_decide_before_the_reasoning_is_complete() -> None:
    reader = StreamingWeightsReader(DEFAULT_CHANNELS, whole_object=True)

    cut = ANSWER.index("landscape")
    assert feed_chars(reader, ANSWER[:cut]) is None
    assert reader.decision is None and not reader.failed


@pytest.mark.parametrize(
    ("text", "leads"),
    [
        ('```json\n{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0}\n```', True),
        ('Here you go: {"visual": 1, "audio": 0, "transcription": 0, "metadata": 0}', False),
        ('[{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0}]', False),
    ],
    ids=["code-fence", "prose-first", "array-around"],
)
def test_leads_says_whether_the_weights_object_opens_the_answer(text: str, leads: bool) -> None:
    reader = StreamingWeightsReader(DEFAULT_CHANNELS, whole_object=True)

    assert feed_chars(reader, text) is not None
    assert reader.leads is leads
