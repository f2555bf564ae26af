"""How sure the evaluation's numbers are: bootstrap intervals, a paired bootstrap and a non-inferiority decision.

Everything is seeded and pure standard library (``random.Random(seed)``, no numpy), so the same inputs and seed
give the same interval on every machine and in every function.

- :func:`bootstrap_mean`: the percentile bootstrap interval of the mean of per-query values. A value of ``None``
  (the query has no value for this metric, e.g. no MAE for an unparseable answer) is either excluded and counted
  (``missing``) or rejected (``missing="reject"``). The values are sorted before resampling, so the interval
  depends on the values and the seed only, not on their order.
- :func:`paired_difference`: the same for the per-query difference *candidate - baseline*, pairing the two by
  query key. Keys on one side only, and keys whose value is ``None`` on either side, are counted and listed in the
  result, never dropped silently; pairs are resampled in key order (independent of input order).
- :func:`achievable_width` / :func:`required_size` / :func:`check_sample_size`: the width of a 95% interval a set
  of ``n`` queries achieves for a given spread (normal approximation ``2 z sd / sqrt(n)``), and the size a
  margin needs, so the report can warn when the held-out set is too small.
- :func:`non_inferiority`: *pass* when the candidate is shown not worse than the baseline by more than
  ``margin`` (for a higher-is-better metric: the interval's lower bound of candidate - baseline is above
  ``-margin``; for a lower-is-better one such as MAE: its upper bound is below ``+margin``), *fail* when the
  whole interval is beyond the margin (worse by more than the margin with 95% confidence), and *inconclusive*
  otherwise, with the reason (too few pairs; interval straddling the margin because the set is too small for
  it; or a difference close to the margin).

The intervals are two-sided at ``confidence`` (0.95 by default); the non-inferiority test compares one side of the
two-sided interval, i.e. a one-sided test at level (1 - confidence) / 2 = 2.5%, the usual convention.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal, TypeAlias

from search_router.pipeline.metrics import percentile

DEFAULT_RESAMPLES = 1_000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0
DEFAULT_MIN_PAIRS = 10
"""Fewer matched pairs than this and :func:`non_inferiority` does not decide: a percentile bootstrap of a
handful of values is far narrower than the truth."""

Missing: TypeAlias = Literal["exclude", "reject"]
Value: TypeAlias = float | int | None
Keyed: TypeAlias = Mapping[str, Value] | Iterable[tuple[str, Value]]
"""Per-query values by query key: a mapping, or ``(key, value)`` pairs (a repeated key is an error)."""


class Direction(StrEnum):
    """Which way a metric is better: the rubric and the judge score up, MAE down."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - a decision, not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


