"""Run-time settings of the router, from environment variables validated once per cold start.

The CDK construct (``infra/routing_api.py``) writes these variables with :func:`to_environment` from the
build-time configuration, so the names and encodings are defined once, here. A bad value raises
:class:`SettingsError` naming the variable. Mutable settings (which model is promoted) are not here: they
come from the SSM parameter (see ``model_source``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_router.shared.answer.decision import RoutingDecision
from search_router.shared.channels import ChannelConfigError, ChannelSet, load_channels
from search_router.shared.prompts import PromptKind

# CommonEnvironment.variable("channels") (contract/environment.py, which builds pydantic models at import: not on
# the router's path; tests/unit/test_router_import_path.py holds the two names together).
ENV_CHANNELS = "CHANNELS"
ENV_MODEL_PARAMETER = "ROUTER_MODEL_PARAMETER"
ENV_DEFAULT_MODEL = "ROUTER_DEFAULT_MODEL"
ENV_FALLBACK_MODELS = "ROUTER_FALLBACK_MODELS"
ENV_DEFAULT_WEIGHTS = "ROUTER_DEFAULT_WEIGHTS"
ENV_TIMEOUT_MS = "ROUTER_TIMEOUT_MS"
ENV_CALL_TIMEOUT_MS = "ROUTER_CALL_TIMEOUT_MS"
ENV_CACHE_SIZE = "ROUTER_CACHE_SIZE"
ENV_CACHE_TTL_SECONDS = "ROUTER_CACHE_TTL_SECONDS"
ENV_MODEL_TTL_SECONDS = "ROUTER_MODEL_TTL_SECONDS"
ENV_MAX_QUERY_CHARS = "ROUTER_MAX_QUERY_CHARS"
ENV_LOG_QUERIES = "ROUTER_LOG_QUERIES"
ENV_CORS_ORIGINS = "ROUTER_CORS_ORIGINS"
ENV_BREAKER_FAILURES = "ROUTER_BREAKER_FAILURES"
ENV_BREAKER_OPEN_SECONDS = "ROUTER_BREAKER_OPEN_SECONDS"
ENV_FALLBACK_MAX_SHARE = "ROUTER_FALLBACK_MAX_SHARE"
ENV_FALLBACK_WINDOW_SECONDS = "ROUTER_FALLBACK_WINDOW_SECONDS"
ENV_FALLBACK_MIN_REQUESTS = "ROUTER_FALLBACK_MIN_REQUESTS"
# Capture (capture_queries): the Firehose stream to write routed queries to (absent: capture is off) and the
# redaction patterns applied before a query is buffered.
ENV_CAPTURE_STREAM = "ROUTER_CAPTURE_STREAM"
ENV_CAPTURE_REDACT_PATTERNS = "ROUTER_CAPTURE_REDACT_PATTERNS"
# Where the function runs (the stack writes them: Lambda's environment has the Region but not the account).
ENV_PARTITION = "ROUTER_PARTITION"
ENV_REGION = "ROUTER_REGION"
ENV_ACCOUNT_ID = "ROUTER_ACCOUNT_ID"

MODEL_ID_MAX_CHARS = 2048  # the Converse API's modelId limit
_PARTITION = re.compile(r"^aws(-[a-z]+)*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


class SettingsError(ValueError):
    """An environment variable of the router is missing or invalid; ``variable`` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"Invalid router setting {variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class ModelSpec:
    """A model to call (id, inference-profile id or deployment ARN) and the system prompt it expects."""

    model_id: str
    prompt_kind: PromptKind

    def to_dict(self) -> dict[str, str]:
        return {"model_id": self.model_id, "prompt_kind": self.prompt_kind.value}

    @classmethod
    def parse(cls, where: str, value: Any) -> ModelSpec:
        """From ``{"model_id": str, "prompt_kind": "student" | "teacher"}``; ``ValueError`` naming ``where``."""
        if not isinstance(value, Mapping):
            raise ValueError(f'{where} must be an object {{"model_id": ..., "prompt_kind": ...}}')
        model_id = value.get("model_id")
        if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > MODEL_ID_MAX_CHARS:
            raise ValueError(f"{where}.model_id must be a non-empty model id or ARN")
        kind = value.get("prompt_kind")
        if kind not in {k.value for k in PromptKind}:
            allowed = ", ".join(k.value for k in PromptKind)
            raise ValueError(f"{where}.prompt_kind must be one of {allowed}, got {kind!r}")
        return cls(model_id.strip(), PromptKind(str(kind)))


@dataclass(frozen=True)
class AccountScope:
    """The partition, Region and account the router runs in: a model ARN it calls must be of these."""

    partition: str
    region: str
    account_id: str

    def describe(self) -> str:
        return f"partition {self.partition}, Region {self.region or '(none)'}, account {self.account_id or '(none)'}"


