"""What a router answer decides: :class:`RoutingDecision`, the parse results, and the validation and
normalization of the channel weights (shared by the parser, the streaming reader and
:meth:`RoutingDecision.from_weights`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal, TypeAlias

from search_router.shared.answer.builder import JsonObject, normalize_key
from search_router.shared.answer.detail import show
from search_router.shared.answer.lexer import MAX_TOKEN_CHARS, BareWord, number_from_text
from search_router.shared.channels import ChannelSet

MAX_REASONING_CHARS: Final = 2_000
EXACT_SUM_TOLERANCE: Final = 1e-9
"""A :class:`RoutingDecision`'s weights sum to 1 within this; a sum further off than this is renormalized."""
REASONING_KEY: Final = "reasoning"


class ParseFailureReason(StrEnum):
    """Why an answer was rejected. Values are stable snake_case strings, usable as metric dimensions."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NO_JSON = "no_json"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_CHANNELS = "missing_channels"
    DUPLICATE_CHANNEL = "duplicate_channel"
    NOT_A_NUMBER = "not_a_number"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    ALL_ZERO = "all_zero"
    BAD_SUM = "bad_sum"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class RoutingDecision:
    """Validated channel weights: every value finite in [0, 1], summing to 1 within 1e-9.

    The parser always builds ``weights`` in channel order with every channel present. The constructor checks
    the numeric invariants only (it does not know the channel set); use :meth:`from_weights` to check and
    order against a :class:`ChannelSet`.
    """

    weights: dict[str, float]
    reasoning: str | None = None

    def __post_init__(self) -> None:
        weights = dict(self.weights)
        if not weights:
            raise ValueError("a routing decision needs at least one weight")
        for name, value in weights.items():
            if not isinstance(name, str):
                raise TypeError(f"channel names must be strings, got {name!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"weight {name!r} must be a finite number, got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"weight {name!r} must be in [0, 1], got {value!r}")
        total = math.fsum(weights.values())
        if abs(total - 1.0) > EXACT_SUM_TOLERANCE:
            raise ValueError(f"weights must sum to 1, got {total!r}")
        if self.reasoning is not None and not isinstance(self.reasoning, str):
            raise TypeError(f"reasoning must be a string or None, got {type(self.reasoning).__name__}")
        object.__setattr__(self, "weights", {name: float(value) + 0.0 for name, value in weights.items()})

    def __hash__(self) -> int:
        return hash((tuple(self.weights.items()), self.reasoning))

    @property
    def dominant_channel(self) -> str:
        """The channel with the highest weight; on a tie, the first in channel order."""
        return max(self.weights, key=self.weights.__getitem__)

    def to_dict(self) -> dict[str, Any]:
        """The answer shape: weights in channel order, then ``reasoning`` (``None`` when absent)."""
        return {**self.weights, REASONING_KEY: self.reasoning}

    @classmethod
    def from_weights(
        cls,
        weights: Mapping[str, Any],
        channels: ChannelSet,
        *,
        reasoning: str | None = None,
        sum_tolerance: float = EXACT_SUM_TOLERANCE,
    ) -> RoutingDecision:
        """Validate ``weights`` against ``channels`` with the parser's rules; raise ``ValueError`` if invalid.

        Keys are matched like the parser matches them (trimmed, case-insensitive); the result is in channel
        order and renormalized when the sum is within ``sum_tolerance`` of 1.
        """
        obj = JsonObject(eligible=True)
        for key, value in weights.items():
            obj.pairs.append((normalize_key(key), key, value))
        result = decide(obj, obj, channels, sum_tolerance, truncated=False)
        if not result.ok:
            raise ValueError(f"{result.reason.value}: {result.detail}")
        return cls(result.decision.weights, reasoning)


@dataclass(frozen=True)
class ParseSuccess:
    """A usable answer.

    ``renormalized``: the weights summed to 1 only within the tolerance and were divided by their sum.
    ``recovered_from_truncation``: the JSON was cut off after every weight was complete (reasoning is None).
    ``clean``: the whole answer was exactly one standard JSON object: no prose, code fence, repair or cut.
    """

    decision: RoutingDecision
    renormalized: bool = False
    recovered_from_truncation: bool = False
    clean: bool = False
    ok: Literal[True] = field(default=True, init=False)


@dataclass(frozen=True)
class ParseFailure:
    """An unusable answer: a machine-readable ``reason`` and a ``detail`` naming the channel and values."""

    reason: ParseFailureReason
    detail: str
    ok: Literal[False] = field(default=False, init=False)

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


ParseResult: TypeAlias = ParseSuccess | ParseFailure


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------
def decide(
    weights_obj: JsonObject,
    root: Any,
    channels: ChannelSet,
    sum_tolerance: float,
    *,
    truncated: bool,
    with_reasoning: bool = True,
) -> ParseResult:
    """Validate and normalize the channel weights held by ``weights_obj`` (reasoning from it or ``root``)."""
    values = _channel_values(weights_obj, channels, sum_tolerance, truncated=truncated)
    if isinstance(values, ParseFailure):
        return values
    total = math.fsum(values.values())
    if total == 0.0:
        return ParseFailure(ParseFailureReason.ALL_ZERO, "every channel weight is 0; at least one must be > 0")
    if abs(total - 1.0) > sum_tolerance:
        listed = ", ".join(f"{name}={value:g}" for name, value in values.items())
        return ParseFailure(
            ParseFailureReason.BAD_SUM,
            f"the weights sum to {total:.6g}, not 1 (tolerance {sum_tolerance:g}): {listed}",
        )
    renormalized = abs(total - 1.0) > EXACT_SUM_TOLERANCE
    if renormalized:
        values = {name: value / total for name, value in values.items()}
    reasoning = None
    if with_reasoning and not truncated:
        reasoning = _clean_reasoning(_reasoning_value(weights_obj, root))
    return ParseSuccess(
        RoutingDecision(values, reasoning), renormalized=renormalized, recovered_from_truncation=truncated
    )


def _channel_values(
    weights_obj: JsonObject, channels: ChannelSet, sum_tolerance: float, *, truncated: bool
) -> dict[str, float] | ParseFailure:
    """Every channel's number in channel order, or the failure naming what is missing or wrong."""
    names = channels.names
    found: dict[str, list[Any]] = {}
    for key, _raw_key, value in weights_obj.pairs:
        if key in names:
            found.setdefault(key, []).append(value)
    missing = [name for name in names if name not in found]
    if missing:
        detail = f"missing channel(s): {', '.join(missing)}"
        if truncated:
            detail += " (the answer was cut off before their values were complete)"
        return ParseFailure(ParseFailureReason.MISSING_CHANNELS, detail)
    duplicated = [name for name in names if len(found[name]) > 1]
    if duplicated:
        return ParseFailure(
            ParseFailureReason.DUPLICATE_CHANNEL,
            f"channel(s) given more than once (keys match case-insensitively): {', '.join(duplicated)}",
        )
    problems: list[tuple[ParseFailureReason, str]] = []
    values: dict[str, float] = {}
    for name in names:
        number, reason, why = _as_number(found[name][0])
        if reason is not None:
            problems.append((reason, f"{name} {why}"))
        elif not 0.0 <= number <= 1.0:
            problems.append((ParseFailureReason.OUT_OF_RANGE, f"{name} is {number:g}, outside [0, 1]"))
        values[name] = number
    if not problems:
        return values
    detail = "; ".join(text for _reason, text in problems)
    numeric = all(math.isfinite(v) and v >= 0 for v in values.values())
    if numeric and abs(math.fsum(values.values()) - 100.0) <= 100.0 * sum_tolerance:
        detail += "; the weights sum to 100, so they look like percentages: weights must be fractions of 1"
    return ParseFailure(problems[0][0], detail)


