"""The router's circuit breaker and fallback cap (``search_router.router.guards``), on a manual clock: no sleeps."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from search_router.router.guards import (
    WINDOW_BUCKETS,
    Admission,
    CircuitBreakers,
    CircuitEvent,
    CircuitState,
    FallbackCap,
    Transition,
)
from search_router.router.model_source import ModelSelection
from search_router.router.service import RouterService, Source
from search_router.router.settings import AccountScope, ModelSpec, RouterSettings
from search_router.shared.answer.decision import ParseResult, ParseSuccess, RoutingDecision
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.model_calls import ModelCallError
from search_router.shared.prompts import PromptKind
from tests.manual_clock import ManualClock

MODEL = "us.amazon.nova-micro-v1:0"
OTHER = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=5_000.0)


def _breakers(clock: ManualClock, failures: int = 3, open_seconds: float = 30) -> CircuitBreakers:
    return CircuitBreakers(failures=failures, open_seconds=open_seconds, clock=clock)


def _fail(breakers: CircuitBreakers, times: int, key: str = MODEL) -> list[CircuitEvent | None]:
    events = []
    for _ in range(times):
        assert breakers.admit(key) is Admission.ALLOWED
        events.append(breakers.failed(key))
    return events


def _probe_out(clock: ManualClock) -> CircuitBreakers:
    """Breakers (3 failures, 30 s open) whose circuit for MODEL opened and, 30 s later, let the probe through."""
    breakers = _breakers(clock)
    _fail(breakers, 3)
    clock.advance(30)
    assert breakers.admit(MODEL) is Admission.PROBE
    return breakers


def _assert_next_probe_30_seconds_later(breakers: CircuitBreakers, clock: ManualClock) -> None:
    """MODEL is still skipped 29 s from now and probed again at 30 s."""
    clock.advance(29)
    assert breakers.admit(MODEL) is Admission.REJECTED
    clock.advance(1)
    assert breakers.admit(MODEL) is Admission.PROBE


# --- circuit breaker ---------------------------------------------------------------------------------------------
def test_the_circuit_opens_after_n_consecutive_failures(clock: ManualClock) -> None:
    breakers = _breakers(clock)
    # Given two failures: still closed, nothing reported
    assert _fail(breakers, 2) == [None, None]
    assert breakers.state(MODEL) is CircuitState.CLOSED
    # When the third consecutive request fails
    assert breakers.admit(MODEL) is Admission.ALLOWED
    event = breakers.failed(MODEL)
    # Then the circuit opens (one event) and the model is skipped
    assert event == CircuitEvent(MODEL, Transition.OPENED, failures=3)
    assert breakers.state(MODEL) is CircuitState.OPEN
    assert breakers.admit(MODEL) is Admission.REJECTED
    # other models are not affected
    assert breakers.admit(OTHER) is Admission.ALLOWED


def test_a_success_restarts_the_count(clock: ManualClock) -> None:
    breakers = _breakers(clock)
    _fail(breakers, 2)
    assert breakers.succeeded(MODEL) is None  # closed stays closed: no event
    assert _fail(breakers, 2) == [None, None]
    assert breakers.state(MODEL) is CircuitState.CLOSED


def test_an_open_circuit_skips_the_model_for_exactly_open_seconds(clock: ManualClock) -> None:
    breakers = _breakers(clock, open_seconds=30)
    _fail(breakers, 3)
    clock.advance(29.999)
    assert breakers.admit(MODEL) is Admission.REJECTED
    clock.advance(0.001)
    assert breakers.state(MODEL) is CircuitState.HALF_OPEN
    assert breakers.admit(MODEL) is Admission.PROBE


def test_half_open_lets_exactly_one_probe_through(clock: ManualClock) -> None:
    breakers = _probe_out(clock)
    # while the probe is out, every other request still skips the model
    for _ in range(5):
        assert breakers.admit(MODEL) is Admission.REJECTED
    clock.advance(10)
    assert breakers.admit(MODEL) is Admission.REJECTED


def test_a_successful_probe_closes_the_circuit(clock: ManualClock) -> None:
    breakers = _probe_out(clock)
    assert breakers.succeeded(MODEL) == CircuitEvent(MODEL, Transition.CLOSED, probe=True)
    assert breakers.state(MODEL) is CircuitState.CLOSED
    assert breakers.admit(MODEL) is Admission.ALLOWED
    # and the count starts from zero again
    assert _fail(breakers, 2) == [None, None]
    assert breakers.state(MODEL) is CircuitState.CLOSED


def test_a_failed_probe_reopens_the_circuit_for_open_seconds(clock: ManualClock) -> None:
    breakers = _probe_out(clock)
    assert breakers.failed(MODEL) == CircuitEvent(MODEL, Transition.OPENED, failures=4, probe=True)
    _assert_next_probe_30_seconds_later(breakers, clock)


def test_an_abandoned_probe_frees_the_slot_for_the_next_request(clock: ManualClock) -> None:
    # A probe request that ran out of time before calling the model says nothing about it
    breakers = _probe_out(clock)
    breakers.abandon(MODEL)
    assert breakers.state(MODEL) is CircuitState.HALF_OPEN
    assert breakers.admit(MODEL) is Admission.PROBE


def test_a_probe_that_never_reports_is_replaced_after_open_seconds(clock: ManualClock) -> None:
    breakers = _probe_out(clock)  # ... and the probe never reports
    _assert_next_probe_30_seconds_later(breakers, clock)


def test_a_late_failure_report_does_not_extend_an_open_circuit(clock: ManualClock) -> None:
    breakers = _breakers(clock, open_seconds=30)
    _fail(breakers, 3)
    clock.advance(20)
    assert breakers.failed(MODEL) is None  # a request admitted before it opened
    clock.advance(10)
    assert breakers.admit(MODEL) is Admission.PROBE


def test_zero_failures_disables_the_breaker(clock: ManualClock) -> None:
    breakers = _breakers(clock, failures=0)
    assert not breakers.enabled
    for _ in range(50):
        assert breakers.admit(MODEL) is Admission.ALLOWED
        assert breakers.failed(MODEL) is None
    assert breakers.state(MODEL) is CircuitState.CLOSED


def test_concurrent_requests_at_half_open_get_exactly_one_probe(clock: ManualClock) -> None:
    breakers = _breakers(clock)
    _fail(breakers, 3)
    clock.advance(30)
    threads = 16
    start = threading.Barrier(threads)

    def admit() -> Admission:
        start.wait(timeout=5)
        return breakers.admit(MODEL)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        admissions = list(pool.map(lambda _: admit(), range(threads)))
    assert admissions.count(Admission.PROBE) == 1
    assert admissions.count(Admission.REJECTED) == threads - 1


@pytest.mark.parametrize(("failures", "open_seconds"), [(-1, 30), (3, 0)])
def test_breaker_arguments_are_checked(clock: ManualClock, failures: int, open_seconds: float) -> None:
    with pytest.raises(ValueError, match="failures must be"):
        CircuitBreakers(failures=failures, open_seconds=open_seconds, clock=clock)


# --- fallback cap ------------------------------------------------------------------------------------------------
def _cap(clock: ManualClock, share: float = 0.1, window: float = 60, minimum: int = 20) -> FallbackCap:
    return FallbackCap(max_share=share, window_seconds=window, min_requests=minimum, clock=clock)


def _route(cap: FallbackCap, *, wants_fallback: bool) -> bool:
    """One request: asks the cap if it needs an expensive fallback, records what it did; True if it called one."""
    called = wants_fallback and cap.allows()
    cap.record(expensive=called)
    return called


def test_below_the_minimum_count_the_cap_does_not_apply(clock: ManualClock) -> None:
    cap = _cap(clock, share=0.1, minimum=20)
    # every one of the first 19 requests of the window may fall back: a share of a few requests says nothing
    assert [_route(cap, wants_fallback=True) for _ in range(19)] == [True] * 19
    # the 20th would make it 20 of 20: capped
    assert _route(cap, wants_fallback=True) is False
    assert cap.counts() == (20, 19)


def test_beyond_the_minimum_at_most_the_share_falls_back(clock: ManualClock) -> None:
    cap = _cap(clock, share=0.1, minimum=20)
    for _ in range(100):
        _route(cap, wants_fallback=False)
    # of the next 100 requests, all of which want the fallback, only as many as keep the share at 10% may
    used = sum(_route(cap, wants_fallback=True) for _ in range(100))
    requests, expensive = cap.counts()
    assert (requests, expensive) == (200, 20)
    assert used == 20
    assert expensive / requests == pytest.approx(0.1)


def test_a_share_exactly_at_the_cap_is_allowed(clock: ManualClock) -> None:
    cap = _cap(clock, share=0.1, minimum=1)
    for _ in range(9):
        _route(cap, wants_fallback=False)
    assert cap.allows()  # 1 of 10 = 10%
    cap.record(expensive=True)
    for _ in range(9):
        _route(cap, wants_fallback=False)
    assert cap.allows()  # 2 of 20
    cap.record(expensive=True)
    assert not cap.allows()  # 3 of 21 > 10%


def test_the_window_slides(clock: ManualClock) -> None:
    cap = _cap(clock, share=0.1, window=60, minimum=20)
    for _ in range(19):
        _route(cap, wants_fallback=True)
    assert not cap.allows()
    # half a window later the old requests still count
    clock.advance(30)
    assert not cap.allows()
    # once they are older than the window they do not: the share is of the last 60 s
    clock.advance(30 + 60 / WINDOW_BUCKETS)
    assert cap.counts() == (0, 0)
    assert cap.allows()


def test_requests_expire_bucket_by_bucket(clock: ManualClock) -> None:
    cap = _cap(clock, window=60)
    cap.record(expensive=True)
    clock.advance(30)
    cap.record(expensive=False)
    clock.advance(31)  # the first request is now 61 s old, the second 31 s
    assert cap.counts() == (1, 0)


def test_a_share_of_one_disables_the_cap_and_zero_allows_no_fallback_past_the_minimum(clock: ManualClock) -> None:
    unlimited = _cap(clock, share=1.0, minimum=1)
    assert not unlimited.enabled
    assert all(_route(unlimited, wants_fallback=True) for _ in range(100))
    never = _cap(clock, share=0.0, minimum=5)
    assert [_route(never, wants_fallback=True) for _ in range(6)] == [True] * 4 + [False] * 2


def test_the_cap_counts_correctly_from_several_threads(clock: ManualClock) -> None:
    cap = _cap(clock)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: cap.record(expensive=i % 4 == 0), range(4_000)))
    assert cap.counts() == (4_000, 1_000)


@pytest.mark.parametrize(("share", "window", "minimum"), [(1.5, 60, 20), (-0.1, 60, 20), (0.1, 0, 20), (0.1, 60, 0)])
def test_cap_arguments_are_checked(clock: ManualClock, share: float, window: float, minimum: int) -> None:
    with pytest.raises(ValueError, match="max_share must be"):
        FallbackCap(max_share=share, window_seconds=window, min_requests=minimum, clock=clock)


# --- what the router counts against a circuit (RouterService with a fake invoker: no I/O) ------------------------
class _Source:
    def __init__(self, model: ModelSpec) -> None:
        self._selection = ModelSelection(model=model, from_parameter=True)

    def current(self) -> ModelSelection:
        return self._selection


class _Invoker:
    """Fails every call to ``failing`` with ``error``; any other model answers."""

    def __init__(self, failing: str, error: ModelCallError) -> None:
        self.failing, self.error, self.calls = failing, error, 0

    def ask(self, model: ModelSpec, query: str, *, timeout_s: float, reasoning: bool = True) -> ParseResult:
        del query, timeout_s, reasoning
        if model.model_id == self.failing:
            self.calls += 1
            raise self.error
        return ParseSuccess(RoutingDecision.from_weights(dict.fromkeys(DEFAULT_CHANNELS.names, 0.25), DEFAULT_CHANNELS))


def _service(clock: ManualClock, invoker: _Invoker) -> RouterService:
    teacher = PromptKind.TEACHER
    settings = RouterSettings(
        channels=DEFAULT_CHANNELS,
        model_parameter="/p",
        default_model=ModelSpec(MODEL, teacher),
        fallback_models=(ModelSpec(OTHER, teacher),),
        default_weights=RoutingDecision.from_weights(dict.fromkeys(DEFAULT_CHANNELS.names, 0.25), DEFAULT_CHANNELS),
        timeout_ms=1000,
        call_timeout_ms=500,
        cache_size=0,
        cache_ttl_seconds=0,
        model_ttl_seconds=30,
        max_query_chars=100,
        scope=AccountScope("aws", "us-east-1", "123456789012"),
        breaker_failures=2,
        breaker_open_seconds=30,
        fallback_max_share=1.0,
        fallback_window_seconds=60,
        fallback_min_requests=1,
    )
    return RouterService(
        settings, invoker=invoker, model_source=_Source(ModelSpec(MODEL, teacher)), clock=clock, sleep=lambda s: None
    )


def test_a_full_call_pool_is_not_the_models_fault(clock: ManualClock) -> None:
    invoker = _Invoker(MODEL, ModelCallError("PoolExhausted", "all threads busy"))
    service = _service(clock, invoker)
    for index in range(5):
        assert service.route(f"q{index}", include_reasoning=True).source is Source.FALLBACK_MODEL
    assert invoker.calls == 5
    assert service.breakers.state(MODEL) is CircuitState.CLOSED


def test_throttling_after_its_retry_counts_once_per_request(clock: ManualClock) -> None:
    invoker = _Invoker(MODEL, ModelCallError("ThrottlingException", "slow down", retryable=True))
    service = _service(clock, invoker)
    first = service.route("q1", include_reasoning=True)
    assert invoker.calls == 2  # retried once
    assert first.circuit_events == ()
    second = service.route("q2", include_reasoning=True)
    assert second.circuit_events == (CircuitEvent(MODEL, Transition.OPENED, failures=2),)
    assert service.breakers.state(MODEL) is CircuitState.OPEN
