"""The routing-answer parser against a corpus of clean, malformed and hostile model answers."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass

import pytest

from search_router.shared.answer.decision import (
    MAX_REASONING_CHARS,
    ParseFailure,
    ParseFailureReason,
    ParseResult,
    ParseSuccess,
)
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS, Channel, ChannelSet

R = ParseFailureReason
ANY = object()

THREE = ChannelSet(
    (
        Channel("scene", "what is shown"),
        Channel("speech", "what is said"),
        Channel("mood", "the feeling of the clip: calm, tense, joyful"),
    )
)

VALID = '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1, "reasoning": "Mostly visual."}'
OTHER_VALID = '{"visual": 0.1, "audio": 0.7, "transcription": 0.1, "metadata": 0.1, "reasoning": "Sound."}'


@dataclass(frozen=True)
class Ok:
    weights: tuple[float, ...]
    reasoning: object = ANY
    renormalized: bool = False
    truncated: bool = False
    clean: object = ANY


@dataclass(frozen=True)
class Fails:
    reason: ParseFailureReason
    mentions: tuple[str, ...] = ()


def case(case_id: str, text: str | None, expected: Ok | Fails, channels: ChannelSet = DEFAULT_CHANNELS):
    return pytest.param(text, expected, channels, id=case_id)


CORPUS = [
    # --- well-formed -------------------------------------------------------------------------------------
    case(
        "clean-flat",
        '{"visual":0.8,"audio":0.0,"transcription":0.0,"metadata":0.2,"reasoning":"Scenery."}',
        Ok((0.8, 0.0, 0.0, 0.2), reasoning="Scenery.", clean=True),
    ),
    case("integers", '{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0}', Ok((1, 0, 0, 0), clean=True)),
    case(
        "exponent-numbers",
        '{"visual": 5e-1, "audio": 2.5E-1, "transcription": 0.25, "metadata": 0}',
        Ok((0.5, 0.25, 0.25, 0.0)),
    ),
    case(
        "weights-in-another-order",
        '{"reasoning": "r", "metadata": 0.4, "transcription": 0.3, "audio": 0.2, "visual": 0.1}',
        Ok((0.1, 0.2, 0.3, 0.4), reasoning="r"),
    ),
    # --- wrapping ------------------------------------------------------------------------------------------
    case("fence-json", f"```json\n{VALID}\n```", Ok((0.7, 0.1, 0.1, 0.1), reasoning="Mostly visual.", clean=False)),
    case("fence-plain", f"```\n{VALID}\n```", Ok((0.7, 0.1, 0.1, 0.1), clean=False)),
    case("fence-uppercase-label-one-line", f"```JSON {VALID}```", Ok((0.7, 0.1, 0.1, 0.1))),
    case("prose-before", f"Here is the routing for your query:\n{VALID}", Ok((0.7, 0.1, 0.1, 0.1))),
    case("prose-after", f"{VALID}\nLet me know if you need anything else!", Ok((0.7, 0.1, 0.1, 0.1))),
    case(
        "prose-and-fence",
        f"Sure! I'd weight it like this:\n```json\n{VALID}\n```\nThe visual channel dominates.",
        Ok((0.7, 0.1, 0.1, 0.1), reasoning="Mostly visual."),
    ),
    case("prose-braces-before", f"I use {{curly}} braces. {VALID}", Ok((0.7, 0.1, 0.1, 0.1))),
    case("apostrophe-in-prose-braces", f"Note {{it's simple}} then {VALID}", Ok((0.7, 0.1, 0.1, 0.1))),
    # --- keys ----------------------------------------------------------------------------------------------
    case(
        "missing-key",
        '{"visual": 0.7, "audio": 0.2, "transcription": 0.1, "reasoning": "x"}',
        Fails(R.MISSING_CHANNELS, ("metadata",)),
    ),
    case(
        "extra-keys-ignored",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1, "confidence": 0.9, "mood": 2}',
        Ok((0.7, 0.1, 0.1, 0.1)),
    ),
    case(
        "uppercase-keys",
        '{"VISUAL": 0.7, "Audio": 0.1, "TranScription": 0.1, "METADATA": 0.1}',
        Ok((0.7, 0.1, 0.1, 0.1)),
    ),
    case(
        "keys-with-spaces",
        '{" visual ": 0.7, "audio  ": 0.1, "\\ttranscription": 0.1, " Metadata": 0.1}',
        Ok((0.7, 0.1, 0.1, 0.1)),
    ),
    case(
        "near-miss-key-is-not-a-channel",
        '{"visuals": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}',
        Fails(R.MISSING_CHANNELS, ("visual",)),
    ),
    case(
        "duplicate-channel-case-variant",
        '{"visual": 0.7, "Visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}',
        Fails(R.DUPLICATE_CHANNEL, ("visual",)),
    ),
    case("empty-object", "{}", Fails(R.MISSING_CHANNELS, ("visual", "metadata"))),
    case("unrelated-object", '{"answer": "visual", "score": 0.7}', Fails(R.MISSING_CHANNELS)),
    # --- values --------------------------------------------------------------------------------------------
    case(
        "negative",
        '{"visual": 1.1, "audio": -0.1, "transcription": 0.0, "metadata": 0.0}',
        Fails(R.OUT_OF_RANGE, ("visual is 1.1", "audio is -0.1")),
    ),
    case(
        "nan-literal",
        '{"visual": NaN, "audio": 0.5, "transcription": 0.5, "metadata": 0}',
        Fails(R.NON_FINITE, ("visual", "NaN")),
    ),
    case(
        "infinity-literal",
        '{"visual": 0, "audio": Infinity, "transcription": 0, "metadata": 0}',
        Fails(R.NON_FINITE, ("audio", "infinite")),
    ),
    case(
        "minus-infinity-literal",
        '{"visual": 1, "audio": 0, "transcription": -Infinity, "metadata": 0}',
        Fails(R.NON_FINITE, ("transcription", "-infinite")),
    ),
    case(
        "nan-and-inf-as-strings",
        '{"visual": "nan", "audio": "inf", "transcription": 0, "metadata": 0}',
        Fails(R.NON_FINITE, ("visual", "audio")),
    ),
    case("overflowing-number", '{"visual": 1e400, "audio": 0, "transcription": 0, "metadata": 0}', Fails(R.NON_FINITE)),
    case(
        "numbers-as-strings",
        '{"visual": "0.7", "audio": " 0.1 ", "transcription": ".1", "metadata": "1e-1"}',
        Ok((0.7, 0.1, 0.1, 0.1)),
    ),
    case(
        "word-string",
        '{"visual": "high", "audio": 0, "transcription": 0, "metadata": 0}',
        Fails(R.NOT_A_NUMBER, ("visual", "'high'")),
    ),
    case(
        "percent-string",
        '{"visual": "70%", "audio": "10%", "transcription": "10%", "metadata": "10%"}',
        Fails(R.NOT_A_NUMBER, ("70%",)),
    ),
    case(
        "boolean-true",
        '{"visual": true, "audio": 0, "transcription": 0, "metadata": 0}',
        Fails(R.NOT_A_NUMBER, ("visual", "boolean")),
    ),
    case(
        "boolean-false",
        '{"visual": 1, "audio": false, "transcription": 0, "metadata": 0}',
        Fails(R.NOT_A_NUMBER, ("audio", "boolean")),
    ),
    case(
        "null-value",
        '{"visual": 1, "audio": 0, "transcription": null, "metadata": 0}',
        Fails(R.NOT_A_NUMBER, ("transcription is null",)),
    ),
    case(
        "python-literals",
        "{'visual': 1, 'audio': False, 'transcription': None, 'metadata': 0}",
        Fails(R.NOT_A_NUMBER, ("audio", "transcription")),
    ),
    case(
        "array-as-value",
        '{"visual": [0.7], "audio": 0.1, "transcription": 0.1, "metadata": 0.1}',
        Fails(R.NOT_A_NUMBER, ("visual is an array",)),
    ),
    case(
        "object-as-value",
        '{"visual": {"value": 0.7}, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}',
        Fails(R.NOT_A_NUMBER, ("visual is an object",)),
    ),
    # --- sums ----------------------------------------------------------------------------------------------
    case(
        "sum-0.98-renormalized",
        '{"visual": 0.49, "audio": 0.49, "transcription": 0, "metadata": 0}',
        Ok((0.5, 0.5, 0.0, 0.0), renormalized=True),
    ),
    case(
        "sum-0.995-renormalized",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.095}',
        Ok((0.7 / 0.995, 0.1 / 0.995, 0.1 / 0.995, 0.095 / 0.995), renormalized=True),
    ),
    case(
        "sum-float-noise-not-renormalized",
        '{"visual": 0.1, "audio": 0.2, "transcription": 0.3, "metadata": 0.4}',
        Ok((0.1, 0.2, 0.3, 0.4), renormalized=False),
    ),
    case(
        "sum-1.3",
        '{"visual": 0.7, "audio": 0.2, "transcription": 0.2, "metadata": 0.2}',
        Fails(R.BAD_SUM, ("1.3", "visual=0.7")),
    ),
    case(
        "sum-0.5",
        '{"visual": 0.2, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}',
        Fails(R.BAD_SUM, ("0.5",)),
    ),
    case(
        "percentages-100",
        '{"visual": 40, "audio": 20, "transcription": 20, "metadata": 20}',
        Fails(R.OUT_OF_RANGE, ("visual is 40", "percentages")),
    ),
    case("all-zeros", '{"visual": 0, "audio": 0.0, "transcription": 0, "metadata": -0.0}', Fails(R.ALL_ZERO)),
    # --- nesting -------------------------------------------------------------------------------------------
    case(
        "weights-wrapper",
        '{"weights": {"visual": 0.6, "audio": 0.4, "transcription": 0, "metadata": 0}, "reasoning": "Outer."}',
        Ok((0.6, 0.4, 0.0, 0.0), reasoning="Outer."),
    ),
    case(
        "weights-wrapper-reasoning-inside",
        '{"weights": {"Visual": 0.6, "audio": 0.4, "transcription": 0, "metadata": 0, "reasoning": "Inner."}}',
        Ok((0.6, 0.4, 0.0, 0.0), reasoning="Inner."),
    ),
    case(
        "two-level-wrapper",
        '{"answer": {"weights": {"visual": 0, "audio": 0, "transcription": 0.5, "metadata": 0.5}}}',
        Ok((0.0, 0.0, 0.5, 0.5)),
    ),
    case(
        "deeper-unrelated-nesting",
        '{"meta": {"a": {"b": {"c": [1, {"visual": 9}, [[]]]}}}, "visual": 0.7, "audio": 0.1, '
        '"transcription": 0.1, "metadata": 0.1, "reasoning": "deep"}',
        Ok((0.7, 0.1, 0.1, 0.1), reasoning="deep"),
    ),
    case(
        "channels-only-too-deep",
        '{"a": {"b": {"c": {"visual": 1, "audio": 0, "transcription": 0, "metadata": 0}}}}',
        Fails(R.MISSING_CHANNELS),
    ),
    case(
        "channels-only-inside-array",
        '{"answers": [{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0}]}',
        Fails(R.MISSING_CHANNELS),
    ),
    case("top-level-array-of-numbers", "[0.7, 0.1, 0.1, 0.1]", Fails(R.NOT_AN_OBJECT, ("array",))),
    case(
        "top-level-array-wrapping-object",
        '```json\n[{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}]\n```',
        Fails(R.NOT_AN_OBJECT, ("array",)),
    ),
    case("top-level-number", "0.7", Fails(R.NOT_AN_OBJECT, ("number",))),
    case("top-level-string", '"visual"', Fails(R.NOT_AN_OBJECT, ("string",))),
    case("top-level-null", "null", Fails(R.NOT_AN_OBJECT, ("null",))),
    # --- truncation ----------------------------------------------------------------------------------------
    case(
        "truncated-in-reasoning",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1, "reasoning": "The query ment',
        Ok((0.7, 0.1, 0.1, 0.1), reasoning=None, truncated=True, clean=False),
    ),
    case(
        "truncated-after-last-comma",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1,',
        Ok((0.7, 0.1, 0.1, 0.1), reasoning=None, truncated=True),
    ),
    case(
        "truncated-before-closing-brace",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1, "reasoning": "done"',
        Ok((0.7, 0.1, 0.1, 0.1), reasoning=None, truncated=True),
    ),
    case(
        "truncated-wrapper",
        '{"weights": {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}, "reasoning": "x',
        Ok((0.7, 0.1, 0.1, 0.1), truncated=True),
    ),
    case(
        "truncated-in-last-number",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1',
        Fails(R.MISSING_CHANNELS, ("metadata", "cut off")),
    ),
    case(
        "truncated-in-key",
        '{"visual": 0.7, "audio": 0.1, "transcri',
        Fails(R.MISSING_CHANNELS, ("transcription", "metadata")),
    ),
    case("truncated-after-brace", "{", Fails(R.INVALID_JSON, ("not closed",))),
    # --- strings -------------------------------------------------------------------------------------------
    case(
        "braces-in-reasoning",
        '{"visual": 0.5, "audio": 0.5, "transcription": 0, "metadata": 0, "reasoning": "a {b} c } d { e"}',
        Ok((0.5, 0.5, 0.0, 0.0), reasoning="a {b} c } d { e", clean=True),
    ),
    case(
        "escaped-quotes-in-reasoning",
        r'{"visual": 0.5, "audio": 0.5, "transcription": 0, "metadata": 0, "reasoning": "He said \"rain\" \\ ok"}',
        Ok((0.5, 0.5, 0.0, 0.0), reasoning='He said "rain" \\ ok'),
    ),
    case(
        "reasoning-before-weights-with-braces",
        '{"reasoning": "Ignore {\\"visual\\": 1}", "visual": 0, "audio": 1, "transcription": 0, "metadata": 0}',
        Ok((0.0, 1.0, 0.0, 0.0), reasoning='Ignore {"visual": 1}'),
    ),
    case(
        "unicode-reasoning",
        '{"visual": 0.5, "audio": 0.5, "transcription": 0, "metadata": 0, '
        '"reasoning": "Café «ambiance» 日本語 🎵 \\u00e9\\ud83c\\udfb5"}',
        Ok((0.5, 0.5, 0.0, 0.0), reasoning="Café «ambiance» 日本語 🎵 é🎵"),
    ),
    case(
        "reasoning-stripped",
        '{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0, "reasoning": "  padded \\n "}',
        Ok((1.0, 0.0, 0.0, 0.0), reasoning="padded"),
    ),
    case(
        "raw-newline-in-reasoning",
        '{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0, "reasoning": "line one\nline two"}',
        Ok((1.0, 0.0, 0.0, 0.0), reasoning="line one\nline two", clean=False),
    ),
    case(
        "reasoning-not-a-string",
        '{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0, "reasoning": ["a", "b"]}',
        Ok((1.0, 0.0, 0.0, 0.0), reasoning=None),
    ),
    case(
        "reasoning-empty",
        '{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0, "reasoning": "   "}',
        Ok((1.0, 0.0, 0.0, 0.0), reasoning=None),
    ),
    # --- several objects -----------------------------------------------------------------------------------
    case("two-objects-first-valid-wins", f"{VALID}\n{OTHER_VALID}", Ok((0.7, 0.1, 0.1, 0.1))),
    case(
        "first-invalid-sum-then-valid",
        f'{{"visual": 0.9, "audio": 0.9, "transcription": 0, "metadata": 0}} Corrected: {OTHER_VALID}',
        Ok((0.1, 0.7, 0.1, 0.1), reasoning="Sound."),
    ),
    case(
        "first-broken-syntax-then-valid",
        f'{{"visual": 0.7,, "audio"}} Sorry, again: {OTHER_VALID}',
        Ok((0.1, 0.7, 0.1, 0.1)),
    ),
    case(
        "unrelated-object-then-valid",
        f'{{"query": "rain sounds"}} {OTHER_VALID}',
        Ok((0.1, 0.7, 0.1, 0.1)),
    ),
    case(
        "two-invalid-first-failure-reported",
        '{"visual": NaN, "audio": 0, "transcription": 0, "metadata": 1} '
        '{"visual": 0.9, "audio": 0.9, "transcription": 0, "metadata": 0}',
        Fails(R.NON_FINITE),
    ),
    # --- empty and junk ------------------------------------------------------------------------------------
    case("empty-string", "", Fails(R.EMPTY)),
    case("none", None, Fails(R.EMPTY)),
    case("whitespace-only", " \n\t  \r\n", Fails(R.EMPTY)),
    case("prose-only", "I think this query is mostly visual, with some audio.", Fails(R.NO_JSON)),
    case(
        "missing-comma",
        '{"visual": 0.7 "audio": 0.1, "transcription": 0.1, "metadata": 0.1}',
        Fails(R.INVALID_JSON, ("expected ',' or '}'",)),
    ),
    case("colon-without-value", '{"visual": }', Fails(R.INVALID_JSON, ("expected a value",))),
    # --- tolerated non-JSON syntax -------------------------------------------------------------------------
    case(
        "trailing-commas",
        '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1, "tags": [1, 2,],}',
        Ok((0.7, 0.1, 0.1, 0.1), clean=False),
    ),
    case(
        "single-quotes",
        "{'visual': 0.7, 'audio': '0.1', 'transcription': 0.1, 'metadata': 0.1, 'reasoning': 'It\\'s visual'}",
        Ok((0.7, 0.1, 0.1, 0.1), reasoning="It's visual", clean=False),
    ),
    case(
        "single-quoted-keys-only",
        "{'visual': 1, 'audio': 0, 'transcription': 0, 'metadata': 0}",
        Ok((1.0, 0.0, 0.0, 0.0), clean=False),
    ),
    case(
        "comments",
        '{\n  // weights first\n  "visual": 0.7, /* most */ "audio": 0.1,\n  "transcription": 0.1, '
        '"metadata": 0.1 // done\n}',
        Ok((0.7, 0.1, 0.1, 0.1), clean=False),
    ),
    case(
        "unquoted-keys",
        "{visual: 0.7, audio: 0.1, transcription: 0.1, metadata: 0.1, reasoning: 'js style'}",
        Ok((0.7, 0.1, 0.1, 0.1), reasoning="js style", clean=False),
    ),
    # --- a custom channel set ------------------------------------------------------------------------------
    case(
        "custom-three-channels",
        '{"scene": 0.2, "speech": 0.3, "mood": 0.5, "reasoning": "tense"}',
        Ok((0.2, 0.3, 0.5), reasoning="tense", clean=True),
        THREE,
    ),
    case(
        "custom-three-channels-default-answer",
        VALID,
        Fails(R.MISSING_CHANNELS, ("scene", "speech", "mood")),
        THREE,
    ),
    case(
        "custom-three-channels-missing-mood",
        '{"scene": 0.5, "speech": 0.5, "visual": 0}',
        Fails(R.MISSING_CHANNELS, ("mood",)),
        THREE,
    ),
]


def assert_invariants(result: ParseResult, channels: ChannelSet) -> None:
    """What every result must satisfy, whatever the input."""
    assert isinstance(result, ParseSuccess | ParseFailure)
    if isinstance(result, ParseFailure):
        assert result.ok is False
        assert isinstance(result.reason, ParseFailureReason)
        assert result.detail
        return
    assert result.ok is True
    weights = result.decision.weights
    assert tuple(weights) == channels.names
    assert all(math.isfinite(w) and 0.0 <= w <= 1.0 for w in weights.values())
    assert abs(math.fsum(weights.values()) - 1.0) <= 1e-9
    reasoning = result.decision.reasoning
    assert reasoning is None or (reasoning == reasoning.strip() and 0 < len(reasoning) <= MAX_REASONING_CHARS)


def test_corpus_is_large_and_distinct() -> None:
    texts = [param.values[0] for param in CORPUS]
    ids = [param.id for param in CORPUS]
    assert len(CORPUS) >= 45
    assert len(set(ids)) == len(ids)
    assert len({(text, param.values[2]) for text, param in zip(texts, CORPUS, strict=True)}) == len(CORPUS)


@pytest.mark.parametrize(("text", "expected", "channels"), CORPUS)
def test_corpus(text: str | None, expected: Ok | Fails, channels: ChannelSet) -> None:
    # When
    result = parse_routing_answer(text, channels)

    # Then
    assert_invariants(result, channels)
    if isinstance(expected, Fails):
        assert isinstance(result, ParseFailure), f"expected {expected.reason}, got {result}"
        assert result.reason is expected.reason, result.detail
        for fragment in expected.mentions:
            assert fragment in result.detail
        return
    assert isinstance(result, ParseSuccess), str(result)
    assert tuple(result.decision.weights.values()) == pytest.approx(expected.weights, abs=1e-12)
    assert result.renormalized is expected.renormalized
    assert result.recovered_from_truncation is expected.truncated
    if expected.reasoning is not ANY:
        assert result.decision.reasoning == expected.reasoning
    if expected.clean is not ANY:
        assert result.clean is expected.clean


def test_truncated_recovery_drops_partial_reasoning_and_is_not_clean() -> None:
    # Given an answer cut off mid-reasoning
    text = '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1, "reasoning": "The query ment'

    # When
    result = parse_routing_answer(text, DEFAULT_CHANNELS)

    # Then
    assert isinstance(result, ParseSuccess)
    assert result.recovered_from_truncation
    assert result.decision.reasoning is None
    assert not result.clean


def test_long_reasoning_is_capped() -> None:
    long_reasoning = "word " * 1_000
    text = json.dumps({"visual": 1, "audio": 0, "transcription": 0, "metadata": 0, "reasoning": long_reasoning})

    result = parse_routing_answer(text, DEFAULT_CHANNELS)

    assert isinstance(result, ParseSuccess)
    assert result.decision.reasoning is not None
    assert len(result.decision.reasoning) <= MAX_REASONING_CHARS
    assert long_reasoning.startswith(result.decision.reasoning)


def test_sum_tolerance_is_configurable() -> None:
    text = '{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.08}'  # sums to 0.98

    strict = parse_routing_answer(text, DEFAULT_CHANNELS, sum_tolerance=0.01)
    loose = parse_routing_answer(text, DEFAULT_CHANNELS, sum_tolerance=0.05)

    assert isinstance(strict, ParseFailure) and strict.reason is R.BAD_SUM
    assert isinstance(loose, ParseSuccess) and loose.renormalized


def test_only_a_clean_json_answer_is_flagged_clean() -> None:
    bare = parse_routing_answer(f"  {VALID}\n", DEFAULT_CHANNELS)
    with_prose = parse_routing_answer(f"Answer: {VALID}", DEFAULT_CHANNELS)

    assert isinstance(bare, ParseSuccess) and bare.clean
    assert isinstance(with_prose, ParseSuccess) and not with_prose.clean


def test_200_kb_of_noise_returns_quickly() -> None:
    # Given 200 KB of JSON-ish noise with many unbalanced braces and quotes
    rng = random.Random(20_240_601)
    noise = "".join(rng.choice("{{{}}\"':,[]0.1-eE visual audio\\") for _ in range(200_000))

    # When
    started = time.perf_counter()
    result = parse_routing_answer(noise, DEFAULT_CHANNELS)
    elapsed = time.perf_counter() - started

    # Then
    assert elapsed < 1.0
    assert isinstance(result, ParseFailure)
    assert result.reason is R.TOO_LARGE


@pytest.mark.parametrize(
    "noise",
    [
        pytest.param("{" * 200_000, id="open-braces"),
        pytest.param('{"a":' * 50_000, id="deep-nesting"),
        pytest.param('{"a": "' + "x" * 200_000, id="endless-string"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="deep-arrays"),
        pytest.param('{"a": [' + "1, " * 70_000, id="endless-array"),
        pytest.param("{'" * 100_000, id="single-quote-strings"),
    ],
)
def test_hostile_inputs_return_quickly(noise: str) -> None:
    started = time.perf_counter()
    result = parse_routing_answer(noise, DEFAULT_CHANNELS)
    assert time.perf_counter() - started < 1.0
    assert isinstance(result, ParseFailure)


def test_huge_valid_looking_prefix_before_the_answer_is_skipped() -> None:
    # Given 15 K characters of valid but unrelated JSON (channel keys only too deep to count), then the answer
    items = [{"id": i, "tags": ["a", "b"], "deep": {"x": {"y": {"visual": 1}}}} for i in range(200)]
    prefix = json.dumps({"context": {"items": items}})
    text = prefix + "\n" + OTHER_VALID
    assert 10_000 < len(text) < 20_000

    # When
    started = time.perf_counter()
    result = parse_routing_answer(text, DEFAULT_CHANNELS)
    elapsed = time.perf_counter() - started

    # Then
    assert elapsed < 1.0
    assert isinstance(result, ParseSuccess)
    assert result.decision.reasoning == "Sound."


def test_huge_broken_prefix_with_channel_keys_returns_quickly() -> None:
    # Given 15 K characters of broken fragments that each look like the start of an answer
    text = ('{"visual": [' + '{"note": "x"}, {"visual": {' * 600)[:15_000] + "\n" + OTHER_VALID

    # When
    started = time.perf_counter()
    result = parse_routing_answer(text, DEFAULT_CHANNELS)

    # Then the scan gives up or finds the answer, but stays fast either way
    assert time.perf_counter() - started < 1.0
    assert_invariants(result, DEFAULT_CHANNELS)


def test_huge_valid_looking_prefix_past_max_chars_is_too_large() -> None:
    # Given an answer that only starts after max_chars
    text = '{"filler": "' + "x" * 30_000 + '"}' + VALID

    # When
    started = time.perf_counter()
    result = parse_routing_answer(text, DEFAULT_CHANNELS)

    # Then
    assert time.perf_counter() - started < 1.0
    assert isinstance(result, ParseFailure)
    assert result.reason is R.TOO_LARGE
    assert "30" in result.detail and "20000" in result.detail


def test_answer_within_max_chars_of_a_long_text_is_found() -> None:
    text = VALID + " " + "padding " * 5_000

    result = parse_routing_answer(text, DEFAULT_CHANNELS, max_chars=1_000)

    assert isinstance(result, ParseSuccess)
    assert result.clean is False


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        pytest.param({"sum_tolerance": float("nan")}, VALID, id="nan-tolerance"),
        pytest.param({"max_chars": 0}, VALID, id="zero-max-chars"),
        pytest.param({}, 12345, id="not-text"),
        pytest.param({}, b'{"visual": 1}', id="bytes"),
    ],
)
def test_bad_arguments_become_failures_not_exceptions(kwargs: dict, text: object) -> None:
    result = parse_routing_answer(text, DEFAULT_CHANNELS, **kwargs)  # type: ignore[arg-type]

    assert isinstance(result, ParseFailure)


def test_unexpected_errors_become_internal_error_failures() -> None:
    result = parse_routing_answer(VALID, None)  # type: ignore[arg-type]

    assert isinstance(result, ParseFailure)
    assert result.reason is R.INTERNAL_ERROR


def test_random_garbage_never_raises_and_successes_hold_invariants() -> None:
    # Given 2,000 deterministic pseudo-random JSON-ish strings, some seeded with channel keys
    rng = random.Random(7)
    charset = "{}[]:,\"'\\ \n0123456789.-+eEnaNIfityrulsAVD/*"
    fragments = ['"visual":', '"audio":', '"transcription":', '"metadata":', '"reasoning":"', "0.25", "1", "0"]
    for _ in range(2_000):
        pieces = []
        for _ in range(rng.randint(0, 40)):
            if rng.random() < 0.3:
                pieces.append(rng.choice(fragments))
            else:
                pieces.append("".join(rng.choice(charset) for _ in range(rng.randint(1, 6))))
        text = "".join(pieces)
        if rng.random() < 0.2:
            text = "{" + text

        # When
        result = parse_routing_answer(text, DEFAULT_CHANNELS)

        # Then
        assert_invariants(result, DEFAULT_CHANNELS)
    # Near-valid answers built from the same pieces must also be parsed (the loop is not vacuous).
    weights = ['"visual":0.25', '"audio":0.25', '"transcription":0.25', '"metadata":0.25']
    for _ in range(200):
        rng.shuffle(weights)
        text = "{" + ",".join(weights) + rng.choice(["}", ",", ', "reasoning": "x'])
        result = parse_routing_answer(text, DEFAULT_CHANNELS)
        assert_invariants(result, DEFAULT_CHANNELS)
        assert result.ok, text
