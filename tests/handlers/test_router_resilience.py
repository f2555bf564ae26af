"""Never a 5xx for a model problem: errors, timeouts and garbage answers fall back, are marked and counted."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from search_router.handlers import router_api as handler
from search_router.router.service import RouterService
from search_router.shared.answer.formatting import round_weights
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.bedrock.values import ConverseRequest, FakeError
from tests.handlers.router_harness import (
    DEFAULT_WEIGHTS,
    EVENTS_DIR,
    FALLBACK,
    FALLBACK_ANSWER,
    PRIMARY,
    VALID_ANSWER,
    RouterHarness,
    assert_valid_weights,
    by_model,
    load_event,
)
from tests.unit.test_parser_corpus import CORPUS, Fails

FALLBACK_WEIGHTS = {"visual": 0.1, "audio": 0.6, "transcription": 0.2, "metadata": 0.1}
BEDROCK_ERRORS = [
    ("ThrottlingException", True),
    ("ModelTimeoutException", False),
    ("ModelNotReadyException", True),
    ("AccessDeniedException", False),
    ("ValidationException", False),
    ("ResourceNotFoundException", False),
    ("ServiceUnavailableException", True),
    ("ModelErrorException", False),
]
# (text, expected) pairs of the shared parser's corpus, for the default channels
CORPUS_CASES = [
    (param.id, param.values[0], param.values[1])
    for param in CORPUS
    if param.values[2] == DEFAULT_CHANNELS and isinstance(param.values[0], str)
]


@pytest.mark.parametrize(("code", "retried"), BEDROCK_ERRORS)
@pytest.mark.parametrize("include_reasoning", [True, False], ids=["with-reasoning", "weights-only"])
def test_a_failing_model_falls_back_to_the_next_model(
    router: RouterHarness, code: str, retried: bool, include_reasoning: bool
) -> None:
    # Given the selected model fails every call with this error
    router.bedrock.script_errors("ConverseStream", code, times=None, model_id=PRIMARY)  # both stream (issue 12)
    # When a query is routed
    reply = router.route("sunset over the sea", include_reasoning=include_reasoning)
    # Then the fallback model answers, marked as such
    assert reply.body["source"] == "fallback_model"
    assert reply.body["model"] == FALLBACK
    assert reply.body["weights"] == FALLBACK_WEIGHTS
    # And transient errors were retried once on the same model, others not
    assert len(router.calls("ConverseStream", PRIMARY)) == (2 if retried else 1)
    assert router.metric("ModelError", code=code) == (2 if retried else 1)
    assert router.metric("FallbackModelUsed") == 1
    assert router.metric("DefaultWeightsUsed") == 0


@pytest.mark.parametrize(("code", "retried"), BEDROCK_ERRORS)
def test_when_every_model_fails_the_default_weights_answer(router: RouterHarness, code: str, retried: bool) -> None:
    router.bedrock.script_errors("ConverseStream", code, times=None)
    reply = router.route("sunset over the sea")
    assert reply.body == {
        "weights": DEFAULT_WEIGHTS,
        "reasoning": None,
        "model": "default-weights",
        "source": "default",
        "latency_ms": reply.body["latency_ms"],
    }
    assert router.metric("ModelError", code=code) == (4 if retried else 2)
    assert router.metric("DefaultWeightsUsed") == 1
    (line,) = [entry for entry in router.logs() if entry.get("source") == "default"]
    assert line["level"] == "WARNING"
    assert line["default_reason"] == "all_models_failed"
    assert [a["model"] for a in line["attempts"]][-1] == FALLBACK


def test_a_transient_error_is_retried_on_the_same_model(router: RouterHarness) -> None:
    router.bedrock.script_errors("ConverseStream", "ThrottlingException", times=1)
    reply = router.route("sunset")
    assert reply.body["source"] == "model"
    assert len(router.calls("ConverseStream", PRIMARY)) == 2
    assert router.metric("ModelError", code="ThrottlingException") == 1


def test_an_error_inside_the_stream_is_mapped_to_the_service_error_code(router: RouterHarness) -> None:
    # Given the first stream breaks after two events with the in-stream spelling (throttlingException)
    router.bedrock.script_stream_error("ThrottlingException", after_events=2)
    reply = router.route("thunder", include_reasoning=False)
    # Then it counts as a ThrottlingException, is retried, and the retry answers
    assert reply.body["source"] == "model"
    assert router.metric("ModelError", code="ThrottlingException") == 1
    assert len(router.calls("ConverseStream", PRIMARY)) == 2
    assert all(stream.closed for stream in router.bedrock.streams)


def _slow(seconds: float, answer: str) -> Any:
    def respond(request: ConverseRequest) -> str:
        del request
        time.sleep(seconds)
        return answer

    return respond


@pytest.mark.parametrize("include_reasoning", [True, False], ids=["converse", "stream"])
def test_a_model_slower_than_its_call_timeout_is_abandoned_for_the_fallback(
    router: RouterHarness, include_reasoning: bool
) -> None:
    # Given a 200 ms budget, 100 ms per call, and a selected model that takes 3 s
    router.configure(timeout_ms=200, call_timeout_ms=100)
    router.bedrock.responder = by_model({PRIMARY: _slow(3.0, VALID_ANSWER), FALLBACK: FALLBACK_ANSWER})
    # When a query is routed
    started = time.perf_counter()
    reply = router.route("sunset", include_reasoning=include_reasoning)
    elapsed = time.perf_counter() - started
    # Then the slow model was abandoned: the fallback answered long before the slow model would have
    # (a generous bound, so a loaded CI machine cannot make this flaky; the benchmark measures real figures)
    assert reply.body["source"] == "fallback_model"
    assert reply.body["model"] == FALLBACK
    assert elapsed < 1.5
    assert router.metric("ModelError", code="Timeout") == 1


def test_when_every_model_is_too_slow_the_default_weights_answer_within_the_budget(router: RouterHarness) -> None:
    router.configure(timeout_ms=200, call_timeout_ms=100)
    router.bedrock.responder = by_model({PRIMARY: _slow(3.0, VALID_ANSWER), FALLBACK: _slow(3.0, FALLBACK_ANSWER)})
    started = time.perf_counter()
    reply = router.route("sunset")
    assert time.perf_counter() - started < 1.5  # neither 3 s model was waited for
    assert reply.body["source"] == "default"
    assert reply.body["weights"] == DEFAULT_WEIGHTS
    assert router.metric("ModelError", code="Timeout") == 2


def test_an_abandoned_stream_is_closed(router: RouterHarness) -> None:
    # Given streams that trickle (20 ms per 2-character event) past a 200 ms budget
    router.configure(timeout_ms=200, call_timeout_ms=100)
    router.bedrock.stream_chunk_chars = 2
    router.bedrock.stream_event_delay_s = 0.02
    reply = router.route("sunset", include_reasoning=False)
    assert reply.body["source"] == "default"
    time.sleep(0.05)  # the abandoned readers notice the close at their next event
    assert router.bedrock.streams and all(s.closed and not s.fully_read for s in router.bedrock.streams)


def test_no_time_left_for_a_retry_goes_straight_to_the_default_weights(router: RouterHarness) -> None:
    router.configure(timeout_ms=60, call_timeout_ms=60)
    router.bedrock.responder = by_model({PRIMARY: _slow(0.2, VALID_ANSWER), FALLBACK: FALLBACK_ANSWER})
    reply = router.route("sunset")
    assert reply.body["source"] == "default"
    assert len(router.calls("ConverseStream", FALLBACK)) == 0  # the budget was spent on the first call
    (line,) = [entry for entry in router.logs() if entry.get("source") == "default"]
    assert line["default_reason"] == "budget_exhausted"


def test_every_malformed_answer_of_the_parser_corpus_falls_back_and_is_counted(router: RouterHarness) -> None:
    assert len(CORPUS_CASES) >= 15
    failures = [(case_id, text, expected) for case_id, text, expected in CORPUS_CASES if isinstance(expected, Fails)]
    assert len(failures) >= 15
    for index, (case_id, text, expected) in enumerate(failures):
        # Given the selected model answers with this malformed text
        router.bedrock.responder = by_model({PRIMARY: text, FALLBACK: FALLBACK_ANSWER})
        before = router.metric("ParseFailure", reason=expected.reason.value)
        # When a (new) query is routed
        reply = router.route(f"query {index}")
        # Then the fallback model answers and the failure is counted by its reason
        assert reply.body["source"] == "fallback_model", case_id
        assert reply.body["weights"] == FALLBACK_WEIGHTS, case_id
        assert router.metric("ParseFailure", reason=expected.reason.value) == before + 1, case_id


def test_every_usable_answer_of_the_parser_corpus_is_served_as_the_parser_reads_it(router: RouterHarness) -> None:
    usable = [(case_id, text) for case_id, text, expected in CORPUS_CASES if not isinstance(expected, Fails)]
    assert len(usable) >= 15
    for index, (case_id, text) in enumerate(usable):
        router.bedrock.responder = by_model({PRIMARY: text, FALLBACK: FALLBACK_ANSWER})
        reply = router.route(f"usable {index}")
        parsed = parse_routing_answer(text, DEFAULT_CHANNELS)
        assert parsed.ok, case_id
        assert reply.body["source"] == "model", case_id
        assert reply.body["weights"] == round_weights(parsed.decision.weights, DEFAULT_CHANNELS, decimals=4), case_id


def test_an_unexpected_error_in_the_router_answers_with_the_default_weights(router: RouterHarness) -> None:
    # Given the model source breaks in a way nobody planned for
    service = handler.get_service()

    def broken() -> Any:
        raise RuntimeError("boom")

    service._model_source.current = broken  # type: ignore[attr-defined]
    reply = router.route("sunset")
    assert reply.body["source"] == "default"
    assert reply.body["weights"] == DEFAULT_WEIGHTS
    (line,) = [entry for entry in router.logs() if entry.get("level") == "ERROR"]
    assert line["default_reason"] == "internal_error"
    # where it broke is logged; what the exception says is not (a message may quote the query)
    assert line["exception_name"] == "RuntimeError"
    assert "in broken" in line["exception"] and "RuntimeError: boom" not in line["exception"]
    assert "RuntimeError: <message withheld: router_log_queries is off>" in line["exception"]


def test_with_query_logging_on_an_unexpected_error_is_logged_with_its_message(router: RouterHarness) -> None:
    router.configure(log_queries=True)
    service = handler.get_service()

    def broken() -> Any:
        raise RuntimeError("boom")

    service._model_source.current = broken  # type: ignore[attr-defined]
    router.route("sunset")
    (line,) = [entry for entry in router.logs() if entry.get("level") == "ERROR"]
    assert "RuntimeError: boom" in line["exception"]


def test_an_error_outside_the_router_still_answers_with_the_default_weights(
    router: RouterHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: RouterService, query: str, *, include_reasoning: bool) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(RouterService, "route", broken)
    reply = router.post({"query": "sunset"})
    assert reply.status == 200
    assert reply.body["source"] == "default"
    assert reply.body["weights"] == DEFAULT_WEIGHTS
    assert router.metric("InternalError") == 1
    assert router.metric("DefaultWeightsUsed") == 1


def test_no_request_or_model_behaviour_produces_a_5xx(router: RouterHarness) -> None:
    """Property-style: random requests (the event fixtures and generated queries) × random model behaviour."""
    rng = random.Random(20261128)
    events = [load_event(path.stem) for path in sorted(EVENTS_DIR.glob("router_*.json"))]
    garbage = [text for _, text, expected in CORPUS_CASES if isinstance(expected, Fails)]
    behaviours: list[Any] = [
        VALID_ANSWER,
        FALLBACK_ANSWER,
        *garbage,
        *[FakeError(code) for code, _ in BEDROCK_ERRORS],
    ]
    alphabet = "abc xyz 0123 éß 富士山 مقابلة 🎸\t\n"
    statuses: dict[int, int] = {}
    sources: set[str] = set()
    for round_number in range(250):
        router.bedrock.responder = by_model({PRIMARY: rng.choice(behaviours), FALLBACK: rng.choice(behaviours)})
        if rng.random() < 0.4:
            event = rng.choice(events)
        else:
            query = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            event = load_event("router_post")
            event["body"] = _body(query, rng.choice([True, False, None]))
        reply = router.invoke(event)
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
        assert reply.status in (200, 400), (round_number, reply)
        if reply.status == 200:
            assert_valid_weights(reply.body)
            assert reply.body["source"] in ("model", "cache", "fallback_model", "default")
            sources.add(reply.body["source"])
        else:
            assert reply.body["errors"] and reply.body["message"].startswith("Invalid request: ")
    # the loop exercised every outcome
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 10
    assert sources == {"model", "cache", "fallback_model", "default"}


def _body(query: str, include_reasoning: bool | None) -> str:
    body: dict[str, Any] = {"query": query}
    if include_reasoning is not None:
        body["include_reasoning"] = include_reasoning
    return json.dumps(body, ensure_ascii=False)
