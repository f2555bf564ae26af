"""Drift of production traffic against the promoted model's training data (``capture_queries``; the DriftCheck
function, daily): pure.

Inputs: the routed queries captured over the last days (``captured/raw/<date>/``, the records
:func:`search_router.router.capture.capture_record` writes) and the examples of the promoted run's training file
(``runs/<run>/dataset/train.jsonl``). Figures, each with the counts it comes from:

- ``unseen_vocabulary_share``: routed queries with at least one word the training queries never had (words as
  the micro-router reads them: :func:`~search_router.pipeline.queries.query.normalize_query`, then ``\\w+``; the
  redaction marker is not a word);
- ``escalated_share``: routed queries the cascade sent on to the model (source ``model``) while a micro-router is
  promoted; ``None`` without one;
- ``fallback_rate`` and ``default_rate``: sources ``fallback_model`` and ``default``;
- ``dominant_channel_shift``: the **total variation distance** between the distribution of served dominant
  channels (the channel of largest weight, ties to the first in channel order) and that of the training labels:
  ``½ Σ |p - q|``, in [0, 1], the share of traffic whose dominant channel would have to change for the two to
  match. Chosen over PSI because it is bounded, reads as a share, and is defined when a channel never occurs on
  one side (PSI divides by zero there and needs a smoothing constant that changes its value).

Fewer than ``min_records`` routed queries: status ``insufficient_traffic`` (the counts are given, the figures are
not: a share of a handful of queries would alarm on noise). No promoted run (or one without a training file):
status ``no_training_data``. A captured line that is not a record is counted by reason, never dropped silently.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from search_router.pipeline.dataset import LabeledExample
from search_router.pipeline.metrics import dominant_channel
from search_router.pipeline.queries.captured import Compaction
from search_router.pipeline.queries.query import normalize_query
from search_router.router.capture import REDACTED

OK: Final = "ok"
INSUFFICIENT_TRAFFIC: Final = "insufficient_traffic"
NO_TRAINING_DATA: Final = "no_training_data"
SOURCE_MODEL: Final = "model"
SOURCE_FALLBACK: Final = "fallback_model"
SOURCE_DEFAULT: Final = "default"
_WORD: Final = re.compile(r"\w+")  # the micro-router's words (shared/micro_router.py)
MAX_EXAMPLES: Final = 10  # unseen words listed in the summary


def words(text: str) -> set[str]:
    """The words of a query as the micro-router reads them, without the redaction marker."""
    return set(_WORD.findall(normalize_query(text.replace(REDACTED, " "))))


def total_variation(served: Mapping[str, int], trained: Mapping[str, int], channels: Sequence[str]) -> float:
    """``½ Σ |p - q|`` over ``channels`` between two count distributions (each must have a count)."""
    n_served, n_trained = sum(served.values()), sum(trained.values())
    if not n_served or not n_trained:
        raise ValueError("total variation needs a count on each side")
    return 0.5 * math.fsum(abs(served.get(c, 0) / n_served - trained.get(c, 0) / n_trained) for c in channels)


@dataclass(frozen=True)
class RoutedQuery:
    """One captured route: what drift needs of it."""

    query: str
    weights: Mapping[str, float]
    source: str
    model: str | None


@dataclass
class CapturedRoutes(Compaction):
    """Captured objects read as routes: the compaction's reading (gzip, JSON, query) plus weights and source.

    At most ``max_routes`` are kept, a uniform sample of all read (reservoir sampling, seeded: the same objects
    give the same sample), so memory and the figures' time stay bounded at any traffic; ``records`` counts every
    route read. The figures are shares, which the sample estimates (the summary says when it sampled)."""

    channels: tuple[str, ...] = ()
    max_routes: int | None = None
    seed: int = 0
    routes: list[RoutedQuery] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    @property
    def sampled(self) -> bool:
        return self.records > len(self.routes)

    def _accept(self, where: str, record: dict[str, Any], key: str, text: str) -> None:
        del key  # routes are not deduplicated (the traffic's own frequencies are what drift measures)
        weights, source, model = record.get("weights"), record.get("source"), record.get("model")
        if not isinstance(source, str) or not source:
            self._reject(where, "missing_source")
            return
        if not _valid_weights(weights, self.channels):
            self._reject(where, "bad_weights")
            return
        assert isinstance(weights, dict)
        self.records += 1
        route = RoutedQuery(
            query=text,
            weights={c: float(weights[c]) for c in self.channels},
            source=source,
            model=model if isinstance(model, str) else None,
        )
        if self.max_routes is None or len(self.routes) < self.max_routes:
            self.routes.append(route)
            return
        slot = self._rng.randrange(self.records)  # keeps each of the records read with probability max/records
        if slot < self.max_routes:
            self.routes[slot] = route


def _valid_weights(weights: Any, channels: Sequence[str]) -> bool:
    return isinstance(weights, dict) and all(
        isinstance(weights.get(c), int | float) and not isinstance(weights.get(c), bool) for c in channels
    )


def read_routes(
    objects: Iterable[tuple[str, bytes]], channels: Sequence[str], *, max_routes: int | None = None
) -> CapturedRoutes:
    """The routes of ``(key, body)`` Firehose objects (a uniform sample of ``max_routes`` when there are more),
    malformed lines counted by reason."""
    routes = CapturedRoutes(channels=tuple(channels), max_routes=max_routes)
    for key, body in objects:
        routes.add_object(key, body)
    return routes


def window_days(end: date, days: int) -> list[date]:
    """The ``days`` UTC days ending with ``end``, oldest first."""
    return [end - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


@dataclass(frozen=True)
class DriftSettings:
    min_records: int
    micro_router_promoted: bool


def _share(count: int, total: int) -> dict[str, Any]:
    return {"count": count, "total": total, "share": count / total if total else None}


def drift_summary(
    routes: Sequence[RoutedQuery],
    training: Sequence[LabeledExample] | None,
    channels: Sequence[str],
    settings: DriftSettings,
    *,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The drift figures of ``routes`` against ``training`` (``None``: no promoted run's training file), as the
    JSON summary the DriftCheck function writes (``context``: where the data came from, copied in)."""
    n = len(routes)
    summary: dict[str, Any] = {"records": n, "min_records": settings.min_records, **(context or {})}
    summary["sources"] = dict(sorted(Counter(r.source for r in routes).items()))
    if training is None or not training:
        return {**summary, "status": NO_TRAINING_DATA}
    if n < settings.min_records:
        return {**summary, "status": INSUFFICIENT_TRAFFIC, "training_examples": len(training)}
    vocabulary: set[str] = set().union(*(words(e.query) for e in training))
    unseen_by_route = [words(r.query) - vocabulary for r in routes]
    unseen_words = Counter(w for unseen in unseen_by_route for w in unseen)
    served = Counter(dominant_channel(r.weights, channels) for r in routes)
    trained = Counter(dominant_channel(e.weights, channels) for e in training)
    sources = Counter(r.source for r in routes)
    return {
        **summary,
        "status": OK,
        "training_examples": len(training),
        "training_vocabulary": len(vocabulary),
        "unseen_vocabulary": {
            **_share(sum(1 for unseen in unseen_by_route if unseen), n),
            "top_words": [w for w, _ in unseen_words.most_common(MAX_EXAMPLES)],
        },
        "escalated": _share(sources[SOURCE_MODEL], n) if settings.micro_router_promoted else None,
        "fallback": _share(sources[SOURCE_FALLBACK], n),
        "default": _share(sources[SOURCE_DEFAULT], n),
        "dominant_channel_shift": {
            "measure": "total_variation_distance",
            "value": total_variation(served, trained, channels),
            "served": {c: served.get(c, 0) for c in channels},
            "training": {c: trained.get(c, 0) for c in channels},
        },
    }


