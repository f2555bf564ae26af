"""How long the CPU-bound pipeline steps take at the default sizes (10,000 + 100 examples).

Runs the real domain code of PlanQueries and PrepareDataset in process (S3 I/O excluded), and estimates the
Bedrock-bound steps from the configured concurrency and typical model latencies, to back the README's
"no Lambda needs more than 15 minutes" claim. Usage: ``.venv/bin/python -m benchmarks.pipeline_steps``.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from search_router.pipeline.dataset import LabeledExample, split_heldout, training_jsonl, validate_training_jsonl
from search_router.pipeline.queries.planning import plan_queries
from search_router.shared.channels import DEFAULT_CHANNELS

LAMBDA_LIMIT_S = 900


def main() -> None:
    total = 10_100
    started = time.perf_counter()
    planned = plan_queries(DEFAULT_CHANNELS, n_total=total, seed=42, user=None, mix_user=True)
    plan_s = time.perf_counter() - started

    rng = random.Random(1)
    examples = []
    for query in planned:
        raw = [rng.random() for _ in DEFAULT_CHANNELS.names]
        cents = [round(100 * r / sum(raw)) for r in raw]
        cents[0] += 100 - sum(cents)
        if cents[0] < 0:
            cents = [25, 25, 25, 25]
        weights = {n: c / 100 for n, c in zip(DEFAULT_CHANNELS.names, cents, strict=True)}
        examples.append(LabeledExample(query.text, query.category, query.source, weights, "benchmark reasoning"))
    started = time.perf_counter()
    train, heldout, _ = split_heldout(examples, 100, seed=42)
    text = training_jsonl(train, DEFAULT_CHANNELS)
    report = validate_training_jsonl(text, DEFAULT_CHANNELS)
    prepare_s = time.perf_counter() - started
    assert report.ok, report.errors[:3]

    shard_s = math.ceil(250 / 16) * 2.0  # 250 queries, 16 threads, ~2 s per Nova Premier call
    evaluate_s = math.ceil(100 / 8) * 1.8  # 100 held-out queries, 8 threads, ~1.7 s for the slowest candidate
    rows = [
        ("PlanQueries (measured, 10,100 queries)", plan_s),
        ("PrepareDataset (measured, 10,100 examples)", prepare_s),
        ("LabelShard (estimated, 250 queries x 2 s / 16 threads)", shard_s),
        ("EvaluateCandidate (estimated, 100 queries x 1.8 s / 8 threads)", evaluate_s),
    ]
    print(f"{'step':<66}{'seconds':>9}{'of 900 s':>10}")
    for name, seconds in rows:
        print(f"{name:<66}{seconds:>9.1f}{seconds / LAMBDA_LIMIT_S:>10.1%}")
    print(f"training file: {len(train)} records, {len(text) / 1e6:.1f} MB; held-out: {len(heldout)}")


if __name__ == "__main__":
    main()
