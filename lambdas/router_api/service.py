"""The routing decision: cache → promoted model → fallback chain → default weights, within a time budget.

Always returns valid weights (every channel, each in [0, 1], summing to 1) and says where they came from:

- ``model``: the selected model (the promotion in SSM, or the configured default model) answered;
- ``cache``: an earlier answer of the selected model for the same normalized query (model answers only);
- ``fallback_model``: a later model of the chain answered (the configured default model when a promoted
  model failed, then ``router_fallback_models`` in order);
- ``default``: no model answered in time with a valid answer, or something unexpected failed.

Each model gets up to :data:`MAX_ATTEMPTS_PER_MODEL` calls for transient errors (throttling, not ready,
unavailable), with a short jittered backoff, never past the deadline; a timeout, a hard error (access
denied, validation, not found, model error) or an unusable answer moves on to the next model at once. The
outcome lists every attempt so the handler can log and count them; this module does no I/O of its own.
"""

from __future__ import annotations

import random
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from router_api.cache import TtlLruCache
from router_api.invoker import ModelCallError
from router_api.model_source import ModelSelection
from router_api.settings import ModelSpec, RouterSettings
from routing.answer import ParseFailure, ParseResult, RoutingDecision

MAX_ATTEMPTS_PER_MODEL: Final = 2
BACKOFF_SECONDS: Final = 0.025
MIN_CALL_SECONDS: Final = 0.02  # do not start a call with less time than this left
DEFAULT_MODEL_LABEL: Final = "default-weights"


class Source(StrEnum):
    MODEL = "model"
    CACHE = "cache"
    FALLBACK_MODEL = "fallback_model"
    DEFAULT = "default"


class DefaultReason(StrEnum):
    ALL_MODELS_FAILED = "all_models_failed"
    BUDGET_EXHAUSTED = "budget_exhausted"
    INTERNAL_ERROR = "internal_error"


class AttemptOutcome(StrEnum):
    ANSWERED = "answered"
    MODEL_ERROR = "model_error"
    PARSE_FAILURE = "parse_failure"


@dataclass(frozen=True)
class Attempt:
    model_id: str
    outcome: AttemptOutcome
    duration_ms: float
    code: str | None = None  # error code, or the parse-failure reason
    detail: str | None = None


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


class Invoker(Protocol):
    def ask(self, model: ModelSpec, query: str, *, stream: bool, timeout_s: float) -> ParseResult: ...


class ModelSource(Protocol):
    def current(self) -> ModelSelection: ...


CacheKey = tuple[str, str, bool, str]


def normalize_query(query: str) -> str:
    """NFC, runs of whitespace collapsed to one space, trimmed: what the model sees and the cache key."""
    return " ".join(unicodedata.normalize("NFC", query).split())


class RouterService:
    """Routes one query at a time per container. ``clock`` drives the TTLs, ``timer`` the deadline."""

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
    ) -> None:
        self.settings = settings
        self._invoker = invoker
        self._model_source = model_source
        self._timer = timer
        self._sleep = sleep
        self._jitter = jitter
        self.cache: TtlLruCache[CacheKey, tuple[RoutingDecision, str]] = TtlLruCache(
            settings.cache_size, settings.cache_ttl_seconds, clock=clock
        )

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
            decision, model_id = cached
            return RouteOutcome(decision, Source.CACHE, model_id, self._elapsed_ms(started), selection=selection)

        attempts: list[Attempt] = []
        budget_exhausted = False
        for position, model in enumerate(self._chain(selected)):
            answer, out_of_time = self._ask_model(model, query, include_reasoning, deadline, attempts)
            if answer is not None:
                source = Source.MODEL if position == 0 else Source.FALLBACK_MODEL
                if source is Source.MODEL:
                    self.cache.put(key, (answer, model.model_id))
                return RouteOutcome(
                    answer, source, model.model_id, self._elapsed_ms(started), tuple(attempts), selection
                )
            if out_of_time:
                budget_exhausted = True
                break
        reason = DefaultReason.BUDGET_EXHAUSTED if budget_exhausted else DefaultReason.ALL_MODELS_FAILED
        return self._defaults(started, tuple(attempts), selection, reason, None)

    def _chain(self, selected: ModelSpec) -> list[ModelSpec]:
        """The selected model, the configured default model (when a promotion is selected), the fallbacks."""
        chain: list[ModelSpec] = []
        for model in (selected, self.settings.default_model, *self.settings.fallback_models):
            if all(model.model_id != seen.model_id for seen in chain):
                chain.append(model)
        return chain

    def _ask_model(
        self, model: ModelSpec, query: str, include_reasoning: bool, deadline: float, attempts: list[Attempt]
    ) -> tuple[RoutingDecision | None, bool]:
        """(decision, False) on success; (None, out_of_time) when this model gives up."""
        for attempt in range(MAX_ATTEMPTS_PER_MODEL):
            remaining = deadline - self._timer()
            if remaining < MIN_CALL_SECONDS:
                return None, True
            timeout = min(self.settings.call_timeout_ms / 1000, remaining)
            began = self._timer()
            try:
                result = self._invoker.ask(model, query, stream=not include_reasoning, timeout_s=timeout)
            except ModelCallError as error:
                attempts.append(
                    Attempt(model.model_id, AttemptOutcome.MODEL_ERROR, self._ms_since(began), error.code, error.detail)
                )
                if not error.retryable or attempt + 1 >= MAX_ATTEMPTS_PER_MODEL:
                    return None, False
                pause = BACKOFF_SECONDS * (2**attempt) * (0.5 + self._jitter() / 2)
                if deadline - self._timer() - pause < MIN_CALL_SECONDS:
                    return None, True
                self._sleep(pause)
                continue
            if isinstance(result, ParseFailure):
                attempts.append(
                    Attempt(
                        model.model_id,
                        AttemptOutcome.PARSE_FAILURE,
                        self._ms_since(began),
                        result.reason.value,
                        result.detail,
                    )
                )
                return None, False
            attempts.append(Attempt(model.model_id, AttemptOutcome.ANSWERED, self._ms_since(began)))
            decision = result.decision
            if not include_reasoning and decision.reasoning is not None:
                decision = RoutingDecision(decision.weights, None)
            return decision, False
        return None, False

    def _defaults(
        self,
        started: float,
        attempts: tuple[Attempt, ...],
        selection: ModelSelection | None,
        reason: DefaultReason,
        error: BaseException | None,
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
        )

    def _elapsed_ms(self, started: float) -> float:
        return self._ms_since(started)

    def _ms_since(self, began: float) -> float:
        return round((self._timer() - began) * 1000, 3)
