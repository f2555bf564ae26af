"""The capture buffer's batches respect PutRecordBatch's limits (500 records, 4 MiB), pack queries into Firehose
records of at most 5 KB (its billing unit), and its redaction runs before a record exists."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

from search_router.router.capture import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    PACK_BYTES,
    REDACTED,
    CaptureCounts,
    QueryCapture,
    Redactor,
)

WEIGHTS = {"visual": 1.0, "audio": 0.0, "transcription": 0.0, "metadata": 0.0}


def _capture(batches: list[list[bytes]], gate: threading.Event, **kwargs: object) -> QueryCapture:
    def send(records: Sequence[bytes]) -> list[int]:
        gate.wait(5.0)
        batches.append(list(records))
        return []

    return QueryCapture(send, redact=Redactor(["secret"]), max_buffered=5_000, **kwargs)  # type: ignore[arg-type]


def test_batches_hold_at_most_500_records_and_4_mib() -> None:
    batches: list[list[bytes]] = []
    gate = threading.Event()
    capture = _capture(batches, gate)
    for i in range(1_200):
        capture.record(query=f"q{i} " + "x" * 9_000, weights=WEIGHTS, source="model", model="m", latency_ms=1.0)
    gate.set()
    assert capture.wait_idle(10.0)
    assert sum(len(b) for b in batches) == 1_200
    assert all(len(b) <= MAX_BATCH_RECORDS and sum(map(len, b)) <= MAX_BATCH_BYTES for b in batches)
    assert any(sum(map(len, b)) > MAX_BATCH_BYTES - 10_000 for b in batches)  # the byte limit, not the count, cut
    assert capture.take_counts().sent == 1_200


def test_the_buffered_record_is_already_redacted_json_lines() -> None:
    batches: list[list[bytes]] = []
    gate = threading.Event()
    capture = _capture(batches, gate)
    capture.record(query="my secret plan", weights=WEIGHTS, source="model", model="m", latency_ms=1.5)
    gate.set()
    assert capture.wait_idle(5.0)
    [[record]] = batches
    assert record.endswith(b"\n") and b"secret" not in record
    assert json.loads(record)["query"] == f"my {REDACTED} plan"


def test_small_queries_are_packed_into_firehose_records_of_at_most_5_kb_as_json_lines() -> None:
    batches: list[list[bytes]] = []
    gate = threading.Event()
    capture = _capture(batches, gate)
    for i in range(300):
        capture.record(
            query=f"query {i:03d} about mountains", weights=WEIGHTS, source="model", model="m", latency_ms=1.0
        )
    gate.set()
    assert capture.wait_idle(10.0)
    records = [record for batch in batches for record in batch]
    assert all(len(record) <= PACK_BYTES for record in records)
    queries = [json.loads(line)["query"] for record in records for line in record.decode().splitlines()]
    assert queries == [f"query {i:03d} about mountains" for i in range(300)]  # every one, in order
    assert len(records) <= 300 * 200 // PACK_BYTES + 2  # ~150-byte records: ~30 a pack, not one a record


def test_a_partly_failed_batch_counts_the_queries_of_the_failed_records() -> None:
    # Given a Firehose that rejects the second record of every call, and queries too long to share a record
    gate = threading.Event()
    calls: list[int] = []

    def send(records: Sequence[bytes]) -> list[int]:
        gate.wait(5.0)
        calls.append(len(records))
        return [1] if len(records) > 1 else []

    capture = QueryCapture(send, redact=Redactor([]), linger_seconds=0.0)  # each record is sent when it comes
    long = "x" * 3_000
    # When one query is taken alone and two more wait for the next call
    capture.record(query=f"q0 {long}", weights=WEIGHTS, source="model", model="m", latency_ms=1.0)
    deadline = time.monotonic() + 5.0
    while capture.pending() and time.monotonic() < deadline:
        time.sleep(0.001)
    for i in (1, 2):
        capture.record(query=f"q{i} {long}", weights=WEIGHTS, source="model", model="m", latency_ms=1.0)
    gate.set()
    assert capture.wait_idle(5.0)
    # Then the one query of the rejected record is counted failed, the others sent
    assert calls == [1, 2]
    assert capture.take_counts() == CaptureCounts(sent=2, failed=1, dropped=0)


def test_the_sender_lingers_for_a_full_record_and_sends_the_oldest_when_it_is_due() -> None:
    sent: list[bytes] = []
    now = [100.0]
    arrived = threading.Event()

    def send(records: Sequence[bytes]) -> list[int]:
        sent.extend(records)
        arrived.set()
        return []

    capture = QueryCapture(send, redact=Redactor([]), linger_seconds=2.0, monotonic=lambda: now[0])
    capture.record(query="a lonely query", weights=WEIGHTS, source="model", model="m", latency_ms=1.0)
    assert not arrived.wait(0.2) and capture.pending() == 1  # not due yet: lingering for company
    now[0] += 2.5
    with capture._lock:  # wake the sender as a timed-out wait would
        capture._wake.notify()
    assert arrived.wait(5.0)
    assert [json.loads(r)["query"] for r in sent] == ["a lonely query"]
