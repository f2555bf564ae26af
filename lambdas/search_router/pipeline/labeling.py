"""Teacher labeling at scale: many concurrent Converse calls, backoff on throttling, every outcome counted.

:func:`label_queries` sends each query to the teacher with the detailed teacher prompt, validates the answer
with the shared parser (sum within 0.01 of 1: strict, because these answers become training targets), retries
throttling with exponential backoff and full jitter, retries an invalid answer a bounded number of times and
then drops it, and stops starting new work when the deadline approaches. Every query ends as exactly one of:
labeled, invalid (by parse-failure reason), error (by error code) or unlabeled (by reason: ``deadline`` when
the shard ran out of time, ``throttled`` when the teacher answered nothing for longer than the throttle budget) —
nothing is dropped silently. If the teacher is unusable (every call fails with the same non-retryable error, e.g.
``AccessDeniedException``) it raises :class:`TeacherUnavailable` instead of returning an empty dataset.

How many calls are in flight is not the thread count but what a
:class:`~search_router.pipeline.concurrency.ConcurrencyLimiter` allows: by default an AIMD limiter that starts low,
grows while the teacher answers and halves when it throttles (:mod:`search_router.pipeline.concurrency`), so that a
shard follows the teacher's quota. Every query that reaches a final outcome (labeled, invalid or error) is reported to
``on_outcome`` as it happens, with the usage so far: the label shard checkpoints them to S3 and a re-invoked shard
labels only the rest.

The call itself is made by the caller's :class:`Converse` (for Bedrock,
:class:`search_router.adapters.converse.BedrockConverse`), which says of a failed call whether it is retryable and
whether it is an overload: this module sees plain data only.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from search_router.pipeline.concurrency import AdaptiveConcurrency, ConcurrencyLimiter, Permit
from search_router.pipeline.dataset import TRAINING_SUM_TOLERANCE, LabeledExample
from search_router.pipeline.queries.query import Query
from search_router.shared.answer.decision import ParseFailure, RoutingDecision
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import ChannelSet
from search_router.shared.model_calls import ModelCallError
from search_router.shared.prompts import teacher_prompt

MAX_INVALID_SAMPLES: Final = 20
MAX_SAMPLE_TEXT: Final = 500
DEFAULT_FAIL_FAST_AFTER: Final = 20


class TeacherUnavailable(Exception):
    """Every teacher call failed with the same non-retryable error: labeling cannot produce a dataset."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"the teacher model is unavailable: every call failed with {code}: {message}")
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------------------
# One Converse call
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConverseOutcome:
    """The text of one Converse answer and what it cost. ``latency_ms`` is measured by the caller (round
    trip), ``service_latency_ms`` is the service's ``metrics.latencyMs``."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    service_latency_ms: int | None
    stop_reason: str | None


class Converse(Protocol):
    """One Converse call to ``model_id``: a system prompt, one user turn. Raises
    :class:`~search_router.shared.model_calls.ModelCallError` when it fails, classified by the adapter
    (:class:`search_router.adapters.converse.BedrockConverse`): retryable or not, an overload or not."""

    def __call__(
        self, *, model_id: str, system: str, user: str, max_tokens: int, temperature: float
    ) -> ConverseOutcome: ...


# ---------------------------------------------------------------------------------------------------------
# Labeling many queries
# ---------------------------------------------------------------------------------------------------------
@dataclass
class LabelingResult:
    """The outcome of :func:`label_queries`.

    ``examples`` are in input order. ``invalid`` counts dropped answers by parse-failure reason and ``errors``
    failed queries by error code (a retryable code here means its retries ran out). ``retries`` counts every
    repeated call (after throttling or an invalid answer); ``throttled`` counts responses with a retryable
    error (throttling or a transient service/network error). ``unlabeled`` are the queries left when the
    deadline came or the throttle budget ran out (``unlabeled_by_reason``: ``deadline`` / ``throttled``);
    ``throttle_stopped`` says the shard gave up on a teacher that kept throttling. Tokens are summed over every
    answered call, retries included. ``concurrency`` holds the limiter's figures (limits reached, mean calls in
    flight, throttling answers, decreases).
    """

    examples: list[LabeledExample]
    invalid: Counter[str]
    invalid_samples: list[dict[str, str]]
    errors: Counter[str]
    retries: int
    throttled: int
    unlabeled: list[Query]
    input_tokens: int
    output_tokens: int
    elapsed_s: float
    calls: int = 0
    error_messages: dict[str, str] = field(default_factory=dict)
    unlabeled_by_reason: Counter[str] = field(default_factory=Counter)
    throttle_stopped: bool = False
    concurrency: dict[str, Any] = field(default_factory=dict)
    unlabeled_at: dict[int, str] = field(default_factory=dict)
    """Position (in the ``queries`` given) → reason, for every unlabeled query."""

    @property
    def usage(self) -> LabelingUsage:
        """What the run cost, as :class:`LabelingUsage`."""
        return LabelingUsage.of(self, elapsed_s=self.elapsed_s)

    @property
    def invalid_total(self) -> int:
        return sum(self.invalid.values())

    @property
    def errors_total(self) -> int:
        return sum(self.errors.values())

    def to_stats(self) -> dict[str, Any]:
        """JSON-serialisable counts (for logs, metrics and the dataset manifest)."""
        return {
            "labeled": len(self.examples),
            "invalid": dict(self.invalid),
            "invalid_total": self.invalid_total,
            "invalid_samples": [dict(sample) for sample in self.invalid_samples],
            "errors": dict(self.errors),
            "errors_total": self.errors_total,
            "error_messages": dict(self.error_messages),
            "unlabeled": len(self.unlabeled),
            "unlabeled_by_reason": dict(self.unlabeled_by_reason),
            "throttle_stopped": self.throttle_stopped,
            **self.usage.to_dict(),
            "examples_per_s": round(len(self.examples) / self.elapsed_s, 3) if self.elapsed_s > 0 else None,
            "concurrency": dict(self.concurrency),
        }


class UsageCounters(Protocol):
    """What :meth:`LabelingUsage.of` reads: the running counters of a labeling run or its result."""

    calls: int
    retries: int
    throttled: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class LabelingUsage:
    """What labeling has cost so far: calls (every attempt), retries, retryable-error responses, tokens, seconds."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    elapsed_s: float = 0.0

    @classmethod
    def of(cls, counters: UsageCounters, *, elapsed_s: float) -> LabelingUsage:
        """The usage a run's (or a result's) counters and ``elapsed_s`` add up to."""
        return cls(
            calls=counters.calls,
            retries=counters.retries,
            throttled=counters.throttled,
            input_tokens=counters.input_tokens,
            output_tokens=counters.output_tokens,
            elapsed_s=elapsed_s,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "retries": self.retries,
            "throttled": self.throttled,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def minus(self, other: LabelingUsage) -> LabelingUsage:
        """The usage between two snapshots of one run (``self`` the later)."""
        return LabelingUsage(
            calls=self.calls - other.calls,
            retries=self.retries - other.retries,
            throttled=self.throttled - other.throttled,
            input_tokens=self.input_tokens - other.input_tokens,
            output_tokens=self.output_tokens - other.output_tokens,
            elapsed_s=max(0.0, self.elapsed_s - other.elapsed_s),
        )


LABELED: Final = "labeled"
INVALID: Final = "invalid"
ERROR: Final = "error"
UNLABELED: Final = "unlabeled"
FINAL_KINDS: Final = frozenset({LABELED, INVALID, ERROR})
"""Outcomes that end a query in this run of :func:`label_queries` (reported to ``on_outcome``, checkpointed)."""
ANSWERED_KINDS: Final = frozenset({LABELED, INVALID})
"""Outcomes the teacher answered (and was paid for): a resumed shard never asks about such a query again. An
``error`` is counted if nothing better comes, but a resumed shard asks again (the access may have been granted,
the quota may have recovered)."""


@dataclass(frozen=True)
class QueryOutcome:
    """How one query ended. ``kind`` is :data:`LABELED` (``example``), :data:`INVALID` (``reason`` the
    parse-failure reason, ``detail`` and ``text`` a sample of the answer), :data:`ERROR` (``code`` and ``message``
    of the final error) or :data:`UNLABELED` (``reason``: :data:`UNLABELED_DEADLINE` / :data:`UNLABELED_THROTTLED`).
    A resumed shard asks again about every query that is not :attr:`answered`."""

    kind: str
    query: str = ""
    example: LabeledExample | None = None
    reason: str | None = None
    code: str | None = None
    detail: str = ""
    text: str = ""
    message: str = ""

    @property
    def final(self) -> bool:
        return self.kind in FINAL_KINDS

    @property
    def answered(self) -> bool:
        return self.kind in ANSWERED_KINDS


OutcomeListener = Callable[[int, QueryOutcome, LabelingUsage], None]
"""``on_outcome(position, outcome, usage)``: ``position`` in the ``queries`` given to :func:`label_queries`,
``usage`` the run's cost up to this outcome. Called from the worker threads, once per query with a final outcome."""

UNLABELED_DEADLINE: Final = "deadline"
UNLABELED_THROTTLED: Final = "throttled"
UNLABELED_SHARD_FAILED: Final = "shard_failed"
"""Queries of a shard that failed after its retries (and were not in its checkpoint): counted by PrepareDataset."""


class _Run:
    """Shared state of one :func:`label_queries` call; every mutation under ``lock``."""

    def __init__(
        self, *, rng: random.Random, sleep: Callable[[float], None], clock: Callable[[], float], fail_fast_after: int
    ) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.rng = rng
        self.sleep = sleep
        self.clock = clock
        self.fail_fast_after = fail_fast_after
        self.invalid: Counter[str] = Counter()
        self.invalid_samples: list[dict[str, str]] = []
        self.errors: Counter[str] = Counter()
        self.error_messages: dict[str, str] = {}
        self.retries = 0
        self.throttled = 0
        self.calls = 0
        self.answered = 0  # calls that returned an answer (valid or not)
        self.input_tokens = 0
        self.output_tokens = 0
        self.final_errors = 0  # queries ended by a non-retryable error with no answered call before them
        self.retryable_codes: set[str] = set()  # codes that ended a query only after their retries ran out
        self.unavailable: TeacherUnavailable | None = None
        self.last_answer = clock()  # when a call last returned an answer (the start, before any)
        self.throttle_stopped = False
        self.started = time.perf_counter()

    def usage(self) -> LabelingUsage:
        with self.lock:
            return LabelingUsage.of(self, elapsed_s=time.perf_counter() - self.started)

    def jitter(self, attempt: int, base: float, cap: float) -> float:
        with self.lock:
            return self.rng.uniform(0.0, min(cap, base * 2**attempt))

    def count_call(self) -> None:
        with self.lock:
            self.calls += 1

    def answered_call(self, input_tokens: int, output_tokens: int) -> None:
        with self.lock:
            self.last_answer = self.clock()
            self.answered += 1
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens

    def throttled_too_long(self, budget_s: float | None) -> bool:
        """True once the teacher has answered nothing for ``budget_s`` while calls were being throttled: stop
        spending the shard's time (and the other shards' quota) on it."""
        if budget_s is None:
            return False
        with self.lock:
            if not self.throttle_stopped and self.throttled and self.clock() - self.last_answer >= budget_s:
                self.throttle_stopped = True
                self.stop.set()
            return self.throttle_stopped

    def retry(self, *, throttled: bool) -> None:
        with self.lock:
            self.retries += 1
            if throttled:
                self.throttled += 1

    def throttled_final(self) -> None:
        with self.lock:
            self.throttled += 1

    def drop_invalid(self, query: Query, reason: str, detail: str, text: str) -> None:
        with self.lock:
            self.invalid[reason] += 1
            if len(self.invalid_samples) < MAX_INVALID_SAMPLES:
                self.invalid_samples.append(invalid_sample(query, reason, detail, text))

    def fail(self, exc: ModelCallError, *, retryable: bool) -> None:
        code = exc.code
        message = exc.detail
        with self.lock:
            self.errors[code] += 1
            self.error_messages.setdefault(code, message[:MAX_SAMPLE_TEXT])
            if retryable:
                self.retryable_codes.add(code)
            if retryable or self.answered or len(self.errors) != 1:
                return
            self.final_errors += 1
            if self.final_errors >= self.fail_fast_after and self.unavailable is None:
                # The first N outcomes are all the same non-retryable error and nothing ever answered:
                # stop spending calls, the configuration is wrong.
                self.unavailable = TeacherUnavailable(code, self.error_messages[code])
                self.stop.set()


@dataclass(frozen=True)
class _Labeler:
    """What every worker thread of one :func:`label_queries` call runs: one query to its outcome."""

    run: _Run
    gate: ConcurrencyLimiter
    teacher: Converse
    model_id: str
    system: str
    channels: ChannelSet
    max_tokens: int
    temperature: float
    max_invalid_retries: int
    max_throttle_retries: int
    base_delay_s: float
    max_delay_s: float
    deadline: float | None
    throttle_budget_s: float | None
    limiter_poll_s: float
    on_outcome: OutcomeListener | None

    def work(self, item: tuple[int, Query]) -> QueryOutcome:
        position, query = item
        outcome = self.label_one(query)
        if self.on_outcome is not None and outcome.final:
            self.on_outcome(position, outcome, self.run.usage())
        return outcome

    def label_one(self, query: Query) -> QueryOutcome:
        invalid_attempts = 0
        throttle_attempts = 0
        while True:
            permit = self._permit_or_stop()
            if isinstance(permit, QueryOutcome):
                return permit
            try:
                answer = self._call(permit, query)
            except ModelCallError as exc:
                outcome = self._after_error(exc, query, throttle_attempts)  # a retry's backoff holds the permit
                if outcome is not None:
                    return outcome
                throttle_attempts += 1
                continue
            finally:
                permit.release()  # on every path (after the backoff when retrying); a no-op once answered
            self.run.answered_call(answer.input_tokens, answer.output_tokens)
            parsed = parse_routing_answer(answer.text, self.channels, sum_tolerance=TRAINING_SUM_TOLERANCE)
            if parsed.ok:
                return labeled_outcome(query, parsed.decision)
            if invalid_attempts < self.max_invalid_retries:
                invalid_attempts += 1
                self.run.retry(throttled=False)
                continue
            self.run.drop_invalid(query, parsed.reason.value, parsed.detail, answer.text)
            return invalid_outcome(query, parsed, answer.text)

    def _out_of_time(self, extra_s: float = 0.0) -> bool:
        return self.deadline is not None and self.run.clock() + extra_s >= self.deadline

    def _stopped(self) -> QueryOutcome | None:
        if self.run.throttled_too_long(self.throttle_budget_s):
            return QueryOutcome(UNLABELED, reason=UNLABELED_THROTTLED)
        if self.run.stop.is_set() or self._out_of_time():
            return QueryOutcome(UNLABELED, reason=UNLABELED_DEADLINE)
        return None

    def _permit_or_stop(self) -> Permit | QueryOutcome:
        while True:
            if (stop := self._stopped()) is not None:
                return stop
            permit = self.gate.acquire(timeout=self.limiter_poll_s)
            if permit is None:
                continue
            if (stop := self._stopped()) is not None:  # waited for the permit past a stop
                permit.release()
                return stop
            return permit

    def _call(self, permit: Permit, query: Query) -> ConverseOutcome:
        """One Converse call on ``permit``: answered → signalled and freed; throttled → signalled, the slot kept
        for the backoff (the caller frees it); any other error → freed."""
        self.run.count_call()
        try:
            answer = self.teacher(
                model_id=self.model_id,
                system=self.system,
                user=query.text,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            )
        except ModelCallError as exc:
            if exc.overload:
                permit.overloaded()
            raise
        permit.answered()
        return answer

    def _after_error(self, exc: ModelCallError, query: Query, attempt: int) -> QueryOutcome | None:
        """What a failed call leads to: ``None`` once the backoff before the next attempt is slept (still
        holding the slot: the backoff counts against the limit), else the query's outcome."""
        retryable = exc.retryable
        if retryable and attempt < self.max_throttle_retries:
            delay = self.run.jitter(attempt, self.base_delay_s, self.max_delay_s)
            if self.run.throttled_too_long(self.throttle_budget_s):
                self.run.throttled_final()
                return QueryOutcome(UNLABELED, reason=UNLABELED_THROTTLED)
            if self._out_of_time(delay):
                self.run.throttled_final()
                return QueryOutcome(UNLABELED, reason=UNLABELED_DEADLINE)
            self.run.retry(throttled=True)
            self.run.sleep(delay)
            return None
        if retryable:
            self.run.throttled_final()
        self.run.fail(exc, retryable=retryable)
        return QueryOutcome(ERROR, query=query.text, code=exc.code, message=exc.detail[:MAX_SAMPLE_TEXT])


def invalid_sample(query: Query, reason: str, detail: str, text: str) -> dict[str, str]:
    """What the manifest keeps of an invalid answer (clipped)."""
    return {"query": query.text, "reason": reason, "detail": detail[:MAX_SAMPLE_TEXT], "text": text[:MAX_SAMPLE_TEXT]}


def labeled_outcome(query: Query, decision: RoutingDecision) -> QueryOutcome:
    example = LabeledExample(
        query=query.text,
        category=query.category,
        source=query.source,
        weights=dict(decision.weights),
        reasoning=decision.reasoning,
        template=query.template,
    )
    return QueryOutcome(LABELED, query=query.text, example=example)


def invalid_outcome(query: Query, parsed: ParseFailure, text: str) -> QueryOutcome:
    return QueryOutcome(
        INVALID,
        query=query.text,
        reason=parsed.reason.value,
        detail=parsed.detail[:MAX_SAMPLE_TEXT],
        text=text[:MAX_SAMPLE_TEXT],
    )


def label_queries(
    queries: Sequence[Query],
    *,
    teacher: Converse,
    model_id: str,
    channels: ChannelSet,
    threads: int = 16,
    max_tokens: int = 300,
    temperature: float = 0.3,
    max_invalid_retries: int = 1,
    max_throttle_retries: int = 12,
    base_delay_s: float = 0.5,
    max_delay_s: float = 20.0,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
    fail_fast_after: int = DEFAULT_FAIL_FAST_AFTER,
    throttle_budget_s: float | None = None,
    limiter: ConcurrencyLimiter | None = None,
    on_outcome: OutcomeListener | None = None,
    limiter_poll_s: float = 0.25,
) -> LabelingResult:
    """Label ``queries`` with the teacher ``model_id`` on ``threads`` workers, as many calls in flight as
    ``limiter`` allows.

    * Prompt: :func:`~search_router.shared.prompts.teacher_prompt` as system, the query as the user turn,
      ``temperature`` and ``max_tokens`` as inference config.
    * Validation: :func:`~search_router.shared.answer.parser.parse_routing_answer` with sum tolerance
      :data:`~search_router.pipeline.dataset.TRAINING_SUM_TOLERANCE` (0.01). An invalid answer is asked again up to
      ``max_invalid_retries`` times, then dropped and counted by reason.
    * Retryable errors (``ModelCallError.retryable``: for Bedrock,
      :data:`~search_router.adapters.aws_errors.TEACHER_RETRY_CODES` and network timeouts): up to
      ``max_throttle_retries`` retries per query after ``rng.uniform(0, min(max_delay_s, base_delay_s * 2**attempt))``
      seconds (exponential backoff, full jitter). Other errors end the query and are counted by code.
    * Calls in flight: ``limiter`` (default :class:`~search_router.pipeline.concurrency.AdaptiveConcurrency` with
      ``threads`` as its ceiling: it halves on throttling and grows while the teacher answers). A worker waits for a
      permit before every call, and gives it back before any backoff sleep. ``FixedConcurrency(threads)`` is the old
      behaviour (every worker calls).
    * ``deadline`` (a ``clock()`` value, by default ``time.monotonic()``): no call starts and no backoff sleep
      is begun past it; the remaining queries are returned as ``unlabeled``. Pass the Lambda's remaining time
      minus a margin for one call and the upload.
    * ``throttle_budget_s``: once the teacher has answered nothing for that long while calls were throttled, no
      new call or backoff starts; the remaining queries are ``unlabeled`` with reason ``throttled`` (a shard does
      not spend its whole timeout, and the run's hours, on a teacher whose quota is exhausted).
    * If every call fails with the same non-retryable error (checked after the first ``fail_fast_after``
      outcomes, and at the end), raises :class:`TeacherUnavailable`.
    * ``on_outcome(position, outcome, usage)`` is called from the worker as soon as a query has a final outcome
      (labeled, invalid or error; not for unlabeled ones), e.g. to checkpoint it.

    ``teacher`` makes the Converse call (:class:`search_router.adapters.converse.BedrockConverse` over a
    ``bedrock-runtime`` client): a failed call raises :class:`~search_router.shared.model_calls.ModelCallError`,
    which says whether it is retryable and whether it is an overload (the limiter halves). Thread-safe
    counters; the result's ``examples`` keep input order. ``limiter_poll_s`` is how often (real seconds) a worker
    waiting for a permit looks at the deadline and the stop conditions.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if max_invalid_retries < 0 or max_throttle_retries < 0:
        raise ValueError("retry counts must be >= 0")
    run = _Run(
        rng=rng or random.Random(),  # noqa: S311 - jitter, not security
        sleep=sleep,
        clock=clock,
        fail_fast_after=max(1, fail_fast_after),
    )
    gate: ConcurrencyLimiter = limiter if limiter is not None else AdaptiveConcurrency(threads)
    labeler = _Labeler(
        run=run,
        gate=gate,
        teacher=teacher,
        model_id=model_id,
        system=teacher_prompt(channels),
        channels=channels,
        max_tokens=max_tokens,
        temperature=temperature,
        max_invalid_retries=max_invalid_retries,
        max_throttle_retries=max_throttle_retries,
        base_delay_s=base_delay_s,
        max_delay_s=max_delay_s,
        deadline=deadline,
        throttle_budget_s=throttle_budget_s,
        limiter_poll_s=limiter_poll_s,
        on_outcome=on_outcome,
    )
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="label") as pool:
        outcomes = list(pool.map(labeler.work, enumerate(queries)))
    elapsed = time.perf_counter() - started
    _raise_if_unavailable(run, queries, outcomes)
    return _result(run, gate, queries, outcomes, elapsed)


def _raise_if_unavailable(run: _Run, queries: Sequence[Query], outcomes: list[QueryOutcome]) -> None:
    """:class:`TeacherUnavailable` when the run stopped on it, or when every answered-for query ended with the
    same non-retryable error and nothing was ever answered."""
    if run.unavailable is not None:
        raise run.unavailable
    final_codes = set(run.errors)
    if (
        queries
        and run.answered == 0
        and len(final_codes) == 1
        and sum(run.errors.values()) == sum(1 for outcome in outcomes if outcome.kind != UNLABELED)
    ):
        code = next(iter(final_codes))
        if code not in run.retryable_codes:
            raise TeacherUnavailable(code, run.error_messages[code])


def _result(
    run: _Run, gate: ConcurrencyLimiter, queries: Sequence[Query], outcomes: list[QueryOutcome], elapsed: float
) -> LabelingResult:
    return LabelingResult(
        examples=[outcome.example for outcome in outcomes if outcome.example is not None],
        invalid=run.invalid,
        invalid_samples=run.invalid_samples,
        errors=run.errors,
        retries=run.retries,
        throttled=run.throttled,
        unlabeled=[query for query, outcome in zip(queries, outcomes, strict=True) if outcome.kind == UNLABELED],
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
        elapsed_s=elapsed,
        calls=run.calls,
        error_messages=run.error_messages,
        unlabeled_by_reason=Counter(o.reason or UNLABELED_DEADLINE for o in outcomes if o.kind == UNLABELED),
        throttle_stopped=run.throttle_stopped,
        concurrency=gate.stats(),
        unlabeled_at={
            position: outcome.reason or UNLABELED_DEADLINE
            for position, outcome in enumerate(outcomes)
            if outcome.kind == UNLABELED
        },
    )
