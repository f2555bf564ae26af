"""A SIMULATED requests-per-minute quota shared by every caller, as Bedrock enforces an on-demand model quota.

How Bedrock meters a requests-per-minute quota is not published (*unconfirmed*); this models it as a token
bucket: tokens accrue at ``rpm / 60`` a second up to ``burst_s`` seconds' worth, each admitted request takes one,
and a request that finds none is refused (the caller answers it with ``ThrottlingException``, HTTP 429). A refused
request costs no token — the generous reading for a caller that retries hard, so a comparison against it is not
flattered. Pure and thread-safe; time comes from ``clock`` (virtual in the benchmark and the tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestQuota:
    """``rpm`` requests a minute over all callers, bursts of up to ``burst_s`` seconds of quota."""

    def __init__(self, rpm: float, *, burst_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        if rpm <= 0 or burst_s <= 0:
            raise ValueError("rpm and burst_s must be > 0")
        self.rpm = rpm
        self.capacity = max(1.0, rpm / 60.0 * burst_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._updated = clock()
        self.admitted = 0
        self.refused = 0

    def set_rpm(self, rpm: float) -> None:
        """Change the quota from now on (a quota increase, or a neighbour's traffic going away)."""
        with self._lock:
            self._refill()
            self.rpm = rpm

    def admit(self) -> bool:
        """True (and one token taken) if a request arriving now is within the quota."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.admitted += 1
                return True
            self.refused += 1
            return False

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._updated) * self.rpm / 60.0)
        self._updated = now
