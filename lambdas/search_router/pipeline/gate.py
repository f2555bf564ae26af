"""The quality gate: does the distilled candidate deserve promotion to the router?

:func:`evaluate_gate` compares a candidate's metrics (from :func:`search_router.pipeline.metrics.compute_metrics`) with
:class:`GateThresholds` and, optionally, the baseline router (a paired non-inferiority test:
:func:`search_router.pipeline.analysis.compare`) and the LLM judge's score. Every
check is reported, passed or not, with a human-readable message; a check that cannot run because its input is
optional and absent (no baseline; the judge switched off for the run) is *skipped*, which does not block
promotion. A check whose input is mandatory but unavailable (no valid-JSON rate or MAE, e.g. no schema-valid
answers) fails — and so does a judge that was asked for but produced no score, unless ``require_judge`` is off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

_EPSILON = 1e-9  # a value exactly on a threshold passes despite float noise (3.9 - 0.2 vs 3.7)

CHECK_VALID_JSON = "valid_json_rate"
CHECK_NON_INFERIORITY = "non_inferiority"
CHECK_MAE = "mae_overall"
CHECK_JUDGE = "judge_score"
CHECK_PRODUCTION_RUBRIC = "production_rubric"
NON_INFERIORITY_METRICS = ("rubric_mean", "mae_overall", "dominant_accuracy", "overlap_at_10")
"""What the comparison with the baseline may be made on (:data:`search_router.pipeline.analysis.GATE_METRICS`)."""


@dataclass(frozen=True)
class GateThresholds:
    """What a candidate must reach to be promoted (the Lambda-side twin of the build-time configuration).

    ``min_valid_json_rate``: share of queries whose answer held a JSON object (0..1).
    ``noninferiority_metric`` / ``noninferiority_margin``: the candidate passes the comparison with the baseline
    when the 95% interval of the paired difference (candidate - baseline) on that metric stays above ``-margin``
    (below ``+margin`` for MAE), in the metric's units.
    ``max_overall_mae``: the highest acceptable overall mean absolute error of the weights.
    ``min_judge_score``: the lowest acceptable LLM-judge score (1..5).
    ``require_judge``: when the run asked for the judge, a missing judge score fails the gate (otherwise the
    check is skipped).
    ``min_production_rubric``: the lowest acceptable mean judge rating (1..5) of the candidate's answers to the
    run's production held-out queries; None: off (the check is not made).
    """

    min_valid_json_rate: float = 0.99
    noninferiority_metric: str = "rubric_mean"
    noninferiority_margin: float = 0.2
    max_overall_mae: float = 0.08
    min_judge_score: float = 3.5
    require_judge: bool = True
    min_production_rubric: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.require_judge, bool):
            raise ValueError(f"gate setting require_judge must be true or false, got {self.require_judge!r}")
        if self.noninferiority_metric not in NON_INFERIORITY_METRICS:
            raise ValueError(
                f"gate setting noninferiority_metric must be one of {', '.join(NON_INFERIORITY_METRICS)}, got "
                f"{self.noninferiority_metric!r}"
            )
        rubric = self.min_production_rubric
        if rubric is not None and (
            isinstance(rubric, bool) or not isinstance(rubric, int | float) or not 1 <= rubric <= 5
        ):
            raise ValueError(
                f"gate setting min_production_rubric must be null (off) or a score in 1..5, got {rubric!r}"
            )
        for item in fields(self):
            if item.name in ("require_judge", "noninferiority_metric") or getattr(self, item.name) is None:
                continue
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"gate threshold {item.name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, item.name, float(value))
        if self.min_valid_json_rate > 1:
            raise ValueError(f"gate threshold min_valid_json_rate must be in 0..1, got {self.min_valid_json_rate!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GateThresholds:
        """From a mapping of field names (a ``gate_`` prefix, as in ``cdk.json``, is accepted); missing keys keep
        their defaults. Numeric strings are accepted (environment values). ``ValueError`` names an unknown key
        or a bad value."""
        if not data:
            return cls()
        known = {item.name for item in fields(cls)}
        values: dict[str, Any] = {}
        for raw_key, raw_value in data.items():
            key = raw_key.removeprefix("gate_")
            if key not in known:
                raise ValueError(f"unknown gate threshold {raw_key!r}; known: {', '.join(sorted(known))}")
            value = raw_value
            if key == "noninferiority_metric" or value is None:
                pass
            elif key == "min_production_rubric" and isinstance(value, str) and value.strip().lower() == "null":
                value = None
            elif key == "require_judge":
                if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                    value = value.strip().lower() == "true"
            elif isinstance(value, str):
                try:
                    value = float(value.strip())
                except ValueError:
                    raise ValueError(f"gate threshold {raw_key} must be a number, got {raw_value!r}") from None
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One gate check. ``skipped`` checks pass (they do not block promotion); ``message`` says what happened."""

    name: str
    passed: bool
    actual: float | None
    threshold: float | None
    message: str
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict: ``passed`` only when no check failed."""

    passed: bool
    checks: list[Check]

    @property
    def failures(self) -> list[str]:
        """Human-readable messages of the failed checks, e.g. ``"valid-JSON rate 97.0% < 99.0%"``."""
        return [check.message for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: ``passed``, ``checks`` and ``failures``."""
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks], "failures": self.failures}