# ---------------------------------------------------------------------------------------------------------
# Intervals
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval of a mean.

    ``estimate`` is the mean of the ``n`` values used; ``low``/``high`` the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of ``resamples`` bootstrap means. All three are None when no value was
    usable (``n == 0``). ``missing`` counts the ``None`` values excluded.
    """

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    missing: int
    confidence: float
    resamples: int
    seed: int

    @property
    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "width": self.width}


def bootstrap_mean(
    values: Iterable[Value],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    missing: Missing = "exclude",
) -> Interval:
    """The percentile bootstrap interval of the mean of ``values`` (see :class:`Interval`).

    ``None`` values are excluded and counted (``missing="exclude"``) or raise ``ValueError`` naming their
    positions (``missing="reject"``). Every other value must be a finite number (``ValueError`` names the first
    that is not). Resampling draws ``n`` values with replacement ``resamples`` times from
    ``random.Random(seed)`` over the sorted values, so the result does not depend on the values' order.
    """
    _check_settings(resamples=resamples, confidence=confidence, seed=seed)
    if missing not in ("exclude", "reject"):
        raise ValueError(f"missing must be 'exclude' or 'reject', got {missing!r}")
    present: list[float] = []
    absent: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            absent.append(index)
        else:
            present.append(_finite(value, f"value at position {index}"))
    if absent and missing == "reject":
        shown = ", ".join(str(i) for i in absent[:10]) + (", ..." if len(absent) > 10 else "")
        raise ValueError(f"{len(absent)} value(s) missing (None) at position(s) {shown}")
    return _interval(present, missing=len(absent), resamples=resamples, confidence=confidence, seed=seed)


def _interval(values: list[float], *, missing: int, resamples: int, confidence: float, seed: int) -> Interval:
    n = len(values)
    estimate = low = high = None
    if n:
        ordered = sorted(values)
        rng = random.Random(seed)  # noqa: S311 - reproducible resampling, not security
        means = [math.fsum(rng.choices(ordered, k=n)) / n for _ in range(resamples)]
        tail = (1.0 - confidence) / 2.0 * 100.0
        estimate = math.fsum(ordered) / n
        low, high = percentile(means, tail), percentile(means, 100.0 - tail)
    return Interval(
        estimate=estimate,
        low=low,
        high=high,
        n=n,
        missing=missing,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def _check_settings(*, resamples: int, confidence: float, seed: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a whole number >= 1, got {resamples!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be a whole number, got {seed!r}")


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number or None, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------------------
# Paired difference
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedDifference:
    """The bootstrap interval of the mean per-query difference *candidate - baseline*, paired by query key.

    ``interval.n`` is the number of pairs used. ``only_candidate`` / ``only_baseline``: keys present on one side
    only; ``missing_candidate`` / ``missing_baseline``: keys on both sides whose value is None on that side (a key
    None on both sides is in both). None of these is in the interval; all are listed here.
    """

    interval: Interval
    only_candidate: tuple[str, ...]
    only_baseline: tuple[str, ...]
    missing_candidate: tuple[str, ...]
    missing_baseline: tuple[str, ...]
    differences_sd: float | None
    """The sample standard deviation of the paired differences (None for fewer than two pairs)."""

    @property
    def matched(self) -> int:
        return self.interval.n

    @property
    def unmatched(self) -> int:
        """Queries that are not in the interval, for any of the four reasons (each key counted once)."""
        return len(
            set(self.only_candidate)
            | set(self.only_baseline)
            | set(self.missing_candidate)
            | set(self.missing_baseline)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "difference": self.interval.to_dict(),
            "matched": self.matched,
            "unmatched": self.unmatched,
            "only_candidate": list(self.only_candidate),
            "only_baseline": list(self.only_baseline),
            "missing_candidate": list(self.missing_candidate),
            "missing_baseline": list(self.missing_baseline),
            "differences_sd": self.differences_sd,
        }


def paired_difference(
    candidate: Keyed,
    baseline: Keyed,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> PairedDifference:
    """The paired bootstrap of *candidate - baseline* over the queries both sides have a value for.

    Both sides are per-query values by query key (:data:`Keyed`); a repeated key or a non-finite value raises
    ``ValueError`` naming it. The pairs are resampled together (in key order), which keeps the correlation
    between the two candidates' values on the same query: the interval is narrower than two separate ones.
    """
    _check_settings(resamples=resamples, confidence=confidence, seed=seed)
    cand = _keyed(candidate, "candidate")
    base = _keyed(baseline, "baseline")
    both = sorted(cand.keys() & base.keys())
    differences: list[float] = []
    for key in both:
        c, b = cand[key], base[key]
        if c is not None and b is not None:
            differences.append(c - b)
    interval = _interval(differences, missing=0, resamples=resamples, confidence=confidence, seed=seed)
    return PairedDifference(
        interval=interval,
        only_candidate=tuple(sorted(cand.keys() - base.keys())),
        only_baseline=tuple(sorted(base.keys() - cand.keys())),
        missing_candidate=tuple(key for key in both if cand[key] is None),
        missing_baseline=tuple(key for key in both if base[key] is None),
        differences_sd=statistics.stdev(differences) if len(differences) >= 2 else None,
    )


def _keyed(values: Keyed, side: str) -> dict[str, float | None]:
    items = values.items() if isinstance(values, Mapping) else values
    out: dict[str, float | None] = {}
    for pair in items:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"{side}: per-query values must be a mapping or (query, value) pairs, got {pair!r}")
        key, value = pair
        if not isinstance(key, str):
            raise ValueError(f"{side}: query keys must be strings, got {key!r}")
        if key in out:
            raise ValueError(f"{side}: query {key!r} appears more than once")
        out[key] = None if value is None else _finite(value, f"{side} value of query {key!r}")
    return out


# ---------------------------------------------------------------------------------------------------------
# Sample size
# ---------------------------------------------------------------------------------------------------------
def _z(confidence: float) -> float:
    _check_settings(resamples=1, confidence=confidence, seed=0)
    return statistics.NormalDist().inv_cdf((1.0 + confidence) / 2.0)


def achievable_width(n: int, *, sd: float, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The width of a two-sided interval of a mean of ``n`` values with standard deviation ``sd``:
    ``2 z sd / sqrt(n)`` (normal approximation; the bootstrap's width is close to it for a few dozen values or
    more). ``sd`` is the per-query spread (the paired differences' for a difference; ``(high - low) / 2`` bounds
    it for values in ``[low, high]`` when nothing is known yet)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    spread = _finite(sd, "sd")
    if spread < 0:
        raise ValueError(f"sd must be >= 0, got {sd!r}")
    return 2.0 * _z(confidence) * spread / math.sqrt(n)


def required_size(half_width: float, *, sd: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The smallest ``n`` whose interval's half-width ``z sd / sqrt(n)`` is below ``half_width``."""
    half = _finite(half_width, "half_width")
    spread = _finite(sd, "sd")
    if half <= 0 or spread < 0:
        raise ValueError(f"half_width must be > 0 and sd >= 0, got {half_width!r} and {sd!r}")
    return max(1, math.floor((_z(confidence) * spread / half) ** 2) + 1)


