"""The route request's check (``router/api_models.RouteRequest.from_body``, plain Python) against the strict
pydantic model it replaced (:class:`PydanticRouteRequest`, the former definition, kept here as the reference):
the same request or the same errors, in the same order, on generated bodies and on every whitespace character.
The handler tests (``tests/handlers/test_router_api.py``) assert the 400 messages built from these errors."""

from __future__ import annotations

import random
import sys
import unicodedata
from typing import Annotated, Any, cast

import pytest
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from search_router.router.api_models import WHITESPACE, RequestValidationError, RouteRequest, RouteResponse


class PydanticRouteRequest(BaseModel):
    """The route request as pydantic checked it before (``router/api_models.py`` until the cold-start work)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    include_reasoning: bool = True


def reference(data: Any) -> tuple[str, bool] | list[tuple[str, tuple[Any, ...]]]:
    try:
        request = PydanticRouteRequest.model_validate(data)
    except ValidationError as error:
        return [(e["type"], tuple(e["loc"])) for e in error.errors(include_input=False)]
    return request.query, request.include_reasoning


def plain(data: Any) -> tuple[str, bool] | list[tuple[str, tuple[Any, ...]]]:
    try:
        request = RouteRequest.from_body(data)
    except RequestValidationError as error:
        return [(e["type"], tuple(e["loc"])) for e in error.errors()]
    return request.query, request.include_reasoning


TEXTS = ("", " ", "cats", "  dogs  ", "\t\n", "\x1c", "a\x1fb", "\u200b", "\u3000x\u3000", "\ud800", "x\udfff", "é")
VALUES: tuple[Any, ...] = (*TEXTS, None, True, False, 0, 1, 1.5, [], ["q"], {}, {"query": "x"}, 10**30)


def random_body(rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return rng.choice([None, [], "query", 1, True, [{"query": "x"}]])
    body: dict[str, Any] = {}
    keys = ["query", "include_reasoning", "extra", "Query", "include", ""]
    for key in rng.sample(keys, rng.randint(0, len(keys))):
        if key == "query" and rng.random() < 0.6:
            body[key] = "".join(rng.choice([*TEXTS, *WHITESPACE, "\x1d", "\xa0"]) for _ in range(rng.randint(0, 4)))
        else:
            body[key] = rng.choice(VALUES)
    return body


def test_the_check_answers_as_the_pydantic_model_did_on_generated_bodies() -> None:
    rng = random.Random(12)
    bodies = [random_body(rng) for _ in range(5000)]
    differences = [(body, plain(body), reference(body)) for body in bodies if plain(body) != reference(body)]
    assert differences == []
    # the bodies cover both answers and every kind of error
    outcomes = [plain(body) for body in bodies]
    kinds = {kind for outcome in outcomes if isinstance(outcome, list) for kind, _ in outcome}
    assert {"model_type", "missing", "string_type", "string_unicode", "string_too_short", "bool_type"} <= kinds
    assert "extra_forbidden" in kinds and any(isinstance(o, tuple) for o in outcomes)


def test_the_query_is_trimmed_of_exactly_the_characters_pydantic_trimmed() -> None:
    # every character Python or Unicode calls a space, a separator, a control or a format character
    every = (chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    candidates = [c for c in every if c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp", "Cc", "Cf")]
    trimmed = {c for c in candidates if reference({"query": f"{c}q{c}"}) == ("q", True)}
    assert trimmed == set(WHITESPACE)
    assert {c for c in candidates if plain({"query": f"{c}q{c}"}) == ("q", True)} == trimmed


@pytest.mark.parametrize("source", ["model", "cache", "micro", "fallback_model", "default"])
def test_the_response_body_has_json_types(source: Any) -> None:
    response = RouteResponse(
        weights={"visual": 1, "audio": 0.0}, reasoning=None, model="m", source=source, latency_ms=3
    )
    body = response.to_dict()
    assert body == {
        "weights": {"visual": 1.0, "audio": 0.0},
        "reasoning": None,
        "model": "m",
        "source": source,
        "latency_ms": 3.0,
    }
    assert all(type(v) is float for v in body["weights"].values()) and type(body["latency_ms"]) is float


def test_a_response_with_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        RouteResponse(weights={}, reasoning=None, model="m", source=cast(Any, "guess"), latency_ms=1.0)
