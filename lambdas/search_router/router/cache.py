"""A small in-memory LRU cache whose entries expire after a TTL (per Lambda container)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlLruCache(Generic[K, V]):
    """At most ``max_size`` entries; the least recently used is evicted first; an entry older than
    ``ttl_seconds`` is a miss. ``max_size`` or ``ttl_seconds`` of 0 disables the cache. Thread-safe."""

    def __init__(self, max_size: int, ttl_seconds: float, *, clock: Callable[[], float]) -> None:
        if max_size < 0 or ttl_seconds < 0:
            raise ValueError("max_size and ttl_seconds must be >= 0")
        self._max_size = max_size
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._max_size > 0 and self._ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        if not self.enabled:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
