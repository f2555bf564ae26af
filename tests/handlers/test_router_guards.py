"""Faults cost nothing (issue 10): the circuit breaker per model, the cap on expensive fallbacks and the call
pool, through the real handler, the botocore-validating Bedrock fake and the manual clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from search_router.adapters.bedrock_runtime import BedrockInvoker, router_client_config
from search_router.handlers import router_api as handler
from search_router.handlers.router_api import build_service
from search_router.router.settings import ModelSpec, load_settings, to_environment
from search_router.router.sizing import invoker_threads
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.model_calls import ModelCallError
from search_router.shared.prompts import PromptKind
from simulation.bedrock.values import ConverseRequest, FakeError
from simulation.bedrock_fake import BedrockFake
from tests.handlers.router_harness import (
    DEFAULT_WEIGHTS,
    FALLBACK,
    FALLBACK_ANSWER,
    PRIMARY,
    SETTINGS,
    VALID_ANSWER,
    RouterHarness,
    by_model,
    promotion,
)
from tests.handlers.test_router_model_selection import _deploy_distilled_model

Behaviour = str | FakeError | Callable[[ConverseRequest], Any]


class Models:
    """What each model does right now (changed by the test between requests)."""

    def __init__(self, router: RouterHarness, **behaviour: Behaviour) -> None:
        self.now: dict[str, Behaviour] = {PRIMARY: VALID_ANSWER, FALLBACK: FALLBACK_ANSWER}
        self.now.update({_MODEL_NAMES[name]: value for name, value in behaviour.items()})
        router.bedrock.responder = self._respond

    def set(self, **behaviour: Behaviour) -> None:
        self.now.update({_MODEL_NAMES[name]: value for name, value in behaviour.items()})

    def _respond(self, request: ConverseRequest) -> Any:
        answer = self.now[request.model_id]
        return answer(request) if callable(answer) else answer


_MODEL_NAMES = {"primary": PRIMARY, "fallback": FALLBACK}
DOWN = FakeError("ServiceUnavailableException", "Service unavailable")
DENIED = FakeError("AccessDeniedException", "You don't have access to the model with the specified model ID.")


def _lines(router: RouterHarness, message_start: str) -> list[dict[str, Any]]:
    return [line for line in router.logs() if str(line.get("message", "")).startswith(message_start)]


def _routed(router: RouterHarness) -> list[dict[str, Any]]:
    return [line for line in router.logs() if "attempts" in line]


# --- circuit breaker ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [DOWN, FakeError("ThrottlingException", "Too many requests"), DENIED])
def test_a_failing_model_is_skipped_without_a_call_once_its_circuit_opens(
    router: RouterHarness, failure: FakeError
) -> None:
    router.configure(breaker_failures=3, breaker_open_seconds=30)
    Models(router, primary=failure)
    # Given three requests in a row on which the selected model failed (throttling counts too)
    for index in range(3):
        assert router.route(f"storm {index}").body["source"] == "fallback_model"
    calls = len(router.calls("ConverseStream", PRIMARY))
    assert router.metric("CircuitOpened", model=PRIMARY) == 1
    (opened,) = _lines(router, "Circuit opened")
    assert opened["level"] == "WARNING"
    assert (opened["model"], opened["consecutive_failures"], opened["open_seconds"]) == (PRIMARY, 3, 30)
    # When more queries come
    replies = [router.route(f"calm {index}") for index in range(4)]
    # Then the open model is not called at all; the fallback answers at once
    assert len(router.calls("ConverseStream", PRIMARY)) == calls
    assert {r.body["source"] for r in replies} == {"fallback_model"}
    assert router.metric("CircuitOpen", model=PRIMARY) == 4
    assert router.metric("CircuitOpened", model=PRIMARY) == 1  # opened once, skipped four times
    skipped = _routed(router)[-1]["attempts"][0]
    assert skipped == {"model": PRIMARY, "outcome": "circuit_open", "code": "CircuitOpen", "ms": 0.0, "detail": None}


def test_after_open_seconds_one_probe_request_tries_the_model_and_closes_the_circuit(router: RouterHarness) -> None:
    router.configure(breaker_failures=2, breaker_open_seconds=30, model_ttl_seconds=600)
    models = Models(router, primary=DENIED)
    router.route("one")
    router.route("two")
    assert router.metric("CircuitOpened", model=PRIMARY) == 1
    # Given the model has recovered, but its circuit is still open
    models.set(primary=VALID_ANSWER)
    router.clock.advance(29)
    assert router.route("three").body["source"] == "fallback_model"
    calls = len(router.calls("ConverseStream", PRIMARY))
    # When the open time is over, the next request is the probe
    router.clock.advance(1)
    reply = router.route("four")
    # Then it calls the model (once), the model answers, and the circuit closes
    assert reply.body["source"] == "model"
    assert len(router.calls("ConverseStream", PRIMARY)) == calls + 1
    (closed,) = _lines(router, "Circuit closed")
    assert closed["model"] == PRIMARY
    assert router.route("five").body["source"] == "model"


def test_a_failed_probe_reopens_the_circuit_for_another_open_seconds(router: RouterHarness) -> None:
    router.configure(breaker_failures=2, breaker_open_seconds=30, model_ttl_seconds=600)
    Models(router, primary=DENIED)
    router.route("one")
    router.route("two")
    router.clock.advance(30)
    calls = len(router.calls("ConverseStream", PRIMARY))
    assert router.route("probe").body["source"] == "fallback_model"
    assert len(router.calls("ConverseStream", PRIMARY)) == calls + 1  # the probe called it, once
    assert router.metric("CircuitOpened", model=PRIMARY) == 2
    (reopened,) = _lines(router, "Circuit re-opened")
    assert reopened["model"] == PRIMARY
    router.clock.advance(29)
    router.route("still open")
    assert len(router.calls("ConverseStream", PRIMARY)) == calls + 1


def test_timeouts_count_against_the_model(router: RouterHarness) -> None:
    router.configure(breaker_failures=2, timeout_ms=500, call_timeout_ms=50)
    release = threading.Event()
    Models(router, primary=lambda request: release.wait(5) and VALID_ANSWER)
    try:
        router.route("slow one")
        router.route("slow two")
        assert router.metric("ModelError", code="Timeout") == 2
        assert router.metric("CircuitOpened", model=PRIMARY) == 1
        calls = len(router.calls("ConverseStream", PRIMARY))
        assert router.route("fast").body["source"] == "fallback_model"
        assert len(router.calls("ConverseStream", PRIMARY)) == calls  # the slow model was not even called
        assert router.metric("ModelError", code="Timeout") == 2
    finally:
        release.set()


def test_a_timeout_with_less_than_the_call_timeout_left_does_not_count(router: RouterHarness) -> None:
    # Given a 600 ms budget and 400 ms per call: the fallback only ever gets what is left, at most 200 ms
    router.configure(breaker_failures=1, timeout_ms=600, call_timeout_ms=400)
    models = Models(router)
    router.route("warm-up")  # the parameter is read now, not inside the timed request (a loaded machine is slow)
    release = threading.Event()
    models.set(primary=lambda r: release.wait(5) and VALID_ANSWER, fallback=lambda r: release.wait(5) and "")
    try:
        assert router.route("slow").body["source"] == "default"
        # Then only the model that had its full call timeout is blamed
        assert router.metric("CircuitOpened", model=PRIMARY) == 1
        assert router.metric("CircuitOpened", model=FALLBACK) == 0
    finally:
        release.set()


def test_unusable_answers_do_not_open_the_circuit(router: RouterHarness) -> None:
    # An answer that does not parse comes from a model that is up; it depends on the query
    router.configure(breaker_failures=2)
    Models(router, primary="I would weigh the visual channel most.")
    for index in range(5):
        assert router.route(f"odd {index}").body["source"] == "fallback_model"
    assert len(router.calls("ConverseStream", PRIMARY)) == 5
    assert router.metric("ParseFailure", reason="no_json") == 5
    assert router.metric("CircuitOpened", model=PRIMARY) == 0


def test_when_every_circuit_is_open_the_default_weights_answer_without_a_call(router: RouterHarness) -> None:
    router.configure(breaker_failures=1)
    Models(router, primary=DENIED, fallback=DENIED)
    router.route("one")
    calls = router.model_calls()
    reply = router.route("two")
    assert reply.body["source"] == "default"
    assert reply.body["weights"] == DEFAULT_WEIGHTS
    assert router.model_calls() == calls
    line = _routed(router)[-1]
    assert line["default_reason"] == "circuits_open"
    assert [a["outcome"] for a in line["attempts"]] == ["circuit_open", "circuit_open"]


def test_the_breaker_is_off_with_zero_failures(router: RouterHarness) -> None:
    router.configure(breaker_failures=0)
    Models(router, primary=DENIED)
    for index in range(10):
        router.route(f"q{index}")
    assert len(router.calls("ConverseStream", PRIMARY)) == 10
    assert router.metric("CircuitOpened", model=PRIMARY) == 0


# --- fallback cap ------------------------------------------------------------------------------------------------
def test_expensive_fallbacks_are_capped_to_their_share_of_the_window(router: RouterHarness) -> None:
    router.configure(fallback_max_share=0.2, fallback_min_requests=5, fallback_window_seconds=60)
    models = Models(router)
    # Given 16 requests answered by the selected model
    for index in range(16):
        assert router.route(f"healthy {index}").body["source"] == "model"
    # When it goes down for 8 more
    models.set(primary=DENIED)
    replies = [router.route(f"outage {index}") for index in range(8)]
    # Then the expensive fallback answers as long as it stays within 20% of the window's requests (4 of 20 ...)
    assert [r.body["source"] for r in replies] == ["fallback_model"] * 4 + ["default"] * 4
    assert len(router.calls("ConverseStream", FALLBACK)) == 4
    # and beyond that the default weights answer, without a call to the fallback, counted and explained
    assert replies[-1].body["weights"] == DEFAULT_WEIGHTS
    assert router.metric("FallbackCapped") == 4
    assert router.metric("DefaultWeightsUsed") == 4
    capped = _routed(router)[-1]
    assert capped["default_reason"] == "fallback_capped"
    assert [(a["model"], a["outcome"]) for a in capped["attempts"]] == [
        (PRIMARY, "model_error"),
        (FALLBACK, "fallback_capped"),
    ]
    # And once the window has moved on, the fallback may answer again
    router.clock.advance(61)
    assert router.route("later").body["source"] == "fallback_model"


def test_the_cap_does_not_apply_below_the_minimum_count(router: RouterHarness) -> None:
    router.configure(fallback_max_share=0.1, fallback_min_requests=20)
    Models(router, primary=DENIED)
    sources = [router.route(f"cold {index}").body["source"] for index in range(20)]
    assert sources == ["fallback_model"] * 19 + ["default"]


def test_the_default_model_as_the_first_fallback_of_a_promotion_is_never_capped(router: RouterHarness) -> None:
    # Given no expensive fallback may be used at all, and a promoted deployment that fails
    router.configure(fallback_max_share=0.0, fallback_min_requests=1)
    deployment = _deploy_distilled_model(router.bedrock)
    router.set_parameter(promotion(deployment, "student"))
    router.clock.advance(31)
    models = Models(router)
    models.now[deployment] = DENIED
    # Then the default model (the base student, as cheap) still answers for it
    for index in range(5):
        reply = router.route(f"q{index}")
        assert (reply.body["source"], reply.body["model"]) == ("fallback_model", PRIMARY)
    # But when the default model fails too, the expensive fallback is not called
    models.set(primary=DENIED)
    reply = router.route("both down")
    assert reply.body["source"] == "default"
    assert router.calls("ConverseStream", FALLBACK) == []
    assert _routed(router)[-1]["default_reason"] == "fallback_capped"


def test_a_cap_of_one_lets_every_request_fall_back(router: RouterHarness) -> None:
    router.configure(fallback_max_share=1.0, fallback_min_requests=1)
    Models(router, primary=DENIED)
    assert {router.route(f"q{index}").body["source"] for index in range(30)} == {"fallback_model"}
    assert router.metric("FallbackCapped") == 0


# --- the call pool -----------------------------------------------------------------------------------------------
def test_eight_abandoned_calls_do_not_keep_a_healthy_model_from_answering(router: RouterHarness) -> None:
    # Given a selected model that hangs on "slow" queries (a call botocore would give up on much later)
    router.configure(timeout_ms=2000, call_timeout_ms=150)  # 150 ms: ample for the fake's answers on a busy CI
    release = threading.Event()
    Models(router, primary=lambda request: (release.wait(10) if "slow" in request.user_text else True) and VALID_ANSWER)
    invoker = handler.get_service()._invoker
    assert isinstance(invoker, BedrockInvoker)
    try:
        # When 8 requests each abandon a call to it (each is answered by the fallback)
        for index in range(8):
            assert router.route(f"slow {index}").body["source"] == "fallback_model"
        assert invoker.in_flight == 8  # the abandoned calls still hold their threads
        # Then the next request still gets a thread, and the healthy model answers it
        reply = router.route("sunset over snowy mountains")
        assert reply.body["source"] == "model"
        assert reply.body["model"] == PRIMARY
    finally:
        release.set()


def test_the_pool_is_sized_for_the_chain() -> None:
    base = {**SETTINGS, "fallback_models": []}
    sized = {}
    for fallbacks in (0, 1, 4):
        models = [{"model_id": f"us.amazon.nova-lite-v1:{n}", "prompt_kind": "teacher"} for n in range(fallbacks)]
        environment = {**to_environment(**{**base, "fallback_models": models}), "CHANNELS": DEFAULT_CHANNELS.to_json()}
        sized[fallbacks] = invoker_threads(load_settings(environment))
    # three requests' worth of abandoned calls (one per model of a chain: promoted, default, fallbacks) + 1
    assert sized == {0: 8, 1: 10, 4: 19}


def test_the_bedrock_client_gives_up_on_a_call_within_the_call_timeout() -> None:
    # The real client the router builds (no fake installed): its timeouts bound how long an abandoned call lives
    environment = {**to_environment(**{**SETTINGS, "call_timeout_ms": 700}), "CHANNELS": DEFAULT_CHANNELS.to_json()}
    settings = load_settings(environment)
    service = build_service(settings)
    client = service._invoker._runtime()  # type: ignore[attr-defined]
    config = client.meta.config
    assert config.read_timeout == 0.7
    assert config.connect_timeout == 0.7
    assert config.retries["total_max_attempts"] == 1
    assert config.max_pool_connections == invoker_threads(settings)
    assert client.meta.service_model.service_name == "bedrock-runtime"
    slow_settings = load_settings({**environment, "ROUTER_CALL_TIMEOUT_MS": "2000"})
    assert router_client_config(slow_settings).connect_timeout == 1.0  # connecting never takes more than 1 s
    assert router_client_config(slow_settings).read_timeout == 2.0


@pytest.fixture
def hanging(bedrock: BedrockFake) -> Iterator[threading.Event]:
    """The fake's model hangs until the event is set (set on teardown)."""
    release = threading.Event()
    bedrock.responder = by_model({PRIMARY: lambda request: release.wait(10) and VALID_ANSWER})
    yield release
    release.set()


def test_a_full_pool_fails_at_once_instead_of_queueing(bedrock: BedrockFake, hanging: threading.Event) -> None:
    invoker = BedrockInvoker(channels=DEFAULT_CHANNELS, runtime=lambda: bedrock.runtime, max_workers=2)
    model = ModelSpec(PRIMARY, PromptKind.TEACHER)
    for _ in range(2):
        with pytest.raises(ModelCallError) as timeout:
            invoker.ask(model, "sunset", timeout_s=0.02)
        assert timeout.value.code == "Timeout"
    # Given both threads are held by abandoned calls, the next call does not wait for one
    started = time.perf_counter()
    with pytest.raises(ModelCallError) as full:
        invoker.ask(model, "sunset", timeout_s=1.0)
    assert full.value.code == "PoolExhausted" and not full.value.retryable
    assert time.perf_counter() - started < 0.5
    assert len(bedrock.calls_to("ConverseStream")) == 2  # it was never sent
    # When the abandoned calls end, the pool is usable again
    hanging.set()
    deadline = time.perf_counter() + 5
    while invoker.in_flight and time.perf_counter() < deadline:
        time.sleep(0.005)
    assert invoker.in_flight == 0
    assert invoker.ask(model, "sunset", timeout_s=1.0).ok
