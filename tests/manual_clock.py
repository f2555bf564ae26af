"""A clock that moves only when a test advances it, for code that takes ``clock: Callable[[], float]``."""

from __future__ import annotations


class ManualClock:
    """Drives TTLs, windows and open-circuit periods without sleeping."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
