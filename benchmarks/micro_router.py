"""The micro-router at the default sizes, on synthesized data: training time and artifact size, load time,
pure-Python predict latency, held-out quality per split against the teacher, and the τ the cascade would use.

Everything is **synthetic**: the queries are the synthesizer's (PlanQueries with the run defaults: 10,000 training
+ 100 held-out, 30% of the held-out from templates reserved from training), labeled by the simulation's teacher
(``simulation.models.SimulatedModels``, the one ``make simulate`` uses), and the "distilled model" is the
simulation's too. The figures say how the code behaves, not how a real teacher's labels generalize.
Usage: ``.venv/bin/python -m benchmarks.micro_router [--train 10000 --heldout 100 --share 0.3 --seed 42]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_router.pipeline.cascade import CascadeItem, choose_tau
from search_router.pipeline.dataset import HELDOUT_SPLITS, LabeledExample, split_heldout_for_run
from search_router.pipeline.metrics import percentile, rubric_score
from search_router.pipeline.micro_router_training import train_micro_router
from search_router.pipeline.queries.planning import plan_queries, unseen_template_queries
from search_router.pipeline.queries.query import normalize_query
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.micro_router import MicroRouter
from simulation.models import SimulatedModels

NAMES = DEFAULT_CHANNELS.names
PREDICT_ROUNDS = 20


def _mae(pred: dict[str, float], ref: dict[str, float]) -> float:
    return math.fsum(abs(pred[n] - ref[n]) for n in NAMES) / len(NAMES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10_000, help="training examples (num_examples)")
    parser.add_argument("--heldout", type=int, default=100, help="held-out examples (eval_examples)")
    parser.add_argument("--share", type=float, default=0.3, help="heldout_unseen_template_share")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    n_unseen = unseen_template_queries(args.heldout, args.share)
    planned = plan_queries(
        DEFAULT_CHANNELS,
        n_total=args.train + args.heldout,
        seed=args.seed,
        user=None,
        mix_user=True,
        unseen_heldout=n_unseen,
    )
    simulated = SimulatedModels(
        DEFAULT_CHANNELS,
        teacher_model_ids=(),
        seed=args.seed,
        categories={normalize_query(q.text): q.category for q in planned},
    )
    examples = [
        LabeledExample(q.text, q.category, q.source, simulated.teacher_weights(q.text), None, q.template)
        for q in planned
    ]
    split = split_heldout_for_run(
        examples, DEFAULT_CHANNELS, args.heldout, seed=args.seed, unseen_template_share=args.share
    )

    started = time.perf_counter()
    trained = train_micro_router(split.train, NAMES)
    train_s = time.perf_counter() - started
    artifact = trained.to_bytes()
    started = time.perf_counter()
    model = MicroRouter.from_bytes(artifact)
    load_ms = (time.perf_counter() - started) * 1000

    queries = [e.query for e in split.heldout]
    timings_us: list[float] = []
    for _ in range(PREDICT_ROUNDS):
        for query in queries:
            began = time.perf_counter_ns()
            model.predict(query)
            timings_us.append((time.perf_counter_ns() - began) / 1000)

    items: list[CascadeItem] = []
    per_split: dict[str, list[tuple[float, int, float, int]]] = defaultdict(list)
    for example, name in zip(split.heldout, split.splits, strict=True):
        prediction = model.predict(example.query)
        parsed = parse_routing_answer(simulated.distilled_answer(example.query), DEFAULT_CHANNELS)
        distilled = dict(parsed.decision.weights) if parsed.ok else None
        items.append(CascadeItem(name, example.weights, prediction.weights, prediction.confidence, distilled))
        per_split[name].append(
            (
                _mae(prediction.weights, example.weights),
                rubric_score(prediction.weights, example.weights, NAMES),
                _mae(distilled, example.weights) if distilled else math.nan,
                rubric_score(distilled, example.weights, NAMES),
            )
        )
    choice = choose_tau(items, NAMES, metric="rubric", margin=0.1)

    info = trained.training
    print("micro-router benchmark (SYNTHETIC data: synthesizer queries, simulated teacher and distilled model)")
    print(
        f"training: {info['examples']} examples + {info['calibration_examples']} calibration, "
        f"{info['features']} features, {info['epochs']} epochs: {train_s:.1f} s (numpy)"
    )
    print(f"artifact: {len(artifact) / 1e6:.2f} MB; load {load_ms:.1f} ms")
    print(
        f"predict (pure Python, {len(timings_us)} calls): p50 {percentile(timings_us, 50):.0f} us, "
        f"p99 {percentile(timings_us, 99):.0f} us"
    )
    print(f"held-out per split ({len(split.heldout)} queries; withheld {split.withheld}):")
    print(f"  {'split':<17}{'n':>5}{'micro MAE':>11}{'micro rubric':>14}{'distilled MAE':>15}{'distilled rubric':>18}")
    for name in HELDOUT_SPLITS:
        rows = per_split.get(name)
        if not rows:
            continue
        micro_mae, micro_rubric, model_mae, model_rubric = (statistics.fmean(col) for col in zip(*rows, strict=True))
        print(
            f"  {name:<17}{len(rows):>5}{micro_mae:>11.3f}{micro_rubric:>14.2f}{model_mae:>15.3f}{model_rubric:>18.2f}"
        )
    tau = f"{choice.tau:.3f}" if choice.enabled else "none (the model alone)"
    print(
        f"tau (rubric within {choice.margin} of the distilled model on the hardest split, {choice.split}): {tau}; "
        f"answered by the micro-router: {choice.answered_share:.0%} of {choice.split}, "
        f"{choice.answered_share_overall:.0%} overall"
    )


if __name__ == "__main__":
    main()