@dataclass(frozen=True)
class SampleSize:
    """Whether ``n`` queries can show non-inferiority at ``margin``: equal candidates pass only if the
    interval's half-width is below the margin. ``required_n`` is the size at which it is."""

    n: int
    sd: float
    margin: float
    confidence: float
    width: float
    required_n: int

    @property
    def sufficient(self) -> bool:
        return self.n >= self.required_n

    @property
    def message(self) -> str:
        verdict = "enough for" if self.sufficient else "too small for"
        return (
            f"{self.n} queries give an interval about {self.width:.3g} wide (±{self.width / 2:.3g}) at "
            f"{self.confidence:.0%} for a spread of {self.sd:.3g}: {verdict} a margin of {self.margin:.3g}"
            + ("" if self.sufficient else f" (about {self.required_n} queries needed)")
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sufficient": self.sufficient, "message": self.message}


def check_sample_size(n: int, *, sd: float, margin: float, confidence: float = DEFAULT_CONFIDENCE) -> SampleSize:
    """The interval width ``n`` queries achieve (:func:`achievable_width`) against ``margin`` (> 0)."""
    limit = _finite(margin, "margin")
    if limit <= 0:
        raise ValueError(f"margin must be > 0 to size a set for it, got {margin!r}")
    return SampleSize(
        n=n,
        sd=float(sd),
        margin=limit,
        confidence=confidence,
        width=achievable_width(n, sd=sd, confidence=confidence),
        required_n=required_size(limit, sd=sd, confidence=confidence),
    )


# ---------------------------------------------------------------------------------------------------------
# Non-inferiority
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NonInferiority:
    """The decision of :func:`non_inferiority`, with what it was made from.

    ``bound`` is the side of the interval of *candidate - baseline* that decides (the lower bound for a
    higher-is-better metric, the upper for a lower-is-better one) and ``threshold`` the value it is compared
    with (``-margin`` or ``+margin``); ``sample`` says what the set's size achieves (None without a spread).
    """

    metric: str
    direction: Direction
    margin: float
    outcome: Outcome
    reason: str
    difference: PairedDifference
    bound: float | None
    threshold: float
    sample: SampleSize | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction.value,
            "margin": self.margin,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "bound": self.bound,
            "threshold": self.threshold,
            **self.difference.to_dict(),
            "sample": None if self.sample is None else self.sample.to_dict(),
        }


