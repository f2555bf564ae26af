"""The ConverseStream response stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import EventStreamError

from simulation.bedrock.values import FakeError


class FakeEventStream:
    """Stands in for botocore's ``EventStream`` in a ConverseStream response.

    Iterable once (like the real stream), yielding the event dicts botocore would yield. ``events_read`` counts
    the events handed out and ``closed`` records ``close()``, so a test can prove a reader stopped early and
    released the stream. An in-stream error raises ``botocore.exceptions.EventStreamError`` whose
    ``Error.Code`` is the event-stream member name (``throttlingException``: lower camel case, as botocore
    reports it from the ``:exception-type`` header).
    """

    def __init__(
        self,
        events: Sequence[dict[str, Any]],
        *,
        event_delay_s: float = 0.0,
        error: FakeError | None = None,
        error_after_events: int = 0,
    ) -> None:
        self._events = list(events)
        self._event_delay_s = event_delay_s
        self._error = error
        self._error_after = error_after_events
        self._position = 0
        self._lock = threading.Lock()
        self.events_read = 0
        self.closed = False

    @property
    def total_events(self) -> int:
        """How many events the stream would yield if read to the end (without a scripted error)."""
        return len(self._events)

    @property
    def fully_read(self) -> bool:
        return self.events_read == len(self._events)

    @property
    def text(self) -> str:
        """The whole answer text the stream carries (for assertions)."""
        return "".join(
            e["contentBlockDelta"]["delta"].get("text", "") for e in self._events if "contentBlockDelta" in e
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            with self._lock:
                if self.closed or self._position >= len(self._events):
                    return
                if self._error is not None and self._position == self._error_after:
                    error = self._error
                    self._error = None
                    raise EventStreamError({"Error": {"Code": error.code, "Message": error.message}}, "ConverseStream")
                event = self._events[self._position]
                self._position += 1
            if self._event_delay_s:
                time.sleep(self._event_delay_s)
            self.events_read += 1
            yield event

    def close(self) -> None:
        self.closed = True
