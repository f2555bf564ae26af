"""The capture buffer's batches respect PutRecordBatch's limits (500 records, 4 MiB) and its redaction runs
before a record exists."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from search_router.router.capture import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, REDACTED, QueryCapture, Redactor

WEIGHTS = {"visual": 1.0, "audio": 0.0, "transcription": 0.0, "metadata": 0.0}


def _capture(batches: list[list[bytes]], gate: threading.Event, **kwargs: object) -> QueryCapture:
    def send(records: Sequence[bytes]) -> int:
        gate.wait(5.0)
        batches.append(list(records))
        return 0

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
