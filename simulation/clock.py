"""Simulated model latency on a virtual clock, so that a fast local run reports the simulated latencies.

The evaluation measures each candidate's latency on the client, with ``time.perf_counter()`` around the
Converse call (:func:`search_router.adapters.converse.converse_text`). A simulated model that slept its full latency
would make ``make simulate`` take minutes; one that slept a scaled-down latency would make the report show the scaled
numbers. Instead, while :func:`virtual_latency` is active, the ``time`` that :mod:`search_router.adapters.converse`
sees has a ``perf_counter`` that runs ahead, per thread, by the simulated latency the fake did not sleep for real
(:meth:`VirtualClock.advance`, called by :class:`simulation.models.SimulatedModels`). A measured call then lasts
its simulated latency plus the real in-process overhead (a millisecond or two).

Only ``search_router.adapters.converse``'s module reference is swapped, and only for the duration of the run: no other
code sees the virtual clock, and the domain code is not changed for the simulation. Per-thread offsets keep each
thread's ``perf_counter`` monotonic; intervals are only ever measured within one thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any


class VirtualClock:
    """Per-thread offsets added to ``time.perf_counter()``."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.total_advanced_s = 0.0

    def advance(self, seconds: float) -> None:
        """Move this thread's clock ahead by ``seconds`` (a simulated wait)."""
        if seconds < 0:
            raise ValueError(f"a clock never goes back, got {seconds}")
        self._local.offset = getattr(self._local, "offset", 0.0) + seconds
        with self._lock:
            self.total_advanced_s += seconds

    def perf_counter(self) -> float:
        return time.perf_counter() + getattr(self._local, "offset", 0.0)


class _TimeWithVirtualPerfCounter:
    """Stands in for the ``time`` module: everything is the real ``time`` except ``perf_counter``."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def perf_counter(self) -> float:
        return self._clock.perf_counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def virtual_latency(clock: VirtualClock) -> Iterator[VirtualClock]:
    """Let :mod:`search_router.adapters.converse` measure Converse latency on ``clock`` inside the ``with`` block."""
    from search_router.adapters import converse

    namespace = vars(converse)  # the module's ``time`` global, swapped for the block only
    original = namespace["time"]
    namespace["time"] = _TimeWithVirtualPerfCounter(clock)
    try:
        yield clock
    finally:
        namespace["time"] = original
