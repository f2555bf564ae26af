"""Labeling throughput: how much the bounded thread pool buys over the reference's sequential labeling, and what
the teacher's quota does to it.

1. Throughput. A simulated teacher answers every Converse call with a valid routing JSON after a fixed latency
   (``time.sleep``, so the threads really wait, as on network I/O).
   :func:`search_router.pipeline.labeling.label_queries` runs over ``queries-per-worker x concurrency`` queries at each
   concurrency, with the label shard's adaptive limiter (its slow start from 2 calls in flight is part of the figures);
   the table shows throughput and the speed-up over one thread. From the measured efficiency at the shard's thread
   count it then estimates one shard Lambda's duration at the default sizes, for the README's "no Lambda needs more
   than 15 minutes" claim.
2. Quota. The default run's shape — a Map of ``--shards`` shards of 250 queries, 10 at a time, 16 threads each:
   160 calls configured in flight — against a teacher whose requests-per-minute quota (``--rpm``, 250) is
   enforced over all shards (:class:`simulation.quota.RequestQuota`, a token bucket) and answered like Bedrock
   (``ThrottlingException``, HTTP 429, as botocore raises it). The real ``label_queries`` (retries, backoff,
   throttle budget, deadline) runs once with every thread calling (fixed concurrency, the old behaviour) and once
   with the AIMD limiter (:class:`search_router.pipeline.concurrency.AdaptiveConcurrency`, what the label shard uses),
   each shard with its own. Time is simulated: every wait (teacher latency, backoff, the quota's clock, the Lambda
   deadline) runs ``--time-scale`` times faster than it says, so 20 simulated minutes take ~15 s. Printed: the share of
   queries dropped (their retries ran out, or left at the deadline or the throttle budget), the share of calls
   throttled, and the simulated wall time, with the adaptive run's ratios to the fixed one.

Run from the repository root::

    .venv/bin/python -m benchmarks.labeling_throughput [--latency-ms 200] [--queries 20]
    .venv/bin/python -m benchmarks.labeling_throughput --quota-only [--rpm 250] [--shards 20] [--time-scale 0.01]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))
sys.path.insert(1, str(ROOT))

import boto3  # noqa: E402 - after the path set-up, like the project's imports

from search_router.adapters.converse import BedrockConverse  # noqa: E402
from search_router.handlers.label_shard import MAX_THROTTLE_RETRIES, SAFETY_MARGIN_S  # noqa: E402
from search_router.pipeline.concurrency import AdaptiveConcurrency, ConcurrencyLimiter, FixedConcurrency  # noqa: E402
from search_router.pipeline.labeling import LabelingResult, label_queries  # noqa: E402
from search_router.pipeline.queries.synthesis import synthesize_queries  # noqa: E402
from search_router.shared.channels import DEFAULT_CHANNELS  # noqa: E402
from simulation.quota import RequestQuota  # noqa: E402

CONCURRENCY = (1, 4, 8, 16, 32)
LAMBDA_LIMIT_S = 900

# Defaults of the pipeline's shard task (kept here as the benchmark's assumptions).
SHARD_SIZE = 250
SHARD_THREADS = 16
TEACHER_CALL_S = 2.0  # a pessimistic Nova Premier answer time for ~60 output tokens
THROTTLE_RATE = 0.30  # share of calls throttled in the pessimistic case
BASE_DELAY_S = 0.5

# The quota case: the deployed defaults (cdk.json) and the label shard's own limits.
MAP_CONCURRENCY = 10
THROTTLE_BUDGET_S = 240.0
THROTTLED_ANSWER_S = 0.1  # a 429 comes back quickly


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
        queries,
        teacher=BedrockConverse(teacher),
        model_id="simulated-teacher",
        channels=DEFAULT_CHANNELS,
        threads=concurrency,
        limiter=AdaptiveConcurrency(concurrency),  # what the label shard uses: its slow start is in the figures
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


# ---------------------------------------------------------------------------------------------------------
# The quota case
# ---------------------------------------------------------------------------------------------------------
class ScaledTime:
    """Simulated seconds that pass ``scale`` times faster than real ones: ``now()`` and ``sleep()`` in simulated
    seconds. Real threads really wait (scaled), so the real thread pools, locks and limiter run as they would."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._start = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._start) / self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self.scale)


