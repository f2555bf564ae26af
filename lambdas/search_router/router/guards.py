"""Cost and fault guards of the router: a circuit breaker per model and a cap on expensive fallbacks.

Both are pure (no I/O), driven by an injected clock and thread-safe: a container routes one request at a
time, but abandoned calls finish on the invoker's threads, and tests drive them from several threads.

**Circuit breaker** (:class:`CircuitBreakers`, one circuit per model id). *Closed*: every request may call the
model; ``failures`` consecutive failed requests open it. *Open*: the model is skipped without a call for
``open_seconds``. *Half-open*: after that, exactly one request (the probe) may call the model again; its
success closes the circuit, its failure opens it for another ``open_seconds``. A probe that never reports (the
request ran out of time before the call) frees the slot with :meth:`CircuitBreakers.abandon`; a probe lost
altogether is replaced after ``open_seconds``. What counts as a failure is the caller's decision (see
``service``): errors and timeouts, throttling included, not unusable answers.

**Fallback cap** (:class:`FallbackCap`). Over a sliding window of ``window_seconds``, at most ``max_share`` of
the container's routed requests may call an expensive fallback model; the cap applies once the window holds
``min_requests`` requests (a share of three requests says nothing). Beyond it the caller answers the default
weights instead. The window is kept in :data:`WINDOW_BUCKETS` buckets, so its edge is exact to a bucket.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

WINDOW_BUCKETS: Final = 60


class Admission(StrEnum):
    """May a request call the model?"""

    ALLOWED = "allowed"  # closed: call as usual
    PROBE = "probe"  # half-open: this request is the one probe
    REJECTED = "rejected"  # open, or another request is probing: skip the model without a call


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Transition(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"


@dataclass(frozen=True)
class CircuitEvent:
    """A circuit changed state. ``failures``: consecutive failed requests when it opened; ``probe``: the change
    was decided by a half-open probe."""

    model_id: str
    transition: Transition
    failures: int = 0
    probe: bool = False


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float | None = None  # set while open or half-open
    probe_started: float | None = None


class CircuitBreakers:
    """One circuit per key (a model id). ``failures`` of 0 disables the breaker: every call is allowed."""

    def __init__(self, *, failures: int, open_seconds: float, clock: Callable[[], float]) -> None:
        if failures < 0 or open_seconds <= 0:
            raise ValueError("failures must be >= 0 and open_seconds > 0")
        self._threshold = failures
        self._open_seconds = open_seconds
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._threshold > 0

    def state(self, key: str) -> CircuitState:
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.open_until is None:
                return CircuitState.CLOSED
            return CircuitState.OPEN if self._clock() < circuit.open_until else CircuitState.HALF_OPEN

    def admit(self, key: str) -> Admission:
        """Whether a request may call ``key`` now; :attr:`Admission.PROBE` reserves the half-open probe."""
        if not self.enabled:
            return Admission.ALLOWED
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.open_until is None:
                return Admission.ALLOWED
            now = self._clock()
            if now < circuit.open_until:
                return Admission.REJECTED
            if circuit.probe_started is not None and now < circuit.probe_started + self._open_seconds:
                return Admission.REJECTED
            circuit.probe_started = now
            return Admission.PROBE

    def succeeded(self, key: str) -> CircuitEvent | None:
        """The model answered: the failure count restarts; an open circuit closes (an event)."""
        if not self.enabled:
            return None
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None:
                return None
            was_open = circuit.open_until is not None
            probe = circuit.probe_started is not None
            circuit.failures, circuit.open_until, circuit.probe_started = 0, None, None
            return CircuitEvent(key, Transition.CLOSED, probe=probe) if was_open else None

    def failed(self, key: str) -> CircuitEvent | None:
        """The model failed this request: an event when the circuit opens (or a probe re-opens it)."""
        if not self.enabled:
            return None
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            now = self._clock()
            if circuit.open_until is not None:
                if circuit.probe_started is None:  # a late report of a request admitted before it opened
                    return None
                circuit.failures += 1
                circuit.open_until, circuit.probe_started = now + self._open_seconds, None
                return CircuitEvent(key, Transition.OPENED, circuit.failures, probe=True)
            circuit.failures += 1
            if circuit.failures >= self._threshold:
                circuit.open_until = now + self._open_seconds
                return CircuitEvent(key, Transition.OPENED, circuit.failures)
            return None

    def abandon(self, key: str) -> None:
        """The admitted request made no call that says anything about the model: free a reserved probe."""
        if not self.enabled:
            return
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is not None:
                circuit.probe_started = None


@dataclass
class _Bucket:
    index: int
    requests: int = 0
    expensive: int = 0


class FallbackCap:
    """At most ``max_share`` of the routed requests of the last ``window_seconds`` may call an expensive
    fallback, once the window holds ``min_requests`` requests. ``max_share`` 1 disables the cap."""

    def __init__(
        self, *, max_share: float, window_seconds: float, min_requests: int, clock: Callable[[], float]
    ) -> None:
        if not 0.0 <= max_share <= 1.0 or window_seconds <= 0 or min_requests < 1:
            raise ValueError("max_share must be in [0, 1], window_seconds > 0 and min_requests >= 1")
        self._max_share = max_share
        self._bucket_seconds = window_seconds / WINDOW_BUCKETS
        self._min_requests = min_requests
        self._clock = clock
        self._buckets: deque[_Bucket] = deque()
        self._requests = 0
        self._expensive = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._max_share < 1.0

    def counts(self) -> tuple[int, int]:
        """(routed requests, requests that called an expensive fallback) in the window."""
        with self._lock:
            self._expire(self._index())
            return self._requests, self._expensive

    def allows(self) -> bool:
        """May the request in progress (not recorded yet) call an expensive fallback?"""
        if not self.enabled:
            return True
        with self._lock:
            self._expire(self._index())
            requests = self._requests + 1
            if requests < self._min_requests:
                return True
            # Compare in integers: a share exactly at the cap is allowed (0.1 x 30 = 3 of 30).
            return self._expensive + 1 <= math.floor(self._max_share * requests + 1e-9)

    def record(self, *, expensive: bool) -> None:
        """Count one routed request; ``expensive``: it called an expensive fallback (answered or not)."""
        with self._lock:
            index = self._index()
            self._expire(index)
            if not self._buckets or self._buckets[-1].index != index:
                self._buckets.append(_Bucket(index))
            bucket = self._buckets[-1]
            bucket.requests += 1
            self._requests += 1
            if expensive:
                bucket.expensive += 1
                self._expensive += 1

    def _index(self) -> int:
        return math.floor(self._clock() / self._bucket_seconds)

    def _expire(self, index: int) -> None:
        while self._buckets and self._buckets[0].index <= index - WINDOW_BUCKETS:
            old = self._buckets.popleft()
            self._requests -= old.requests
            self._expensive -= old.expensive
