"""The micro-router at the default sizes, on synthesized data: training time and artifact size, load time,
pure-Python predict latency, held-out quality per split against the teacher, and the τ the cascade would use.

Everything is **synthetic**: the queries are the synthesizer's (PlanQueries with the run defaults: 10,000 training
+ 100 held-out, 30% of the held-out from templates reserved from training), labeled by the simulation's teacher
(``simulation.models.SimulatedModels``, the one ``make simulate`` uses), and the "distilled model" is the
simulation's too. The figures say how the code behaves, not how a real teacher's labels generalize.

The calibration groups, side by side: the micro-router trained as the pipeline trains it now (the examples carry
their templates, from PrepareDataset's groups file: the confidence is fitted on whole templates the weights never
saw) and as it was trained before (the training file alone: each query its own group, so the calibration slice
shares its templates with the fit). Same training set, same held-out set: per split, the micro-router's MAE, the mean
confidence against the observed agreement (mean absolute error <= the tolerance), the expected calibration error
over 10 bins, and at the τ each one gets the share answered and the MAE of what it answered; the reliability bins
of ``unseen_template``.
Usage: ``.venv/bin/python -m benchmarks.micro_router [--train 10000 --heldout 100 --share 0.3 --seed 42]``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_router.pipeline.cascade import CascadeItem, choose_tau
from search_router.pipeline.dataset import (
    HELDOUT_SPLITS,
    UNSEEN_TEMPLATE,
    HeldOutSplit,
    LabeledExample,
    split_heldout_for_run,
)
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


def _calibration(rows: list[tuple[float, bool]], bins: int = 10) -> tuple[float, float, float]:
    """(mean confidence, observed agreement, expected calibration error over ``bins`` equal-width bins) of
    (confidence, agreed) pairs."""
    by_bin: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for confidence, agreed in rows:
        by_bin[min(bins - 1, int(confidence * bins))].append((confidence, agreed))
    ece = math.fsum(
        len(group) * abs(statistics.fmean(c for c, _ in group) - statistics.fmean(a for _, a in group))
        for group in by_bin.values()
    ) / len(rows)
    return statistics.fmean(c for c, _ in rows), statistics.fmean(a for _, a in rows), ece


def _reliability(rows: list[tuple[float, bool]], edges: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> str:
    """``[low, high): n, mean confidence -> agreement`` per bin with queries."""
    parts = []
    for low, high in itertools.pairwise(edges):
        group = [(c, a) for c, a in rows if low <= c < high or (high == edges[-1] and c == high)]
        if group:
            mean_c = statistics.fmean(c for c, _ in group)
            parts.append(
                f"[{low:.1f},{high:.1f}) n={len(group)} {mean_c:.2f}->{statistics.fmean(a for _, a in group):.2f}"
            )
    return "; ".join(parts)


def _items(model: MicroRouter, split: HeldOutSplit, distilled: list[dict[str, float] | None]) -> list[CascadeItem]:
    items = []
    for example, name, answer in zip(split.heldout, split.splits, distilled, strict=True):
        prediction = model.predict(example.query)
        items.append(CascadeItem(name, example.weights, prediction.weights, prediction.confidence, answer))
    return items


def _compare_groupings(models: dict[str, MicroRouter], split: HeldOutSplit, distilled: list[Any]) -> None:
    """The calibration each grouping gives, per split, and what the cascade gets from it at its own τ."""
    print(
        "calibration groups, side by side (same training set, same held-out set; agreement = MAE <= tolerance; "
        "the calibration slice is never fitted, so whole templates there are templates the weights lack):"
    )
    header = f"  {'grouping':<11}{'split':<17}{'n':>5}{'MAE':>7}{'mean conf':>11}{'agreement':>11}{'ECE':>7}"
    print(f"{header}{'tau':>8}{'answered':>10}{'MAE answered':>14}")
    reliability: dict[str, str] = {}
    for grouping, model in models.items():
        items = _items(model, split, distilled)
        choice = choose_tau(items, NAMES, metric="rubric", margin=0.1)
        tolerance = model.calibration.tolerance
        info = model.training
        print(
            f"  {grouping}: {info['examples']} fitted + {info['calibration_examples']} calibration examples in "
            f"{info['calibration_group_count']} groups"
        )
        for name in [*HELDOUT_SPLITS, "overall"]:
            chosen = [i for i in items if name in (i.split, "overall")]
            if not chosen:
                continue
            errors = [_mae(dict(i.micro), dict(i.reference)) for i in chosen]
            rows = [(i.confidence, error <= tolerance) for i, error in zip(chosen, errors, strict=True)]
            mean_c, agreement, ece = _calibration(rows)
            answered = [_mae(dict(i.micro), dict(i.reference)) for i in chosen if i.confidence >= choice.tau]
            tau = f"{choice.tau:.3f}" if choice.enabled else "none"
            mae = f"{statistics.fmean(answered):.3f}" if answered else "-"
            print(
                f"  {grouping:<11}{name:<17}{len(chosen):>5}{statistics.fmean(errors):>7.3f}{mean_c:>11.3f}"
                f"{agreement:>11.3f}{ece:>7.3f}"
                f"{tau:>8}{len(answered) / len(chosen):>10.0%}{mae:>14}"
            )
            if name == UNSEEN_TEMPLATE:
                reliability[grouping] = _reliability(rows)
    print(f"reliability on {UNSEEN_TEMPLATE} (confidence bin: n, mean confidence -> observed agreement):")
    for grouping, line in reliability.items():
        print(f"  {grouping:<11}{line}")


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
    # As before the groups file: the training file's examples have no template, each query is its own group.
    by_queries = train_micro_router([replace(e, template=None) for e in split.train], NAMES)
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

    distilled: list[dict[str, float] | None] = []
    for example in split.heldout:
        parsed = parse_routing_answer(simulated.distilled_answer(example.query), DEFAULT_CHANNELS)
        distilled.append(dict(parsed.decision.weights) if parsed.ok else None)
    items = _items(model, split, distilled)
    per_split: dict[str, list[tuple[float, int, float, int]]] = defaultdict(list)
    for item, answer in zip(items, distilled, strict=True):
        reference = dict(item.reference)
        per_split[item.split].append(
            (
                _mae(dict(item.micro), reference),
                rubric_score(dict(item.micro), reference, NAMES),
                _mae(answer, reference) if answer else math.nan,
                rubric_score(answer, reference, NAMES),
            )
        )
    choice = choose_tau(items, NAMES, metric="rubric", margin=0.1)

    info = trained.training
    print("micro-router benchmark (SYNTHETIC data: synthesizer queries, simulated teacher and distilled model)")
    print(
        f"training: {info['examples']} examples + {info['calibration_examples']} calibration "
        f"({info['calibration_group_count']} {info['calibration_groups']}), "
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
    _compare_groupings(
        {info["calibration_groups"]: model, by_queries.training["calibration_groups"]: by_queries}, split, distilled
    )


if __name__ == "__main__":
    main()
