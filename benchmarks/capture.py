"""What capture (``capture_queries``) costs a request: the background sender against flushing on the request.

Each design gets the same records (the router's record of a routed query, redacted with the default patterns) and
a Firehose that answers each ``PutRecordBatch`` after ``--firehose-ms`` (a sleep standing in for the call's
round trip). Per request the benchmark times what the request itself waits for:

- ``background`` (what the router does): :meth:`QueryCapture.record` (redact, serialize, buffer, wake the sender)
  and :meth:`QueryCapture.take_counts`;
- ``flush on request``: the alternative, a batch of what is buffered sent at the start of the request (one
  call per request at this rate), so the request waits for the round trip.

It prints the median and p99 of each in microseconds and their ratio, and checks that the background sender
delivered every record (none failed, none dropped). The ratio, not the absolute figures, is what holds on a
shared machine. Run from the repository root::

    PYTHONPATH=lambdas:. .venv/bin/python -m benchmarks.capture [--requests 2000] [--firehose-ms 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from infra.config import load_config
from search_router.router.capture import QueryCapture, Redactor, capture_record

WEIGHTS = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
QUERY = "interview with the coach after the 2023 final, call 555 123 4567"


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(requests: int, firehose_ms: float, request_gap_ms: float) -> dict[str, float]:
    redact = Redactor(load_config().capture.redact_patterns)
    delivered: list[int] = []  # queries per call
    firehose_records: list[int] = []  # Firehose records (packs of queries) per call

    def firehose(records: Sequence[bytes]) -> list[int]:
        time.sleep(firehose_ms / 1000)
        delivered.append(sum(record.count(b"\n") for record in records))
        firehose_records.append(len(records))
        return []

    capture = QueryCapture(firehose, redact=redact)
    background: list[float] = []
    for _ in range(requests):
        started = time.perf_counter()
        capture.record(query=QUERY, weights=WEIGHTS, source="model", model="m", latency_ms=120.0)
        capture.take_counts()
        background.append((time.perf_counter() - started) * 1e6)
        time.sleep(request_gap_ms / 1000)
    assert capture.wait_idle(30.0)
    counts = capture.take_counts()
    assert sum(delivered) == requests and counts.failed == 0 and counts.dropped == 0, (delivered, counts)

    packed = sum(firehose_records)
    on_request: list[float] = []
    for _ in range(max(1, requests // 10)):  # each costs the round trip: fewer runs suffice
        started = time.perf_counter()
        record = capture_record(
            query=redact(QUERY), weights=WEIGHTS, source="model", model="m", latency_ms=120.0, timestamp=time.time()
        )
        firehose([record])  # one query per call at this rate: one Firehose record each
        on_request.append((time.perf_counter() - started) * 1e6)
    return {
        "background_median_us": statistics.median(background),
        "background_p99_us": _percentile(background, 0.99),
        "on_request_median_us": statistics.median(on_request),
        "on_request_p99_us": _percentile(on_request, 0.99),
        "batches": float(len(delivered)),
        "firehose_records": float(packed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--firehose-ms", type=float, default=20.0)
    parser.add_argument("--request-gap-ms", type=float, default=1.0, help="time between requests (the traffic)")
    args = parser.parse_args()
    figures = measure(args.requests, args.firehose_ms, args.request_gap_ms)
    print(
        f"requests {args.requests}, Firehose round trip {args.firehose_ms:g} ms, "
        f"a request every ~{args.request_gap_ms:g} ms"
    )
    print(
        f"background sender: median {figures['background_median_us']:.1f} µs, "
        f"p99 {figures['background_p99_us']:.1f} µs per request "
        f"({int(figures['batches'])} calls, {int(figures['firehose_records'])} Firehose records for "
        f"{args.requests} queries)"
    )
    print(
        f"flush on request:  median {figures['on_request_median_us']:.1f} µs, p99 {figures['on_request_p99_us']:.1f} µs"
    )
    ratio = figures["on_request_median_us"] / figures["background_median_us"]
    print(f"ratio (flush on request / background), medians: {ratio:.0f}x")


if __name__ == "__main__":
    main()
