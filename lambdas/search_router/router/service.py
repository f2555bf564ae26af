"""The routing decision: cache → micro-router → promoted model → fallback chain → default weights, within a time
budget.

Always returns valid weights (every channel, each in [0, 1], summing to 1) and says where they came from:

- ``model``: the selected model (the promotion in SSM, or the configured default model) answered;
- ``cache``: an earlier answer of the selected model for the same normalized query (model answers only);
- ``micro``: the promoted micro-router (:mod:`search_router.router.micro_source`) answered without a network
  call, because its calibrated confidence was at least the promoted τ (never below it; never when reasoning is
  asked for: it has none). A missing or broken micro-router, or a failed prediction, means the model path as
  without one, and ``micro`` on the outcome says why;
- ``fallback_model``: a later model of the chain answered (the configured default model when a promoted
  model failed, then ``router_fallback_models`` in order);
- ``default``: no model answered in time with a valid answer, the fallback cap was reached, or something
  unexpected failed (``default_reason`` says which).

A student model (``prompt_kind`` ``student``, e.g. the promoted distilled model) is asked with its weights-only
prompt unless the caller wants the reasoning (``include_reasoning``); one distilled model was trained on both.
The cache key holds ``include_reasoning``, so an answer of one prompt never serves a request for the other. Both
stream with early exit (ConverseStream): the weights-only request stops at the last weight, the one with reasoning
at the answer's closing brace.

Each model gets up to :data:`MAX_ATTEMPTS_PER_MODEL` calls for transient errors (throttling, not ready,
unavailable: what the invoker calls ``retryable``, for Bedrock
:data:`~search_router.adapters.aws_errors.ROUTER_RETRY_CODES`), with a short jittered backoff, never past the
deadline; a timeout, a hard error (access denied, validation, not found, model error) or an unusable answer moves on
to the next model at once.

Two guards keep faults cheap (``guards``):

- a **circuit breaker per model**: a model that failed ``breaker_failures`` requests in a row is skipped
  without a call for ``breaker_open_seconds``, then one probe request may try it again;
- a **cap on expensive fallbacks**: the models of ``router_fallback_models`` (the chain after the selected and
  the default model: the large router, ~30x the price of Nova Micro) may be called by at most
  ``fallback_max_share`` of the requests of a sliding window; beyond it the default weights answer
  (``default_reason`` ``fallback_capped``). The default model, the first fallback of a promoted model, is the
  base student of the same size and is never capped.

The outcome lists every attempt (and every circuit that changed state) so the handler can log and count them;
this module does no I/O of its own.
"""

from __future__ import annotations

import random
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, Protocol

from search_router.router.cache import TtlLruCache
from search_router.router.guards import Admission, CircuitBreakers, CircuitEvent, FallbackCap
from search_router.router.micro_source import NO_MICRO_ROUTER, MicroProblem, MicroRouterRef, MicroState
from search_router.router.model_source import ModelSelection
from search_router.router.settings import ModelSpec, RouterSettings
from search_router.shared.answer.decision import ParseFailure, ParseResult, RoutingDecision
from search_router.shared.model_calls import ModelCallError

MAX_ATTEMPTS_PER_MODEL: Final = 2
BACKOFF_SECONDS: Final = 0.025
MIN_CALL_SECONDS: Final = 0.02  # do not start a call with less time than this left
DEFAULT_MODEL_LABEL: Final = "default-weights"
MICRO_MODEL_LABEL: Final = "micro-router"
TIMEOUT_CODE: Final = "Timeout"  # the call overran its deadline (the invoker stopped waiting for it)
POOL_EXHAUSTED_CODE: Final = "PoolExhausted"  # every call thread was busy: no call was made


class Source(StrEnum):
    MODEL = "model"
    CACHE = "cache"
    MICRO = "micro"
    FALLBACK_MODEL = "fallback_model"
    DEFAULT = "default"


class DefaultReason(StrEnum):
    ALL_MODELS_FAILED = "all_models_failed"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CIRCUITS_OPEN = "circuits_open"  # no model was called: every one was skipped by its open circuit
    FALLBACK_CAPPED = "fallback_capped"  # the expensive fallbacks were skipped: their share reached the cap
    INTERNAL_ERROR = "internal_error"


class AttemptOutcome(StrEnum):
    ANSWERED = "answered"
    MODEL_ERROR = "model_error"
    PARSE_FAILURE = "parse_failure"
    CIRCUIT_OPEN = "circuit_open"  # skipped without a call
    FALLBACK_CAPPED = "fallback_capped"  # skipped without a call


