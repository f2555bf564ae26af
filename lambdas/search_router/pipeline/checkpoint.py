"""A labeling shard's progress in S3: checkpoint parts written as it goes, merged when it resumes or fails.

Layout of one shard (``<tmp>`` is ``tmp/<run>/``; :class:`ShardKeys`)::

    <tmp>labeled/shard-00003/part-00001-<invocation>.json   progress, one part per flush (append-only)
    <tmp>labeled/shard-00003.jsonl                          the shard's labeled examples, in plan order  } written
    <tmp>labeled/shard-00003.stats.json                     its counts; written last: "the shard is done" } at the end
    <tmp>labeled/shard-00003.error.json                     the last error that stopped an invocation (if any)

A part holds the queries that reached a *final* outcome since the previous part — labeled (with the example),
invalid (reason and a sample) or error (code and message), each by its position in the shard's plan — and what
the calls cost meanwhile (calls, retries, throttled responses, tokens, seconds). Queries left unlabeled (deadline,
throttle budget) are not in any part: they are what a resumed invocation labels.

Merging (:meth:`ShardProgress.merge`) is exact whatever happened: a query has one outcome. An answered one
(labeled or invalid) is final — the first in part order wins (two overlapping invocations may both have labeled
it; both calls are counted in the usage, because both were paid for) and a resumed invocation never asks about it
again. An error is kept only until a later part has something for that query: a resumed invocation asks again
(the error may have been the quota running out, or model access since granted). An outcome whose query text does
not match the plan at its position is ignored. Parts are only ever added, so an invocation that is killed mid-way
(a Lambda timeout) loses at most what it did after its last flush (:class:`Checkpoint`: every ``every`` outcomes or
``every_s`` seconds).

Pure: S3 access is the caller's (``write`` callback; parts passed in as dicts).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from search_router.contract.layout import invocation_token
from search_router.pipeline.dataset import LabeledExample
from search_router.pipeline.labeling import ERROR, INVALID, LABELED, MAX_INVALID_SAMPLES, LabelingUsage, QueryOutcome

PART_VERSION: Final = 1
DEFAULT_EVERY: Final = 25
"""Outcomes between two checkpoint parts."""
DEFAULT_EVERY_S: Final = 15.0
"""Seconds between two checkpoint parts while outcomes keep coming."""

_USAGE_FIELDS: Final = ("calls", "retries", "throttled", "input_tokens", "output_tokens")


# ---------------------------------------------------------------------------------------------------------
# Part (de)serialisation
# ---------------------------------------------------------------------------------------------------------
def outcome_record(index: int, outcome: QueryOutcome) -> dict[str, Any]:
    """One final outcome as a part record (``i`` is the query's position in the shard's plan)."""
    record: dict[str, Any] = {"i": index, "kind": outcome.kind, "q": outcome.query}
    if outcome.kind == LABELED and outcome.example is not None:
        example = outcome.example
        record["example"] = {
            "query": example.query,
            "category": example.category,
            "source": example.source,
            "weights": example.weights,
            "reasoning": example.reasoning,
        }
        if example.template is not None:
            record["example"]["template"] = example.template
    elif outcome.kind == INVALID:
        record.update(reason=outcome.reason, detail=outcome.detail, text=outcome.text)
    elif outcome.kind == ERROR:
        record.update(code=outcome.code, message=outcome.message)
    else:
        raise ValueError(f"only final outcomes are checkpointed, got {outcome.kind!r}")
    return record


def outcome_from_record(record: Mapping[str, Any]) -> QueryOutcome:
    """The :class:`QueryOutcome` of a part record; ``ValueError`` names what is wrong."""
    kind = record.get("kind")
    query = str(record.get("q", ""))
    if kind == LABELED:
        item = record.get("example")
        if not isinstance(item, Mapping):
            raise ValueError("a labeled record needs its example")
        if item.get("template") is not None and not isinstance(item["template"], str):
            raise ValueError("a labeled record's template must be a string")
        example = LabeledExample(
            query=str(item["query"]),
            category=str(item["category"]),
            source=str(item["source"]),
            weights={str(k): float(v) for k, v in dict(item["weights"]).items()},
            reasoning=item.get("reasoning"),
            template=item.get("template"),
        )
        example.decision  # noqa: B018 - validates the weights
        return QueryOutcome(LABELED, query=query or example.query, example=example)
    if kind == INVALID:
        return QueryOutcome(
            INVALID,
            query=query,
            reason=str(record.get("reason") or "unknown"),
            detail=str(record.get("detail", "")),
            text=str(record.get("text", "")),
        )
    if kind == ERROR:
        return QueryOutcome(
            ERROR, query=query, code=str(record.get("code") or "Unknown"), message=str(record.get("message", ""))
        )
    raise ValueError(f"unknown outcome kind {kind!r}")


def usage_from(mapping: Mapping[str, Any] | None) -> LabelingUsage:
    mapping = mapping or {}
    return LabelingUsage(
        **{name: int(mapping.get(name) or 0) for name in _USAGE_FIELDS},
        elapsed_s=float(mapping.get("elapsed_s") or 0.0),
    )


def add_usage(a: LabelingUsage, b: LabelingUsage) -> LabelingUsage:
    return LabelingUsage(
        calls=a.calls + b.calls,
        retries=a.retries + b.retries,
        throttled=a.throttled + b.throttled,
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        elapsed_s=a.elapsed_s + b.elapsed_s,
    )


# ---------------------------------------------------------------------------------------------------------
# Merged progress
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ShardProgress:
    """What a shard's parts say it has done: one final outcome per query position, and the summed usage."""

    outcomes: dict[int, QueryOutcome] = field(default_factory=dict)
    usage: LabelingUsage = field(default_factory=LabelingUsage)
    invocations: list[str] = field(default_factory=list)
    parts: int = 0
    last_part: int = 0
    ignored: int = 0  # records that did not match the plan, or repeated a query already done

    @classmethod
    def merge(cls, parts: Iterable[Mapping[str, Any]], queries: Sequence[str] | None = None) -> ShardProgress:
        """Merge parts (in write order). With ``queries`` (the plan's texts by position), a record whose
        position is out of range or whose query differs is ignored, never counted."""
        progress = cls()
        for part in parts:
            progress.add_part(part, queries)
        return progress

    def add_part(self, part: Mapping[str, Any], queries: Sequence[str] | None = None) -> None:
        if int(part.get("version", 0)) != PART_VERSION:
            raise ValueError(f"checkpoint part version {part.get('version')!r} is not {PART_VERSION}")
        self.parts += 1
        self.last_part = max(self.last_part, int(part.get("part", 0)))
        invocation = str(part.get("invocation", ""))
        if invocation and invocation not in self.invocations:
            self.invocations.append(invocation)
        self.usage = add_usage(self.usage, usage_from(part.get("usage")))
        for record in part.get("outcomes", []):
            index = int(record["i"])
            outcome = outcome_from_record(record)
            mismatch = queries is not None and (not 0 <= index < len(queries) or queries[index] != outcome.query)
            if mismatch:
                self.ignored += 1
                continue
            self.add(index, outcome)

    def add(self, index: int, outcome: QueryOutcome) -> None:
        """One more outcome for ``index``: kept unless the query already has an answered (final) one."""
        current = self.outcomes.get(index)
        if current is not None and current.answered:
            self.ignored += 1
            return
        self.outcomes[index] = outcome

    def pending(self, total: int) -> list[int]:
        """Positions ``0..total-1`` the teacher has not answered (no outcome, or an error), in order: what a
        resumed invocation asks about."""
        return [index for index in range(total) if not (index in self.outcomes and self.outcomes[index].answered)]

    @property
    def done(self) -> int:
        """Queries with an outcome (answered or error): what the counts already account for."""
        return len(self.outcomes)

    @property
    def answered(self) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome.answered)

    def examples(self) -> list[LabeledExample]:
        """The labeled examples in plan order."""
        return [
            outcome.example
            for _, outcome in sorted(self.outcomes.items())
            if outcome.kind == LABELED and outcome.example is not None
        ]

    def invalid(self) -> Counter[str]:
        return Counter(o.reason or "unknown" for o in self.outcomes.values() if o.kind == INVALID)

    def errors(self) -> Counter[str]:
        return Counter(o.code or "Unknown" for o in self.outcomes.values() if o.kind == ERROR)

    def invalid_samples(self) -> list[dict[str, str]]:
        samples = [
            {"query": o.query, "reason": o.reason or "unknown", "detail": o.detail, "text": o.text}
            for _, o in sorted(self.outcomes.items())
            if o.kind == INVALID
        ]
        return samples[:MAX_INVALID_SAMPLES]

    def error_messages(self) -> dict[str, str]:
        messages: dict[str, str] = {}
        for _, outcome in sorted(self.outcomes.items()):
            if outcome.kind == ERROR:
                messages.setdefault(outcome.code or "Unknown", outcome.message)
        return messages

    def counts(self) -> dict[str, Any]:
        """Outcome counts and usage, in the shard stats' field names."""
        invalid, errors = self.invalid(), self.errors()
        return {
            "labeled": sum(1 for o in self.outcomes.values() if o.kind == LABELED),
            "invalid": dict(invalid),
            "invalid_total": sum(invalid.values()),
            "invalid_samples": self.invalid_samples(),
            "errors": dict(errors),
            "errors_total": sum(errors.values()),
            "error_messages": self.error_messages(),
            **self.usage.to_dict(),
        }