@dataclass(frozen=True)
class RouterSettings:
    channels: ChannelSet
    model_parameter: str
    default_model: ModelSpec
    fallback_models: tuple[ModelSpec, ...]
    default_weights: RoutingDecision
    timeout_ms: int
    call_timeout_ms: int
    cache_size: int
    cache_ttl_seconds: int
    model_ttl_seconds: int
    max_query_chars: int
    scope: AccountScope
    breaker_failures: int  # consecutive failed requests that open a model's circuit (0: no breaker)
    breaker_open_seconds: int  # how long an open circuit skips its model before one probe may try it
    fallback_max_share: float  # share of a window's requests that may call router_fallback_models (1: no cap)
    fallback_window_seconds: int
    fallback_min_requests: int  # the cap applies once the window holds this many requests
    log_queries: bool = False
    cors_origins: tuple[str, ...] = ()
    capture_stream: str | None = None  # the Firehose stream of capture_queries; None: nothing is captured
    capture_redact_patterns: tuple[str, ...] = ()


def load_settings(environ: Mapping[str, str]) -> RouterSettings:
    """Validate the router's environment; :class:`SettingsError` names the first bad variable."""
    try:
        channels = load_channels(environ.get(ENV_CHANNELS))
    except ChannelConfigError as exc:
        raise SettingsError(ENV_CHANNELS, str(exc)) from None
    default_model = _model(ENV_DEFAULT_MODEL, _json(environ, ENV_DEFAULT_MODEL))
    fallbacks_raw = _json(environ, ENV_FALLBACK_MODELS)
    if not isinstance(fallbacks_raw, list):
        raise SettingsError(ENV_FALLBACK_MODELS, "must be a JSON list of model objects")
    fallbacks = tuple(_model(f"{ENV_FALLBACK_MODELS}[{i}]", entry) for i, entry in enumerate(fallbacks_raw))
    weights = _json(environ, ENV_DEFAULT_WEIGHTS)
    if not isinstance(weights, dict) or set(weights) != set(channels.names):
        raise SettingsError(ENV_DEFAULT_WEIGHTS, f"must give a weight to exactly the channels {channels.names}")
    try:
        default_weights = RoutingDecision.from_weights(weights, channels, sum_tolerance=1e-6)
    except ValueError as exc:
        raise SettingsError(ENV_DEFAULT_WEIGHTS, str(exc)) from None
    timeout_ms = _int(environ, ENV_TIMEOUT_MS, 1, 60_000)
    call_timeout_ms = _int(environ, ENV_CALL_TIMEOUT_MS, 1, timeout_ms)
    parameter = environ.get(ENV_MODEL_PARAMETER, "").strip()
    if not parameter:
        raise SettingsError(ENV_MODEL_PARAMETER, "must name the SSM parameter of the promoted model")
    origins = _json(environ, ENV_CORS_ORIGINS) if environ.get(ENV_CORS_ORIGINS) else []
    if not isinstance(origins, list) or not all(isinstance(o, str) and o for o in origins):
        raise SettingsError(ENV_CORS_ORIGINS, "must be a JSON list of origins")
    scope = AccountScope(
        partition=_matching(environ, ENV_PARTITION, _PARTITION, "an AWS partition such as aws"),
        region=_matching(environ, ENV_REGION, _REGION, "an AWS Region such as us-east-1"),
        account_id=_matching(environ, ENV_ACCOUNT_ID, _ACCOUNT_ID, "a 12-digit AWS account id"),
    )
    return RouterSettings(
        channels=channels,
        model_parameter=parameter,
        default_model=default_model,
        fallback_models=fallbacks,
        default_weights=default_weights,
        timeout_ms=timeout_ms,
        call_timeout_ms=call_timeout_ms,
        cache_size=_int(environ, ENV_CACHE_SIZE, 0, 1_000_000),
        cache_ttl_seconds=_int(environ, ENV_CACHE_TTL_SECONDS, 0, 86_400),
        model_ttl_seconds=_int(environ, ENV_MODEL_TTL_SECONDS, 1, 3_600),
        max_query_chars=_int(environ, ENV_MAX_QUERY_CHARS, 1, 100_000),
        scope=scope,
        breaker_failures=_int(environ, ENV_BREAKER_FAILURES, 0, 1_000),
        breaker_open_seconds=_int(environ, ENV_BREAKER_OPEN_SECONDS, 1, 86_400),
        fallback_max_share=_float(environ, ENV_FALLBACK_MAX_SHARE, 0.0, 1.0),
        fallback_window_seconds=_int(environ, ENV_FALLBACK_WINDOW_SECONDS, 1, 86_400),
        fallback_min_requests=_int(environ, ENV_FALLBACK_MIN_REQUESTS, 1, 1_000_000),
        log_queries=_bool(environ, ENV_LOG_QUERIES),
        cors_origins=tuple(origins),
        capture_stream=environ.get(ENV_CAPTURE_STREAM, "").strip() or None,
        capture_redact_patterns=_patterns(environ, ENV_CAPTURE_REDACT_PATTERNS),
    )


