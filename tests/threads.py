"""Work spread over many threads at once, for tests of code that must hold up under concurrent callers."""

from __future__ import annotations

import threading
from collections.abc import Callable


def from_threads(work: Callable[[int], None], count: int, *, threads: int = 16, timeout_s: float = 30) -> None:
    """Call ``work(index)`` once for every index in ``range(count)``, from ``threads`` threads that each take the
    next index until none is left; wait up to ``timeout_s`` for each thread."""
    indices = iter(range(count))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return
            work(index)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=timeout_s)
