"""The entry point over a whole router answer: :func:`parse_routing_answer`.

It is forgiving about the wrapping (prose, code fences, key case, trailing commas, comments, single quotes,
truncation after the weights) and strict about the numbers (no booleans, no NaN, no percentages, no silent fix
of a wrong sum). It never raises and runs in time linear in the (capped) input.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

from search_router.shared.answer.builder import Builder
from search_router.shared.answer.decision import ParseFailure, ParseFailureReason, ParseResult, decide
from search_router.shared.answer.detail import clip
from search_router.shared.answer.lexer import Lexer
from search_router.shared.channels import ChannelSet

DEFAULT_SUM_TOLERANCE: Final = 0.05
DEFAULT_MAX_CHARS: Final = 20_000
_MAX_FAILED_CANDIDATES = 256  # '{' positions tried after a syntax error before giving up


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
        return ParseFailure(ParseFailureReason.INTERNAL_ERROR, clip(f"{type(exc).__name__}: {exc}", 300))


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
        result = decide(builder.keyed, builder.root, channels, sum_tolerance, truncated=truncated)
        if result.ok:
            clean = not (truncated or builder.repaired or lexer.comments) and (start, end) == body
            return replace(result, clean=clean)
        first_failure = first_failure or result
        start = -1 if truncated else text.find("{", end)
    if first_failure is not None:
        return first_failure
    return _no_answer(channels, saw_object_without_channels, syntax_error, gave_up=start != -1)


def _read_candidate(text: str, start: int, watch: frozenset[str]) -> tuple[Lexer, Builder]:
    """Tokenize from the ``{`` at ``start`` until its object closes, an error, or the end of the text."""
    lexer = Lexer(text, start, final=True)
    builder = Builder(watch)
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
    lexer = Lexer(body, 0, final=True)
    builder = Builder(frozenset())
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
