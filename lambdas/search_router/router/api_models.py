"""The HTTP contract of ``POST /route``: request and response models, and readable 400 messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

REQUEST_FIELDS = ("query", "include_reasoning")


class RouteRequest(BaseModel):
    """``{"query": str, "include_reasoning": bool = true}``; strict types, unknown fields rejected.

    The query is trimmed and must not be blank; its maximum length is configuration, checked by the handler.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    include_reasoning: bool = True


class RouteResponse(BaseModel):
    """Weights for every configured channel (each in [0, 1], summing to 1) and where they came from."""

    model_config = ConfigDict(frozen=True)

    weights: dict[str, float]
    reasoning: str | None
    model: str
    source: Literal["model", "cache", "micro", "fallback_model", "default"]
    latency_ms: float


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
    """pydantic/Powertools validation errors as ``[{"field", "message"}]`` without echoing the input."""
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