def _as_number(value: Any) -> tuple[float, ParseFailureReason | None, str]:
    """``(number, None, "")`` for a usable number, else ``(nan, reason, why)``."""
    if isinstance(value, str) and not isinstance(value, BareWord):
        parsed = number_from_text(value.strip()) if len(value) <= MAX_TOKEN_CHARS else None
        if parsed is None:
            return math.nan, ParseFailureReason.NOT_A_NUMBER, f"is the string {show(value)}, not a number"
        value = parsed
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number, None, ""
        what = "NaN" if math.isnan(number) else ("-infinite" if number < 0 else "infinite")
        return math.nan, ParseFailureReason.NON_FINITE, f"is {what}, not a finite number"
    return math.nan, ParseFailureReason.NOT_A_NUMBER, f"{_describe(value)}, not a number"


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"is a boolean ({str(value).lower()})"
    if value is None:
        return "is null"
    if isinstance(value, BareWord):
        return f"is the unquoted word {show(value)}"
    if isinstance(value, list):
        return "is an array"
    if isinstance(value, JsonObject):
        return "is an object"
    return f"is a {type(value).__name__}"


def _reasoning_value(weights_obj: JsonObject, root: Any) -> Any:
    for holder in (weights_obj, root):
        if isinstance(holder, JsonObject):
            for key, _raw_key, value in holder.pairs:
                if key == REASONING_KEY:
                    return value
    return None


def _clean_reasoning(value: Any) -> str | None:
    """A reasoning string stripped and capped; anything that is not a JSON string becomes None."""
    if type(value) is not str:
        return None
    text = value.strip()[:MAX_REASONING_CHARS].strip()
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from \ud800 escapes
    return text or None
