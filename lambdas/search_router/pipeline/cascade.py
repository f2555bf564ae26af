"""Choosing the cascade's confidence threshold τ: the router answers from the micro-router when its confidence is
at least τ and asks the distilled model otherwise (:mod:`search_router.router.service`).

:func:`choose_tau` takes, per held-out query, the micro-router's weights and confidence, the distilled model's
weights (``None`` when its answer was unusable) and the teacher's reference, and picks the **lowest** τ at which
the cascade's quality on the **hardest split** (the split where the micro-router alone is worst) stays within
``margin`` of the distilled model's own on that split: rubric mean at least the model's minus ``margin``
(default, the issue's "within 0.1"), or mean absolute error at most the model's plus ``margin``. It reports the
share of queries the micro-router answers at that τ, per split and overall, and the whole curve (for a chart).
Pure: the pipeline computes the inputs, the report shows the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from search_router.pipeline.metrics import abs_errors, rubric_score

Metric = Literal["rubric", "mae"]
METRICS: Final = ("rubric", "mae")
DEFAULT_MARGIN: Final = 0.1
MIN_SPLIT_SIZE: Final = 10
"""A split with fewer queries is too noisy to choose τ on (unless no split is larger)."""
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
    """The cascade at one τ on the split it was chosen on: the share answered by the micro-router and the
    cascade's quality (the metric's mean)."""

    tau: float
    answered_share: float
    quality: float


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
                {"tau": None if p.tau == NEVER else p.tau, "answered_share": p.answered_share, "quality": p.quality}
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
    points = [TauPoint(NEVER, 0.0, total / n)]
    for position, index in enumerate(order):
        total += micro[index] - model[index]
        last_of_tie = position + 1 == n or confidences[order[position + 1]] != confidences[index]
        if last_of_tie:
            points.append(TauPoint(confidences[index], (position + 1) / n, total / n))
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
    meeting = [point for point in curve if not _worse(point.quality, target, metric)]
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
