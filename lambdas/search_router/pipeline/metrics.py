"""Deterministic evaluation metrics: how close a candidate router's weights are to the teacher's references.

Every candidate router (the distilled deployment, the base student, the baseline router) answers every
held-out query; each answer becomes a :class:`QueryResult`, and :func:`compute_metrics` summarises a
candidate's results into a JSON-serialisable dict that the report and the quality gate read.

Definitions (``n`` = number of queries; every *rate* is over ``n``, so an unanswered or unparseable query
counts as a miss):

- *answered*: the model call returned (``error_kind`` is None).
- *valid JSON*: answered, and the answer contained a parseable JSON object, i.e. the parse either succeeded or
  failed for a reason about the object's content (missing channels, out-of-range values, bad sum...), not
  one of :data:`NO_JSON_OBJECT_REASONS`.
- *schema-valid*: answered and parsed into weights for every channel (``weights`` present).
- *errors*: ``|predicted - reference|`` per channel. MAE per channel, overall MAE (the mean over schema-valid
  answers of each answer's mean absolute error) and the maximum absolute error use schema-valid answers only
  and are None when there are none.
- *dominant*: the channel with the highest weight; ties go to the first channel in channel order.
- *within 0.05 / 0.10*: every channel's error is at most that (with a 1e-9 tolerance for float noise).
- *rubric*: :func:`rubric_score`, over all ``n`` queries (invalid answers score 1).
- *latency*: client-measured ``latency_ms`` of answered calls; percentiles by linear interpolation between
  closest ranks (:func:`percentile`, the same as numpy's default method).
- *tokens and cost*: means over answered calls; the cost of one route is
  ``input_mean / 1000 * input_per_1k + output_mean / 1000 * output_per_1k`` US dollars.

Pure standard library: it ships with every Lambda.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

from search_router.shared.answer.decision import ParseFailureReason, ParseResult
from search_router.shared.channels import Channel, ChannelSet

EPSILON = 1e-9
"""Tolerance for the rubric's and the within-rates' boundaries, so that 0.7 - 0.6 counts as 0.1."""

RUBRIC_SCORES = (1, 2, 3, 4, 5)
WITHIN_TIGHT = 0.05
WITHIN_LOOSE = 0.10
RUBRIC_DOMINANT_MAX_MEAN_ERROR = 0.15
RUBRIC_UNUSABLE_MEAN_ERROR = 0.30

NO_JSON_OBJECT_REASONS: frozenset[str] = frozenset(
    reason.value
    for reason in (
        ParseFailureReason.EMPTY,
        ParseFailureReason.NO_JSON,
        ParseFailureReason.INVALID_JSON,
        ParseFailureReason.NOT_AN_OBJECT,
        ParseFailureReason.TOO_LARGE,
        # The parser itself failed: nothing says the answer held a usable object, so do not count it as one.
        ParseFailureReason.INTERNAL_ERROR,
    )
)
"""Parse-failure reasons meaning "the answer held no parseable JSON object"."""

Channels: TypeAlias = ChannelSet | Sequence[str] | Sequence[Channel]


def channel_names(channels: Channels) -> tuple[str, ...]:
    """The channel names, in order, from a :class:`ChannelSet` or a sequence of names or channels."""
    if isinstance(channels, ChannelSet):
        return channels.names
    names = tuple(c.name if isinstance(c, Channel) else str(c) for c in channels)
    if not names:
        raise ValueError("at least one channel is needed")
    if len(set(names)) != len(names):
        raise ValueError(f"channel names must be unique, got {list(names)}")
    return names


# ---------------------------------------------------------------------------------------------------------
# Per-query results
# ---------------------------------------------------------------------------------------------------------
@dataclass
class QueryResult:
    """One candidate's answer to one held-out query, with what the evaluation measured.

    ``weights`` are the parsed, normalized weights (None unless the answer parsed); ``parse_failure`` is the
    parser's failure reason value (e.g. ``"invalid_json"``) when an answer arrived but did not parse;
    ``error_kind`` names why no answer arrived (a Bedrock error code such as ``"ThrottlingException"``, or
    ``"Timeout"``). ``latency_ms`` is measured by the client around the call; ``service_latency_ms`` is
    Converse's ``metrics.latencyMs``. ``split`` is the held-out record's split (``seen``, ``unseen_template``,
    ``user``: :mod:`search_router.pipeline.dataset`), None for results of an older held-out file.
    """

    query: str
    category: str | None
    reference: dict[str, float]
    raw_text: str | None = None
    weights: dict[str, float] | None = None
    parse_failure: str | None = None
    error_kind: str | None = None
    latency_ms: float | None = None
    service_latency_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the inverse of :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueryResult:
        """Rebuild from :meth:`to_dict` output; ``ValueError`` names a missing or mistyped field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a query result must be an object, got {type(data).__name__}")
        query = data.get("query")
        if not isinstance(query, str):
            raise ValueError("query result field 'query' must be a string")
        category = data.get("category")
        if category is not None and not isinstance(category, str):
            raise ValueError("query result field 'category' must be a string or null")
        reference = _weights_field(data, "reference")
        if reference is None:
            raise ValueError("query result field 'reference' must be an object of channel weights")
        latency = data.get("latency_ms")
        if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float)):
            raise ValueError("query result field 'latency_ms' must be a number or null")
        service_latency = data.get("service_latency_ms")
        if service_latency is not None and (isinstance(service_latency, bool) or not isinstance(service_latency, int)):
            raise ValueError("query result field 'service_latency_ms' must be an integer or null")
        return cls(
            query=query,
            category=category,
            reference=reference,
            raw_text=_optional_str(data, "raw_text"),
            weights=_weights_field(data, "weights"),
            parse_failure=_optional_str(data, "parse_failure"),
            error_kind=_optional_str(data, "error_kind"),
            latency_ms=None if latency is None else float(latency),
            service_latency_ms=service_latency,
            input_tokens=_count(data, "input_tokens"),
            output_tokens=_count(data, "output_tokens"),
            split=_optional_str(data, "split"),
        )

    @classmethod
    def from_parse(
        cls,
        *,
        query: str,
        category: str | None,
        reference: Mapping[str, float],
        raw_text: str | None,
        parsed: ParseResult,
        latency_ms: float | None = None,
        service_latency_ms: int | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        split: str | None = None,
    ) -> QueryResult:
        """The result of an answered call, from
        :func:`~search_router.shared.answer.parser.parse_routing_answer`'s result."""
        return cls(
            query=query,
            category=category,
            reference=dict(reference),
            raw_text=raw_text,
            weights=dict(parsed.decision.weights) if parsed.ok else None,
            parse_failure=None if parsed.ok else parsed.reason.value,
            latency_ms=latency_ms,
            service_latency_ms=service_latency_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            split=split,
        )

    @property
    def answered(self) -> bool:
        """The model call returned an answer (no error)."""
        return self.error_kind is None

    @property
    def valid_json(self) -> bool:
        """Answered, and the answer held a parseable JSON object (see :data:`NO_JSON_OBJECT_REASONS`)."""
        if not self.answered:
            return False
        if self.weights is not None:
            return True
        return self.parse_failure is not None and self.parse_failure not in NO_JSON_OBJECT_REASONS


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"query result field {key!r} must be a string or null")
    return value


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"query result field {key!r} must be a non-negative integer")
    return value


