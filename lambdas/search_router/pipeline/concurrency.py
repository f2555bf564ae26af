"""Teacher calls in flight that follow the teacher's quota, not the configured thread count.

A labeling shard runs ``threads`` workers, but how many of them may be calling the teacher is decided here. A slot
is held by a call in flight and, after a throttling answer, by that query through its backoff (see
:class:`Permit`): the limit bounds how fast a shard sends requests, not only how many are open.
:class:`AdaptiveConcurrency` is an AIMD limiter (additive increase, multiplicative decrease — the rule TCP uses to
share a link it cannot see):

* it starts low (``initial``, 2 by default) and, until the first throttling answer, grows by one call for every
  answered call ("slow start": the limit doubles every round trip);
* a throttling answer (an overload, for Bedrock :data:`~search_router.adapters.aws_errors.THROTTLING_CODES`:
  ``ThrottlingException``, HTTP 429, or ``ServiceUnavailableException``; other retryable errors, a model not ready,
  a model timeout, a network timeout, are retried by the labeler but leave the limit alone) halves the limit (never
  below ``floor``, 1) — once per congestion event: the other calls that were already in flight when it was halved
  do not halve it again;
* after that it grows by one call per window of answered calls (``+1/limit`` per answer), up to ``ceiling``
  (the configured threads).

Why this is enough for a quota shared by many shards: each shard's Lambda has its own limiter and no shared
state, but every limiter halves when the shared quota answers throttling and grows while it does not, so the
limits of all shards together settle around what the quota admits (AIMD converges to a fair share without
coordination). ``benchmarks/labeling_throughput.py`` shows it with a 250 requests/minute quota over ten shards.

Pure and thread-safe: no AWS, no sleeping. ``clock`` (default :func:`time.monotonic`) only times the statistics
(the time-weighted mean of calls in flight); waiting for a free slot is a :class:`threading.Condition` wait.
:class:`FixedConcurrency` is the old behaviour (every thread may call), kept as the baseline for the benchmark.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class Permit:
    """One slot: a call in flight, or a throttled query backing off before it calls again.

    :meth:`answered` (the quota admitted the call) signals and frees the slot. :meth:`overloaded` only signals:
    the throttled query keeps its slot through its backoff, and frees it with :meth:`release` — so the limit
    bounds the request *rate* as well (a throttled answer comes back in a fraction of a second; a freed slot would
    be called again at once). Each signal counts once and :meth:`release` after the end is a no-op, so a
    ``finally: permit.release()`` is always safe.
    """

    __slots__ = ("_done", "_limiter", "_signalled", "epoch")

    def __init__(self, limiter: _Limiter, epoch: int) -> None:
        self._limiter = limiter
        self.epoch = epoch
        self._done = False
        self._signalled = False

    def answered(self) -> None:
        """The call returned an answer (valid or not): the quota admitted it. Frees the slot."""
        self._signal("answered")
        self.release()

    def overloaded(self) -> None:
        """The call was throttled (an overload: "too many requests"). The slot stays taken until :meth:`release`."""
        self._signal("overloaded")

    def release(self) -> None:
        """Free the slot (after a backoff, or after an error that says nothing about the quota)."""
        if self._done:
            return
        self._done = True
        self._limiter._release()

    def _signal(self, how: str) -> None:
        if self._signalled or self._done:
            return
        self._signalled = True
        self._limiter._signal(self, how)


class ConcurrencyLimiter(Protocol):
    """What :func:`search_router.pipeline.labeling.label_queries` needs from a limiter."""

    def acquire(self, timeout: float | None = None) -> Permit | None:
        """A permit for one call, waiting up to ``timeout`` seconds (None: forever) for a free slot."""
        ...

    def stats(self) -> dict[str, Any]:
        """JSON-serialisable figures for the shard's stats."""
        ...