class QuotaTeacher:
    """Answers Converse like Bedrock under a shared quota: an admitted call answers after ~``latency_s`` (uniform
    within ±25%), a refused one raises the modelled ``ThrottlingException`` (HTTP 429) after 0.1 s."""

    def __init__(self, quota: RequestQuota, clock: ScaledTime, latency_s: float, seed: int = 0) -> None:
        self.quota = quota
        self.clock = clock
        self.latency_s = latency_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._answer = SimulatedTeacher(0.0)
        # The exception class botocore builds from the service model (no request is ever sent).
        runtime = boto3.session.Session().client(
            "bedrock-runtime",
            region_name="us-east-1",
            aws_access_key_id="benchmark",
            aws_secret_access_key="benchmark",  # never used: no request leaves the process
        )
        self._throttling = runtime.exceptions.ThrottlingException

    def converse(self, **params: Any) -> dict[str, Any]:
        if not self.quota.admit():
            self.clock.sleep(THROTTLED_ANSWER_S)
            error = {"Code": "ThrottlingException", "Message": "Too many requests, please wait before trying again."}
            raise self._throttling({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 429}}, "Converse")
        with self._lock:
            latency = self.latency_s * self._rng.uniform(0.75, 1.25)
        self.clock.sleep(latency)
        return self._answer.converse(**params)


@dataclass
class QuotaRun:
    label: str
    queries: int
    labeled: int
    calls: int
    throttled: int
    wall_s: float
    mean_in_flight: float
    dropped_by: dict[str, int]

    @property
    def dropped(self) -> int:
        return self.queries - self.labeled

    @property
    def dropped_share(self) -> float:
        return self.dropped / self.queries

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.calls if self.calls else 0.0


def quota_run(
    label: str, adaptive: bool, *, shards: int, rpm: float, burst_s: float, scale: float, seed: int
) -> QuotaRun:
    """One labeling stage: ``shards`` shards of :data:`SHARD_SIZE`, :data:`MAP_CONCURRENCY` at a time, each a
    label shard's ``label_queries`` (its limits, its deadline) with a limiter of its own."""
    clock = ScaledTime(scale)
    quota = RequestQuota(rpm, burst_s=burst_s, clock=clock.now)
    teacher = QuotaTeacher(quota, clock, TEACHER_CALL_S, seed=seed)
    results: list[LabelingResult] = []
    lock = threading.Lock()
    in_flight_seconds = [0.0]

    def shard(index: int) -> None:
        queries = synthesize_queries(DEFAULT_CHANNELS, SHARD_SIZE, seed=seed * 1000 + index)
        limiter: ConcurrencyLimiter = (
            AdaptiveConcurrency(SHARD_THREADS, clock=clock.now)
            if adaptive
            else FixedConcurrency(SHARD_THREADS, clock=clock.now)
        )
        started = clock.now()
        result = label_queries(
            queries,
            teacher=BedrockConverse(teacher),
            model_id="simulated-teacher",
            channels=DEFAULT_CHANNELS,
            threads=SHARD_THREADS,
            base_delay_s=BASE_DELAY_S,
            max_throttle_retries=MAX_THROTTLE_RETRIES,
            throttle_budget_s=THROTTLE_BUDGET_S,
            deadline=started + LAMBDA_LIMIT_S - SAFETY_MARGIN_S,
            clock=clock.now,
            sleep=clock.sleep,
            rng=random.Random(seed * 1000 + index),
            limiter=limiter,
            limiter_poll_s=max(0.005, 2.0 * scale),
        )
        with lock:
            results.append(result)
            in_flight_seconds[0] += (result.concurrency.get("mean_in_flight") or 0.0) * (clock.now() - started)

    with ThreadPoolExecutor(max_workers=MAP_CONCURRENCY, thread_name_prefix="shard") as pool:
        list(pool.map(shard, range(shards)))
    wall = clock.now()
    dropped_by: dict[str, int] = {}
    for result in results:
        for code, n in result.errors.items():
            cause = f"{code} after {MAX_THROTTLE_RETRIES} retries"
            dropped_by[cause] = dropped_by.get(cause, 0) + n
        for reason, n in result.unlabeled_by_reason.items():
            cause = f"unlabeled ({reason})"
            dropped_by[cause] = dropped_by.get(cause, 0) + n
    return QuotaRun(
        label=label,
        queries=shards * SHARD_SIZE,
        labeled=sum(len(r.examples) for r in results),
        calls=sum(r.calls for r in results),
        throttled=sum(r.throttled for r in results),
        wall_s=wall,
        mean_in_flight=in_flight_seconds[0] / wall if wall > 0 else 0.0,
        dropped_by=dropped_by,
    )