def _weights_field(data: Mapping[str, Any], key: str) -> dict[str, float] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"query result field {key!r} must be an object of channel weights or null")
    weights: dict[str, float] = {}
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise ValueError(f"query result field {key!r}: weight {name!r} must be a finite number")
        weights[str(name)] = float(number)
    return weights


# ---------------------------------------------------------------------------------------------------------
# Per-query scores
# ---------------------------------------------------------------------------------------------------------
def dominant_channel(weights: Mapping[str, float], channels: Channels) -> str:
    """The channel with the highest weight; on a tie, the first in channel order."""
    names = channel_names(channels)
    best = names[0]
    for name in names[1:]:
        if weights[name] > weights[best]:
            best = name
    return best


def abs_errors(pred: Mapping[str, float], ref: Mapping[str, float], channels: Channels) -> dict[str, float]:
    """``|pred - ref|`` per channel, in channel order. ``KeyError`` if either lacks a channel."""
    return {name: abs(float(pred[name]) - float(ref[name])) for name in channel_names(channels)}


def _usable(pred: Mapping[str, float] | None, names: Sequence[str]) -> bool:
    return pred is not None and all(name in pred for name in names)


def _check_reference(ref: Mapping[str, float], names: Sequence[str]) -> None:
    missing = [name for name in names if name not in ref]
    if missing:
        raise ValueError(f"the reference weights lack channel(s) {', '.join(missing)}: the held-out set is invalid")


