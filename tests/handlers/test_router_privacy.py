"""With ``router_log_queries`` off (the default), the query text appears in no log line and no trace, on every
path a request can take (issue 10). The test searches everything the function emitted, as written: the
Powertools log stream, stdout (EMF metrics), stderr, every standard-library log record at Lambda's INFO level,
and what was put on the trace."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from search_router.handlers import router_api as handler
from search_router.handlers.observability import tracer
from search_router.router.service import RouterService
from simulation.bedrock.values import ConverseRequest, FakeError
from tests.handlers.router_harness import (
    FALLBACK,
    FALLBACK_ANSWER,
    PRIMARY,
    VALID_ANSWER,
    RouterHarness,
    by_model,
    load_event,
    post_event,
)

SECRET = "zebra-quokka-7731"
QUERY = f"interview about {SECRET} at the lake"
ECHOED_ANSWER = json.dumps({"visual": SECRET, "audio": 0.2, "transcription": 0.2, "metadata": 0.2})
ECHOING_ERROR = FakeError("ValidationException", f"Malformed input request: {QUERY!r} is not supported")


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every annotation and metadata the function puts on its trace."""
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(tracer, "put_annotation", lambda key, value: calls.append((key, value)))
    monkeypatch.setattr(
        tracer, "put_metadata", lambda key, value, namespace=None: calls.append((f"{namespace}:{key}", value))
    )
    return calls


@pytest.fixture
def everything(router: RouterHarness, caplog: pytest.LogCaptureFixture, traced: list[tuple[str, Any]]) -> Iterator[Any]:
    caplog.set_level(logging.INFO)  # Lambda's application log level: any library's INFO record would be emitted

    def text() -> str:
        records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records)
        return "\n".join((router.emitted(), records, caplog.text, repr(traced)))

    yield text


def _raise_with_the_query(request: ConverseRequest) -> Any:
    raise RuntimeError(f"the SDK choked on {request.user_text!r}")


def _every_path(router: RouterHarness, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str | None]]:
    """Route the query through every path; (path, status, source) of each request."""
    seen: list[tuple[str, int, str | None]] = []

    def post(path: str, body: Any, **event_overrides: Any) -> None:
        event = post_event(body)
        event.update(event_overrides)
        reply = router.invoke(event)
        seen.append((path, reply.status, reply.body.get("source")))

    release = threading.Event()
    try:
        router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, FALLBACK: FALLBACK_ANSWER})
        post("model answer", {"query": QUERY})
        post("cache", {"query": QUERY})
        post("model answer, streamed", {"query": QUERY, "include_reasoning": False})
        # the selected model's error message quotes the query; the fallback answers
        router.bedrock.responder = by_model({PRIMARY: ECHOING_ERROR, FALLBACK: FALLBACK_ANSWER})
        post("fallback after an echoing error", {"query": QUERY + " 2"})
        # the answer echoes the query where a weight should be: a parse failure whose detail quotes it
        router.bedrock.responder = by_model({PRIMARY: ECHOED_ANSWER, FALLBACK: FALLBACK_ANSWER})
        post("parse failure echoing the query", {"query": QUERY + " 3"})
        post("parse failure echoing the query, streamed", {"query": QUERY + " 3", "include_reasoning": False})
        # a non-service exception whose message quotes the request, then every model down: the default weights
        router.bedrock.responder = by_model({PRIMARY: _raise_with_the_query, FALLBACK: ECHOING_ERROR})
        post("default weights after echoing errors", {"query": QUERY + " 4"})
        # timeouts
        router.configure(timeout_ms=200, call_timeout_ms=50)
        router.bedrock.responder = by_model({PRIMARY: lambda r: release.wait(5) and VALID_ANSWER, FALLBACK: ""})
        post("timeout, then an empty answer", {"query": QUERY + " 5"})
        # circuit open, fallback capped
        router.configure(breaker_failures=1, fallback_max_share=0.0, fallback_min_requests=1)
        router.bedrock.responder = by_model({PRIMARY: ECHOING_ERROR, FALLBACK: FALLBACK_ANSWER})
        post("circuit opens; fallback capped", {"query": QUERY + " 6"})
        post("circuit open; fallback capped", {"query": QUERY + " 7"})
        router.configure()
        router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, FALLBACK: FALLBACK_ANSWER})
        # bad requests of every kind, each carrying the query
        post("unknown field", {"query": QUERY, "top_k": QUERY})
        post("wrong type", {"query": QUERY, "include_reasoning": QUERY})
        post("query of the wrong type", {"query": [QUERY]})
        post("over-long query", {"query": QUERY * 100})
        post("lone surrogate", '{"query": "' + QUERY + ' \\ud800"}')
        post("not JSON", '{"query": "' + QUERY + '"')
        post("nested too deeply", '{"query": "' + QUERY + '", "x": ' + "[" * 40 + "]" * 40 + "}")
        post("huge integer", '{"query": "' + QUERY + '", "x": ' + "7" * 5000 + "}")
        latin1 = base64.b64encode(f'{{"query": "{QUERY} \xe9"}}'.encode("latin-1")).decode()
        post("not UTF-8", latin1, isBase64Encoded=True)
        post("not base64", "%%" + QUERY + "%%", isBase64Encoded=True)
        event = load_event("router_post")
        event["body"] = json.dumps({"query": QUERY})
        event["headers"]["Content-Type"] = "text/plain"
        reply = router.invoke(event)
        seen.append(("unsupported media type", reply.status, None))

        # an unexpected error inside the router (its own catch), whose message quotes the query (the cache key)
        service = handler.get_service()

        def broken_cache(key: Any) -> Any:
            raise KeyError(key)

        monkeypatch.setattr(service.cache, "get", broken_cache)
        post("internal error in the router", {"query": QUERY + " 8"})

        # an unexpected error outside the router's own catch, whose message quotes the query
        def broken(self: RouterService, query: str, *, include_reasoning: bool) -> Any:
            raise RuntimeError(f"could not route {query!r}")

        monkeypatch.setattr(RouterService, "route", broken)
        post("internal error", {"query": QUERY + " 9"})
        monkeypatch.undo()
    finally:
        release.set()
    return seen


