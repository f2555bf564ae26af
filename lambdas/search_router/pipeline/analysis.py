"""How sure the report's numbers are, what a weight error does to search, and where a candidate goes wrong.

Built on :mod:`search_router.pipeline.stats` (seeded bootstrap, paired difference, non-inferiority) and
:mod:`search_router.pipeline.fusion` (overlap@10 of the fused rankings), from a candidate's per-query
:class:`~search_router.pipeline.metrics.QueryResult` list, with the report's own definitions
(:mod:`search_router.pipeline.metrics`):

- :func:`per_query_values`: each query's value of every interval metric (the mean of these values over the
  candidate's queries is the metric :func:`~search_router.pipeline.metrics.compute_metrics` reports):
  ``rubric_mean`` (1-5, every query), ``mae_overall`` (a schema-valid answer's mean absolute error; None
  otherwise: excluded and counted), ``dominant_accuracy`` and ``valid_json_rate`` (1 or 0, every query),
  ``latency_mean_ms`` (answered calls), ``overlap_at_10`` (the fusion overlap, when computed);
- :func:`intervals`: a bootstrap interval for each;
- :func:`compare`: the paired non-inferiority decision of a candidate against the baseline on one metric;
- :func:`breakdowns`, :func:`confusion`, :func:`worst_queries`: per category and per teacher-dominant channel,
  the dominant-channel confusion matrix and the worst answers.

Queries are paired by their text (the n-th occurrence of a text with the n-th): the held-out set is the same
file for every candidate. Pure standard library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from search_router.pipeline.fusion import FusionImpact, ScoreSource, fusion_impact, items_from_results
from search_router.pipeline.gate import NON_INFERIORITY_METRICS
from search_router.pipeline.metrics import (
    Channels,
    QueryResult,
    abs_errors,
    channel_names,
    compute_metrics,
    dominant_channel,
    rubric_score,
)
from search_router.pipeline.stats import (
    DEFAULT_RESAMPLES,
    Direction,
    NonInferiority,
    bootstrap_mean,
    non_inferiority,
    paired_difference,
)

OVERLAP: Final = "overlap_at_10"
MAE_SERVED: Final = "mae_served"
"""Per query, the error of what the search would be given: the answer's weights, or even weights when it gave
none usable (so that failures count against a candidate in the comparison on MAE; ``mae_overall``'s own interval
is over usable answers, as the metric is)."""
INTERVAL_METRICS: Final[dict[str, Direction]] = {
    "rubric_mean": Direction.HIGHER_IS_BETTER,
    "mae_overall": Direction.LOWER_IS_BETTER,
    "dominant_accuracy": Direction.HIGHER_IS_BETTER,
    "valid_json_rate": Direction.HIGHER_IS_BETTER,
    "latency_mean_ms": Direction.LOWER_IS_BETTER,
    OVERLAP: Direction.HIGHER_IS_BETTER,
}
"""Every metric given an interval, and which way it is better (the non-inferiority gate may use any but latency)."""
GATE_METRICS: Final = NON_INFERIORITY_METRICS
"""The metrics the non-inferiority check of the gate may compare on (``gate_noninferiority_metric``)."""
UNUSABLE: Final = "unusable"
"""The confusion matrix's column for answers without usable weights."""
WORST: Final = 15


def query_keys(results: Sequence[QueryResult]) -> list[str]:
    """One key per result, its query text (``text #2`` for the second occurrence of a repeated text, ...)."""
    seen: dict[str, int] = {}
    keys = []
    for result in results:
        seen[result.query] = seen.get(result.query, 0) + 1
        keys.append(result.query if seen[result.query] == 1 else f"{result.query} #{seen[result.query]}")
    return keys


def _usable(result: QueryResult, names: Sequence[str]) -> dict[str, float] | None:
    weights = result.weights if result.answered else None
    return weights if weights is not None and all(name in weights for name in names) else None


def _mean_error(
    weights: Mapping[str, float] | None, reference: Mapping[str, float], names: Sequence[str]
) -> float | None:
    if weights is None:
        return None
    return math.fsum(abs_errors(weights, reference, names).values()) / len(names)