def rubric_score(pred: Mapping[str, float] | None, ref: Mapping[str, float], channels: Channels) -> int:
    """The reference 1-5 rubric, computed from the weights alone.

    1. no usable prediction (None: unanswered or unparseable; or a channel missing), or mean error > 0.30;
    5. every channel within 0.05 of the reference;
    4. every channel within 0.10;
    3. dominant channel right and mean error < 0.15;
    2. otherwise (dominant channel wrong, or mean error >= 0.15).

    Boundaries allow 1e-9 of float noise (an error of 0.7 - 0.6 is within 0.10). The reference rubric's 5 also
    asks for "specific reasoning": judging reasoning is the LLM judge's business; this deterministic score uses
    the weights only. ``ValueError`` if the reference lacks a channel (an invalid held-out set, not a model fault).
    """
    names = channel_names(channels)
    _check_reference(ref, names)
    if pred is None or not _usable(pred, names):
        return 1
    errors = abs_errors(pred, ref, names)
    mean_error = math.fsum(errors.values()) / len(errors)
    worst = max(errors.values())
    if mean_error > RUBRIC_UNUSABLE_MEAN_ERROR + EPSILON:
        return 1
    if worst <= WITHIN_TIGHT + EPSILON:
        return 5
    if worst <= WITHIN_LOOSE + EPSILON:
        return 4
    if dominant_channel(pred, names) == dominant_channel(ref, names) and mean_error < (
        RUBRIC_DOMINANT_MAX_MEAN_ERROR - EPSILON
    ):
        return 3
    return 2


# ---------------------------------------------------------------------------------------------------------
# Prices and percentiles
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Price:
    """On-demand price in US dollars per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float

    def __post_init__(self) -> None:
        for name in ("input_per_1k", "output_per_1k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"price {name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Price:
        """From ``{"input", "output"}`` (the ``prices`` configuration shape) or ``{"input_per_1k", ...}``.

        ``ValueError`` names a missing or invalid value.
        """
        keys = ("input_per_1k", "output_per_1k") if "input_per_1k" in data else ("input", "output")
        missing = [key for key in keys if key not in data]
        if missing:
            raise ValueError(f"price needs {' and '.join(keys)} (USD per 1K tokens); missing {', '.join(missing)}")
        return cls(data[keys[0]], data[keys[1]])

    def to_dict(self) -> dict[str, float]:
        return {"input_per_1k": self.input_per_1k, "output_per_1k": self.output_per_1k}

    def cost_per_route(self, input_tokens: float, output_tokens: float) -> float:
        """US dollars for one call with these token counts."""
        return input_tokens / 1000.0 * self.input_per_1k + output_tokens / 1000.0 * self.output_per_1k


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks.

    For sorted values ``v[0..n-1]`` the rank is ``(n - 1) * q / 100``; the result interpolates between the
    values either side of it (numpy's default ``linear`` method, Hyndman-Fan type 7). ``ValueError`` for no
    values or ``q`` outside 0..100.
    """
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("percentile of no values")
    if isinstance(q, bool) or not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in 0..100, got {q!r}")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _rate(count: int, n: int) -> float | None:
    return count / n if n else None