# ---------------------------------------------------------------------------------------------------------
# Writing parts as labeling goes
# ---------------------------------------------------------------------------------------------------------
class Checkpoint:
    """Buffers one invocation's final outcomes and writes them as parts: when ``every`` outcomes are waiting
    or ``every_s`` seconds have passed since the last part (checked on each outcome), and on :meth:`flush`.

    ``write(part_number, part)`` stores a part (the label shard: one S3 PutObject of
    :meth:`ShardKeys.part`); it is called by the worker whose outcome made a part due, one part at a time. A
    failed write is not lost: its outcomes go back to the buffer and are written with the next part; the error
    is kept in ``write_error`` (and raised by :meth:`flush`). Thread-safe.
    """

    def __init__(
        self,
        *,
        shard: int,
        invocation: str,
        write: Callable[[int, dict[str, Any]], object],
        first_part: int = 1,
        every: int = DEFAULT_EVERY,
        every_s: float = DEFAULT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every < 1 or every_s <= 0:
            raise ValueError("every must be >= 1 and every_s > 0")
        self.shard = shard
        self.invocation = invocation_token(invocation)
        self._write = write
        self._next_part = first_part
        self._every = every
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one part at a time, in order
        self._buffer: list[tuple[int, QueryOutcome]] = []
        self._usage = LabelingUsage()  # latest usage seen
        self._written_usage = LabelingUsage()  # usage covered by the parts written so far
        self._last_write = clock()
        self.recorded: list[tuple[int, QueryOutcome]] = []  # every outcome of this invocation
        self.parts_written = 0
        self.write_error: BaseException | None = None

    def record(self, index: int, outcome: QueryOutcome, usage: LabelingUsage) -> None:
        """One final outcome (``index``: the query's position in the shard's plan). May write a part."""
        if not outcome.final:
            raise ValueError(f"only final outcomes are checkpointed, got {outcome.kind!r}")
        with self._lock:
            self._buffer.append((index, outcome))
            self.recorded.append((index, outcome))
            if usage.calls >= self._usage.calls:
                self._usage = usage
            due = len(self._buffer) >= self._every or self._clock() - self._last_write >= self._every_s
        if due and self._write_lock.acquire(blocking=False):  # a part is already being written: the next one
            try:
                self._write_due()
            finally:
                self._write_lock.release()

    def flush(self, usage: LabelingUsage | None = None) -> None:
        """Write whatever is buffered (and the usage since the last part), then raise the last write error if the
        buffer could not be written."""
        with self._lock:
            if usage is not None and usage.calls >= self._usage.calls:
                self._usage = usage
        with self._write_lock:
            self._write_due()
            with self._lock:
                failed = self.write_error is not None and bool(self._buffer)
            if failed and self.write_error is not None:
                raise self.write_error

    def _write_due(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
            usage = self._usage
            delta = usage.minus(self._written_usage)
            if not batch and delta.calls == 0 and delta.input_tokens == 0:
                return
            number = self._next_part
            part = {
                "version": PART_VERSION,
                "shard": self.shard,
                "invocation": self.invocation,
                "part": number,
                "outcomes": [outcome_record(index, outcome) for index, outcome in batch],
                "usage": delta.to_dict(),
            }
        try:
            self._write(number, part)
        except Exception as exc:  # kept for the next part; flush() raises it if it stays unwritten
            with self._lock:
                self._buffer = batch + self._buffer
                self.write_error = exc
            return
        with self._lock:
            self._next_part = number + 1
            self._written_usage = usage
            self._last_write = self._clock()
            self.parts_written += 1
            self.write_error = None
