"""The teacher-call limiter (search_router.pipeline.concurrency): AIMD rules, convergence under a shared quota,
recovery."""

from __future__ import annotations

import heapq
import json
import random
import threading
from dataclasses import dataclass, field

import pytest

from search_router.pipeline.concurrency import AdaptiveConcurrency, FixedConcurrency, Permit
from simulation.quota import RequestQuota
from tests.threads import from_threads


# ------------------------------------------------------------------------------------------------ the rules
def test_it_starts_low_and_doubles_every_round_until_the_first_throttling() -> None:
    limiter = AdaptiveConcurrency(16)
    rounds = []
    for _ in range(5):
        rounds.append(limiter.limit)
        permits = [limiter.try_acquire() for _ in range(limiter.limit)]
        assert limiter.try_acquire() is None  # the limit is what may be in flight, not more
        for permit in permits:
            assert permit is not None
            permit.answered()
    assert rounds == [2, 4, 8, 16, 16]  # slow start, then the ceiling (the configured threads)
    assert limiter.slow_start is False or limiter.limit == 16


def test_throttling_halves_the_limit_once_per_congestion_event() -> None:
    limiter = AdaptiveConcurrency(16, initial=16)
    permits = [limiter.try_acquire() for _ in range(16)]
    assert all(permits)
    # When every call in flight is throttled
    for permit in permits:
        assert permit is not None
        permit.overloaded()
    # Then the limit halved once, not sixteen times: the others were already in flight when it did
    assert limiter.limit == 8
    assert limiter.stats()["decreases"] == 1 and limiter.stats()["overloads"] == 16
    # And the throttled queries keep their slots through their backoff: nothing can start until they free them
    assert limiter.in_flight == 16 and limiter.try_acquire() is None
    for permit in permits:
        assert permit is not None
        permit.release()
    assert limiter.in_flight == 0
    # And a call started after the decrease that is throttled halves it again
    later = limiter.try_acquire()
    assert later is not None
    later.overloaded()
    later.release()
    assert limiter.limit == 4


def test_after_throttling_it_grows_by_one_per_window_and_never_drops_below_the_floor() -> None:
    limiter = AdaptiveConcurrency(16, initial=1)
    for _ in range(6):  # throttled at 1: stays at the floor
        permit = limiter.try_acquire()
        assert permit is not None
        permit.overloaded()
        permit.release()  # after its backoff
    assert limiter.limit == 1
    # congestion avoidance: +1/limit per answer (limit fractional inside), i.e. about one more call per window of
    # `limit` answers — one round trip at that limit
    answers_to_reach = {}
    answered = 0
    while limiter.limit < 5:
        permit = limiter.try_acquire()
        assert permit is not None
        permit.answered()
        answered += 1
        answers_to_reach.setdefault(limiter.limit, answered)
    assert answers_to_reach == {2: 1, 3: 4, 4: 7, 5: 12}
    steps = [answers_to_reach[k + 1] - answers_to_reach[k] for k in (2, 3, 4)]
    assert all(k - 1 <= step <= k + 1 for k, step in zip((2, 3, 4), steps, strict=True))


def test_other_errors_free_the_slot_without_changing_the_limit() -> None:
    limiter = AdaptiveConcurrency(8, initial=4)
    permit = limiter.try_acquire()
    assert permit is not None and limiter.in_flight == 1
    permit.release()
    permit.answered()  # a released permit is done: later calls are ignored
    permit.overloaded()
    permit.release()
    assert limiter.in_flight == 0 and limiter.limit == 4
    assert limiter.stats()["answered"] == 0 and limiter.stats()["overloads"] == 0
    # and a throttled permit signals once, however often it is told
    throttled = limiter.try_acquire()
    assert throttled is not None
    throttled.overloaded()
    throttled.overloaded()
    throttled.answered()  # frees it without counting an answer
    assert limiter.in_flight == 0 and limiter.stats()["overloads"] == 1 and limiter.stats()["answered"] == 0


