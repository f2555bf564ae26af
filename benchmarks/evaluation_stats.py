"""How long the evaluation's statistics take: the pure-Python bootstrap (pipeline/stats.py) and the fusion-impact
metric (pipeline/fusion.py) at held-out sizes of a few hundred queries.

Prints the median and the range of ``--rounds`` runs per figure, and, for the bootstrap, the ratio to the same
resampling written with numpy (the report function has numpy; the domain module stays dependency-free, and the
ratio says what that costs on this machine). Usage: ``.venv/bin/python -m benchmarks.evaluation_stats
[--resamples 1000 --rounds 5]``.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from search_router.pipeline.fusion import FusionItem, drawn_lists, fusion_impact
from search_router.pipeline.stats import Direction, bootstrap_mean, non_inferiority, paired_difference
from search_router.shared.channels import DEFAULT_CHANNELS

NAMES = DEFAULT_CHANNELS.names


def _timed(call: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def _row(label: str, times: list[float], extra: str = "") -> None:
    print(f"| {label} | {statistics.median(times):.1f} ms ({min(times):.1f}-{max(times):.1f}) | {extra} |")


def _numpy_bootstrap(values: list[float], resamples: int, seed: int) -> tuple[float, float]:
    import numpy as np

    data = np.asarray(values)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _weights(rng: random.Random) -> dict[str, float]:
    raw = [rng.random() + 0.01 for _ in NAMES]
    return {name: value / sum(raw) for name, value in zip(NAMES, raw, strict=True)}


def _noisy(weights: dict[str, float], rng: random.Random, spread: float) -> dict[str, float]:
    moved = {name: max(0.0, value + rng.gauss(0.0, spread)) for name, value in weights.items()}
    total = sum(moved.values()) or 1.0
    return {name: value / total for name, value in moved.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resamples", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(42)
    print(f"{args.resamples} resamples, median (min-max) of {args.rounds} rounds\n")
    print("| figure | time | note |\n|---|---|---|")
    for n in (100, 300, 1_000):
        scores = [float(rng.randint(1, 5)) for _ in range(n)]
        pure = _timed(functools.partial(bootstrap_mean, scores, resamples=args.resamples, seed=1), args.rounds)
        vectorized = _timed(functools.partial(_numpy_bootstrap, scores, args.resamples, 1), args.rounds)
        ratio = statistics.median(pure) / statistics.median(vectorized)
        _row(f"bootstrap_mean, {n} values", pure, f"{ratio:.1f}x numpy's {statistics.median(vectorized):.1f} ms")
    keys = [f"q{i}" for i in range(300)]
    candidate = {key: float(rng.randint(1, 5)) for key in keys}
    baseline = {key: min(5.0, max(1.0, value + rng.choice((-1, 0, 0, 1)))) for key, value in candidate.items()}

    def decide() -> None:
        paired = paired_difference(candidate, baseline, resamples=args.resamples, seed=1)
        non_inferiority(paired, metric="rubric_mean", margin=0.2, direction=Direction.HIGHER_IS_BETTER)

    _row("paired_difference + non_inferiority, 300 pairs", _timed(decide, args.rounds))
    source = drawn_lists(NAMES)
    for n in (100, 300):
        items = []
        for i in range(n):
            teacher = _weights(rng)
            items.append(FusionItem(f"query {i}", _noisy(teacher, rng, 0.05), teacher))
        impact = fusion_impact(items, source, resamples=args.resamples)
        figure = impact.mean_overlap
        note = (
            f"default shape, candidate = teacher + N(0, 0.05): mean overlap@10 {figure.estimate:.3f} "
            f"[{figure.low:.3f}, {figure.high:.3f}], share changed > 3: {impact.share_changed.estimate:.2f}"
        )
        _row(
            f"fusion_impact, {n} queries",
            _timed(functools.partial(fusion_impact, items, source, resamples=args.resamples), args.rounds),
            note,
        )


if __name__ == "__main__":
    main()
