"""Scheduled retraining (``retrain_schedule``): whether to start a run on the captured queries, and with which.

The daily compaction writes one file per day, ``inputs/captured/<date>.jsonl`` (``{"query", "count"}`` lines, the
most frequent first). At each scheduled time the retraining decides from those files and the last scheduled run's
``through`` day (the last day whose queries it used):

* **New queries**: the distinct queries (by :func:`normalize_query`) of the days after ``through`` that no day up
  to ``through`` had, i.e. traffic the last scheduled run never saw. Fewer than ``min_new`` of them: the run is
  skipped (:data:`TOO_FEW_NEW_QUERIES`) and the caller says why.
* **Production held-out**: ``heldout`` of the new queries, drawn with probability proportional to their count
  (weighted sampling without replacement, seeded by the run's name): a sample of what users actually sent, which
  the pipeline labels and evaluates on (split ``production``) and never trains on.
* **Training queries**: every other captured query, counts summed over the days, the most frequent first (ties:
  the most recent day first, then first seen), at most ``max_training`` of them; the run tops them up with
  synthesized ones to its size (``mix_user_queries`` false).

Pure and deterministic: the same files, ``through`` and seed give the same decision and the same files. A line of
a captured file that is not ``{"query": text, "count": n >= 1}`` is counted by reason, never dropped silently.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Final

from search_router.pipeline.queries.query import clean_text, normalize_query

START: Final = "start"
TOO_FEW_NEW_QUERIES: Final = "too_few_new_queries"
RUN_IN_PROGRESS: Final = "run_in_progress"
MAX_SAMPLES: Final = 20


@dataclass
class CapturedQueries:
    """The captured days read so far: per day its queries' counts (normalized key → count), the first text seen
    of each key, and every line that was not a record, by reason."""

    days: dict[date, Counter[str]] = field(default_factory=dict)
    earlier: set[str] = field(default_factory=set)
    """Keys of the days before the window that the last scheduled run read: seen, not counted or trained on."""
    texts: dict[str, str] = field(default_factory=dict)
    malformed: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def add_day(self, day: date, text: str, *, where: str) -> None:
        """One compacted file (``where`` names it in the samples)."""
        counts = self.days.setdefault(day, Counter())
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            reason, query, count = _read_line(line)
            if reason is not None:
                self.malformed[reason] += 1
                if len(self.samples) < MAX_SAMPLES:
                    self.samples.append(f"{where} line {number}: {reason}")
                continue
            key = normalize_query(query)
            counts[key] += count
            self.texts.setdefault(key, query)

    def add_earlier_day(self, text: str) -> None:
        """A day before the window that the last scheduled run read: its queries are seen (malformed lines were
        counted when that run read them)."""
        for line in text.splitlines():
            reason, query, _ = _read_line(line) if line.strip() else ("blank", "", 0)
            if reason is None:
                self.earlier.add(normalize_query(query))

    def keys_through(self, through: date | None) -> set[str]:
        """Every key of the days up to and including ``through``, those before the window included (none when
        ``through`` is None)."""
        if through is None:
            return set()
        return self.earlier | {key for day, counts in self.days.items() if day <= through for key in counts}

    def new_counts(self, through: date | None) -> Counter[str]:
        """The counts, over the days after ``through``, of the keys no day up to ``through`` had."""
        seen = self.keys_through(through)
        new: Counter[str] = Counter()
        for day, counts in self.days.items():
            if through is None or day > through:
                new.update({key: n for key, n in counts.items() if key not in seen})
        return new


def _read_line(line: str) -> tuple[str | None, str, int]:
    """``(reason, query, count)``; ``reason`` is None for a record."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return "not_json", "", 0
    if not isinstance(record, dict):
        return "not_an_object", "", 0
    query = record.get("query")
    if not isinstance(query, str) or not normalize_query(clean_text(query)):
        return "missing_query", "", 0
    count = record.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return "bad_count", "", 0
    return None, clean_text(query), count