@dataclass(frozen=True)
class Attempt:
    model_id: str
    outcome: AttemptOutcome
    duration_ms: float
    code: str | None = None  # error code, or the parse-failure reason
    detail: str | None = None
    detail_private: bool = True  # the detail may quote the query or the model's answer (log it only if allowed)

    @property
    def called(self) -> bool:
        return self.outcome not in (AttemptOutcome.CIRCUIT_OPEN, AttemptOutcome.FALLBACK_CAPPED)


@dataclass(frozen=True)
class RouteOutcome:
    decision: RoutingDecision
    source: Source
    model: str
    latency_ms: float
    attempts: tuple[Attempt, ...] = ()
    selection: ModelSelection | None = None
    default_reason: DefaultReason | None = None
    error: BaseException | None = None
    circuit_events: tuple[CircuitEvent, ...] = ()
    micro: MicroState | None = None
    micro_confidence: float | None = None


class Invoker(Protocol):
    """Calls a model (:class:`search_router.adapters.bedrock_runtime.BedrockInvoker`): the parsed answer, or
    :class:`~search_router.shared.model_calls.ModelCallError` (``retryable`` for errors worth one more try on the same
    model; ``Timeout`` or ``PoolExhausted`` when the call overran or could not start)."""

    def ask(self, model: ModelSpec, query: str, *, timeout_s: float, reasoning: bool = True) -> ParseResult: ...


class ModelSource(Protocol):
    def current(self) -> ModelSelection: ...


class MicroSource(Protocol):
    """:class:`search_router.router.micro_source.MicroRouterSource`."""

    def current(self, ref: MicroRouterRef | None) -> MicroState: ...


CacheKey = tuple[str, str, bool, str]


@dataclass(frozen=True)
class _ModelResult:
    """How one model did in one request. ``responded``: it answered (usable or not); ``failed``: it failed in
    a way that counts against it for the breaker; neither: nothing was learnt about it."""

    decision: RoutingDecision | None
    out_of_time: bool = False
    responded: bool = False
    failed: bool = False


def normalize_query(query: str) -> str:
    """NFC, runs of whitespace collapsed to one space, trimmed: what the model sees and the cache key."""
    return " ".join(unicodedata.normalize("NFC", query).split())


