"""Choosing the cascade's confidence threshold τ: the router answers from the micro-router when its confidence is
at least τ and asks the distilled model otherwise (:mod:`search_router.router.service`).

:func:`choose_tau` takes, per held-out query, the micro-router's weights and confidence, the distilled model's
weights (``None`` when its answer was unusable) and the teacher's reference, and picks the **lowest** τ at which
the cascade's quality on the **hardest split** (the split where the micro-router alone is worst) stays within
``margin`` of the distilled model's own on that split: rubric mean at least the model's minus ``margin``
(default, the issue's "within 0.1"), or mean absolute error at most the model's plus ``margin`` — and, on the
queries the micro-router answers at τ, its own quality within ``margin`` of the model's on those same queries (so
that a gain on its exact answers cannot pay for answers it gets wrong). It reports the share of queries the
micro-router answers at that τ, per split and overall, and the whole curve (for a chart). τ is chosen on the same
held-out queries the report then scores the cascade on: the cascade's figures are optimistic by that choice.
Pure: the pipeline computes the inputs, the report shows the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from search_router.pipeline.metrics import UNSPLIT, Price, QueryResult, abs_errors, compute_metrics, rubric_score
from search_router.pipeline.report import MIN_SPLIT_SIZE

Metric = Literal["rubric", "mae"]
METRICS: Final = ("rubric", "mae")
DEFAULT_MARGIN: Final = 0.1
_FLOAT_NOISE: Final = 1e-9
NEVER: Final = math.inf
"""τ above every confidence: the micro-router answers nothing (the cascade is the model alone)."""


@dataclass(frozen=True)
class CascadeItem:
    """One held-out query: its ``split``, the teacher's ``reference``, the micro-router's ``micro`` weights and
    ``confidence``, the distilled model's ``model`` weights (``None``: unusable answer)."""

    split: str
    reference: Mapping[str, float]
    micro: Mapping[str, float]
    confidence: float
    model: Mapping[str, float] | None


@dataclass(frozen=True)
class TauPoint:
    """The cascade at one τ on the split it was chosen on: the share answered by the micro-router, the cascade's
    quality (the metric's mean) and, on the queries the micro-router answers, its mean quality minus the model's
    on those same queries (``answered_delta``; 0 when it answers none)."""

    tau: float
    answered_share: float
    quality: float
    answered_delta: float = 0.0


@dataclass(frozen=True)
class TauChoice:
    """The chosen τ (:data:`NEVER` when only the model alone meets the target) and what it gives."""

    tau: float
    metric: Metric
    margin: float
    split: str
    model_quality: float
    micro_quality: float
    cascade_quality: float
    answered_share: float
    answered_share_by_split: dict[str, float]
    answered_share_overall: float
    curve: tuple[TauPoint, ...]

    @property
    def enabled(self) -> bool:
        """False when no τ lets the micro-router answer anything within the target."""
        return self.tau != NEVER

    def to_dict(self) -> dict[str, object]:
        return {
            "tau": None if not self.enabled else self.tau,
            "metric": self.metric,
            "margin": self.margin,
            "split": self.split,
            "model_quality": self.model_quality,
            "micro_quality": self.micro_quality,
            "cascade_quality": self.cascade_quality,
            "answered_share": self.answered_share,
            "answered_share_by_split": dict(self.answered_share_by_split),
            "answered_share_overall": self.answered_share_overall,
            "curve": [
                {
                    "tau": None if p.tau == NEVER else p.tau,
                    "answered_share": p.answered_share,
                    "quality": p.quality,
                    "answered_delta": p.answered_delta,
                }
                for p in self.curve
            ],
        }


def _quality(pred: Mapping[str, float] | None, ref: Mapping[str, float], names: Sequence[str], metric: Metric) -> float:
    if metric == "rubric":
        return float(rubric_score(pred, ref, names))
    used = pred if pred is not None else dict.fromkeys(names, 1.0 / len(names))  # the router's even fallback
    errors = abs_errors(used, ref, names)
    return math.fsum(errors.values()) / len(errors)


def _worse(a: float, b: float, metric: Metric) -> bool:
    """``a`` is worse than ``b`` (rubric: lower; mae: higher)."""
    return a < b if metric == "rubric" else a > b


