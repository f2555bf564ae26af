"""Capture of routed queries (``capture_queries``): one record per routed request, redacted before it is
buffered, sent in batches by a background thread, never on the request's critical path.

A record is ``{"query", "weights", "source", "model", "latency_ms", "timestamp"}``: the query normalized as the
router's cache key (NFC, whitespace collapsed) and then redacted (``capture_redact_patterns``: each match becomes
:data:`REDACTED`), the weights served, where they came from, the model and the latency. Nothing else of the
request is kept: no caller identity, no header, no source IP (the record is built from the routed outcome, not
from the event).

Why a background thread (and not a flush at the start of the next request): a flush at the start of a request
waits for Firehose before the model is called, which puts the PutRecordBatch's latency on that request. Here
the request only appends to an in-process buffer (``benchmarks/capture.py`` measures what that costs); the
sender thread sends once a Firehose record's worth is buffered (:data:`PACK_BYTES`) or the oldest record has
waited :data:`LINGER_SECONDS`, packing the queries into as few records as it can (Firehose bills per record,
rounded up to 5 KB). When Lambda freezes the environment, the thread resumes on the next invocation (a call in
flight is bounded by its short timeouts); what an environment that is shut down had not sent (at most the last
:data:`LINGER_SECONDS` of its queries) is lost, and cannot be counted.

Failures never change a response: the queries of a failed call, or of the records a partial one lost, are
counted (:attr:`CaptureCounts.failed`, the function's ``CaptureFailed`` metric), a full buffer drops the new
record and counts it (:attr:`CaptureCounts.dropped`, ``CaptureDropped``). The counts are taken by the handler
on its own thread (:meth:`QueryCapture.take_counts`), so metrics are only ever emitted on the invocation's
thread.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

REDACTED: Final = "<redacted>"
MAX_BUFFERED: Final = 1_000
"""Records a container holds before new ones are dropped (the traffic of one container for a few seconds of
Firehose outage)."""
MAX_BATCH_RECORDS: Final = 500  # PutRecordBatch: at most 500 records ...
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024  # ... and 4 MiB per call
MAX_RECORD_BYTES: Final = 1_000 * 1024  # Firehose: a record's data is at most 1,000 KiB
LINGER_SECONDS: Final = 2.0
"""How long the sender lets records gather before a call that would not fill a Firehose record: more queries per
record (the billing unit), at most this much later in S3. Lambda's freeze between invocations only extends it."""
PACK_BYTES: Final = 5_000
"""Firehose bills Direct PUT ingestion per record rounded up to the next 5 KB: queries (a few hundred bytes each)
are packed, as consecutive JSON lines, into Firehose records of at most this size (a query longer than that
travels alone), which cuts the billed volume ~15x at the default query length (README "Costs")."""

SendBatch = Callable[[Sequence[bytes]], Sequence[int]]
"""Send Firehose records in one call; returns the indices of those Firehose did not take; raises on failure."""


class Redactor:
    """``capture_redact_patterns``, compiled once: every match of each pattern, in order, becomes :data:`REDACTED`."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._patterns = tuple(re.compile(p) for p in patterns)

    def __call__(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text


def capture_record(
    *,
    query: str,
    weights: Mapping[str, float],
    source: str,
    model: str | None,
    latency_ms: float,
    timestamp: float,
) -> bytes:
    """One record as Firehose receives it: a JSON object and a newline, so that the delivered objects are JSON
    lines. ``query`` must already be normalized and redacted."""
    seconds = time.gmtime(timestamp)
    millis = int((timestamp % 1) * 1000)
    record = {
        "query": query,
        "weights": dict(weights),
        "source": source,
        "model": model,
        "latency_ms": latency_ms,
        "timestamp": f"{time.strftime('%Y-%m-%dT%H:%M:%S', seconds)}.{millis:03d}Z",
    }
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


@dataclass(frozen=True)
class CaptureCounts:
    """What happened to captured records since the counts were last taken."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0