def test_acquire_waits_for_a_free_slot_and_gives_up_after_its_timeout() -> None:
    limiter = AdaptiveConcurrency(4, initial=1)
    held = limiter.acquire(timeout=0)
    assert held is not None
    assert limiter.acquire(timeout=0.05) is None
    got: list[Permit | None] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire(timeout=5)))
    waiter.start()
    held.answered()  # frees the slot (and grows the limit): the waiter gets it
    waiter.join(timeout=5)
    assert got and got[0] is not None


def test_fixed_concurrency_lets_every_thread_call_whatever_the_teacher_says() -> None:
    limiter = FixedConcurrency(3)
    for _ in range(4):
        permits = [limiter.try_acquire() for _ in range(3)]
        assert all(permits) and limiter.try_acquire() is None
        for permit in permits:
            assert permit is not None
            permit.overloaded()
            permit.release()
    assert limiter.limit == 3 and limiter.stats()["kind"] == "fixed"


def test_statistics_are_time_weighted_on_the_injected_clock() -> None:
    now = [0.0]
    limiter = AdaptiveConcurrency(4, initial=2, clock=lambda: now[0])
    a, b = limiter.try_acquire(), limiter.try_acquire()
    assert a is not None and b is not None
    now[0] = 10.0
    a.answered()  # 2 in flight for 10 s
    now[0] = 20.0
    b.answered()  # 1 in flight for 10 s
    now[0] = 40.0  # 0 in flight for 20 s
    stats = json.loads(json.dumps(limiter.stats()))
    assert stats["mean_in_flight"] == pytest.approx(30 / 40)
    assert stats["peak_in_flight"] == 2 and stats["max_limit"] == 4 and stats["min_limit"] == 2


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="ceiling"):
        AdaptiveConcurrency(0)
    with pytest.raises(ValueError, match="floor"):
        AdaptiveConcurrency(4, floor=5)
    with pytest.raises(ValueError, match="decrease"):
        AdaptiveConcurrency(4, decrease=1.0)


def test_many_threads_never_exceed_the_limit() -> None:
    limiter = AdaptiveConcurrency(8)
    rng = random.Random(3)
    outcomes = [rng.random() for _ in range(4000)]
    violations: list[tuple[int, int]] = []

    def call(index: int) -> None:
        permit = limiter.acquire(timeout=5)
        assert permit is not None
        in_flight, limit = limiter.in_flight, limiter.ceiling
        if in_flight > limit:
            violations.append((in_flight, limit))
        if outcomes[index] < 0.2:
            permit.overloaded()
            permit.release()
        else:
            permit.answered()

    from_threads(call, len(outcomes))
    stats = limiter.stats()
    assert violations == [] and limiter.in_flight == 0
    assert stats["answered"] + stats["overloads"] == 4000
    assert stats["peak_in_flight"] <= 8


# ------------------------------------------------------------------------------------------------ under a quota
@dataclass(order=True)
class _Event:
    time: float
    seq: int
    shard: int = field(compare=False)
    permit: Permit | None = field(compare=False, default=None)
    admitted: bool = field(compare=False, default=False)
    retry: bool = field(compare=False, default=False)