def test_the_query_appears_in_no_log_line_and_no_trace_on_any_path(
    router: RouterHarness, everything: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When the query goes through every path
    seen = _every_path(router, monkeypatch)
    # Then every path was really taken
    statuses = {path: (status, source) for path, status, source in seen}
    assert statuses["model answer"] == (200, "model")
    assert statuses["cache"] == (200, "cache")
    assert statuses["fallback after an echoing error"] == (200, "fallback_model")
    assert statuses["parse failure echoing the query"] == (200, "fallback_model")
    assert statuses["default weights after echoing errors"] == (200, "default")
    assert statuses["timeout, then an empty answer"] == (200, "default")
    assert statuses["circuit open; fallback capped"] == (200, "default")
    assert statuses["internal error in the router"] == (200, "default")
    assert statuses["internal error"] == (200, "default")
    assert statuses["unsupported media type"][0] == 415
    bad = [path for path, status, _ in seen if status == 400]
    assert len(bad) == 10, seen
    lines = router.logs()
    assert {line.get("default_reason") for line in lines} >= {"all_models_failed", "fallback_capped", "internal_error"}
    assert {line.get("exception_name") for line in lines} >= {"KeyError", "RuntimeError"}
    assert any(a["outcome"] == "circuit_open" for line in lines for a in line.get("attempts", []))
    # and the private details were there to leak: they were withheld, their length kept
    withheld = [a for line in lines for a in line.get("attempts", []) if "detail_chars" in a]
    assert {a["outcome"] for a in withheld} == {"model_error", "parse_failure"}
    # And the query is nowhere in what the function emitted
    emitted = everything()
    assert SECRET not in emitted
    assert "Unexpected error" in emitted and "Routed" in emitted  # the search did see the log lines


def test_with_query_logging_on_the_query_is_logged(router: RouterHarness, everything: Any) -> None:
    # The search above can fail: with router_log_queries on, the same text is found
    router.configure(log_queries=True)
    router.bedrock.responder = by_model({PRIMARY: ECHOED_ANSWER, FALLBACK: FALLBACK_ANSWER})
    router.route(QUERY)
    (line,) = [line for line in router.logs() if line.get("message") == "Routed"]
    assert line["query"] == QUERY
    assert SECRET in line["attempts"][0]["detail"]  # the parse failure's detail, in full
    assert SECRET in everything()
