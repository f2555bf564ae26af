"""``python -m simulation`` (``make simulate``): the whole pipeline locally, against a SIMULATED Bedrock."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.padding import Padding

from cli.text import console, show, table
from search_router.pipeline.queries.planning import MAX_JUDGED_HELDOUT
from search_router.pipeline.report import fmt_ms, teacher_text
from simulation.captured import CapturedFileError, firehose_object
from simulation.models import SIMULATED
from simulation.runner import (
    DEFAULT_EVAL,
    DEFAULT_EXAMPLES,
    DEFAULT_HELDOUT_QUERIES,
    DEFAULT_MIN_NEW_QUERIES,
    DEFAULT_SHARD_SIZE,
    DEFAULT_TIME_SCALE,
    RetrainingSkipped,
    SimulationFailed,
    SimulationOptions,
    SimulationResult,
    run_simulation,
)

RULE = "=" * 100


def _bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low}..{high}, got {value}")
        return value

    return parse


def _scale(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulation",
        description=(
            "Run the whole distillation pipeline on this machine: the synthesized state machine in moto's Step "
            "Functions interpreter, the real Lambda handlers, and a SIMULATED Amazon Bedrock (deterministic "
            "stand-in models). Writes a report labelled SIMULATED, its charts and the dataset manifest. "
            "No AWS account is used."
        ),
    )
    p.add_argument("--examples", type=_bounded(100, 15_000), default=DEFAULT_EXAMPLES, help="training examples")
    p.add_argument("--eval", type=_bounded(10, 1_000), default=DEFAULT_EVAL, help="held-out examples")
    p.add_argument("--seed", type=_bounded(0, 2**31 - 1), default=None, help="query seed (default: the stack's)")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: ./out)")
    p.add_argument("--shard-size", type=_bounded(10, 5_000), default=DEFAULT_SHARD_SIZE, help="queries per shard")
    p.add_argument(
        "--time-scale",
        type=_scale,
        default=DEFAULT_TIME_SCALE,
        help="share of each simulated model latency slept for real (the rest goes on a virtual clock; 0: none)",
    )
    p.add_argument(
        "--captured",
        type=Path,
        default=None,
        metavar="FILE",
        help="routed queries (.jsonl captured records or {query, count} lines, or .txt one query per line; .gz ok): "
        "deliver them as yesterday's captured traffic, compact them and run the scheduled retraining on them",
    )
    p.add_argument(
        "--min-new-queries",
        type=_bounded(1, 1_000_000),
        default=DEFAULT_MIN_NEW_QUERIES,
        help=f"with --captured: retrain_min_new_queries (default {DEFAULT_MIN_NEW_QUERIES})",
    )
    p.add_argument(
        "--heldout-queries",
        type=_bounded(0, 989),
        default=DEFAULT_HELDOUT_QUERIES,
        help=f"with --captured: retrain_heldout_queries, the production held-out sample (default "
        f"{DEFAULT_HELDOUT_QUERIES})",
    )
    return p


def banner(out: TextIO) -> None:
    out.write(
        f"{RULE}\n"
        f" {SIMULATED} RUN: Amazon Bedrock is replaced by deterministic simulated models (simulation/models.py).\n"
        " The state machine, handlers, dataset, metrics, gate and report are the real code, run locally in moto.\n"
        " No AWS account is used; latencies, scores and costs below are illustrative, NOT measurements.\n"
        f"{RULE}\n"
    )


def _fmt(value: Any, pattern: str, na: str = "n/a") -> str:
    return na if value is None else format(value, pattern)


def summary(result: SimulationResult, out: TextIO) -> None:
    report = result.report
    gate = report.get("gate") or {}
    verdict = "PASSED" if gate.get("passed") else "FAILED"
    out.write(f"\n{SIMULATED} results (run {result.run_id}, execution {result.status}):\n")
    if report.get("teacher"):
        out.write(f"  teacher: {teacher_text(report['teacher'])}\n")
    rows = []
    for candidate in report.get("candidates", []):
        m = candidate.get("metrics", {})
        latency = m.get("latency") or {}
        rows.append(
            [
                candidate["name"],
                _fmt((candidate.get("judge") or {}).get("score"), ".2f"),
                _fmt(m.get("rubric_mean"), ".2f"),
                _fmt(m.get("mae_overall"), ".3f"),
                _fmt(m.get("valid_json_rate"), ".1%"),
                f"{fmt_ms(latency.get('mean'))} ms",
                f"{fmt_ms(latency.get('p95'))} ms",
            ]
        )
    headers = ["candidate", "judge*", "rubric", "MAE", "valid JSON", "latency mean*", "p95*"]
    show(console(out), Padding(table(headers, rows, right=range(1, 7)), (0, 0, 0, 2), expand=False))
    out.write("  * simulated: judge = deterministic rubric, latency = assumed distribution on a virtual clock\n")
    for failure in gate.get("failures", []) or []:
        out.write(f"  gate failure: {failure}\n")
    out.write(f"  quality gate: {verdict}")
    model = (result.promoted_model or {}).get("model_id")
    if gate.get("passed") and model:
        out.write(f"; the router's model parameter now names the (simulated) deployment\n    {model}\n")
    else:
        out.write("\n")
    for note in result.notifications:
        out.write(f"  notification: {note['subject']}\n")
    out.write(f"\nWrote {SIMULATED} outputs to {result.files['report.md'].parent}/:\n")
    for name in sorted(result.files):
        out.write(f"  {result.files[name]}\n")


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    if args.eval >= args.examples:
        parser().error("--eval must be smaller than --examples")
    if args.captured is not None:
        if args.heldout_queries >= args.min_new_queries:
            parser().error("--heldout-queries must be smaller than --min-new-queries (the rest of the new ones train)")
        if args.heldout_queries + args.eval > MAX_JUDGED_HELDOUT:
            parser().error(f"--heldout-queries plus --eval must be at most {MAX_JUDGED_HELDOUT} (one judge job)")
        try:
            firehose_object(args.captured)  # before the synth: a file that cannot be used fails in a second
        except CapturedFileError as unusable:
            parser().error(f"--captured: {unusable}")
    out = out or sys.stdout
    started = time.perf_counter()
    banner(out)
    options = SimulationOptions(
        examples=args.examples,
        eval_examples=args.eval,
        seed=args.seed,
        out_dir=args.out,
        shard_size=args.shard_size,
        time_scale=args.time_scale,
        captured=args.captured,
        min_new_queries=args.min_new_queries,
        heldout_queries=args.heldout_queries,
    )

    def say(message: str) -> None:
        out.write(message + "\n")
        out.flush()

    try:
        result = run_simulation(options, stream=out, say=say)
    except SimulationFailed as failed:
        summary(failed.result, out)
        out.write(f"\n{SIMULATED} run FAILED: {failed}\n")
        return 1
    except RetrainingSkipped as skipped:
        out.write(f"\nThe scheduled retraining started no run: {skipped}\n")
        return 1
    summary(result, out)
    out.write(
        f"\nDone in {time.perf_counter() - started:.1f} s wall time (synth {result.synth_s:.1f} s, execution "
        f"{result.run_s:.1f} s). Open {result.files['report.html']} (or report.md) — every number in it is "
        f"{SIMULATED}.\n"
    )
    return 0
