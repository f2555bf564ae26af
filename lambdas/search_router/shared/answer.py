"""Routing answers: parse, validate, normalize, stream and format the router's JSON.

A router answer is one JSON object with a weight per channel (each in [0, 1], summing to 1) followed by a
short ``reasoning`` string, for example::

    {"visual":0.8,"audio":0.0,"transcription":0.0,"metadata":0.2,"reasoning":"Scenery is visual."}

Models do not always answer like that, so :func:`parse_routing_answer` is forgiving about the wrapping
(prose, code fences, key case, trailing commas, comments, single quotes, truncation after the weights) and
strict about the numbers (no booleans, no NaN, no percentages, no silent fix of a wrong sum). It never raises
and runs in time linear in the (capped) input. :class:`StreamingWeightsReader` applies the same tokenizer,
tree builder and validation to a token stream and yields the weights as soon as they are complete, before the
reasoning arrives. :func:`format_answer` writes the canonical form used for training targets and prompts.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, Literal, TypeAlias

from search_router.shared.channels import ChannelSet

DEFAULT_SUM_TOLERANCE: Final = 0.05
DEFAULT_MAX_CHARS: Final = 20_000
MAX_REASONING_CHARS: Final = 2_000
EXACT_SUM_TOLERANCE: Final = 1e-9
"""A :class:`RoutingDecision`'s weights sum to 1 within this; a sum further off than this is renormalized."""
REASONING_KEY: Final = "reasoning"

_MAX_DEPTH = 32  # deeper JSON is rejected rather than walked
_WEIGHTS_MAX_DEPTH = 3  # the weights object may sit at most this deep (root = 1), e.g. {"answer": {"weights": {}}}
_MAX_TOKEN_CHARS = 1_000  # an unquoted word or number longer than this is an error
_MAX_FAILED_CANDIDATES = 256  # '{' positions tried after a syntax error before giving up
_MAX_STREAM_RESTARTS = 32
_MAX_DETAIL_VALUE_CHARS = 40


# ---------------------------------------------------------------------------------------------------------
# Public results
# ---------------------------------------------------------------------------------------------------------
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
        obj = _Obj(eligible=True)
        for key, value in weights.items():
            obj.pairs.append((_normalize_key(key), key, value))
        result = _decide(obj, obj, channels, sum_tolerance, truncated=False)
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
# Parsing
# ---------------------------------------------------------------------------------------------------------
def parse_routing_answer(
    text: str | None,
    channels: ChannelSet,
    *,
    sum_tolerance: float = DEFAULT_SUM_TOLERANCE,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> ParseResult:
    """Turn a router model's raw answer into a :class:`ParseSuccess` or a :class:`ParseFailure`.

    Never raises: an unexpected error becomes ``ParseFailure(INTERNAL_ERROR, ...)``. Only the first
    ``max_chars`` characters are read. Candidate objects are tried from each ``{`` in order; the first one
    that contains channel keys (directly, under ``"weights"`` or another wrapper key) and validates wins. When
    none validates, the failure of the first object with channel keys is returned.
    """
    try:
        return _parse(text, channels, sum_tolerance, max_chars)
    except Exception as exc:  # the contract is "never raises": callers count failures, they do not crash
        return ParseFailure(ParseFailureReason.INTERNAL_ERROR, _clip(f"{type(exc).__name__}: {exc}", 300))


def _parse(text: str | None, channels: ChannelSet, sum_tolerance: float, max_chars: int) -> ParseResult:
    if not math.isfinite(sum_tolerance) or sum_tolerance < 0:
        raise ValueError(f"sum_tolerance must be a finite number >= 0, got {sum_tolerance!r}")
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars!r}")
    if text is None:
        return ParseFailure(ParseFailureReason.EMPTY, "the answer is None")
    if not isinstance(text, str):
        return ParseFailure(ParseFailureReason.NO_JSON, f"the answer is a {type(text).__name__}, not text")
    full_length = len(text)
    cut = full_length > max_chars
    if cut:
        text = text[:max_chars]
    if not cut and not text.strip():
        return ParseFailure(ParseFailureReason.EMPTY, "the answer is empty or whitespace only")
    result = _scan(text, channels, sum_tolerance)
    if not cut:
        return result
    if result.ok:
        return replace(result, clean=False)
    return ParseFailure(
        ParseFailureReason.TOO_LARGE,
        f"the answer has {full_length} characters; the first {max_chars} were read and hold no valid answer "
        f"({result.reason.value}: {result.detail})",
    )