def hardest_split(items: Sequence[CascadeItem], names: Sequence[str], metric: Metric = "rubric") -> str:
    """The split where the micro-router alone does worst, among splits of at least :data:`MIN_SPLIT_SIZE`
    queries (all splits when none is that large); ties: the first in name order."""
    by_split: dict[str, list[float]] = {}
    for item in items:
        by_split.setdefault(item.split, []).append(_quality(item.micro, item.reference, names, metric))
    large = {split: values for split, values in by_split.items() if len(values) >= MIN_SPLIT_SIZE} or by_split
    worst = None
    for split in sorted(large):
        mean = math.fsum(large[split]) / len(large[split])
        if worst is None or _worse(mean, worst[1], metric):
            worst = (split, mean)
    assert worst is not None
    return worst[0]


def _curve(micro: Sequence[float], model: Sequence[float], confidences: Sequence[float]) -> list[TauPoint]:
    """The cascade's mean quality at each distinct confidence as τ (highest first), then at :data:`NEVER`."""
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    n = len(order)
    total = math.fsum(model)
    gained = 0.0  # micro - model over the queries answered so far
    points = [TauPoint(NEVER, 0.0, total / n)]
    for position, index in enumerate(order):
        total += micro[index] - model[index]
        gained += micro[index] - model[index]
        last_of_tie = position + 1 == n or confidences[order[position + 1]] != confidences[index]
        if last_of_tie:
            answered = position + 1
            points.append(TauPoint(confidences[index], answered / n, total / n, gained / answered))
    return points


def choose_tau(
    items: Sequence[CascadeItem],
    names: Sequence[str],
    *,
    metric: Metric = "rubric",
    margin: float = DEFAULT_MARGIN,
    split: str | None = None,
) -> TauChoice:
    """The lowest τ whose cascade quality on the hardest split (or ``split``) is within ``margin`` of the
    distilled model's there; ``ValueError`` names a bad argument (no items, unknown metric or split, a negative
    margin, a confidence outside 0..1)."""
    if not items:
        raise ValueError("choose_tau needs at least one held-out prediction")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not (margin >= 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if any(not 0.0 <= item.confidence <= 1.0 for item in items):
        raise ValueError("every confidence must be within 0..1")
    chosen_split = split if split is not None else hardest_split(items, names, metric)
    on_split = [item for item in items if item.split == chosen_split]
    if not on_split:
        raise ValueError(f"no held-out prediction is in split {chosen_split!r}")
    micro = [_quality(item.micro, item.reference, names, metric) for item in on_split]
    model = [_quality(item.model, item.reference, names, metric) for item in on_split]
    model_quality = math.fsum(model) / len(model)
    slack = margin + _FLOAT_NOISE
    target = model_quality - slack if metric == "rubric" else model_quality + slack
    curve = _curve(micro, model, [item.confidence for item in on_split])
    # Within the margin on the whole split, and on the queries the micro-router answers: a gain elsewhere must
    # not pay for answers it gets wrong (for MAE a positive delta is worse).
    delta_floor = -slack if metric == "rubric" else slack
    meeting = [
        point
        for point in curve
        if not _worse(point.quality, target, metric) and not _worse(point.answered_delta, delta_floor, metric)
    ]
    best = min(meeting, key=lambda point: point.tau)  # NEVER (the model alone) always meets the target
    return TauChoice(
        tau=best.tau,
        metric=metric,
        margin=margin,
        split=chosen_split,
        model_quality=model_quality,
        micro_quality=math.fsum(micro) / len(micro),
        cascade_quality=best.quality,
        answered_share=best.answered_share,
        answered_share_by_split=_answered_by_split(items, best.tau),
        answered_share_overall=sum(item.confidence >= best.tau for item in items) / len(items),
        curve=tuple(sorted(curve, key=lambda point: point.tau)),
    )


def _answered_by_split(items: Sequence[CascadeItem], tau: float) -> dict[str, float]:
    counts: dict[str, list[int]] = {}
    for item in items:
        entry = counts.setdefault(item.split, [0, 0])
        entry[0] += item.confidence >= tau
        entry[1] += 1
    return {split: answered / total for split, (answered, total) in sorted(counts.items())}


# ---------------------------------------------------------------------------------------------------------------
# The micro-router and the cascade as evaluation candidates
# ---------------------------------------------------------------------------------------------------------------
MICRO_CANDIDATE: Final = "micro-router"
CASCADE_CANDIDATE: Final = "cascade"
SWEEP_STEP: Final = 0.05
"""The τ grid of the report's quality / latency / cost chart (0, 0.05, ..., 1, and the chosen τ)."""
FREE: Final = Price(0.0, 0.0)
"""The micro-router's token price: it calls no model (its cost is the router function's own milliseconds)."""


def micro_results(predictions: Sequence[Mapping[str, Any]]) -> list[QueryResult]:
    """The micro-router's held-out predictions (TrainMicroRouter's ``heldout-predictions.jsonl`` lines) as the
    results of a candidate: its weights, no tokens, the prediction's own latency. ``ValueError`` names a
    malformed line (by number)."""
    results: list[QueryResult] = []
    for number, line in enumerate(predictions, start=1):
        try:
            result = QueryResult.from_dict(
                {
                    "query": line.get("query"),
                    "category": line.get("category"),
                    "reference": line.get("reference"),
                    "weights": line.get("micro"),
                    "latency_ms": line.get("latency_ms"),
                    "split": line.get("split"),
                }
            )
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"micro-router prediction {number}: {exc}") from None
        if result.weights is None:
            raise ValueError(f"micro-router prediction {number} has no 'micro' weights")
        confidence = line.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0.0 <= confidence <= 1.0:
            raise ValueError(f"micro-router prediction {number}: 'confidence' must be a number within 0..1")
        results.append(result)
    return results


