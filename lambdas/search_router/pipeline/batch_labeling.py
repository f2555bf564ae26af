"""Teacher labeling through Bedrock batch inference (``labeling_mode: batch``): the job's input and its output.

A batch job (``CreateModelInvocationJob`` with ``modelInvocationType="Converse"``) reads JSONL records
``{"recordId", "modelInput"}`` where ``modelInput`` is the body of a Converse request (no ``modelId``: the job has
it), and writes ``<input file name>.out`` with one line per record: ``{"recordId", "modelInput", "modelOutput"}``
(``modelOutput`` the body of a Converse response) or, where inference failed, ``"error": {"errorCode",
"errorMessage"}`` instead of ``modelOutput``. The output's order is not the input's: records are matched by
``recordId``. (Bedrock user guide, "Format and upload your batch inference data" and "View the results of a batch
inference job".)

:func:`batch_input` builds the records from the plan's queries, with the same teacher prompt and inference
settings as on-demand labeling (:mod:`search_router.pipeline.labeling`). A batch job needs a minimum number of
records (100 for most models, a per-model quota): a smaller plan is **refused** with :class:`BatchTooSmall`, which
says to label it on demand — the records are not padded (padding would pay the teacher for queries nobody asked
for) and the mode is not switched behind the caller's back.

:func:`parse_batch_output` reads the output with the shared answer parser (the training tolerance, as on demand)
and ends every query as exactly one of: labeled, invalid (by parse-failure reason, the same reasons as on
demand), error (by the record's ``errorCode``) or unlabeled (reason :data:`UNLABELED_NO_OUTPUT`: no readable output
record names it). Lines that cannot be read (not JSON, no ``recordId``), records naming no query and repeated
records are counted too: nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from search_router.pipeline.dataset import TRAINING_SUM_TOLERANCE, LabeledExample
from search_router.pipeline.labeling import (
    ERROR,
    INVALID,
    MAX_INVALID_SAMPLES,
    MAX_SAMPLE_TEXT,
    LabelingResult,
    LabelingUsage,
    QueryOutcome,
    invalid_outcome,
    invalid_sample,
    labeled_outcome,
)
from search_router.pipeline.queries.query import Query
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import ChannelSet
from search_router.shared.model_calls import converse_request, converse_response_text
from search_router.shared.prompts import teacher_prompt

MIN_BATCH_RECORDS: Final = 100
"""The minimum number of records of a batch inference job for most models (a per-model quota, "Minimum number of
records per batch inference job"; the value for the teacher is *unconfirmed*: pass ``min_records``)."""
RECORD_ID_PREFIX: Final = "Q"
RECORD_ID_DIGITS: Final = 10
"""Record ids are ``Q`` and the query's position in ten digits: 11 alphanumeric characters, as in the user guide."""
UNLABELED_NO_OUTPUT: Final = "batch_no_output"
"""A query whose record the job's output does not hold (or holds only in lines that cannot be read)."""
MAX_UNREADABLE_SAMPLES: Final = 20


class BatchTooSmall(ValueError):
    """The plan has fewer queries than a batch job accepts: label it on demand (``labeling_mode: on_demand``)."""

    def __init__(self, records: int, minimum: int) -> None:
        super().__init__(
            f"batch labeling needs at least {minimum} records (the batch inference minimum) but the plan has "
            f"{records} queries: label them on demand (labeling_mode: on_demand) or plan more queries"
        )
        self.records = records
        self.minimum = minimum


class UnknownRecordId(ValueError):
    """A record id this module did not make."""


def record_id(position: int) -> str:
    """The record id of the query at ``position`` in the plan."""
    if not 0 <= position < 10**RECORD_ID_DIGITS:
        raise ValueError(f"a query position must be in [0, {10**RECORD_ID_DIGITS}), got {position}")
    return f"{RECORD_ID_PREFIX}{position:0{RECORD_ID_DIGITS}d}"


def record_position(value: str) -> int:
    """The position a :func:`record_id` names; :class:`UnknownRecordId` for any other text."""
    digits = value[len(RECORD_ID_PREFIX) :]
    if not (
        value.startswith(RECORD_ID_PREFIX) and len(digits) == RECORD_ID_DIGITS and digits.isascii() and digits.isdigit()
    ):
        raise UnknownRecordId(f"{value[:40]!r} is not a record id of this pipeline ({RECORD_ID_PREFIX} + 10 digits)")
    return int(digits)


def batch_input(
    queries: Sequence[Query],
    *,
    channels: ChannelSet,
    max_tokens: int = 300,
    temperature: float = 0.3,
    min_records: int = MIN_BATCH_RECORDS,
) -> str:
    """The JSONL input of a Converse batch job: one record per query, in plan order, each asking the teacher with
    the teacher prompt as system and the query as the user turn. Raises :class:`BatchTooSmall` below
    ``min_records`` queries."""
    if len(queries) < min_records:
        raise BatchTooSmall(len(queries), min_records)
    system = teacher_prompt(channels)
    lines = [
        json.dumps(
            {
                "recordId": record_id(position),
                "modelInput": converse_request(
                    system=system, user=query.text, max_tokens=max_tokens, temperature=temperature
                ),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for position, query in enumerate(queries)
    ]
    return "\n".join(lines) + "\n"


@dataclass
class BatchOutput:
    """What :func:`parse_batch_output` read: ``labeling`` the per-query outcomes as on demand (so the dataset
    manifest counts them alike), and the lines that could not be attributed to a query."""

    labeling: LabelingResult
    records: int
    unreadable: int = 0
    unreadable_samples: list[dict[str, str]] = field(default_factory=list)
    unknown_records: int = 0
    duplicate_records: int = 0
    outcomes: dict[int, QueryOutcome] = field(default_factory=dict)
    """Position in the plan → how the query ended (a position without one has no output record)."""
    tokens_at: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Position → (input, output) tokens of its answered record."""

    def to_stats(self) -> dict[str, Any]:
        """The on-demand counts plus a ``batch`` section for the lines of the output."""
        return {
            **self.labeling.to_stats(),
            "batch": {
                "records": self.records,
                "unreadable": self.unreadable,
                "unreadable_samples": [dict(sample) for sample in self.unreadable_samples],
                "unknown_records": self.unknown_records,
                "duplicate_records": self.duplicate_records,
            },
        }


@dataclass
class _Reader:
    queries: Sequence[Query]
    channels: ChannelSet
    outcomes: dict[int, QueryOutcome] = field(default_factory=dict)
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_samples: list[dict[str, str]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_messages: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    records: int = 0
    unreadable: int = 0
    unreadable_samples: list[dict[str, str]] = field(default_factory=list)
    unknown_records: int = 0
    duplicate_records: int = 0
    tokens_at: dict[int, tuple[int, int]] = field(default_factory=dict)

    def line(self, number: int, text: str) -> None:
        if not text.strip():
            return
        try:
            record = json.loads(text)
        except ValueError as exc:
            self._unreadable(number, f"not JSON: {exc}", text)
            return
        if not isinstance(record, dict) or not isinstance(record.get("recordId"), str):
            self._unreadable(number, "not an object with a string recordId", text)
            return
        self.records += 1
        try:
            position = record_position(record["recordId"])
        except UnknownRecordId:
            position = -1
        if not 0 <= position < len(self.queries):
            self.unknown_records += 1
            return
        if position in self.outcomes:
            self.duplicate_records += 1
            return
        self.outcomes[position] = self._outcome(position, record)

    def _outcome(self, position: int, record: Mapping[str, Any]) -> QueryOutcome:
        query = self.queries[position]
        error = record.get("error")
        if error is not None or "modelOutput" not in record:
            return self._error(query, error)
        output = record["modelOutput"]
        if not isinstance(output, Mapping):
            output = {}
        usage = output.get("usage")
        if isinstance(usage, Mapping):
            tokens = (_count(usage.get("inputTokens")), _count(usage.get("outputTokens")))
            self.tokens_at[position] = tokens
            self.input_tokens += tokens[0]
            self.output_tokens += tokens[1]
        text = converse_response_text(output)
        parsed = parse_routing_answer(text, self.channels, sum_tolerance=TRAINING_SUM_TOLERANCE)
        if parsed.ok:
            return labeled_outcome(query, parsed.decision)
        self.invalid[parsed.reason.value] += 1
        if len(self.invalid_samples) < MAX_INVALID_SAMPLES:
            self.invalid_samples.append(invalid_sample(query, parsed.reason.value, parsed.detail, text))
        return invalid_outcome(query, parsed, text)

    def _error(self, query: Query, error: object) -> QueryOutcome:
        if isinstance(error, Mapping):
            code = str(error.get("errorCode", "BatchRecordError"))
            message = str(error.get("errorMessage", ""))[:MAX_SAMPLE_TEXT]
        else:
            code, message = "BatchRecordError", "the record has neither modelOutput nor an error object"
        self.errors[code] += 1
        self.error_messages.setdefault(code, message)
        return QueryOutcome(ERROR, query=query.text, code=code, message=message)

    def _unreadable(self, number: int, detail: str, text: str) -> None:
        self.unreadable += 1
        if len(self.unreadable_samples) < MAX_UNREADABLE_SAMPLES:
            self.unreadable_samples.append(
                {"line": str(number), "detail": detail[:MAX_SAMPLE_TEXT], "text": text[:MAX_SAMPLE_TEXT]}
            )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_batch_output(lines: Iterable[str], queries: Sequence[Query], *, channels: ChannelSet) -> BatchOutput:
    """Read a batch job's output lines (every ``.out`` file of the job, in any order) for the ``queries`` its input
    was built from (:func:`batch_input`, same order). Never raises on bad content: every line and every query is
    counted (see the module's docstring)."""
    reader = _Reader(queries, channels)
    for number, text in enumerate(lines, start=1):
        reader.line(number, text)
    missing = [position for position in range(len(queries)) if position not in reader.outcomes]
    labeling = LabelingResult(
        examples=[outcome.example for _, outcome in sorted(reader.outcomes.items()) if outcome.example is not None],
        invalid=reader.invalid,
        invalid_samples=reader.invalid_samples,
        errors=reader.errors,
        retries=0,
        throttled=0,
        unlabeled=[queries[position] for position in missing],
        input_tokens=reader.input_tokens,
        output_tokens=reader.output_tokens,
        elapsed_s=0.0,
        calls=len(reader.outcomes),
        error_messages=reader.error_messages,
        unlabeled_by_reason=Counter({UNLABELED_NO_OUTPUT: len(missing)}) if missing else Counter(),
        unlabeled_at=dict.fromkeys(missing, UNLABELED_NO_OUTPUT),
    )
    return BatchOutput(
        labeling=labeling,
        records=reader.records,
        unreadable=reader.unreadable,
        unreadable_samples=reader.unreadable_samples,
        unknown_records=reader.unknown_records,
        duplicate_records=reader.duplicate_records,
        outcomes=reader.outcomes,
        tokens_at=reader.tokens_at,
    )


@dataclass(frozen=True)
class ShardLabels:
    """One plan shard's part of a batch job's output, as LabelShard writes a shard: ``examples`` (plan order) for
    ``shard-NNNNN.jsonl`` and ``stats`` (the same field names) for ``shard-NNNNN.stats.json``."""

    examples: list[LabeledExample]
    stats: dict[str, Any]


def shard_labels(output: BatchOutput, sizes: Sequence[int]) -> list[ShardLabels]:
    """Split ``output`` back into the plan's shards (``sizes``: each shard's query count, in plan order, summing
    to the queries the input was built from), so that PrepareDataset reads a batch run like an on-demand one. The
    lines that belong to no query (unreadable, unknown, repeated) are counted in the first shard's ``batch``."""
    total = sum(sizes)
    if total != len(output.labeling.unlabeled) + len(output.outcomes):
        raise ValueError(f"the shards hold {total} queries but the batch output was read for a different plan")
    shards, start = [], 0
    for index, size in enumerate(sizes):
        positions = range(start, start + size)
        start += size
        shards.append(_shard(output, index, positions))
    return shards


def _shard(output: BatchOutput, index: int, positions: range) -> ShardLabels:
    ended = [output.outcomes[p] for p in positions if p in output.outcomes]
    invalid = Counter(o.reason or "" for o in ended if o.kind == INVALID)
    errors = Counter(o.code or "" for o in ended if o.kind == ERROR)
    messages: dict[str, str] = {}
    for outcome in ended:
        if outcome.kind == ERROR:
            messages.setdefault(outcome.code or "", outcome.message)
    samples = [
        invalid_sample(Query(o.query, "", ""), o.reason or "", o.detail, o.text) for o in ended if o.kind == INVALID
    ]
    missing = len(positions) - len(ended)
    tokens = [output.tokens_at.get(p, (0, 0)) for p in positions]
    examples = [o.example for o in ended if o.example is not None]
    stats: dict[str, Any] = {
        "shard": index,
        "queries": len(positions),
        "labeled": len(examples),
        "invalid": dict(invalid),
        "invalid_total": sum(invalid.values()),
        "invalid_samples": samples[:MAX_INVALID_SAMPLES],
        "errors": dict(errors),
        "errors_total": sum(errors.values()),
        "error_messages": messages,
        **LabelingUsage(
            calls=len(ended),
            input_tokens=sum(t[0] for t in tokens),
            output_tokens=sum(t[1] for t in tokens),
        ).to_dict(),
        "unlabeled": missing,
        "unlabeled_by_reason": {UNLABELED_NO_OUTPUT: missing} if missing else {},
        "throttle_stopped": False,
        "invocations": 1,
        "resumed": 0,
        "labeling_mode": "batch",
    }
    if index == 0:
        stats["batch"] = output.to_stats()["batch"]
    return ShardLabels(examples=examples, stats=stats)