def latency_summary(latencies: Sequence[float]) -> dict[str, float | int | None]:
    """``{count, mean, p50, p95, p99, min, max}`` in milliseconds; values None when there are no latencies."""
    if not latencies:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "min": None, "max": None}
    return {
        "count": len(latencies),
        "mean": _mean(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "min": min(latencies),
        "max": max(latencies),
    }


# ---------------------------------------------------------------------------------------------------------
# Candidate summary
# ---------------------------------------------------------------------------------------------------------
def compute_metrics(results: Sequence[QueryResult], channels: Channels, *, price: Price | None) -> dict[str, Any]:
    """Summarise one candidate's results (see the module docstring for every definition).

    Returns a JSON-serialisable dict: ``n``, ``answered``/``answered_rate``, ``valid_json``/``valid_json_rate``,
    ``schema_valid``/``schema_valid_rate``, ``mae_per_channel``, ``mae_overall``, ``max_abs_error``,
    ``dominant_accuracy``, ``within_005_rate``, ``within_010_rate``, ``rubric_mean``, ``rubric_distribution``
    (``"1"``..``"5"`` → count), ``latency`` (:func:`latency_summary`), ``service_latency_mean``, ``tokens``
    (``input_mean``, ``output_mean``), ``cost_per_1k_routes``, ``cost_per_1m_routes``, ``price``,
    ``errors_by_kind`` and ``parse_failures_by_reason``. With no queries every rate and mean is None.
    """
    names = channel_names(channels)
    n = len(results)
    answered = [r for r in results if r.answered]
    for result in results:
        _check_reference(result.reference, names)
    # (prediction, reference) of each schema-valid answer
    valid = [(r.weights, r.reference) for r in answered if r.weights is not None and _usable(r.weights, names)]
    return {
        "channels": list(names),
        "n": n,
        **_validity(results, answered, valid),
        **_accuracy(valid, names, n),
        **_rubric(results, names),
        **_latency_and_cost(answered, price),
        **_failure_counts(results, answered),
    }


UNSPLIT = "unspecified"
"""The split of results that carry none (an older held-out file)."""


def metrics_by_split(
    results: Sequence[QueryResult], channels: Channels, *, price: Price | None
) -> dict[str, dict[str, Any]]:
    """:func:`compute_metrics` of each held-out split's results (:data:`UNSPLIT` for results without one), in
    split-name order; every result is in exactly one split, so the splits' ``n`` add up to ``len(results)``."""
    grouped: dict[str, list[QueryResult]] = {}
    for result in results:
        grouped.setdefault(result.split or UNSPLIT, []).append(result)
    return {split: compute_metrics(grouped[split], channels, price=price) for split in sorted(grouped)}


Pairs: TypeAlias = Sequence[tuple[Mapping[str, float], Mapping[str, float]]]
"""(prediction, reference) of each schema-valid answer."""


def _validity(results: Sequence[QueryResult], answered: list[QueryResult], valid: Pairs) -> dict[str, Any]:
    """How many answers arrived, held JSON, and held every channel's weight (and their rates over ``n``)."""
    n = len(results)
    valid_json = sum(r.valid_json for r in results)
    return {
        "answered": len(answered),
        "answered_rate": _rate(len(answered), n),
        "valid_json": valid_json,
        "valid_json_rate": _rate(valid_json, n),
        "schema_valid": len(valid),
        "schema_valid_rate": _rate(len(valid), n),
    }


def _accuracy(valid: Pairs, names: tuple[str, ...], n: int) -> dict[str, Any]:
    """Errors against the references (schema-valid answers only), dominant-channel and within-tolerance rates."""
    per_query_errors = [abs_errors(pred, ref, names) for pred, ref in valid]
    per_query_mean = [math.fsum(errors.values()) / len(names) for errors in per_query_errors]
    worst = [max(errors.values()) for errors in per_query_errors]
    dominant_hits = sum(dominant_channel(pred, names) == dominant_channel(ref, names) for pred, ref in valid)
    return {
        "mae_per_channel": {name: _mean([errors[name] for errors in per_query_errors]) for name in names},
        "mae_overall": _mean(per_query_mean),
        "max_abs_error": max(worst) if worst else None,
        "dominant_accuracy": _rate(dominant_hits, n),
        "within_005_rate": _rate(sum(w <= WITHIN_TIGHT + EPSILON for w in worst), n),
        "within_010_rate": _rate(sum(w <= WITHIN_LOOSE + EPSILON for w in worst), n),
    }


def _rubric(results: Sequence[QueryResult], names: tuple[str, ...]) -> dict[str, Any]:
    """The 1-5 rubric over every query (an unanswered one scores 1)."""
    scores = [rubric_score(r.weights if r.answered else None, r.reference, names) for r in results]
    distribution = Counter(scores)
    return {
        "rubric_mean": _mean([float(s) for s in scores]),
        "rubric_distribution": {str(score): distribution.get(score, 0) for score in RUBRIC_SCORES},
    }


def _latency_and_cost(answered: list[QueryResult], price: Price | None) -> dict[str, Any]:
    """Latency, tokens and (with a price) the cost of routing, over answered calls."""
    latencies = [float(r.latency_ms) for r in answered if r.latency_ms is not None]
    service_latencies = [float(r.service_latency_ms) for r in answered if r.service_latency_ms is not None]
    input_mean = _mean([float(r.input_tokens) for r in answered])
    output_mean = _mean([float(r.output_tokens) for r in answered])
    cost_per_route = (
        price.cost_per_route(input_mean, output_mean)
        if price is not None and input_mean is not None and output_mean is not None
        else None
    )
    return {
        "latency": latency_summary(latencies),
        "service_latency_mean": _mean(service_latencies),
        "tokens": {"input_mean": input_mean, "output_mean": output_mean},
        "price": price.to_dict() if price is not None else None,
        "cost_per_1k_routes": cost_per_route * 1_000 if cost_per_route is not None else None,
        "cost_per_1m_routes": cost_per_route * 1_000_000 if cost_per_route is not None else None,
    }


def _failure_counts(results: Sequence[QueryResult], answered: list[QueryResult]) -> dict[str, Any]:
    """Unanswered queries by error kind and unusable answers by parse-failure reason."""
    return {
        "errors_by_kind": dict(sorted(Counter(r.error_kind for r in results if r.error_kind is not None).items())),
        "parse_failures_by_reason": dict(
            sorted(Counter(r.parse_failure for r in answered if r.weights is None and r.parse_failure).items())
        ),
    }