def _confidences(predictions: Sequence[Mapping[str, Any]]) -> list[float]:
    return [float(line["confidence"]) for line in predictions]


def _paired(micro: Sequence[QueryResult], model: Sequence[QueryResult]) -> list[QueryResult]:
    """``model``'s result for each micro-router result, matched by query (the n-th occurrence of a query with the
    n-th): both come from the same held-out file, so a query on one side only is a broken run, named."""
    by_query: dict[str, list[QueryResult]] = {}
    for result in model:
        by_query.setdefault(result.query, []).append(result)
    paired: list[QueryResult] = []
    missing: list[str] = []
    for result in micro:
        queue = by_query.get(result.query)
        if queue:
            paired.append(queue.pop(0))
        else:
            missing.append(result.query)
    extra = sum(len(queue) for queue in by_query.values())
    if missing or extra:
        example = f" (e.g. {missing[0]!r})" if missing else ""
        raise ValueError(
            f"the micro-router's predictions and the model's results are not of the same held-out set: "
            f"{len(missing)} predicted queries have no model result{example}, {extra} model results have no "
            "prediction"
        )
    return paired


def compose(
    micro: Sequence[QueryResult], confidences: Sequence[float], model: Sequence[QueryResult], tau: float
) -> list[QueryResult]:
    """The cascade's results at ``tau``: the micro-router's where its confidence is at least ``tau``, the model's
    elsewhere (``model`` paired with ``micro`` by :func:`_paired`)."""
    return [m if c >= tau else d for m, c, d in zip(micro, confidences, model, strict=True)]


@dataclass(frozen=True)
class CascadeEvaluation:
    """The micro-router alone and the cascade at the chosen τ as candidates' results, the τ choice, and the sweep
    over τ (each point: the cascade's figures over every held-out query)."""

    micro: list[QueryResult]
    cascade: list[QueryResult]
    choice: TauChoice
    sweep: list[dict[str, Any]]


def _sweep_point(
    tau: float, results: Sequence[QueryResult], answered: float, channels: Sequence[str], price: Price | None
) -> dict[str, Any]:
    metrics = compute_metrics(results, channels, price=price)
    return {
        "tau": None if tau == NEVER else tau,
        "answered_share": answered,
        "rubric_mean": metrics["rubric_mean"],
        "mae_overall": metrics["mae_overall"],
        "latency_mean_ms": metrics["latency"]["mean"],
        "latency_p50_ms": metrics["latency"]["p50"],
        "cost_per_1k_routes": metrics["cost_per_1k_routes"],
    }