def _simulate(
    limiters: list[AdaptiveConcurrency] | list[FixedConcurrency],
    quota: RequestQuota,
    now: list[float],
    *,
    until: float,
    call_s: float = 2.0,
    throttle_s: float = 0.1,
    lift_quota_at: float | None = None,
) -> dict[str, list[float]]:
    """Discrete events, one virtual clock: each shard always has work, starts every call its limiter allows; a
    call admitted by the shared quota answers after ``call_s``, a refused one is throttled after ``throttle_s``
    and its query keeps the slot through a 0.5-2 s backoff (as in ``label_queries``). Samples every second."""
    rng = random.Random(7)
    events: list[_Event] = []
    seq = 0
    samples: dict[str, list[float]] = {"t": [], "in_flight": [], "admitted": [], "refused": []}
    next_sample = 0.0

    def push(at: float, shard: int, **kw: object) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, _Event(at, seq, shard, **kw))  # type: ignore[arg-type]

    def start_calls(shard: int) -> None:
        while (permit := limiters[shard].try_acquire()) is not None:
            admitted = quota.admit()
            push(now[0] + (call_s if admitted else throttle_s), shard, permit=permit, admitted=admitted)

    for shard in range(len(limiters)):
        start_calls(shard)
    while events and now[0] < until:
        event = heapq.heappop(events)
        while next_sample <= event.time:
            samples["t"].append(next_sample)
            samples["in_flight"].append(sum(limiter.in_flight for limiter in limiters))
            samples["admitted"].append(quota.admitted)
            samples["refused"].append(quota.refused)
            next_sample += 1.0
        now[0] = event.time
        if lift_quota_at is not None and now[0] >= lift_quota_at:
            quota.set_rpm(1_000_000)
            lift_quota_at = None
        if event.permit is not None and event.retry:  # a backoff ended: its slot is free
            event.permit.release()
        elif event.permit is not None and event.admitted:
            event.permit.answered()
        elif event.permit is not None:
            event.permit.overloaded()
            push(now[0] + rng.uniform(0.5, 2.0), event.shard, permit=event.permit, retry=True)
        start_calls(event.shard)
    return samples


def _window(samples: dict[str, list[float]], start: float, end: float) -> tuple[float, float, float]:
    """Mean calls in flight, admitted per minute and refused share of requests between two sample times."""
    picked = [i for i, t in enumerate(samples["t"]) if start <= t <= end]
    first, last = picked[0], picked[-1]
    admitted = samples["admitted"][last] - samples["admitted"][first]
    refused = samples["refused"][last] - samples["refused"][first]
    minutes = (samples["t"][last] - samples["t"][first]) / 60.0
    in_flight = sum(samples["in_flight"][i] for i in picked) / len(picked)
    return in_flight, admitted / minutes, refused / max(1.0, admitted + refused)


def test_shards_with_their_own_limiters_converge_to_a_shared_quota_and_recover_when_it_lifts() -> None:
    # Given three shards (16 threads each: 48 calls could be in flight) and a 300 requests/minute quota over all
    # of them (2 s calls: ~10 in flight fit), every shard with its own limiter and no shared state
    now = [0.0]
    quota = RequestQuota(300, burst_s=5.0, clock=lambda: now[0])
    limiters = [AdaptiveConcurrency(16, clock=lambda: now[0]) for _ in range(3)]
    # When they label for ten minutes, and the quota is lifted at t = 600 s
    samples = _simulate(limiters, quota, now, until=720.0, lift_quota_at=600.0)
    # Then, once converged, the shards together keep about the quota's ~10 calls in flight, use nearly all of it,
    # and few requests are refused
    in_flight, per_minute, refused = _window(samples, 120.0, 600.0)
    assert 6.0 <= in_flight <= 16.0
    assert 270.0 <= per_minute <= 310.0
    assert refused < 0.25  # AIMD probes: ~14% here; a limiter that does not halve is refused ~98% of the time
    # And after the quota lifts they grow back to their ceilings within a minute
    in_flight_after, per_minute_after, _ = _window(samples, 660.0, 720.0)
    assert in_flight_after == pytest.approx(48.0, abs=1.0)
    assert per_minute_after > 1_000
    assert [limiter.limit for limiter in limiters] == [16, 16, 16]


def test_fixed_concurrency_under_the_same_quota_is_mostly_refused() -> None:
    # The same three shards calling on all 16 threads: the quota still admits ~300 a minute, but most requests
    # are throttled (each of them a retry with backoff, and after 12 in a row a dropped query)
    now = [0.0]
    quota = RequestQuota(300, burst_s=5.0, clock=lambda: now[0])
    limiters = [FixedConcurrency(16, clock=lambda: now[0]) for _ in range(3)]
    samples = _simulate(limiters, quota, now, until=600.0)
    _, per_minute, refused = _window(samples, 120.0, 600.0)
    assert 270.0 <= per_minute <= 310.0
    assert refused > 0.5