def _number(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    if metrics is None:
        return None
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _check_valid_json(candidate: Mapping[str, Any], minimum: float, intervals: Mapping[str, Any] | None) -> Check:
    rate = _number(candidate, "valid_json_rate")
    if rate is None:
        return Check(CHECK_VALID_JSON, False, None, minimum, "valid-JSON rate unavailable (no queries evaluated)")
    passed = rate >= minimum - _EPSILON
    sign = "≥" if passed else "<"
    interval = (intervals or {}).get("valid_json_rate") or {}
    low, high = _number(interval, "low"), _number(interval, "high")
    shown = _pct(rate) + (f" [{_pct(low)}, {_pct(high)}]" if low is not None and high is not None else "")
    return Check(CHECK_VALID_JSON, passed, rate, minimum, f"valid-JSON rate {shown} {sign} {_pct(minimum)}")


def _interval_text(intervals: Mapping[str, Any] | None, metric: str, spec: str) -> str:
    """`` [low, high]`` of the metric's interval, when there is one."""
    interval = (intervals or {}).get(metric) or {}
    low, high = _number(interval, "low"), _number(interval, "high")
    return "" if low is None or high is None else f" [{format(low, spec)}, {format(high, spec)}]"


def _check_non_inferiority(comparison: Mapping[str, Any] | None, *, has_baseline: bool) -> Check:
    """``comparison``: :meth:`search_router.pipeline.analysis.Comparison.to_dict`."""
    name = CHECK_NON_INFERIORITY
    if not has_baseline:
        return Check(name, True, None, None, "skipped: no baseline to compare with", skipped=True)
    if comparison is None:
        return Check(name, False, None, None, "the comparison with the baseline was not computed")
    difference = comparison.get("difference") or {}
    bound, threshold = _number(comparison, "bound"), _number(comparison, "threshold")
    outcome = comparison.get("outcome")
    shown = f"{comparison.get('candidate')} − {comparison.get('baseline')} on {comparison.get('metric')}"
    estimate = _number(difference, "estimate")
    interval = _interval_text({"d": difference}, "d", "+.3f")
    text = f"{shown}: {estimate:+.3f}{interval}" if estimate is not None else f"{shown}: no paired value"
    verdict = {"pass": "non-inferior", "fail": "inferior", "inconclusive": "not shown non-inferior"}.get(
        str(outcome), str(outcome)
    )
    message = f"{text}, margin {comparison.get('margin')}: {verdict} ({comparison.get('reason')})"
    return Check(name, outcome == "pass", bound, threshold, message)


def _check_mae(candidate: Mapping[str, Any], maximum: float, intervals: Mapping[str, Any] | None) -> Check:
    mae = _number(candidate, "mae_overall")
    if mae is None:
        return Check(CHECK_MAE, False, None, maximum, "overall MAE unavailable (no schema-valid answers)")
    passed = mae <= maximum + _EPSILON
    sign = "≤" if passed else ">"
    shown = f"{mae:.3f}{_interval_text(intervals, 'mae_overall', '.3f')}"
    return Check(CHECK_MAE, passed, mae, maximum, f"overall MAE {shown} {sign} {maximum:.3f}")


def _check_judge(
    judge_score: float | None,
    minimum: float,
    *,
    requested: bool,
    required: bool,
    missing_reason: str | None,
    not_applicable: str | None = None,
) -> Check:
    if not_applicable is not None:
        return Check(CHECK_JUDGE, True, None, minimum, f"skipped: {not_applicable}", skipped=True)
    if not requested:
        return Check(CHECK_JUDGE, True, None, minimum, "skipped: the judge was off for this run", skipped=True)
    if judge_score is None or not math.isfinite(judge_score):
        why = missing_reason or "no reason given"
        if required:
            return Check(
                CHECK_JUDGE,
                False,
                None,
                minimum,
                f"the judge was asked for but produced no score ({why}); set gate_require_judge=false to promote "
                "without it",
            )
        return Check(CHECK_JUDGE, True, None, minimum, f"skipped: judge missing ({why})", skipped=True)
    passed = judge_score >= minimum - _EPSILON
    sign = "≥" if passed else "<"
    return Check(CHECK_JUDGE, passed, judge_score, minimum, f"judge score {judge_score:.2f} {sign} {minimum:.2f}")


@dataclass(frozen=True)
class ProductionEvidence:
    """What the gate knows of the candidate on the run's production held-out queries (split ``production``):
    how many there are, and the judge's mean rating of its answers to them (None with the reason when there is
    none: the judge off, failed, or its per-query ratings unreadable)."""

    queries: int
    rubric: float | None
    missing_reason: str | None = None


def _check_production_rubric(evidence: ProductionEvidence | None, minimum: float, *, judge_requested: bool) -> Check:
    name = CHECK_PRODUCTION_RUBRIC
    if evidence is None or evidence.queries == 0:
        return Check(
            name, True, None, minimum, "not applicable: the run has no production held-out queries", skipped=True
        )
    if not judge_requested:
        return Check(
            name,
            False,
            None,
            minimum,
            "the judge was off for this run, so its production queries have no judge rating; "
            "gate_min_production_rubric needs the judge (set judge true, or gate_min_production_rubric null)",
        )
    rubric = evidence.rubric
    if rubric is None or not math.isfinite(rubric):
        why = evidence.missing_reason or "no reason given"
        return Check(
            name, False, None, minimum, f"no judge rating of the {evidence.queries} production queries ({why})"
        )
    passed = rubric >= minimum - _EPSILON
    sign = "≥" if passed else "<"
    return Check(
        name,
        passed,
        rubric,
        minimum,
        f"judge rubric on {evidence.queries} production queries {rubric:.2f} {sign} {minimum:.2f}",
    )


def evaluate_gate(
    candidate: Mapping[str, Any],
    *,
    baseline: Mapping[str, Any] | None,
    judge_score: float | None,
    thresholds: GateThresholds,
    judge_requested: bool = True,
    judge_missing_reason: str | None = None,
    judge_not_applicable: str | None = None,
    comparison: Mapping[str, Any] | None = None,
    intervals: Mapping[str, Any] | None = None,
    production: ProductionEvidence | None = None,
) -> GateDecision:
    """Run every check on ``candidate``'s metrics, in a fixed order.

    1. ``valid_json_rate`` ≥ ``min_valid_json_rate`` (fails when unavailable);
    2. ``non_inferiority``: ``comparison`` (the paired test against the baseline on ``noninferiority_metric``,
       computed by the caller with ``noninferiority_margin``) passed; skipped without a baseline, failed when
       inferior *or* inconclusive (non-inferiority not shown);
    3. ``mae_overall`` ≤ ``max_overall_mae`` (fails when None: no schema-valid answer);
    4. ``judge_score`` ≥ ``min_judge_score``: skipped when the run did not ask for the judge; a missing score fails
       when ``require_judge`` (default), with ``judge_missing_reason`` in the message, else it is skipped;
       ``judge_not_applicable`` (why the judge cannot score this candidate, e.g. the cascade, most of whose
       answers no model wrote) skips it with that reason;
    5. ``production_rubric`` (only when ``min_production_rubric`` is set): the judge's mean rating of the
       candidate's answers to the production held-out queries (``production``) ≥ the threshold; not applicable
       (skipped) without production queries; fails when the judge was off or gave them no rating.

    Boundary values pass (within 1e-9).
    """
    checks = [
        _check_valid_json(candidate, thresholds.min_valid_json_rate, intervals),
        _check_non_inferiority(comparison, has_baseline=baseline is not None),
        _check_mae(candidate, thresholds.max_overall_mae, intervals),
        _check_judge(
            judge_score,
            thresholds.min_judge_score,
            requested=judge_requested,
            required=thresholds.require_judge,
            missing_reason=judge_missing_reason,
            not_applicable=judge_not_applicable,
        ),
    ]
    if thresholds.min_production_rubric is not None:
        checks.append(
            _check_production_rubric(production, thresholds.min_production_rubric, judge_requested=judge_requested)
        )
    return GateDecision(passed=all(check.passed for check in checks), checks=checks)