def evaluate_cascade(
    predictions: Sequence[Mapping[str, Any]],
    model: Sequence[QueryResult],
    channels: Sequence[str],
    *,
    price: Price | None,
    margin: float = DEFAULT_MARGIN,
    metric: Metric = "rubric",
) -> CascadeEvaluation:
    """The micro-router (``predictions``) and the cascade over the distilled model's held-out ``model`` results:
    τ chosen by :func:`choose_tau` on the hardest split; the sweep over the τ grid (and the chosen τ) for the
    report's chart. ``ValueError`` when the two are not of the same held-out set or a line is malformed."""
    micro = micro_results(predictions)
    if not micro:
        raise ValueError("the micro-router predicted no held-out query")
    confidences = _confidences(predictions)
    paired = _paired(micro, model)
    items = [
        CascadeItem(
            split=m.split or UNSPLIT,
            reference=m.reference,
            micro=m.weights or {},
            confidence=c,
            model=d.weights if d.answered else None,
        )
        for m, c, d in zip(micro, confidences, paired, strict=True)
    ]
    choice = choose_tau(items, channels, metric=metric, margin=margin)
    grid = sorted({round(step * SWEEP_STEP, 10) for step in range(round(1 / SWEEP_STEP) + 1)} | {choice.tau, NEVER})
    sweep = []
    for tau in grid:
        composed = compose(micro, confidences, paired, tau)
        answered = sum(c >= tau for c in confidences) / len(confidences)
        sweep.append(_sweep_point(tau, composed, answered, channels, price))
    return CascadeEvaluation(
        micro=micro, cascade=compose(micro, confidences, paired, choice.tau), choice=choice, sweep=sweep
    )


def _not_evaluated(
    artifact_uri: str | None, choice: TauChoice | None, unavailable: str | None, untrained: str | None
) -> str | None:
    if artifact_uri is None:
        if untrained:
            return f"the micro-router could not be trained: {untrained}"
        return "no micro-router was trained (run setting micro_router is false)"
    if choice is None:
        return f"the cascade could not be evaluated: {unavailable or 'no evaluation'}"
    if not choice.enabled:
        return (
            f"no τ lets the micro-router answer while the cascade's {choice.metric} on split {choice.split!r} stays "
            f"within {choice.margin:g} of the distilled model's"
        )
    return None


def _not_allowed(
    setting: str,
    at: str,
    *,
    model_passed: bool,
    cascade_passed: bool | None,
    failures: Sequence[str],
    fallback: tuple[str, Sequence[str]] | None,
) -> str | None:
    if setting != "auto":
        return f"router_cascade is {setting!r}: every query goes to the model; it would be {at}"
    if not model_passed:
        return "the distilled model did not pass the quality gate"
    if fallback is not None and fallback[1]:
        name, fallback_failures = fallback
        why = "; ".join(fallback_failures)
        return f"{name}, the model prompt the cascade falls back to, failed the quality gate: {why}"
    if not cascade_passed:
        return f"the cascade at {at} failed the quality gate: {'; '.join(failures)}"
    return None


def cascade_outcome(
    *,
    setting: str,
    artifact_uri: str | None,
    evaluation: CascadeEvaluation | None,
    unavailable: str | None,
    model_passed: bool,
    cascade_passed: bool | None,
    cascade_failures: Sequence[str] = (),
    fallback: tuple[str, Sequence[str]] | None = None,
    untrained: str | None = None,
) -> dict[str, Any]:
    """Whether the promotion lets the micro-router answer (``enabled``), and why in every case: only with a
    trained artifact, ``router_cascade`` ``auto``, a τ at which the micro-router answers something within the
    margin, the distilled model through the gate, the prompt the cascade falls back to (``fallback``: its name and
    gate failures) and the cascade through the same thresholds. ``untrained``: why TrainMicroRouter failed."""
    choice = evaluation.choice if evaluation is not None else None
    enabled_choice = choice if choice is not None and choice.enabled else None
    tau = enabled_choice.tau if enabled_choice else None
    share = enabled_choice.answered_share_overall if enabled_choice else None
    blocker = _not_evaluated(artifact_uri, choice, unavailable, untrained)
    if blocker is None:
        at = f"τ = {tau:.3f} (the micro-router answers {share:.1%} of the held-out queries)"
        blocker = _not_allowed(
            setting,
            at,
            model_passed=model_passed,
            cascade_passed=cascade_passed,
            failures=cascade_failures,
            fallback=fallback,
        )
        reason = blocker or f"the cascade passed the quality gate at {at}"
    else:
        reason = blocker
    return {
        "enabled": blocker is None,
        "reason": reason,
        "artifact_uri": artifact_uri,
        "tau": tau,
        "answered_share": share,
    }
