"""The HTTP contract of ``POST /route``: request and response models, and readable 400 messages.

Plain Python, no pydantic: this module is on the router function's import path, where pydantic and the models
it builds cost ~120 ms of a cold start (``benchmarks/cold_start.py``). :meth:`RouteRequest.from_body` applies the
rules a strict pydantic model applied before (``tests/unit/test_route_request.py`` holds the two to the same
answers and the same errors, in the same order, on generated bodies): the errors are pydantic's error types
(``missing``, ``string_type`` ...) so that :func:`describe_validation_errors` keeps one table of messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

REQUEST_FIELDS = ("query", "include_reasoning")
SOURCES: Final = ("model", "cache", "micro", "fallback_model", "default")

# What a strict pydantic ``str`` with ``strip_whitespace`` trims: Unicode's White_Space characters (Rust's
# ``char::is_whitespace``). Python's ``str.strip()`` would also trim U+001C..U+001F, which pydantic kept.
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


class RequestValidationError(ValueError):
    """The body is not a route request; :meth:`errors` lists why, one ``{"type", "loc"}`` per problem."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['type']}" for e in errors))
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return [dict(error) for error in self._errors]


@dataclass(frozen=True)
class RouteRequest:
    """``{"query": str, "include_reasoning": bool = true}``; strict types, unknown fields rejected.

    The query is trimmed and must not be blank; its maximum length is configuration, checked by the handler.
    """

    query: str
    include_reasoning: bool = True

    @classmethod
    def from_body(cls, data: Any) -> RouteRequest:
        """The request a parsed JSON body holds, or :class:`RequestValidationError` with every problem: the
        fields in order (``query``, ``include_reasoning``), then each unknown field in the body's order."""
        if not isinstance(data, dict):
            raise RequestValidationError([{"type": "model_type", "loc": ()}])
        errors: list[dict[str, Any]] = []
        query = _query(data, errors)
        include_reasoning = data.get("include_reasoning", True)
        if not isinstance(include_reasoning, bool):
            errors.append({"type": "bool_type", "loc": ("include_reasoning",)})
        errors.extend({"type": "extra_forbidden", "loc": (key,)} for key in data if key not in REQUEST_FIELDS)
        if errors or query is None:
            raise RequestValidationError(errors)
        return cls(query=query, include_reasoning=include_reasoning)


def _query(data: dict[str, Any], errors: list[dict[str, Any]]) -> str | None:
    """The trimmed query, or None with its problem appended to ``errors``."""
    if "query" not in data:
        errors.append({"type": "missing", "loc": ("query",)})
        return None
    value = data["query"]
    if not isinstance(value, str):
        errors.append({"type": "string_type", "loc": ("query",)})
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (the JSON escape \ud800), which no model call could encode
        errors.append({"type": "string_unicode", "loc": ("query",)})
        return None
    trimmed = value.strip(WHITESPACE)
    if not trimmed:
        errors.append({"type": "string_too_short", "loc": ("query",)})
        return None
    return trimmed


@dataclass(frozen=True)
class RouteResponse:
    """Weights for every configured channel (each in [0, 1], summing to 1) and where they came from."""

    weights: dict[str, float]
    reasoning: str | None
    model: str
    source: Literal["model", "cache", "micro", "fallback_model", "default"]
    latency_ms: float

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")

    def to_dict(self) -> dict[str, Any]:
        """The response body (JSON types: the weights and the latency as floats)."""
        return {
            "weights": {name: float(value) for name, value in self.weights.items()},
            "reasoning": self.reasoning,
            "model": self.model,
            "source": self.source,
            "latency_ms": float(self.latency_ms),
        }


class InvalidRequestError(ValueError):
    """A request that is well-formed JSON of the right types but breaks a configured limit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "string_too_short": "must not be empty or blank",
    # a JSON escape such as \ud800 decodes to a lone surrogate, which no model call could encode
    "string_unicode": "must be valid Unicode text (it holds an unpaired surrogate such as \\ud800)",
    "extra_forbidden": f"is not a known field (allowed: {', '.join(REQUEST_FIELDS)})",
}
_NOT_AN_OBJECT = ("model_attributes_type", "model_type", "dict_type")


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Validation errors (``{"type", "loc"}``, pydantic's error types) as ``[{"field", "message"}]`` without
    echoing the input."""
    problems: list[dict[str, str]] = []
    for error in errors:
        kind = str(error.get("type", ""))
        field = _field(error.get("loc", ()))
        if kind == "json_invalid":
            problems.append({"field": "body", "message": "is not valid JSON"})
        elif field == "body" and kind in _NOT_AN_OBJECT:
            problems.append({"field": "body", "message": 'must be a JSON object such as {"query": "..."}'})
        else:
            problems.append({"field": field, "message": _MESSAGES.get(kind, str(error.get("msg", "is invalid")))})
    return problems or [{"field": "body", "message": "is invalid"}]


def bad_request_body(problems: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    summary = "; ".join(f"{p['field']} {p['message']}" for p in problems)
    return {"message": f"Invalid request: {summary}", "errors": [dict(p) for p in problems]}


def _field(loc: Sequence[Any]) -> str:
    """``("body", "query")`` → ``"query"``; ``("body",)`` → ``"body"``."""
    parts = [str(part) for part in loc if part != "body" and not isinstance(part, int)]
    return ".".join(parts) or "body"