class QueryCapture:
    """The container's capture buffer and its sender thread (started on the first record)."""

    def __init__(
        self,
        send: SendBatch,
        *,
        redact: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        max_buffered: int = MAX_BUFFERED,
        linger_seconds: float = LINGER_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._send = send
        self._redact = redact
        self._clock = clock
        self._max_buffered = max_buffered
        self._linger = linger_seconds
        self._monotonic = monotonic
        self._oldest = 0.0  # monotonic time the oldest buffered record arrived
        self._buffered_bytes = 0
        self._flush_now = False
        self._on_error = on_error
        self._buffer: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._sending = False
        self._thread: threading.Thread | None = None
        self._sent = self._failed = self._dropped = 0

    def record(
        self, *, query: str, weights: Mapping[str, float], source: str, model: str | None, latency_ms: float
    ) -> bool:
        """Redact and buffer one routed query and wake the sender; False when the buffer was full (dropped)."""
        data = capture_record(
            query=self._redact(query),
            weights=weights,
            source=source,
            model=model,
            latency_ms=latency_ms,
            timestamp=self._clock(),
        )
        with self._lock:
            if len(self._buffer) >= self._max_buffered or len(data) > MAX_RECORD_BYTES:
                self._dropped += 1
                return False
            if not self._buffer:
                self._oldest = self._monotonic()
            self._buffer.append(data)
            self._buffered_bytes += len(data)
            if self._buffered_bytes >= PACK_BYTES:
                self._wake.notify()
        self._ensure_thread()
        return True

    def take_counts(self) -> CaptureCounts:
        """The counts since the last call (then reset): the handler turns them into metrics on its own thread."""
        with self._lock:
            counts = CaptureCounts(sent=self._sent, failed=self._failed, dropped=self._dropped)
            self._sent = self._failed = self._dropped = 0
        return counts

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def wait_idle(self, timeout: float) -> bool:
        """Send what is buffered now (no lingering) and wait until it is sent (tests, benchmarks); False on
        timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flush_now = True
            self._wake.notify()
            while self._buffer or self._sending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="query-capture", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._ready():
                    if not self._buffer:
                        self._sending = False
                        self._flush_now = False
                        self._idle.notify_all()
                        self._wake.wait()
                    else:  # lingering: wait for a full record's worth, at most until the oldest is due
                        self._wake.wait(max(0.0, self._oldest + self._linger - self._monotonic()))
                self._sending = True
                batch = self._take_batch()
                self._buffered_bytes = sum(map(len, self._buffer))
                self._oldest = self._monotonic()
            self._deliver(batch)

    def _ready(self) -> bool:
        """Something to send now: a full record's worth, the oldest record due, or a flush asked for."""
        return bool(self._buffer) and (
            self._flush_now or self._buffered_bytes >= PACK_BYTES or self._monotonic() - self._oldest >= self._linger
        )

    def _take_batch(self) -> list[list[bytes]]:
        """The next call's Firehose records, each a pack of queries (:data:`PACK_BYTES`): at most
        :data:`MAX_BATCH_RECORDS` of them and :data:`MAX_BATCH_BYTES` in all (called with the lock held)."""
        packs: list[list[bytes]] = []
        size = pack_size = 0
        while self._buffer and size + len(self._buffer[0]) <= MAX_BATCH_BYTES:
            record = self._buffer[0]
            if not packs or pack_size + len(record) > PACK_BYTES:
                if len(packs) == MAX_BATCH_RECORDS:
                    break
                packs.append([])
                pack_size = 0
            packs[-1].append(self._buffer.popleft())
            pack_size += len(record)
            size += len(record)
        return packs

    def _deliver(self, packs: list[list[bytes]]) -> None:
        queries = sum(len(pack) for pack in packs)
        try:
            failed_packs = set(self._send([b"".join(pack) for pack in packs]))
            failed = sum(len(pack) for index, pack in enumerate(packs) if index in failed_packs)
        except Exception as error:  # every failure of the call is counted, none reaches a request
            failed = queries
            if self._on_error is not None:
                self._on_error(error)
        with self._lock:
            self._failed += failed
            self._sent += queries - failed