def _scan(text: str, channels: ChannelSet, sum_tolerance: float) -> ParseResult:
    watch = frozenset(channels.names)
    kind = _whole_value_kind(_unfence(text))
    if kind is not None:
        return ParseFailure(
            ParseFailureReason.NOT_AN_OBJECT, f"the answer is a JSON {kind}, not an object of channel weights"
        )
    body = (len(text) - len(text.lstrip()), len(text.rstrip()))
    budget = 4 * len(text) + 4_096  # characters tokenized over all candidates: keeps the scan linear
    failed_candidates = 0
    first_failure: ParseFailure | None = None
    saw_object_without_channels = False
    syntax_error: str | None = None
    start = text.find("{")
    while start != -1 and budget > 0 and failed_candidates < _MAX_FAILED_CANDIDATES:
        lexer, builder = _read_candidate(text, start, watch)
        end = lexer.offset
        budget -= end - start + 1
        if builder.error is not None:
            failed_candidates += 1
            message = f"invalid JSON at character {end}: {builder.error}"
            syntax_error = syntax_error or message
            if builder.keyed is not None and first_failure is None:
                first_failure = ParseFailure(ParseFailureReason.INVALID_JSON, message)
            start = text.find("{", start + 1)
            continue
        truncated = not builder.done
        if builder.keyed is None:
            if truncated:  # e.g. an apostrophe in prose braces opened a string: try the next '{'
                failed_candidates += 1
                syntax_error = syntax_error or "the JSON object is not closed (the answer looks cut off)"
                start = text.find("{", start + 1)
                continue
            saw_object_without_channels = True
            start = text.find("{", end)
            continue
        result = _decide(builder.keyed, builder.root, channels, sum_tolerance, truncated=truncated)
        if result.ok:
            clean = not (truncated or builder.repaired or lexer.comments) and (start, end) == body
            return replace(result, clean=clean)
        first_failure = first_failure or result
        start = -1 if truncated else text.find("{", end)
    if first_failure is not None:
        return first_failure
    return _no_answer(channels, saw_object_without_channels, syntax_error, gave_up=start != -1)


def _read_candidate(text: str, start: int, watch: frozenset[str]) -> tuple[_Lexer, _Builder]:
    """Tokenize from the ``{`` at ``start`` until its object closes, an error, or the end of the text."""
    lexer = _Lexer(text, start, final=True)
    builder = _Builder(watch)
    while not builder.done and builder.error is None:
        token = lexer.next_token()
        if token is None:
            break
        builder.push(token)
    return lexer, builder


def _no_answer(
    channels: ChannelSet, saw_object_without_channels: bool, syntax_error: str | None, *, gave_up: bool
) -> ParseFailure:
    """The failure to report when no candidate object held channel keys."""
    if saw_object_without_channels:
        return ParseFailure(
            ParseFailureReason.MISSING_CHANNELS,
            f"the JSON object has none of the channels {', '.join(channels.names)}",
        )
    if syntax_error is not None:
        return ParseFailure(ParseFailureReason.INVALID_JSON, syntax_error)
    if gave_up:
        return ParseFailure(ParseFailureReason.INVALID_JSON, "gave up: too many malformed '{' candidates")
    return ParseFailure(ParseFailureReason.NO_JSON, "no JSON object found in the answer")


def _unfence(text: str) -> str:
    """The text without surrounding whitespace and one surrounding markdown code fence, if any."""
    body = text.strip()
    if body.startswith("```"):
        newline = body.find("\n")
        body = body[newline + 1 :] if newline != -1 else body[3:]
    if body.endswith("```"):
        body = body[:-3]
    return body.strip()


def _whole_value_kind(body: str) -> str | None:
    """If ``body`` is exactly one JSON value that is not an object, its kind ("array", "number", ...)."""
    if not body or body[0] == "{":
        return None
    lexer = _Lexer(body, 0, final=True)
    builder = _Builder(frozenset())
    while not builder.done and builder.error is None:
        token = lexer.next_token()
        if token is None:
            return None
        builder.push(token)
    if builder.error is not None or lexer.next_token() is not None:
        return None
    return _JSON_KINDS.get(type(builder.root))  # a bare word (prose) is not JSON: None