class _Limiter:
    """Shared mechanics: a slot count under a condition variable, and time-weighted statistics."""

    def __init__(self, *, ceiling: int, limit: float, clock: Callable[[], float]) -> None:
        if ceiling < 1:
            raise ValueError(f"ceiling must be >= 1, got {ceiling}")
        self.ceiling = ceiling
        self._limit = limit
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._epoch = 0
        self._started = clock()
        self._last_change = self._started
        self._in_flight_area = 0.0  # integral of calls in flight over time
        self._peak_in_flight = 0
        self._max_limit = self.limit
        self._min_limit = self.limit
        self.answered = 0
        self.overloads = 0
        self.decreases = 0

    @property
    def limit(self) -> int:
        """Calls allowed in flight now."""
        return max(1, min(self.ceiling, math.floor(self._limit + 1e-9)))

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def try_acquire(self) -> Permit | None:
        """A permit if a slot is free now, else None (never waits)."""
        with self._cond:
            return self._take() if self._in_flight < self.limit else None

    def acquire(self, timeout: float | None = None) -> Permit | None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight < self.limit, timeout):
                return None
            return self._take()

    def _take(self) -> Permit:
        self._account()
        self._in_flight += 1
        self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        return Permit(self, self._epoch)

    def _account(self) -> None:
        now = self._clock()
        self._in_flight_area += self._in_flight * max(0.0, now - self._last_change)
        self._last_change = now

    def _signal(self, permit: Permit, how: str) -> None:
        with self._cond:
            if how == "answered":
                self.answered += 1
                self._on_answered()
            else:
                self.overloads += 1
                self._on_overloaded(permit)
            self._changed()

    def _release(self) -> None:
        with self._cond:
            self._account()
            self._in_flight -= 1
            self._changed()

    def _changed(self) -> None:
        limit = self.limit
        self._max_limit = max(self._max_limit, limit)
        self._min_limit = min(self._min_limit, limit)
        self._cond.notify(max(0, limit - self._in_flight))  # wake as many waiters as there are free slots

    def _on_answered(self) -> None:
        return None

    def _on_overloaded(self, permit: Permit) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        with self._cond:
            self._account()
            elapsed = self._last_change - self._started
            return {
                "kind": self.kind,
                "ceiling": self.ceiling,
                "final_limit": self.limit,
                "max_limit": self._max_limit,
                "min_limit": self._min_limit,
                "peak_in_flight": self._peak_in_flight,
                "mean_in_flight": round(self._in_flight_area / elapsed, 3) if elapsed > 0 else None,
                "answered": self.answered,
                "overloads": self.overloads,
                "decreases": self.decreases,
            }

    kind = "limiter"


class FixedConcurrency(_Limiter):
    """Every one of ``ceiling`` threads may have a call in flight, throttled or not (the old behaviour)."""

    kind = "fixed"

    def __init__(self, ceiling: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ceiling=ceiling, limit=float(ceiling), clock=clock)


class AdaptiveConcurrency(_Limiter):
    """AIMD on calls in flight (see the module docstring). Thread-safe; ``clock`` times the statistics only."""

    kind = "adaptive"

    def __init__(
        self,
        ceiling: int,
        *,
        initial: int = 2,
        floor: int = 1,
        decrease: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"floor must be within 1..ceiling ({ceiling}), got {floor}")
        if not 0.0 < decrease < 1.0:
            raise ValueError(f"decrease must be within (0, 1), got {decrease}")
        self.floor = floor
        self.decrease = decrease
        self._threshold = float(ceiling)  # slow start below it; set at the first overload
        super().__init__(ceiling=ceiling, limit=float(min(ceiling, max(floor, initial))), clock=clock)

    @property
    def slow_start(self) -> bool:
        """True until the first throttling answer: the limit still doubles every round trip."""
        return self._limit < self._threshold

    def _on_answered(self) -> None:
        step = 1.0 if self._limit < self._threshold else 1.0 / self._limit
        self._limit = min(float(self.ceiling), self._limit + step)

    def _on_overloaded(self, permit: Permit) -> None:
        if permit.epoch != self._epoch:
            return  # started before the last decrease: that congestion was already answered
        self._limit = max(float(self.floor), self._limit * self.decrease)
        self._threshold = self._limit
        self._epoch += 1
        self.decreases += 1