def per_query_values(
    results: Sequence[QueryResult], channels: Channels, fusion: FusionImpact | None = None
) -> dict[str, list[float | None]]:
    """Each interval metric's per-query values, in ``results`` order (see the module docstring)."""
    names = channel_names(channels)
    values: dict[str, list[float | None]] = {metric: [] for metric in INTERVAL_METRICS if metric != OVERLAP}
    values[MAE_SERVED] = []
    for result in results:
        weights = _usable(result, names)
        values["rubric_mean"].append(float(rubric_score(weights, result.reference, names)))
        values["mae_overall"].append(_mean_error(weights, result.reference, names))
        values[MAE_SERVED].append(
            _mean_error(weights or dict.fromkeys(names, 1.0 / len(names)), result.reference, names)
        )
        hit = weights is not None and dominant_channel(weights, names) == dominant_channel(result.reference, names)
        values["dominant_accuracy"].append(1.0 if hit else 0.0)
        values["valid_json_rate"].append(1.0 if result.valid_json else 0.0)
        answered = result.answered and result.latency_ms is not None
        values["latency_mean_ms"].append(float(result.latency_ms) if answered else None)  # type: ignore[arg-type]
    if fusion is not None:
        if len(fusion.queries) != len(results):
            raise ValueError(f"the fusion impact has {len(fusion.queries)} queries for {len(results)} results")
        values[OVERLAP] = [None if impact is None else impact.overlap for impact in fusion.queries]
    return values


def intervals(
    values: Mapping[str, Sequence[float | None]], *, seed: int, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, dict[str, Any]]:
    """A seeded bootstrap interval of each metric's mean (``Interval.to_dict()``)."""
    return {
        metric: bootstrap_mean(per_query, seed=seed, resamples=resamples).to_dict()
        for metric, per_query in values.items()
        if metric in INTERVAL_METRICS
    }


def candidate_fusion(
    results: Sequence[QueryResult], source: ScoreSource, channels: Channels, *, seed: int
) -> FusionImpact:
    """The fusion impact of one candidate: a query it gave no usable weights for is ranked with equal weights (a
    neutral stand-in for the router's default weights, a deployment setting; counted in ``without_weights``)."""
    names = channel_names(channels)
    even = dict.fromkeys(names, 1.0 / len(names))
    return fusion_impact(items_from_results(results), source, unanswered_weights=even, seed=seed)


@dataclass(frozen=True)
class Comparison:
    """The non-inferiority decision of ``candidate`` against ``baseline``."""

    candidate: str
    baseline: str
    decision: NonInferiority

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "baseline": self.baseline, **self.decision.to_dict()}


def compare(
    candidate: tuple[str, Mapping[str, Sequence[float | None]], Sequence[QueryResult]],
    baseline: tuple[str, Mapping[str, Sequence[float | None]], Sequence[QueryResult]],
    *,
    metric: str,
    margin: float,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
) -> Comparison:
    """The paired non-inferiority test of (name, :func:`per_query_values`, results) ``candidate`` against
    ``baseline`` on ``metric`` (one of :data:`GATE_METRICS`) with ``margin`` in the metric's units."""
    if metric not in GATE_METRICS:
        raise ValueError(f"the non-inferiority metric must be one of {', '.join(GATE_METRICS)}, got {metric!r}")
    sides = []
    compared = MAE_SERVED if metric == "mae_overall" else metric
    for name, values, results in (candidate, baseline):
        if compared not in values:
            raise ValueError(f"candidate {name} has no per-query {compared}")
        sides.append(list(zip(query_keys(results), values[compared], strict=True)))
    difference = paired_difference(sides[0], sides[1], seed=seed, resamples=resamples)
    decision = non_inferiority(difference, metric=metric, margin=margin, direction=INTERVAL_METRICS[metric])
    return Comparison(candidate=candidate[0], baseline=baseline[0], decision=decision)


# ---------------------------------------------------------------------------------------------------------------
# Where it goes wrong
# ---------------------------------------------------------------------------------------------------------------
def _row(key: str, results: Sequence[QueryResult], channels: Channels) -> dict[str, Any]:
    metrics = compute_metrics(results, channels, price=None)
    return {
        "key": key,
        "n": metrics["n"],
        "rubric_mean": metrics["rubric_mean"],
        "mae_overall": metrics["mae_overall"],
        "dominant_accuracy": metrics["dominant_accuracy"],
    }


