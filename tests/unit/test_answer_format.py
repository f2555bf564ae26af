"""The canonical answer format and the RoutingDecision value object."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from search_router.shared.answer.decision import ParseSuccess, RoutingDecision
from search_router.shared.answer.formatting import format_answer, round_weights
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS, Channel, ChannelSet

THREE = ChannelSet((Channel("scene", "what is shown"), Channel("speech", "what is said"), Channel("mood", "feeling")))


def decision(*weights: float, reasoning: str | None = None, channels: ChannelSet = DEFAULT_CHANNELS):
    return RoutingDecision(dict(zip(channels.names, weights, strict=True)), reasoning)


def test_weights_first_in_channel_order_then_reasoning() -> None:
    # Given a decision whose dict is not in channel order
    unordered = RoutingDecision({"metadata": 0.2, "visual": 0.8, "transcription": 0.0, "audio": 0.0}, "Scenery.")

    # When
    text = format_answer(unordered, DEFAULT_CHANNELS)

    # Then
    assert text == '{"visual":0.8,"audio":0.0,"transcription":0.0,"metadata":0.2,"reasoning":"Scenery."}'
    assert list(json.loads(text)) == [*DEFAULT_CHANNELS.names, "reasoning"]


def test_reasoning_is_omitted_when_none() -> None:
    text = format_answer(decision(0.5, 0.5, 0, 0), DEFAULT_CHANNELS)

    assert "reasoning" not in text
    assert list(json.loads(text)) == list(DEFAULT_CHANNELS.names)


def test_thirds_still_sum_to_exactly_one_after_rounding() -> None:
    # Given three equal weights that do not round to a sum of 1
    thirds = decision(1 / 3, 1 / 3, 1 / 3, channels=THREE)

    # When
    text = format_answer(thirds, THREE)

    # Then the largest remainder goes to the first channel and the decimal sum is exactly 1
    values = json.loads(text, parse_float=Decimal)
    assert values == {"scene": Decimal("0.34"), "speech": Decimal("0.33"), "mood": Decimal("0.33")}
    assert sum(values.values()) == Decimal(1)


def test_largest_remainder_picks_the_largest_fractions() -> None:
    # 0.125 / 0.125 / 0.75 at one decimal: raw 1.25, 1.25, 7.5 -> floors 1, 1, 7 -> the 0.5 remainder wins
    text = format_answer(decision(0.125, 0.125, 0.75, channels=THREE), THREE, decimals=1)

    assert json.loads(text) == {"scene": 0.1, "speech": 0.1, "mood": 0.8}


@pytest.mark.parametrize("decimals", [0, 1, 2, 3, 4])
def test_round_trip_gives_the_rounded_weights(decimals: int) -> None:
    rng = random.Random(decimals)
    for _ in range(300):
        # Given a random decision with some zero channels
        raw = [rng.random() if rng.random() < 0.7 else 0.0 for _ in DEFAULT_CHANNELS]
        raw[rng.randrange(len(raw))] += 0.01
        total = sum(raw)
        original = decision(*(w / total for w in raw), reasoning=rng.choice([None, 'a "quoted" {brace} é']))

        # When
        text = format_answer(original, DEFAULT_CHANNELS, decimals=decimals)
        parsed = parse_routing_answer(text, DEFAULT_CHANNELS)

        # Then
        assert isinstance(parsed, ParseSuccess), text
        assert parsed.clean and not parsed.renormalized
        assert parsed.decision.weights == round_weights(original.weights, DEFAULT_CHANNELS, decimals=decimals)
        assert parsed.decision.reasoning == original.reasoning
        assert sum(json.loads(text, parse_float=Decimal)[name] for name in DEFAULT_CHANNELS.names) == 1


def test_unicode_and_quotes_in_reasoning_survive() -> None:
    text = format_answer(decision(1, 0, 0, 0, reasoning='Café «x» "quoted" \\ 🎵'), DEFAULT_CHANNELS)

    assert "Café «x»" in text  # not \u-escaped
    assert json.loads(text)["reasoning"] == 'Café «x» "quoted" \\ 🎵'


def test_no_exponent_notation_for_small_weights() -> None:
    text = format_answer(decision(0.99999, 0.00001, 0, 0), DEFAULT_CHANNELS, decimals=5)

    assert '"audio":0.00001' in text
    assert "e-" not in text


@pytest.mark.parametrize("decimals", [-1, 7, 2.0, True])
def test_bad_decimals_are_rejected(decimals) -> None:
    with pytest.raises(ValueError, match="decimals"):
        format_answer(decision(1, 0, 0, 0), DEFAULT_CHANNELS, decimals=decimals)


def test_channel_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected"):
        format_answer(decision(1, 0, 0, 0), THREE)


# --- RoutingDecision ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "weights",
    [
        pytest.param({}, id="empty"),
        pytest.param({"visual": 0.5, "audio": 0.4}, id="sum-0.9"),
        pytest.param({"visual": 1.5, "audio": -0.5}, id="out-of-range"),
        pytest.param({"visual": float("nan"), "audio": 1.0}, id="nan"),
        pytest.param({"visual": True, "audio": 0.0}, id="boolean"),
        pytest.param({"visual": "1", "audio": 0.0}, id="string"),
    ],
)
def test_decision_rejects_broken_invariants(weights: dict) -> None:
    with pytest.raises(ValueError, match="weight"):
        RoutingDecision(weights)


def test_dominant_channel_ties_go_to_the_first_channel() -> None:
    assert decision(0.4, 0.4, 0.2, 0).dominant_channel == "visual"
    assert decision(0.1, 0.3, 0.3, 0.3).dominant_channel == "audio"
    assert decision(0, 0, 0, 1).dominant_channel == "metadata"


def test_to_dict_is_the_answer_shape() -> None:
    assert decision(0.5, 0.5, 0, 0, reasoning="r").to_dict() == {
        "visual": 0.5,
        "audio": 0.5,
        "transcription": 0.0,
        "metadata": 0.0,
        "reasoning": "r",
    }
    assert decision(1, 0, 0, 0).to_dict()["reasoning"] is None


def test_decision_is_immutable_and_hashable() -> None:
    weights = {"visual": 0.5, "audio": 0.5}
    made = RoutingDecision(weights)
    weights["visual"] = 0.9  # the caller's dict is copied

    assert made.weights == {"visual": 0.5, "audio": 0.5}
    assert hash(made) == hash(RoutingDecision({"visual": 0.5, "audio": 0.5}))
    with pytest.raises(AttributeError):
        made.reasoning = "x"  # type: ignore[misc]


def test_from_weights_orders_normalizes_and_validates_like_the_parser() -> None:
    made = RoutingDecision.from_weights(
        {"Metadata": 0.2, "visual": 0.78, "audio": 0, "transcription": 0}, DEFAULT_CHANNELS, sum_tolerance=0.05
    )

    assert list(made.weights) == list(DEFAULT_CHANNELS.names)
    assert made.weights["visual"] == pytest.approx(0.78 / 0.98)
    with pytest.raises(ValueError, match=r"missing_channels: missing channel.*metadata"):
        RoutingDecision.from_weights({"visual": 1, "audio": 0, "transcription": 0}, DEFAULT_CHANNELS)
    with pytest.raises(ValueError, match="bad_sum"):
        RoutingDecision.from_weights(
            {"visual": 0.78, "audio": 0, "transcription": 0, "metadata": 0.2}, DEFAULT_CHANNELS
        )


@pytest.mark.parametrize("with_reasoning", [True, False], ids=["weights-then-reasoning", "weights-only"])
def test_both_target_forms_parse_back_whole_and_streamed(with_reasoning: bool) -> None:
    from search_router.shared.answer.streaming import StreamingWeightsReader

    # Given a teacher decision rendered in either training-target form
    original = decision(0.55, 0.15, 0.0, 0.3, reasoning="Scenery with a name.")  # a zero: "0" or "0.0"
    text = format_answer(original, DEFAULT_CHANNELS, with_reasoning=with_reasoning)

    # Then the whole-text parser reads it as one clean answer, with the reasoning only in the first form
    parsed = parse_routing_answer(text, DEFAULT_CHANNELS)
    assert isinstance(parsed, ParseSuccess) and parsed.clean
    assert parsed.decision.weights == original.weights
    assert parsed.decision.reasoning == ("Scenery with a name." if with_reasoning else None)
    assert ('"reasoning"' in text) is with_reasoning
    # And the streaming reader gets the weights from 4-character pieces, and the full parse at the end
    reader = StreamingWeightsReader(DEFAULT_CHANNELS)
    decisions = [reader.feed(text[i : i + 4]) for i in range(0, len(text), 4)]
    assert decisions[-1] is not None and decisions[-1].weights == original.weights
    assert reader.finish() == parsed


def test_the_weights_only_form_is_the_canonical_form_without_the_reasoning_field() -> None:
    with_reasoning = format_answer(decision(0.7, 0.1, 0.1, 0.1, reasoning="Seen."), DEFAULT_CHANNELS)
    weights_only = format_answer(
        decision(0.7, 0.1, 0.1, 0.1, reasoning="Seen."), DEFAULT_CHANNELS, with_reasoning=False
    )

    assert weights_only == '{"visual":0.7,"audio":0.1,"transcription":0.1,"metadata":0.1}'
    assert with_reasoning == weights_only[:-1] + ',"reasoning":"Seen."}'
    # and a weight of 0 or 1 is the bare integer there (the shortest JSON number), still a clean answer
    bare = format_answer(decision(1.0, 0.0, 0.0, 0.0), DEFAULT_CHANNELS, with_reasoning=False)
    assert bare == '{"visual":1,"audio":0,"transcription":0,"metadata":0}'
    assert format_answer(decision(1.0, 0.0, 0.0, 0.0), DEFAULT_CHANNELS).startswith('{"visual":1.0,"audio":0.0,')
    parsed = parse_routing_answer(bare, DEFAULT_CHANNELS)
    assert (
        parsed.ok
        and parsed.clean
        and parsed.decision.weights == {"visual": 1.0, "audio": 0.0, "transcription": 0.0, "metadata": 0.0}
    )