def non_inferiority(
    difference: PairedDifference,
    *,
    metric: str,
    margin: float,
    direction: Direction | str,
    min_pairs: int = DEFAULT_MIN_PAIRS,
) -> NonInferiority:
    """Decide whether the candidate is no worse than the baseline by more than ``margin`` on ``metric``.

    ``difference`` is :func:`paired_difference` of the candidate's and the baseline's per-query values (in the
    metric's units); ``direction`` is a :class:`Direction` or its value (``"higher_is_better"``, as configuration
    gives it). For ``Direction.HIGHER_IS_BETTER``: *pass* when the interval's lower bound is above
    ``-margin``, *fail* when its upper bound is below ``-margin``; for ``LOWER_IS_BETTER`` the mirror image
    (upper bound below ``+margin``; lower bound above ``+margin``). Otherwise, or with fewer than ``min_pairs``
    pairs, *inconclusive*; the reason says why, and whether the set is too small for the margin.
    """
    limit = _finite(margin, "margin")
    if limit < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    if direction not in {d.value for d in Direction}:
        raise ValueError(f"direction must be one of {', '.join(d.value for d in Direction)}, got {direction!r}")
    direction = Direction(direction)
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, int) or min_pairs < 2:
        raise ValueError(f"min_pairs must be a whole number >= 2, got {min_pairs!r}")
    higher = direction is Direction.HIGHER_IS_BETTER
    sample = _sample(difference, limit)
    outcome, reason, bound = _decide(
        difference, metric=metric, margin=limit, higher=higher, min_pairs=min_pairs, sample=sample
    )
    return NonInferiority(
        metric=metric,
        direction=direction,
        margin=limit,
        outcome=outcome,
        reason=reason + _excluded(difference),
        difference=difference,
        bound=bound,
        threshold=-limit if higher else limit,
        sample=sample,
    )


def _decide(
    difference: PairedDifference, *, metric: str, margin: float, higher: bool, min_pairs: int, sample: SampleSize | None
) -> tuple[Outcome, str, float | None]:
    """(outcome, reason, deciding bound) of :func:`non_inferiority`."""
    interval = difference.interval
    threshold = -margin if higher else margin
    if interval.low is None or interval.high is None or interval.n < min_pairs:
        bound = None if interval.low is None else (interval.low if higher else interval.high)
        return Outcome.INCONCLUSIVE, f"only {interval.n} paired queries (at least {min_pairs} needed to decide)", bound
    # Oriented so that "better" is up: the deciding (near) bound, the far bound, both compared with -margin.
    near, far = (interval.low, interval.high) if higher else (-interval.high, -interval.low)
    bound, far_bound = (interval.low, interval.high) if higher else (interval.high, interval.low)
    shown = f"[{interval.low:+.4g}, {interval.high:+.4g}]"
    if near > -margin:
        side, relation = ("lower", "above") if higher else ("upper", "below")
        reason = f"{side} bound {bound:+.4g} of {metric} (candidate - baseline) is {relation} {threshold:+.4g}"
        return Outcome.PASS, reason, bound
    if far < -margin:
        side = "upper" if higher else "lower"
        reason = (
            f"the whole interval {shown} of {metric} is beyond {threshold:+.4g} (its {side} bound {far_bound:+.4g})"
        )
        return Outcome.FAIL, reason, bound
    why = (
        f"the set is too small for the margin ({sample.message})"
        if sample is not None and not sample.sufficient
        else "the difference is close to the margin"
    )
    return Outcome.INCONCLUSIVE, f"the interval {shown} of {metric} straddles {threshold:+.4g}: {why}", bound


def _sample(difference: PairedDifference, margin: float) -> SampleSize | None:
    if difference.differences_sd is None or margin <= 0:
        return None
    return check_sample_size(
        difference.matched, sd=difference.differences_sd, margin=margin, confidence=difference.interval.confidence
    )


def _excluded(difference: PairedDifference) -> str:
    return f"; {difference.unmatched} query(ies) without a value on both sides excluded" if difference.unmatched else ""
