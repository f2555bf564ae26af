"""Labeling throughput: how much the bounded thread pool buys over the reference's sequential labeling.

A simulated teacher answers every Converse call with a valid routing JSON after a fixed latency (``time.sleep``,
so the threads really wait, as on network I/O). :func:`routing.labeling.label_queries` runs over
``queries-per-worker x concurrency`` queries at each concurrency; the table shows throughput and the speed-up
over one thread. From the measured efficiency at the shard's thread count it then estimates one shard
Lambda's duration at the default sizes, for the README's "no Lambda needs more than 15 minutes" claim.

Run from the repository root::

    .venv/bin/python -m benchmarks.labeling_throughput [--latency-ms 200] [--queries 20]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from routing.channels import DEFAULT_CHANNELS
from routing.labeling import label_queries
from routing.queries import synthesize_queries

CONCURRENCY = (1, 4, 8, 16, 32)
LAMBDA_LIMIT_S = 900

# Defaults of the pipeline's shard task (kept here as the benchmark's assumptions).
SHARD_SIZE = 250
SHARD_THREADS = 16
TEACHER_CALL_S = 2.0  # a pessimistic Nova Premier answer time for ~60 output tokens
THROTTLE_RATE = 0.30  # share of calls throttled in the pessimistic case
BASE_DELAY_S = 0.5


class SimulatedTeacher:
    """Answers Converse like Bedrock, after ``latency_s`` seconds, with a valid routing answer."""

    def __init__(self, latency_s: float, seed: int = 0) -> None:
        self.latency_s = latency_s
        self._rng = random.Random(seed)

    def converse(self, **params: Any) -> dict[str, Any]:
        time.sleep(self.latency_s)
        visual = round(self._rng.uniform(0.2, 0.8), 2)
        audio = round((1 - visual) / 2, 2)
        text = (
            f'{{"visual":{visual},"audio":{audio},"transcription":0.0,"metadata":{round(1 - visual - audio, 2)},'
            '"reasoning":"Simulated teacher answer."}'
        )
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 400, "outputTokens": 40, "totalTokens": 440},
            "metrics": {"latencyMs": int(self.latency_s * 1000)},
        }


def run(concurrency: int, n_queries: int, latency_s: float) -> tuple[float, int]:
    """Seconds to label ``n_queries`` at ``concurrency`` threads, and how many examples came back."""
    queries = synthesize_queries(DEFAULT_CHANNELS, n_queries, seed=concurrency)
    teacher = SimulatedTeacher(latency_s)
    started = time.perf_counter()
    result = label_queries(
        queries, client=teacher, model_id="simulated-teacher", channels=DEFAULT_CHANNELS, threads=concurrency
    )
    return time.perf_counter() - started, len(result.examples)


def shard_estimate(efficiency: float) -> dict[str, float]:
    """Seconds one shard Lambda needs at the defaults: ideal waves, at the measured thread efficiency, and a
    pessimistic case with 30% throttling (1/(1-p) calls per query, mean full-jitter backoff per retry)."""
    waves = math.ceil(SHARD_SIZE / SHARD_THREADS)
    ideal = waves * TEACHER_CALL_S
    measured = ideal / efficiency
    calls_per_query = 1 / (1 - THROTTLE_RATE)
    backoff_per_query = (calls_per_query - 1) * BASE_DELAY_S / 2
    pessimistic = measured * calls_per_query + waves * backoff_per_query
    return {"waves": waves, "ideal": ideal, "measured": measured, "pessimistic": pessimistic}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulated teacher latency per call")
    parser.add_argument("--queries", type=int, default=20, help="queries per worker thread at each concurrency")
    args = parser.parse_args(argv)
    latency_s = args.latency_ms / 1000.0

    print(f"Simulated teacher: {args.latency_ms:.0f} ms per call; {args.queries} queries per worker thread")
    print()
    header = (
        f"{'concurrency':>11}  {'queries':>7}  {'seconds':>7}  {'examples/s':>10}  {'speedup':>7}  {'efficiency':>10}"
    )
    print(header)
    print("-" * len(header))
    baseline: float | None = None
    efficiency_at: dict[int, float] = {}
    for concurrency in CONCURRENCY:
        n_queries = args.queries * concurrency
        seconds, examples = run(concurrency, n_queries, latency_s)
        rate = examples / seconds
        baseline = baseline or rate
        ideal_rate = concurrency / latency_s
        efficiency_at[concurrency] = rate / ideal_rate
        print(
            f"{concurrency:>11}  {n_queries:>7}  {seconds:>7.2f}  {rate:>10.1f}  {rate / baseline:>6.1f}x"
            f"  {efficiency_at[concurrency]:>9.0%}"
        )

    efficiency = efficiency_at.get(SHARD_THREADS, 1.0)
    estimate = shard_estimate(efficiency)
    print()
    print(
        f"Shard Lambda estimate: {SHARD_SIZE} queries, {SHARD_THREADS} threads, {TEACHER_CALL_S:.0f} s per teacher call"
    )
    rows = [
        (f"ideal ({estimate['waves']:.0f} waves x {TEACHER_CALL_S:.0f} s)", estimate["ideal"], ""),
        (f"at the measured {efficiency:.0%} thread efficiency", estimate["measured"], ""),
        (
            f"pessimistic ({THROTTLE_RATE:.0%} throttled, with backoff)",
            estimate["pessimistic"],
            f"  Lambda limit {LAMBDA_LIMIT_S} s: {'OK' if estimate['pessimistic'] < LAMBDA_LIMIT_S else 'TOO SLOW'}",
        ),
    ]
    for label, seconds, note in rows:
        print(f"  {label:<46} {seconds:7.1f} s{note}")
    sequential_min = 10_000 * TEACHER_CALL_S / 60
    print(
        f"  (10,000 queries one at a time at {TEACHER_CALL_S:.0f} s per call: {sequential_min:.0f} min; "
        "the reference's sequential run took ~90 min)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