FIGURES: Final = {
    "UnseenVocabularyShare": ("unseen_vocabulary", "share"),
    "EscalatedShare": ("escalated", "share"),
    "FallbackRate": ("fallback", "share"),
    "DefaultRate": ("default", "share"),
    "DominantChannelShift": ("dominant_channel_shift", "value"),
}
"""Metric name → where its value is in the summary (the handler publishes these; the alarms watch them)."""


def figures(summary: Mapping[str, Any]) -> dict[str, float]:
    """The metric values of a summary: none unless its status is ``ok``; escalation only with a micro-router."""
    if summary.get("status") != OK:
        return {}
    values: dict[str, float] = {}
    for name, (block, key) in FIGURES.items():
        part = summary.get(block)
        if isinstance(part, Mapping) and isinstance(part.get(key), int | float):
            values[name] = float(part[key])
    return values


def _percent(part: Any) -> str:
    if not isinstance(part, Mapping) or part.get("share") is None:
        return "n/a"
    return f"{part['share']:.1%} ({part['count']} of {part['total']})"


def drift_section(summary: Mapping[str, Any] | None) -> list[str]:
    """The report's "Production drift" section (Markdown lines) from the latest summary (``None``: none yet)."""
    lines = ["## Production drift", ""]
    if summary is None:
        return [*lines, "No drift summary yet (capture_queries off, or the daily check has not run).", ""]
    window = f"{summary.get('window_start', '?')} to {summary.get('window_end', '?')}"
    head = f"Routed queries {window}: {summary.get('records', 0)}; promoted run: {summary.get('run_id') or 'none'}."
    status = summary.get("status")
    if status == INSUFFICIENT_TRAFFIC:
        return [*lines, head, "", f"Too little traffic to measure drift (fewer than {summary['min_records']}).", ""]
    if status == NO_TRAINING_DATA:
        return [*lines, head, "", "No promoted run's training data to compare with.", ""]
    shift = summary["dominant_channel_shift"]
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| queries with words unseen in training | {_percent(summary['unseen_vocabulary'])} |",
        f"| escalated by the cascade | {_percent(summary.get('escalated'))} |",
        f"| fallback model | {_percent(summary['fallback'])} |",
        f"| default weights | {_percent(summary['default'])} |",
        f"| dominant-channel shift (total variation) | {shift['value']:.3f} |",
    ]
    served = ", ".join(f"{c} {n}" for c, n in shift["served"].items())
    trained = ", ".join(f"{c} {n}" for c, n in shift["training"].items())
    top = ", ".join(summary["unseen_vocabulary"]["top_words"]) or "none"
    notes = [f"Dominant channels served: {served}; in training: {trained}.", f"Most frequent unseen words: {top}."]
    return [*lines, head, "", *rows, "", *notes, ""]