@dataclass(frozen=True)
class RetrainDecision:
    """What the scheduled retraining decided: ``status`` (:data:`START` or a reason to skip), the figures it
    decided on, and for a start the training and held-out queries (text, count), the most frequent first."""

    status: str
    through: date | None
    since: date | None
    days: int
    new_queries: int
    min_new_queries: int
    captured_queries: int
    training: Sequence[tuple[str, int]] = ()
    heldout: Sequence[tuple[str, int]] = ()
    training_over_limit: int = 0
    malformed: Mapping[str, int] = field(default_factory=dict)
    malformed_samples: Sequence[str] = ()

    @property
    def start(self) -> bool:
        return self.status == START

    def explanation(self) -> str:
        """One sentence for the operator: why the run starts or is skipped, and what would change it."""
        window = f"since {self.since.isoformat()}" if self.since else "in all captured days"
        if self.status == TOO_FEW_NEW_QUERIES:
            return (
                f"{self.new_queries} new distinct queries {window} ({self.days} captured day(s)); the scheduled "
                f"retraining needs at least {self.min_new_queries} (retrain_min_new_queries). It tries again at the "
                "next scheduled time; lower retrain_min_new_queries to retrain on less."
            )
        if self.status == RUN_IN_PROGRESS:
            return "a pipeline execution is still running; the scheduled retraining starts none next to it."
        return (
            f"{self.new_queries} new distinct queries {window}: training on {len(self.training)} captured queries "
            f"(topped up with synthesized ones), holding out {len(self.heldout)} production queries."
        )

    def summary(self) -> dict[str, Any]:
        """The JSON record of the decision (without the queries)."""
        return {
            "status": self.status,
            "explanation": self.explanation(),
            "through": self.through.isoformat() if self.through else None,
            "since": self.since.isoformat() if self.since else None,
            "days": self.days,
            "new_queries": self.new_queries,
            "min_new_queries": self.min_new_queries,
            "captured_queries": self.captured_queries,
            "training_queries": len(self.training),
            "training_over_limit": self.training_over_limit,
            "heldout_queries": len(self.heldout),
            "malformed": dict(sorted(self.malformed.items())),
            "malformed_samples": list(self.malformed_samples),
        }

    def skipped(self, status: str) -> RetrainDecision:
        """This decision turned into a skip for ``status`` (e.g. :data:`RUN_IN_PROGRESS`), without the queries."""
        return replace(self, status=status, training=(), heldout=(), training_over_limit=0)


def weighted_sample(counts: Mapping[str, int], k: int, *, seed: str) -> list[str]:
    """``k`` keys drawn without replacement with probability proportional to their count (Efraimidis–Spirakis:
    the ``k`` largest ``u ** (1 / count)``), in the order of their keys; all of them when there are no more."""
    if k >= len(counts):
        return sorted(counts)
    rng = random.Random(f"production-heldout:{seed}")  # noqa: S311 - reproducible sampling, not security
    scored = sorted(
        ((math.log(rng.random() or 1e-300) / counts[key], key) for key in sorted(counts)),
        reverse=True,
    )
    return sorted(key for _, key in scored[:k])


def decide(
    captured: CapturedQueries,
    *,
    through: date | None,
    min_new: int,
    heldout: int,
    max_training: int,
    seed: str,
) -> RetrainDecision:
    """The decision for the captured days (see the module's description); ``through`` is the last scheduled run's
    last day (None before the first)."""
    if heldout >= min_new:
        raise ValueError(f"the held-out sample ({heldout}) must be smaller than the new queries required ({min_new})")
    new = captured.new_counts(through)
    later = sorted(day for day in captured.days if through is None or day > through)
    skip = RetrainDecision(
        status=TOO_FEW_NEW_QUERIES,
        through=later[-1] if later else through,
        since=min(later) if later else None,
        days=len(later),
        new_queries=len(new),
        min_new_queries=min_new,
        captured_queries=len({key for counts in captured.days.values() for key in counts}),
        malformed=dict(captured.malformed),
        malformed_samples=list(captured.samples),
    )
    if len(new) < min_new:
        return skip
    held = set(weighted_sample(new, heldout, seed=seed))
    totals: Counter[str] = Counter()
    latest: dict[str, date] = {}
    for day in sorted(captured.days):
        for key, count in captured.days[day].items():
            totals[key] += count
            latest[key] = day
    order = {key: index for index, key in enumerate(captured.texts)}
    ranked = sorted(
        (key for key in totals if key not in held),
        key=lambda key: (-totals[key], -latest[key].toordinal(), order[key]),
    )
    texts = captured.texts
    return replace(
        skip,
        status=START,
        training=[(texts[key], totals[key]) for key in ranked[:max_training]],
        heldout=sorted(((texts[key], totals[key]) for key in held), key=lambda item: (-item[1], item[0])),
        training_over_limit=max(0, len(ranked) - max_training),
    )