def print_quota_case(*, rpm: float, shards: int, burst_s: float, scale: float, seed: int) -> tuple[QuotaRun, QuotaRun]:
    configured = MAP_CONCURRENCY * SHARD_THREADS
    print(
        f"Quota: {rpm:.0f} requests/min over all shards (token bucket, {burst_s:.0f} s burst), throttling answered "
        f"like Bedrock (ThrottlingException, 429); {shards} shards x {SHARD_SIZE} queries, {MAP_CONCURRENCY} at a "
        f"time x {SHARD_THREADS} threads = {configured} calls configured in flight; ~{TEACHER_CALL_S:.0f} s a call "
        f"(~{rpm / 60 * TEACHER_CALL_S:.0f} in flight fit the quota); simulated time x{1 / scale:.0f}"
    )
    print()
    runs = (
        quota_run("fixed (every thread calls)", False, shards=shards, rpm=rpm, burst_s=burst_s, scale=scale, seed=seed),
        quota_run("adaptive (AIMD per shard)", True, shards=shards, rpm=rpm, burst_s=burst_s, scale=scale, seed=seed),
    )
    header = (
        f"{'concurrency':<27}  {'dropped':>8}  {'throttled':>9}  {'wall (sim.)':>11}  {'labeled/min':>11}  "
        f"{'slots used':>10}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run.label:<27}  {run.dropped_share:>8.2%}  {run.throttled_share:>9.1%}  "
            f"{run.wall_s / 60:>7.1f} min  {run.labeled / (run.wall_s / 60):>11.0f}  {run.mean_in_flight:>10.1f}"
        )
    fixed, adaptive = runs
    print(
        f"  (dropped: share of queries not labeled; throttled: share of calls answered 429; slots used: mean calls "
        f"in flight or backing off, over all shards; {fixed.queries} queries at {rpm:.0f}/min take at least "
        f"{fixed.queries / rpm:.1f} min)"
    )
    print()
    for run in runs:
        causes = ", ".join(f"{n} {cause}" for cause, n in sorted(run.dropped_by.items())) or "none"
        print(f"  {run.label}: {run.dropped} of {run.queries} queries dropped ({causes})")
    print(
        f"  adaptive / fixed: wall time x{adaptive.wall_s / fixed.wall_s:.2f}, labeled x"
        f"{adaptive.labeled / max(1, fixed.labeled):.2f}, wall time per labeled query "
        f"x{(adaptive.wall_s / max(1, adaptive.labeled)) / (fixed.wall_s / max(1, fixed.labeled)):.2f}; "
        f"target: dropped <= 0.5% ({'met' if adaptive.dropped_share <= 0.005 else 'NOT met'})"
    )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulated teacher latency per call")
    parser.add_argument("--queries", type=int, default=20, help="queries per worker thread at each concurrency")
    parser.add_argument("--quota-only", action="store_true", help="only the quota case")
    parser.add_argument("--no-quota", action="store_true", help="skip the quota case")
    parser.add_argument("--rpm", type=float, default=250.0, help="the teacher's requests-per-minute quota")
    parser.add_argument("--burst-s", type=float, default=10.0, help="seconds of quota the bucket can hold")
    parser.add_argument("--shards", type=int, default=20, help=f"shards of {SHARD_SIZE} queries in the quota case")
    parser.add_argument("--time-scale", type=float, default=0.01, help="real seconds per simulated second")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quota_only:
        print_quota_case(rpm=args.rpm, shards=args.shards, burst_s=args.burst_s, scale=args.time_scale, seed=args.seed)
        return 0
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
    if not args.no_quota:
        print()
        print_quota_case(rpm=args.rpm, shards=args.shards, burst_s=args.burst_s, scale=args.time_scale, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
