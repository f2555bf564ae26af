"""What the daily drift check costs in compute: reading a window of captured routes (gzip JSON lines, as Firehose
delivers them) and computing the figures against a training set, per 100,000 routes.

Routes and training queries come from the synthesizer's vocabulary (a share of the routes gets an extra word no
training query has), so the vocabulary sizes are realistic. It prints seconds for reading and for the figures,
and microseconds per route; the per-route figure is what holds on a shared machine (the check is one invocation
a day: the question is whether a week of traffic at 1M routes a day fits in the function's timeout). Run::

    PYTHONPATH=lambdas:. .venv/bin/python -m benchmarks.drift [--routes 100000] [--training 15000] [--max-routes N]
"""

from __future__ import annotations

import argparse
import gzip
import random
import time

from search_router.pipeline.dataset import LabeledExample
from search_router.pipeline.drift import DriftSettings, drift_summary, read_routes
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.router.capture import capture_record
from search_router.shared.channels import DEFAULT_CHANNELS

CHANNELS = DEFAULT_CHANNELS.names


def _weights(rng: random.Random) -> dict[str, float]:
    raw = [rng.random() for _ in CHANNELS]
    return {c: v / sum(raw) for c, v in zip(CHANNELS, raw, strict=True)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=100_000)
    parser.add_argument("--training", type=int, default=15_000)
    parser.add_argument("--max-routes", type=int, default=None, help="drift_max_records (default: keep all)")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    queries = [q.text for q in synthesize_queries(DEFAULT_CHANNELS, args.training + 2_000, seed=7)]
    training = [
        LabeledExample(query=q, category="", source="user", weights=_weights(rng), reasoning=None)
        for q in queries[: args.training]
    ]
    sources = ["model", "micro", "micro", "cache", "fallback_model", "default"]
    lines = b"".join(
        capture_record(
            query=rng.choice(queries) + (f" novel{rng.randrange(500)}" if rng.random() < 0.1 else ""),
            weights=_weights(rng),
            source=rng.choice(sources),
            model="m",
            latency_ms=1.0,
            timestamp=0,
        )
        for _ in range(args.routes)
    )
    objects = [("captured/raw/2026-11-30/a", gzip.compress(lines))]
    started = time.perf_counter()
    routes = read_routes(objects, CHANNELS, max_routes=args.max_routes)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = drift_summary(routes.routes, training, CHANNELS, DriftSettings(min_records=1, micro_router_promoted=True))
    figures_s = time.perf_counter() - started
    per_route = (read_s + figures_s) / args.routes * 1e6
    print(f"routes {args.routes:,}, training {args.training:,}, vocabulary {summary['training_vocabulary']:,}")
    print(f"read {read_s:.2f} s, figures {figures_s:.2f} s: {per_route:.1f} µs per route")
    unseen, shift = summary["unseen_vocabulary"]["share"], summary["dominant_channel_shift"]["value"]
    print(f"unseen share {unseen:.3f}, shift {shift:.3f}")


if __name__ == "__main__":
    main()