def breakdowns(results: Sequence[QueryResult], channels: Channels) -> dict[str, list[dict[str, Any]]]:
    """Headline metrics per query category (``uncategorized`` for none) and per the teacher's dominant channel
    (in channel order); each group's ``n`` adds up to the candidate's."""
    names = channel_names(channels)
    by_category: dict[str, list[QueryResult]] = {}
    by_dominant: dict[str, list[QueryResult]] = {name: [] for name in names}
    for result in results:
        by_category.setdefault(result.category or "uncategorized", []).append(result)
        by_dominant[dominant_channel(result.reference, names)].append(result)
    return {
        "category": [_row(key, by_category[key], names) for key in sorted(by_category)],
        "dominant_channel": [_row(key, group, names) for key, group in by_dominant.items() if group],
    }


def confusion(results: Sequence[QueryResult], channels: Channels) -> dict[str, Any]:
    """Counts of (the teacher's dominant channel, the candidate's): rows are the channels, columns the channels
    and :data:`UNUSABLE` (no usable weights)."""
    names = channel_names(channels)
    columns = [*names, UNUSABLE]
    matrix = [[0] * len(columns) for _ in names]
    for result in results:
        weights = _usable(result, names)
        column = dominant_channel(weights, names) if weights is not None else UNUSABLE
        matrix[names.index(dominant_channel(result.reference, names))][columns.index(column)] += 1
    return {"rows": list(names), "columns": columns, "matrix": matrix}


def worst_queries(results: Sequence[QueryResult], channels: Channels, *, count: int = WORST) -> list[dict[str, Any]]:
    """The ``count`` worst answers: lowest rubric first, then the largest mean error (no usable weights is the
    worst), then the query text; with the teacher's and the candidate's weights side by side."""
    names = channel_names(channels)
    scored = []
    for result in results:
        weights = _usable(result, names)
        error = _mean_error(weights, result.reference, names)
        rubric = rubric_score(weights, result.reference, names)
        scored.append((rubric, -(error if error is not None else math.inf), result.query, result, weights, error))
    scored.sort(key=lambda entry: entry[:3])
    return [
        {
            "query": result.query,
            "category": result.category,
            "split": result.split,
            "reference": dict(result.reference),
            "weights": None if weights is None else dict(weights),
            "rubric": rubric,
            "mae": error,
            "failure": result.error_kind or (result.parse_failure if weights is None else None),
        }
        for rubric, _, _, result, weights, error in scored[:count]
    ]


@dataclass(frozen=True)
class CandidateAnalysis:
    """Everything this module says about one candidate: ``values`` (per query, for comparisons) and the report's
    fields (:meth:`to_fields`: ``intervals``, ``fusion``, ``breakdowns``, ``confusion``, ``worst``)."""

    values: dict[str, list[float | None]]
    fusion: FusionImpact
    fields: dict[str, Any]

    def to_fields(self) -> dict[str, Any]:
        return dict(self.fields)


def analyse(
    results: Sequence[QueryResult],
    channels: Channels,
    source: ScoreSource,
    *,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
) -> CandidateAnalysis:
    """Intervals, fusion impact, breakdowns, confusion matrix and worst queries of one candidate's results."""
    fusion = candidate_fusion(results, source, channels, seed=seed)
    values = per_query_values(results, channels, fusion)
    return CandidateAnalysis(
        values=values,
        fusion=fusion,
        fields={
            "intervals": intervals(values, seed=seed, resamples=resamples),
            "fusion": fusion.to_dict(),
            "breakdowns": breakdowns(results, channels),
            "confusion": confusion(results, channels),
            "worst": worst_queries(results, channels),
        },
    )


def sample_size_warning(comparison: Comparison) -> str | None:
    """A warning when the held-out set is too small for the gate's margin (the interval width it achieves)."""
    sample = comparison.decision.sample
    if sample is None or sample.sufficient:
        return None
    return (
        f"the held-out set is too small for the gate's non-inferiority margin ({comparison.candidate} against "
        f"{comparison.baseline}): {sample.message}"
    )