_JSON_KINDS: Final[dict[type, str]] = {
    list: "array",
    bool: "boolean",
    type(None): "null",
    float: "number",
    str: "string",
}


# ---------------------------------------------------------------------------------------------------------
# Validation (shared by the parser, the streaming reader and RoutingDecision.from_weights)
# ---------------------------------------------------------------------------------------------------------
def _decide(
    weights_obj: _Obj,
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
    weights_obj: _Obj, channels: ChannelSet, sum_tolerance: float, *, truncated: bool
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
    if isinstance(value, str) and not isinstance(value, _BareWord):
        parsed = _number_from_text(value.strip()) if len(value) <= _MAX_TOKEN_CHARS else None
        if parsed is None:
            return math.nan, ParseFailureReason.NOT_A_NUMBER, f"is the string {_show(value)}, not a number"
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
    if isinstance(value, _BareWord):
        return f"is the unquoted word {_show(value)}"
    if isinstance(value, list):
        return "is an array"
    if isinstance(value, _Obj):
        return "is an object"
    return f"is a {type(value).__name__}"


def _reasoning_value(weights_obj: _Obj, root: Any) -> Any:
    for holder in (weights_obj, root):
        if isinstance(holder, _Obj):
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


def _show(value: str) -> str:
    return repr(_clip(str(value), _MAX_DETAIL_VALUE_CHARS))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------------
# Tokenizer: incremental, string-aware, tolerant (comments, single quotes); no backtracking regexes
# ---------------------------------------------------------------------------------------------------------
_WHITESPACE = re.compile(r"\s*")
_WORD = re.compile(r"[^\s{}\[\]:,\"'/]+")
_STRING_STOP = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LOOSE_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE_WORDS = frozenset({"nan", "inf", "infinity"})
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
_PUNCTUATION = frozenset("{}[]:,")
_CONTROL = re.compile(r"[\x00-\x1f]")
_STRING_START = '"'

_NORMAL, _STRING, _LINE_COMMENT, _BLOCK_COMMENT = range(4)

# A token is (kind, value, end): kind is one of "{}[]:," for punctuation, '"' when a string opens (so a
# misplaced string fails at once instead of swallowing the rest of a stream), "s" for a complete string
# (value: text, standard), "w" for an unquoted word (value: raw text), "!" for an error (value: message); end
# is the absolute offset just after the token.
Token: TypeAlias = tuple[str, Any, int]


class _BareWord(str):
    """An unquoted word that is not a JSON literal or number (``high``, ``None``...)."""

    __slots__ = ()


class _Lexer:
    """Tokens from a text that may arrive in pieces.

    ``next_token`` returns ``None`` when it needs more text (or, with ``final``, at the end). Consumed text
    is dropped on :meth:`feed`, and a long string's scanned parts are kept aside, so feeding a text in many
    small pieces costs time linear in its length.
    """

    __slots__ = ("_base", "_buf", "_final", "_mode", "_parts", "_pos", "_quote", "comments")

    def __init__(self, text: str, start: int, *, base: int = 0, final: bool = False) -> None:
        self._buf = text
        self._pos = start
        self._base = base  # absolute offset of _buf[0]
        self._final = final
        self._mode = _NORMAL
        self._parts: list[str] = []
        self._quote = '"'
        self.comments = False

    @property
    def offset(self) -> int:
        """Absolute offset of the first character not yet consumed."""
        return self._base + self._pos

    def remainder(self) -> str:
        return self._buf[self._pos :]

    def feed(self, delta: str) -> None:
        if self._pos:
            self._buf = self._buf[self._pos :] + delta
            self._base += self._pos
            self._pos = 0
        else:
            self._buf += delta

    def next_token(self) -> Token | None:  # noqa: PLR0911, PLR0912 - one branch per lexical state
        while True:
            if self._mode == _STRING:
                return self._string()
            buf, pos = self._buf, self._pos
            if self._mode == _LINE_COMMENT:
                newline = buf.find("\n", pos)
                if newline == -1:
                    self._pos = len(buf)
                    if not self._final:
                        return None
                    self._mode = _NORMAL
                    continue
                self._pos, self._mode = newline + 1, _NORMAL
                continue
            if self._mode == _BLOCK_COMMENT:
                close = buf.find("*/", pos)
                if close == -1:
                    if self._final:
                        self._pos, self._mode = len(buf), _NORMAL
                        continue
                    self._pos = max(pos, len(buf) - 1)  # keep a trailing '*' for the next piece
                    return None
                self._pos, self._mode = close + 2, _NORMAL
                continue
            match = _WHITESPACE.match(buf, pos)
            pos = match.end() if match else pos
            self._pos = pos
            if pos >= len(buf):
                return None
            char = buf[pos]
            if char in _PUNCTUATION:
                self._pos = pos + 1
                return char, None, self._base + pos + 1
            if char in _STRING_STOP:
                self._mode, self._quote, self._parts, self._pos = _STRING, char, [], pos + 1
                return _STRING_START, None, self._base + pos + 1
            if char == "/":
                if pos + 1 >= len(buf):
                    return self._error("unexpected '/'", pos + 1) if self._final else None
                follower = buf[pos + 1]
                if follower not in "/*":
                    return self._error("unexpected '/'", pos + 1)
                self.comments = True
                self._mode = _LINE_COMMENT if follower == "/" else _BLOCK_COMMENT
                self._pos = pos + 2
                continue
            word = _WORD.match(buf, pos)
            end = word.end() if word else pos + 1
            if end - pos > _MAX_TOKEN_CHARS:
                return self._error(f"an unquoted token longer than {_MAX_TOKEN_CHARS} characters", end)
            if end >= len(buf) and not self._final:
                return None  # the word may continue in the next piece
            self._pos = end
            return "w", buf[pos:end], self._base + end

    def _string(self) -> Token | None:
        buf, pos = self._buf, self._pos
        stop = _STRING_STOP[self._quote]
        scan = pos
        while True:
            match = stop.search(buf, scan)
            if match is None:  # the string continues in the next piece (or was cut off, when final)
                self._parts.append(buf[pos:])
                self._pos = len(buf)
                return None
            index = match.start()
            if buf[index] == "\\":
                if index + 1 >= len(buf):
                    self._parts.append(buf[pos:index])
                    self._pos = index  # keep the backslash with the character it escapes
                    return None
                scan = index + 2
                continue
            self._parts.append(buf[pos:index])
            raw = "".join(self._parts)
            self._parts = []
            self._mode = _NORMAL
            self._pos = index + 1
            text, standard = _unescape(raw, self._quote)
            return "s", (text, standard), self._base + index + 1

    def _error(self, message: str, end: int) -> Token:
        self._pos = min(end, len(self._buf))
        return "!", message, self._base + self._pos


def _unescape(raw: str, quote: str) -> tuple[str, bool]:
    """Decode a string body; ``standard`` is False for single quotes, raw control characters or bad escapes."""
    if quote == '"' and _CONTROL.search(raw) is None:
        if "\\" not in raw:
            return raw, True
        try:
            return json.loads(f'"{raw}"', strict=False), True
        except ValueError:
            pass
    if "\\" not in raw:
        return raw, False

    def replace_escape(match: re.Match[str]) -> str:
        escape = match.group(1)
        if len(escape) == 5:
            return chr(int(escape[1:], 16))
        return _SIMPLE_ESCAPES.get(escape, "\\" + escape)

    text = _ESCAPE.sub(replace_escape, raw)
    with contextlib.suppress(UnicodeError):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16")  # join surrogate pairs (\\ud83d\\ude00)
    return text, False


def _word_value(raw: str) -> tuple[Any, bool]:
    """The value of an unquoted word and whether it is standard JSON."""
    if raw in _JSON_LITERALS:
        return _JSON_LITERALS[raw], True
    if _JSON_NUMBER.fullmatch(raw):
        return float(raw), True
    lowered = raw.lower()
    if lowered in _LOOSE_LITERALS:  # True, False, None, NULL...
        return _LOOSE_LITERALS[lowered], False
    number = _number_from_text(raw)
    return (_BareWord(raw) if number is None else number), False


_JSON_LITERALS: Final[dict[str, bool | None]] = {"true": True, "false": False, "null": None}
_LOOSE_LITERALS: Final[dict[str, bool | None]] = {**_JSON_LITERALS, "none": None}


def _number_from_text(text: str) -> float | None:
    """A number written as text ("0.5", ".5", "1e-1", "NaN", "-Infinity"), or None."""
    if _LOOSE_NUMBER.fullmatch(text):
        return float(text)
    if text.lower().lstrip("+-") in _NON_FINITE_WORDS and len(text) - len(text.lstrip("+-")) <= 1:
        return float(text.lower())
    return None


# ---------------------------------------------------------------------------------------------------------
# Tree builder: tolerant, iterative (no recursion), keeps partial containers visible for truncated answers
# ---------------------------------------------------------------------------------------------------------
_EXPECT_KEY, _EXPECT_COLON, _EXPECT_VALUE, _EXPECT_NEXT, _EXPECT_ITEM = range(5)
_NOTHING: Final = object()


def _normalize_key(key: str) -> str:
    return key.strip().lower()


class _Obj:
    """A JSON object as an ordered list of ``(normalized key, key, value)`` pairs (duplicates kept)."""

    __slots__ = ("eligible", "pairs")

    def __init__(self, *, eligible: bool) -> None:
        self.pairs: list[tuple[str, str, Any]] = []
        self.eligible = eligible  # may hold the weights: shallow and not inside an array


class _Frame:
    __slots__ = ("after_comma", "container", "has_pending", "key", "pending", "state")

    def __init__(self, container: _Obj | list[Any]) -> None:
        self.container = container
        self.state = _EXPECT_KEY if isinstance(container, _Obj) else _EXPECT_ITEM
        self.key = ""
        self.pending: Any = None
        self.has_pending = False
        self.after_comma = False


def _expected(frame: _Frame) -> str:
    """The syntax error for an unexpected token after a key or after a value."""
    if frame.state == _EXPECT_COLON:
        return f"expected ':' after the key {_show(frame.key)}"
    return f"expected ',' or '{'}' if isinstance(frame.container, _Obj) else ']'}'"


class _Builder:
    """Builds values from tokens.

    A scalar is committed to its object or array only when the following ``,`` or closing bracket arrives,
    so a number at the end of a truncated answer never counts (``0.1`` might have become ``0.15``).
    Containers are attached when opened, so a truncated answer's complete values stay visible. ``keyed`` is
    the first eligible object that received a key from ``watch`` (a channel name).
    """

    __slots__ = ("_array_depth", "_stack", "done", "error", "keyed", "repaired", "root", "watch")

    def __init__(self, watch: frozenset[str]) -> None:
        self.watch = watch
        self.root: Any = _NOTHING
        self.done = False
        self.error: str | None = None
        self.repaired = False
        self.keyed: _Obj | None = None
        self._stack: list[_Frame] = []
        self._array_depth = 0

    def push(self, token: Token) -> None:  # noqa: PLR0912 - a small state machine, clearer in one place
        kind, value, _end = token
        if self.error is not None or self.done:
            return
        if kind == "!":
            self.error = value
            return
        if kind == _STRING_START:
            if self._stack and self._stack[-1].state in (_EXPECT_COLON, _EXPECT_NEXT):
                self.error = _expected(self._stack[-1])
            return
        if not self._stack:
            self._value(kind, value, None)
            return
        frame = self._stack[-1]
        state = frame.state
        if state == _EXPECT_KEY:
            if kind in ("s", "w"):
                key = value[0] if kind == "s" else value
                if kind == "w" or not value[1]:
                    self.repaired = True
                frame.key, frame.state, frame.after_comma = key, _EXPECT_COLON, False
            elif kind == "}":
                self._close(frame)
            else:
                self.error = "expected a key or '}'"
        elif state == _EXPECT_COLON:
            if kind == ":":
                frame.state = _EXPECT_VALUE
            else:
                self.error = _expected(frame)
        elif state == _EXPECT_VALUE:
            self._value(kind, value, frame)
        elif state == _EXPECT_ITEM:
            if kind == "]":
                self._close(frame)
            else:
                frame.after_comma = False
                self._value(kind, value, frame)
        elif kind == ",":
            self._commit(frame)
            frame.state = _EXPECT_KEY if isinstance(frame.container, _Obj) else _EXPECT_ITEM
            frame.after_comma = True
        elif kind == ("}" if isinstance(frame.container, _Obj) else "]"):
            self._commit(frame)
            self._close(frame)
        else:
            self.error = _expected(frame)

    def _value(self, kind: str, value: Any, frame: _Frame | None) -> None:
        if kind in ("{", "["):
            if len(self._stack) >= _MAX_DEPTH:
                self.error = f"JSON nested deeper than {_MAX_DEPTH} levels"
                return
            container: _Obj | list[Any]
            if kind == "{":
                eligible = self._array_depth == 0 and len(self._stack) < _WEIGHTS_MAX_DEPTH
                container = _Obj(eligible=eligible)
            else:
                container = []
                self._array_depth += 1
            if frame is None:
                self.root = container
            else:
                self._attach(frame, container)
                frame.state = _EXPECT_NEXT
            self._stack.append(_Frame(container))
            return
        if kind == "s":
            scalar, standard = value
        elif kind == "w":
            scalar, standard = _word_value(value)
        else:
            self.error = "expected a value"
            return
        if not standard:
            self.repaired = True
        if frame is None:
            self.root = scalar
            self.done = True
            return
        frame.pending, frame.has_pending, frame.state = scalar, True, _EXPECT_NEXT

    def _commit(self, frame: _Frame) -> None:
        if frame.has_pending:
            self._attach(frame, frame.pending)
            frame.pending, frame.has_pending = None, False

    def _attach(self, frame: _Frame, value: Any) -> None:
        container = frame.container
        if isinstance(container, _Obj):
            key = _normalize_key(frame.key)
            container.pairs.append((key, frame.key, value))
            if self.keyed is None and container.eligible and key in self.watch:
                self.keyed = container
        else:
            container.append(value)

    def _close(self, frame: _Frame) -> None:
        if frame.after_comma:
            self.repaired = True  # trailing comma
        self._stack.pop()
        if isinstance(frame.container, list):
            self._array_depth -= 1
        if not self._stack:
            self.done = True


# ---------------------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------------------
class StreamingWeightsReader:
    """Reads a router answer as it streams and returns the weights as soon as they are complete.

    ``feed`` returns the :class:`RoutingDecision` (reasoning ``None``) once every channel's value is complete
    (a number counts once the following ``,`` or ``}`` arrives), validated exactly like the parser; later
    calls return the same decision. Prose or objects without channel keys before the answer are skipped.
    The first object that holds a channel key decides: if it is malformed or invalid, ``failed`` becomes True
    and ``failure`` says why (the full-text parser may still find a later valid object: call :meth:`finish`).
    Work is linear in the streamed length, apart from a bounded number of rescans after malformed prose braces.
    """

    def __init__(
        self,
        channels: ChannelSet,
        *,
        sum_tolerance: float = DEFAULT_SUM_TOLERANCE,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self._channels = channels
        self._watch = frozenset(channels.names)
        self._sum_tolerance = sum_tolerance
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._text = ""
        self._length = 0  # characters accepted for scanning (at most max_chars)
        self._received = 0
        self._lexer: _Lexer | None = None
        self._builder: _Builder | None = None
        self._start = 0  # absolute offset of the current candidate's '{'
        self._restarts = 0
        self._pairs_seen = 0
        self._present: set[str] = set()
        self._decision: RoutingDecision | None = None
        self._failure: ParseFailure | None = None

    @property
    def text(self) -> str:
        """Everything fed so far."""
        if len(self._parts) > 1:
            self._text = "".join(self._parts)
            self._parts = [self._text]
        elif self._parts:
            self._text = self._parts[0]
        return self._text

    @property
    def decision(self) -> RoutingDecision | None:
        return self._decision

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def failure(self) -> ParseFailure | None:
        return self._failure

    def finish(self) -> ParseResult:
        """Parse the whole accumulated text (with its reasoning) like :func:`parse_routing_answer`."""
        return parse_routing_answer(
            self.text, self._channels, sum_tolerance=self._sum_tolerance, max_chars=self._max_chars
        )

    def feed(self, delta: str) -> RoutingDecision | None:
        """Add the next piece of the answer; the decision once the weights are complete, else None."""
        try:
            self._feed(delta)
        except Exception as exc:  # like the parser, the reader reports instead of raising
            self._failure = ParseFailure(ParseFailureReason.INTERNAL_ERROR, _clip(f"{type(exc).__name__}: {exc}", 300))
        return self._decision

    def _feed(self, delta: str) -> None:
        if not delta:
            return
        self._parts.append(delta)
        self._received += len(delta)
        if self._decision is not None or self._failure is not None or self._length >= self._max_chars:
            return
        room = self._max_chars - self._length
        piece = delta[:room]
        offset = self._length
        self._length += len(piece)
        if self._lexer is None:
            self._begin(piece, offset)
        else:
            self._lexer.feed(piece)
        self._pump()
        if self._decision is None and self._failure is None and self._received > self._max_chars:
            self._failure = ParseFailure(
                ParseFailureReason.TOO_LARGE,
                f"no complete weights within the first {self._max_chars} characters",
            )

    def _begin(self, text: str, offset: int) -> None:
        """Start a candidate at the first '{' of ``text`` (which starts at absolute ``offset``)."""
        index = text.find("{")
        if index == -1:
            self._lexer = self._builder = None
            return
        self._start = offset + index
        self._lexer = _Lexer(text, index, base=offset)
        self._builder = _Builder(self._watch)
        self._pairs_seen = 0
        self._present = set()

    def _pump(self) -> None:
        while self._lexer is not None and self._builder is not None:
            lexer, builder = self._lexer, self._builder
            token = lexer.next_token()
            if token is None:
                return
            builder.push(token)
            if builder.error is not None:
                if builder.keyed is not None or self._restarts >= _MAX_STREAM_RESTARTS:
                    message = f"invalid JSON at character {lexer.offset}: {builder.error}"
                    self._failure = ParseFailure(ParseFailureReason.INVALID_JSON, message)
                    return
                # Prose braces before the answer: rescan from the next '{' (a bounded number of times).
                self._restarts += 1
                start = self._start + 1
                self._begin(self.text[start : self._length], start)
                continue
            if token[0] in (",", "}", "]") and self._check(builder):
                return
            if builder.done:
                # An object without channel keys (an unrelated object): look further on.
                self._begin(lexer.remainder(), lexer.offset)

    def _check(self, builder: _Builder) -> bool:
        """Decide once every channel is present or the object holding them closed; True when decided."""
        keyed = builder.keyed
        if keyed is None:
            return False
        for key, _raw_key, _value in keyed.pairs[self._pairs_seen :]:
            if key in self._watch:
                self._present.add(key)
        self._pairs_seen = len(keyed.pairs)
        if len(self._present) < len(self._watch) and not builder.done:
            return False
        result = _decide(
            keyed, builder.root, self._channels, self._sum_tolerance, truncated=False, with_reasoning=False
        )
        if result.ok:
            self._decision = result.decision
        else:
            self._failure = result
        return True


# ---------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------
MAX_DECIMALS: Final = 6


def round_weights(weights: Mapping[str, float], channels: ChannelSet, *, decimals: int = 2) -> dict[str, float]:
    """Weights rounded to ``decimals`` in channel order, still summing to 1 (largest-remainder method)."""
    scale = 10**decimals
    return {name: units / scale for name, units in _rounded_units(weights, channels, decimals).items()}


def format_answer(decision: RoutingDecision, channels: ChannelSet, *, decimals: int = 2) -> str:
    """The canonical answer: compact JSON, weights in channel order, then ``reasoning`` (omitted if None).

    Values are rounded to ``decimals`` so that they still sum to exactly 1, and parsing the result gives
    exactly :func:`round_weights` of the decision.
    """
    units = _rounded_units(decision.weights, channels, decimals)
    fields = [f"{json.dumps(name)}:{_format_units(count, decimals)}" for name, count in units.items()]
    if decision.reasoning is not None:
        fields.append(f"{json.dumps(REASONING_KEY)}:{json.dumps(decision.reasoning, ensure_ascii=False)}")
    return "{" + ",".join(fields) + "}"


def _rounded_units(weights: Mapping[str, float], channels: ChannelSet, decimals: int) -> dict[str, int]:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be an integer in 0..{MAX_DECIMALS}, got {decimals!r}")
    names = channels.names
    if set(weights) != set(names):
        raise ValueError(f"weights have channels {sorted(weights)}, expected {list(names)}")
    scale = 10**decimals
    total = math.fsum(weights[name] for name in names)
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"weights must have a positive finite sum, got {total!r}")
    # Rounding the scaled value to 6 places first absorbs binary noise such as 0.29 * 100 = 28.999999999999996.
    scaled = {name: round(weights[name] / total * scale, 6) for name in names}
    units = {name: math.floor(value) for name, value in scaled.items()}
    left = max(0, min(len(names), scale - sum(units.values())))
    order = sorted(range(len(names)), key=lambda i: (-(scaled[names[i]] - units[names[i]]), i))
    for index in order[:left]:
        units[names[index]] += 1
    return units


def _format_units(units: int, decimals: int) -> str:
    text = f"{units / 10**decimals:.{decimals}f}"
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text