class RouterService:
    """Routes one query at a time per container. ``clock`` drives the TTLs, the circuits and the fallback cap's
    window, ``timer`` the deadline; ``breakers`` and ``fallback_cap`` default to the settings' ones."""

    def __init__(
        self,
        settings: RouterSettings,
        *,
        invoker: Invoker,
        model_source: ModelSource,
        clock: Callable[[], float] = time.monotonic,
        timer: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        breakers: CircuitBreakers | None = None,
        fallback_cap: FallbackCap | None = None,
        micro_source: MicroSource | None = None,
    ) -> None:
        self.settings = settings
        self._invoker = invoker
        self._model_source = model_source
        self._micro_source = micro_source
        self._timer = timer
        self._sleep = sleep
        self._jitter = jitter
        self.cache: TtlLruCache[CacheKey, tuple[RoutingDecision, str]] = TtlLruCache(
            settings.cache_size, settings.cache_ttl_seconds, clock=clock
        )
        self.breakers = breakers or CircuitBreakers(
            failures=settings.breaker_failures, open_seconds=settings.breaker_open_seconds, clock=clock
        )
        self.fallback_cap = fallback_cap or FallbackCap(
            max_share=settings.fallback_max_share,
            window_seconds=settings.fallback_window_seconds,
            min_requests=settings.fallback_min_requests,
            clock=clock,
        )
        self._expensive = frozenset(model.model_id for model in settings.fallback_models)

    def route(self, query: str, *, include_reasoning: bool) -> RouteOutcome:
        """Weights for ``query``. Never raises: an unexpected error yields the default weights."""
        started = self._timer()
        try:
            return self._route(normalize_query(query), include_reasoning, started)
        except Exception as error:  # the contract is valid weights, whatever breaks
            return self._defaults(started, (), None, DefaultReason.INTERNAL_ERROR, error)

    def default_outcome(self, error: BaseException | None = None) -> RouteOutcome:
        """The default weights, for callers that failed before :meth:`route` could run."""
        return RouteOutcome(
            decision=self.settings.default_weights,
            source=Source.DEFAULT,
            model=DEFAULT_MODEL_LABEL,
            latency_ms=0.0,
            default_reason=DefaultReason.INTERNAL_ERROR,
            error=error,
        )

    def _route(self, query: str, include_reasoning: bool, started: float) -> RouteOutcome:
        deadline = started + self.settings.timeout_ms / 1000
        selection = self._model_source.current()
        selected = selection.model
        key: CacheKey = (selected.model_id, selected.prompt_kind.value, include_reasoning, query)
        cached = self.cache.get(key)
        if cached is not None:
            self.fallback_cap.record(expensive=False)
            decision, model_id = cached
            return RouteOutcome(decision, Source.CACHE, model_id, self._elapsed_ms(started), selection=selection)
        micro = self._micro_state(selection)
        answer, confidence, micro = self._micro_answer(micro, query, include_reasoning)
        if answer is not None:
            self.fallback_cap.record(expensive=False)
            return RouteOutcome(
                answer,
                Source.MICRO,
                MICRO_MODEL_LABEL,
                self._elapsed_ms(started),
                selection=selection,
                micro=micro,
                micro_confidence=confidence,
            )
        outcome = self._model_path(
            query, include_reasoning, started=started, deadline=deadline, selection=selection, key=key
        )
        return replace(outcome, micro=micro, micro_confidence=confidence)

    def _micro_answer(
        self, micro: MicroState, query: str, include_reasoning: bool
    ) -> tuple[RoutingDecision | None, float | None, MicroState]:
        """The micro-router's decision when its confidence is at least τ (else ``None``), its confidence, and
        the state to report (a failed prediction becomes a problem, never an error of the request)."""
        if micro.router is None or micro.tau is None or include_reasoning:
            return None, None, micro
        try:
            prediction = micro.router.predict(query)
            decision = RoutingDecision.from_weights(prediction.weights, self.settings.channels)
        except Exception as error:
            failed = MicroState(problem=MicroProblem.PREDICTION_FAILED, detail=type(error).__name__, refreshed=True)
            return None, None, failed
        confident = prediction.confidence >= micro.tau
        return (decision if confident else None), prediction.confidence, micro

    def _micro_state(self, selection: ModelSelection) -> MicroState:
        """The micro-router the selection names (none without a source), or why it cannot be used."""
        if selection.micro_problem is not None:
            return MicroState(
                problem=MicroProblem.INVALID_REFERENCE, detail=selection.micro_problem, refreshed=selection.refreshed
            )
        if self._micro_source is None:
            return NO_MICRO_ROUTER
        return self._micro_source.current(selection.micro)

    def _model_path(
        self,
        query: str,
        include_reasoning: bool,
        *,
        started: float,
        deadline: float,
        selection: ModelSelection,
        key: CacheKey,
    ) -> RouteOutcome:
        selected = selection.model
        attempts: list[Attempt] = []
        events: list[CircuitEvent] = []
        reason: DefaultReason | None = None
        expensive_called = False
        for position, model in enumerate(self._chain(selected)):
            expensive = position > 0 and model.model_id in self._expensive
            if expensive and not self.fallback_cap.allows():
                attempts.append(Attempt(model.model_id, AttemptOutcome.FALLBACK_CAPPED, 0.0, "FallbackCapped"))
                reason = DefaultReason.FALLBACK_CAPPED
                break  # every later model is an expensive fallback too
            admission = self.breakers.admit(model.model_id)
            if admission is Admission.REJECTED:
                attempts.append(Attempt(model.model_id, AttemptOutcome.CIRCUIT_OPEN, 0.0, "CircuitOpen"))
                continue
            called_before = len(attempts)
            result = self._ask_model(model, query, include_reasoning, deadline, attempts)
            expensive_called = expensive_called or (expensive and len(attempts) > called_before)
            event = self._judge(model.model_id, result)
            if event is not None:
                events.append(event)
            if result.decision is not None:
                self.fallback_cap.record(expensive=expensive_called)
                source = Source.MODEL if position == 0 else Source.FALLBACK_MODEL
                if source is Source.MODEL:
                    self.cache.put(key, (result.decision, model.model_id))
                return RouteOutcome(
                    result.decision,
                    source,
                    model.model_id,
                    self._elapsed_ms(started),
                    tuple(attempts),
                    selection,
                    circuit_events=tuple(events),
                )
            if result.out_of_time:
                reason = DefaultReason.BUDGET_EXHAUSTED
                break
        self.fallback_cap.record(expensive=expensive_called)
        if reason is None:
            nothing_called = not any(attempt.called for attempt in attempts)
            skipped = any(attempt.outcome is AttemptOutcome.CIRCUIT_OPEN for attempt in attempts)
            reason = DefaultReason.CIRCUITS_OPEN if nothing_called and skipped else DefaultReason.ALL_MODELS_FAILED
        return self._defaults(started, tuple(attempts), selection, reason, None, events=tuple(events))

    def _judge(self, model_id: str, result: _ModelResult) -> CircuitEvent | None:
        """Tell the model's circuit how it did. An unusable answer counts as answered: the model is up, the
        answer depends on the query (opening the circuit would send every query to the fallbacks for a few odd
        ones), and the parse-failure metric and the quality gate watch answer quality."""
        if result.responded:
            return self.breakers.succeeded(model_id)
        if result.failed:
            return self.breakers.failed(model_id)
        self.breakers.abandon(model_id)
        return None

    def _chain(self, selected: ModelSpec) -> list[ModelSpec]:
        """The selected model, the configured default model (when a promotion is selected), the fallbacks."""
        chain: list[ModelSpec] = []
        for model in (selected, self.settings.default_model, *self.settings.fallback_models):
            if all(model.model_id != seen.model_id for seen in chain):
                chain.append(model)
        return chain

    def _ask_model(
        self, model: ModelSpec, query: str, include_reasoning: bool, deadline: float, attempts: list[Attempt]
    ) -> _ModelResult:
        """The model's decision, or why it gave none (out of time, failed, answered unusably)."""
        call_timeout = self.settings.call_timeout_ms / 1000
        failed = False  # the last call failed in a way that counts against the model
        for attempt in range(MAX_ATTEMPTS_PER_MODEL):
            remaining = deadline - self._timer()
            if remaining < MIN_CALL_SECONDS:
                return _ModelResult(None, out_of_time=True, failed=failed)
            timeout = min(call_timeout, remaining)
            began = self._timer()
            try:
                result = self._invoker.ask(model, query, timeout_s=timeout, reasoning=include_reasoning)
            except ModelCallError as error:
                attempts.append(
                    Attempt(
                        model.model_id,
                        AttemptOutcome.MODEL_ERROR,
                        self._ms_since(began),
                        error.code,
                        error.detail,
                        error.private,
                    )
                )
                failed = _counts_against_model(error, full_timeout=timeout >= call_timeout)
                if not error.retryable or attempt + 1 >= MAX_ATTEMPTS_PER_MODEL:
                    return _ModelResult(None, failed=failed)
                pause = BACKOFF_SECONDS * (2**attempt) * (0.5 + self._jitter() / 2)
                if deadline - self._timer() - pause < MIN_CALL_SECONDS:
                    return _ModelResult(None, out_of_time=True, failed=failed)
                self._sleep(pause)
                continue
            if isinstance(result, ParseFailure):
                attempts.append(
                    Attempt(
                        model.model_id,
                        AttemptOutcome.PARSE_FAILURE,
                        self._ms_since(began),
                        result.reason.value,
                        result.detail,  # may quote the answer, which may echo the query: private
                    )
                )
                return _ModelResult(None, responded=True)
            attempts.append(Attempt(model.model_id, AttemptOutcome.ANSWERED, self._ms_since(began)))
            decision = result.decision
            if not include_reasoning and decision.reasoning is not None:
                decision = RoutingDecision(decision.weights, None)
            return _ModelResult(decision, responded=True)
        return _ModelResult(None, failed=failed)

    def _defaults(
        self,
        started: float,
        attempts: tuple[Attempt, ...],
        selection: ModelSelection | None,
        reason: DefaultReason,
        error: BaseException | None,
        *,
        events: tuple[CircuitEvent, ...] = (),
    ) -> RouteOutcome:
        return RouteOutcome(
            decision=self.settings.default_weights,
            source=Source.DEFAULT,
            model=DEFAULT_MODEL_LABEL,
            latency_ms=self._elapsed_ms(started),
            attempts=attempts,
            selection=selection,
            default_reason=reason,
            error=error,
            circuit_events=events,
        )

    def _elapsed_ms(self, started: float) -> float:
        return self._ms_since(started)

    def _ms_since(self, began: float) -> float:
        return round((self._timer() - began) * 1000, 3)


def _counts_against_model(error: ModelCallError, *, full_timeout: bool) -> bool:
    """Errors and timeouts, throttling included, count against a model's circuit; not a full pool (a local
    condition), nor a timeout of a call that was given less than its call timeout (the request's budget ran
    short, the model may be fine)."""
    if error.code == POOL_EXHAUSTED_CODE:
        return False
    return full_timeout or error.code != TIMEOUT_CODE