def _patterns(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A JSON list of regular expressions (absent: none), each compiled here so that a bad one fails the cold
    start naming it, not a request."""
    if not environ.get(name, "").strip():
        return ()
    patterns = _json(environ, name)
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise SettingsError(name, "must be a JSON list of regular expressions")
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SettingsError(name, f"pattern {index} {pattern!r} is not a regular expression ({exc})") from None
    return tuple(patterns)


def to_environment(
    *,
    model_parameter: str,
    default_model: Mapping[str, str],
    fallback_models: Sequence[Mapping[str, str]],
    default_weights: Mapping[str, float],
    timeout_ms: int,
    call_timeout_ms: int,
    cache_size: int,
    cache_ttl_seconds: int,
    model_ttl_seconds: int,
    max_query_chars: int,
    log_queries: bool,
    breaker_failures: int,
    breaker_open_seconds: int,
    fallback_max_share: float,
    fallback_window_seconds: int,
    fallback_min_requests: int,
    partition: str,
    region: str,
    account_id: str,
    cors_origins: Sequence[str] = (),
    capture_stream: str | None = None,
    capture_redact_patterns: Sequence[str] = (),
) -> dict[str, str]:
    """The environment variables :func:`load_settings` reads (``CHANNELS`` comes from the Lambda factory).

    ``partition``, ``region`` and ``account_id`` are the stack's (``Aws.PARTITION`` ...; tokens at synth time).
    """
    return {
        ENV_MODEL_PARAMETER: model_parameter,
        ENV_DEFAULT_MODEL: _compact(dict(default_model)),
        ENV_FALLBACK_MODELS: _compact([dict(m) for m in fallback_models]),
        ENV_DEFAULT_WEIGHTS: _compact(dict(default_weights)),
        ENV_TIMEOUT_MS: str(timeout_ms),
        ENV_CALL_TIMEOUT_MS: str(call_timeout_ms),
        ENV_CACHE_SIZE: str(cache_size),
        ENV_CACHE_TTL_SECONDS: str(cache_ttl_seconds),
        ENV_MODEL_TTL_SECONDS: str(model_ttl_seconds),
        ENV_MAX_QUERY_CHARS: str(max_query_chars),
        ENV_LOG_QUERIES: "true" if log_queries else "false",
        ENV_BREAKER_FAILURES: str(breaker_failures),
        ENV_BREAKER_OPEN_SECONDS: str(breaker_open_seconds),
        ENV_FALLBACK_MAX_SHARE: repr(float(fallback_max_share)),
        ENV_FALLBACK_WINDOW_SECONDS: str(fallback_window_seconds),
        ENV_FALLBACK_MIN_REQUESTS: str(fallback_min_requests),
        ENV_PARTITION: partition,
        ENV_REGION: region,
        ENV_ACCOUNT_ID: account_id,
        ENV_CORS_ORIGINS: _compact(list(cors_origins)),
        **capture_environment(capture_stream, capture_redact_patterns),
    }


def capture_environment(stream: str | None, redact_patterns: Sequence[str]) -> dict[str, str]:
    """The capture variables (none without a stream: capture off); the stream's name may be a CDK token."""
    if not stream:
        return {}
    return {ENV_CAPTURE_STREAM: stream, ENV_CAPTURE_REDACT_PATTERNS: _compact(list(redact_patterns))}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json(environ: Mapping[str, str], name: str) -> Any:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        raise SettingsError(name, "is not set")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(name, f"is not JSON ({exc.msg})") from None


def _model(name: str, value: Any) -> ModelSpec:
    try:
        return ModelSpec.parse(name, value)
    except ValueError as exc:
        raise SettingsError(name, str(exc)) from None


def _int(environ: Mapping[str, str], name: str, lo: int, hi: int) -> int:
    raw = environ.get(name, "")
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(name, f"must be an integer in {lo}..{hi}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(name, f"must be an integer in {lo}..{hi}, got {value}")
    return value


def _float(environ: Mapping[str, str], name: str, lo: float, hi: float) -> float:
    raw = environ.get(name, "")
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(name, f"must be a number in {lo:g}..{hi:g}, got {raw!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise SettingsError(name, f"must be a number in {lo:g}..{hi:g}, got {value:g}")
    return value


def _matching(environ: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = environ.get(name, "").strip()
    if not pattern.match(value):
        raise SettingsError(name, f"must be {what}, got {value!r}")
    return value


def _bool(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "false").strip().lower()
    if raw not in ("true", "false"):
        raise SettingsError(name, f"must be true or false, got {raw!r}")
    return raw == "true"
