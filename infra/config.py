"""Typed, validated build-time configuration.

Every setting is a key in ``cdk.json``'s ``context`` (overridable with ``cdk deploy -c key=value``).
:func:`load_config` merges ``cdk.json`` with the CDK app's context, so ``cdk synth``, ``python app.py``
and the test suite see the same values. A bad value raises :class:`ConfigError` naming the key and what
is allowed, which fails synth before anything reaches CloudFormation.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from search_router.contract.environment import nullable
from search_router.contract.layout import RESERVED_CANDIDATE_NAMES
from search_router.contract.names import DISTILLED
from search_router.contract.run import RunSettings
from search_router.pipeline.gate import NON_INFERIORITY_METRICS
from search_router.pipeline.queries.planning import MAX_JUDGED_HELDOUT
from search_router.shared.channels import ChannelConfigError, ChannelSet
from search_router.shared.model_ids import AUTO_TEACHER, GEO_PREFIXES, base_model_id, is_customization_id
from search_router.shared.prompts import PROMPT_NAMES, STUDENT_WEIGHTS_ONLY, PromptKind

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"

# Regions where on-demand custom model deployment is offered (us-east-1, us-west-2), and where the Bedrock user
# guide lists Nova Micro distillation (us-east-1 only). Synth warns outside the latter; Preflight and the doctor
# check the Region's real DISTILLATION catalog at run time.
SUPPORTED_REGIONS = ("us-east-1", "us-west-2")
DOCUMENTED_DISTILLATION_REGIONS = ("us-east-1",)
# How the stack relates to the account-level API Gateway CloudWatch Logs role (AWS::ApiGateway::Account), which
# stage logging needs: "create" it (retained on destroy), or rely on the "existing" one (`python -m cli doctor`).
API_GATEWAY_CLOUDWATCH_ROLE_MODES = ("create", "existing")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
API_AUTH_MODES = ("iam", "api_key")
# System prompt a router model is called with (search_router.shared.prompts.PromptKind values).
PROMPT_KINDS = ("student", "teacher")
# API Gateway execution logging; anything but OFF needs the account's API Gateway CloudWatch Logs role.
API_EXECUTION_LOG_LEVELS = ("OFF", "ERROR", "INFO")
MAX_ROUTER_FALLBACK_MODELS = 4
_CORS_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
ARCHITECTURES = ("arm64", "x86_64")
PYTHON_RUNTIMES = ("python3.12", "python3.13")

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Bedrock model ids and inference-profile ids, e.g. "amazon.nova-micro-v1:0:128k",
# "us.anthropic.claude-haiku-4-5-20251001-v1:0". ARNs are accepted too.
_MODEL_ID = re.compile(r"^(arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{0,12}:[a-z-]+/)?[a-z0-9][a-z0-9.:_-]{2,199}$")
# Keys renamed since an earlier version: a cdk.json that still uses the old name gets told the new one.
RENAMED_KEYS = {"allowed_teacher_model_ids": "teacher_preference"}
RUN_DEFAULTS_PREFIX = "run_defaults."  # -c run_defaults.<setting>=<value> overrides one setting of the block
# Keys of earlier versions whose value is now a setting of the run_defaults block (named as the run names it).
MOVED_TO_RUN_DEFAULTS = {
    "train_examples": "num_examples",
    "eval_examples": "eval_examples",
    "teacher_model_id": "teacher_model_id",
    "shard_size": "shard_size",
    "generation_concurrency": "concurrency",
    "labeling_threads": "threads",
    "distillation_poll_seconds": "poll_seconds",
    "deployment_poll_seconds": "deployment_poll_seconds",
    "max_distillation_hours": "max_distillation_hours",
    "judge_enabled": "judge",
    "keep_failed_artifacts": "keep_failed_artifacts",
    "max_failed_shards_percent": "max_failed_shards_percent",
}


class ConfigError(ValueError):
    """A configuration value is invalid. ``key`` names the offending ``cdk.json`` context key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"Invalid configuration '{key}': {message}")
        self.key = key


# ---------------------------------------------------------------------------------------------------
# Value coercion: context values from cdk.json are JSON; values from ``-c key=value`` are strings.
# ---------------------------------------------------------------------------------------------------


def _from_text(key: str, value: Any, parse: Callable[[str], Any], expected: str) -> Any:
    """A numeric ``value`` with a string (``-c key=value``) parsed by ``parse``; a bool, or a string ``parse``
    refuses, raises :class:`ConfigError` saying the key ``must be <expected>``."""
    if isinstance(value, bool):
        raise ConfigError(key, f"must be {expected}, got {value!r}")
    if isinstance(value, str):
        try:
            return parse(value.strip())
        except ValueError:
            raise ConfigError(key, f"must be {expected}, got {value!r}") from None
    return value


def _as_int(key: str, value: Any, lo: int, hi: int) -> int:
    expected = f"an integer in {lo}..{hi}"
    value = _from_text(key, value, int, expected)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(key, f"must be {expected}, got {value!r}")
    return value


def _as_float(key: str, value: Any, lo: float, hi: float) -> float:
    expected = f"a number in {lo}..{hi}"
    value = _from_text(key, value, float, expected)
    if not isinstance(value, int | float) or not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(key, f"must be {expected}, got {value!r}")
    return float(value)


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(key, f"must be true or false, got {value!r}")


def _as_choice(key: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if isinstance(value, str) and value.strip().isdigit() and all(isinstance(c, int) for c in choices):
        value = int(value.strip())
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def _as_json(key: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(key, f"must be JSON ({exc.msg} at position {exc.pos})") from None
    return value


def _run_defaults(key: str, value: Any) -> RunSettings:
    """The run_defaults block, validated by the run's own model (the names, types and bounds Preflight applies)."""
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be an object of run settings, got {value!r}")
    fields = sorted(RunSettings.model_fields)
    for name in sorted(set(value) - set(fields)):
        hint = difflib.get_close_matches(name, fields, n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(f"{key}.{name}", f"is not a run setting{suggestion} The settings: {', '.join(fields)}")
    for name in fields:
        # CDK drops JSON nulls from context objects, so a setting that may be null reads as absent
        if name not in value and not nullable(RunSettings.model_fields[name].annotation):
            raise ConfigError(f"{key}.{name}", "is missing (run_defaults must give every run setting)")
    value = {name: value.get(name) for name in fields}
    try:
        return RunSettings.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not field:  # a rule between settings (eval_examples < num_examples): the message names them
            raise ConfigError(key, message) from None
        raise ConfigError(f"{key}.{field}", f"{message} (got {error.get('input')!r})") from None


def _with_run_default_overrides(context: Mapping[str, Any]) -> dict[str, Any]:
    """``run_defaults.<setting>`` keys (``cdk synth -c run_defaults.num_examples=2000``) merged into the block."""
    overrides = {
        k.removeprefix(RUN_DEFAULTS_PREFIX): v for k, v in context.items() if k.startswith(RUN_DEFAULTS_PREFIX)
    }
    merged = {k: v for k, v in context.items() if not k.startswith(RUN_DEFAULTS_PREFIX)}
    if overrides:
        block = merged.get("run_defaults")
        merged["run_defaults"] = {**(block if isinstance(block, Mapping) else {}), **overrides}
    return merged


def _distillation_pairs(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    """``{teacher model family: [student model families]}``, e.g.
    ``{"amazon.nova-pro-v1:0": ["amazon.nova-micro-v1:0"]}``."""
    value = _as_json(key, value)
    if not isinstance(value, dict) or not value:
        raise ConfigError(key, 'must be an object {"<teacher model id>": ["<student model id>", ...]}')
    pairs: dict[str, tuple[str, ...]] = {}
    for teacher, students in value.items():
        where = f"{key}.{teacher}"
        _as_model_id(where, teacher)
        if not isinstance(students, list) or not students:
            raise ConfigError(where, "must be a non-empty list of student model ids")
        pairs[base_model_id(teacher)] = tuple(
            base_model_id(_as_model_id(f"{where}[{i}]", student)) for i, student in enumerate(students)
        )
    return pairs


def _as_model_id(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _MODEL_ID.match(value.strip()):
        raise ConfigError(
            key,
            "must be a Bedrock model id, inference-profile id or ARN such as 'us.amazon.nova-micro-v1:0'; "
            f"got {value!r}",
        )
    return value.strip()


# ---------------------------------------------------------------------------------------------------
# The configuration object
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelIds:
    teacher: str
    student_job: str
    student: str
    baseline: str
    judge: str


@dataclass(frozen=True)
class GateThresholds:
    min_valid_json_rate: float
    noninferiority_metric: str
    noninferiority_margin: float
    max_overall_mae: float
    min_judge_score: float
    require_judge: bool
    min_production_rubric: float | None = None  # None: off


@dataclass(frozen=True)
class TokenPrice:
    """US dollars per 1,000 tokens."""

    input: float
    output: float


@dataclass(frozen=True)
class RouterModel:
    """A model the router can call and the system prompt it is called with."""

    model_id: str
    prompt_kind: str

    def to_dict(self) -> dict[str, str]:
        return {"model_id": self.model_id, "prompt_kind": self.prompt_kind}


@dataclass(frozen=True)
class RouterConfig:
    """The routing API: models, fallbacks, time budget, cache and request limits (``router_*``, ``api_*``)."""

    default_model: RouterModel
    fallback_models: tuple[RouterModel, ...]
    default_weights: Mapping[str, float]
    timeout_ms: int
    call_timeout_ms: int
    cache_size: int
    cache_ttl_seconds: int
    model_ttl_seconds: int
    max_query_chars: int
    log_queries: bool
    cors_origins: tuple[str, ...]
    execution_log_level: str
    waf: bool
    breaker_failures: int  # consecutive failed requests that open a model's circuit; 0 disables the breaker
    breaker_open_seconds: int  # an open circuit skips its model this long, then one probe request may try it
    fallback_max_share: float  # share of a window's requests that may call router_fallback_models; 1 = no cap
    fallback_window_seconds: int  # the sliding window of that share (per container)
    fallback_min_requests: int  # the cap applies once the window holds this many requests
    reserved_concurrency: int | None  # reserved (and maximum) concurrent executions of the router; None = none
    memory_mb: int  # the router function's memory (and so its CPU share: 1,769 MB = one vCPU)
    snapstart: bool  # SnapStart on published versions, the API calling the alias of the current version

    @property
    def models(self) -> tuple[RouterModel, ...]:
        """Every model the router may call from configuration: the default, then the fallback chain."""
        return (self.default_model, *self.fallback_models)


@dataclass(frozen=True)
class AlarmThresholds:
    """Router health alarms (``alarm_*``, infra/monitoring.py)."""

    fallback_rate: float  # share of routed requests answered by a fallback model or the default weights
    p99_latency_ms: int  # API Gateway p99 latency of the route stage


# The capture stream's buffering (infra/capture.py; the cost estimate, cli/capture_cost.py, counts its objects).
CAPTURE_BUFFER_MB = 64
CAPTURE_BUFFER_SECONDS = 900  # Firehose's maximum buffer interval: fewer, larger objects (the S3 PUTs of the cost)


@dataclass(frozen=True)
class CaptureConfig:
    """Capture of routed queries (``capture_*``, infra/capture.py): off by default."""

    enabled: bool
    redact_patterns: tuple[str, ...]  # regexes; each match is replaced before a query is buffered


@dataclass(frozen=True)
class DriftConfig:
    """The daily drift check (``drift_*``, infra/drift.py; only with ``capture_queries``): its window, the traffic
    it needs before it measures, and the bounds past which its alarms fire (shares in [0, 1])."""

    window_days: int = 7
    min_records: int = 200
    max_records: int = 500_000
    max_unseen_share: float = 0.3
    max_channel_shift: float = 0.2
    max_fallback_rate: float = 0.05
    max_default_rate: float = 0.02
    max_escalated_share: float = 0.6


@dataclass(frozen=True)
class RetrainConfig:
    """Scheduled retraining (``retrain_*``, infra/retrain.py; only with ``capture_queries``): off while
    ``schedule`` is None."""

    schedule: str | None = None
    min_new_queries: int = 500
    heldout_queries: int = 200
    window_days: int = 28


@dataclass(frozen=True)
class AppConfig:
    stack_name: str
    region: str
    models: ModelIds
    channels: ChannelSet
    teacher_preference: tuple[str, ...]
    distillation_pairs: Mapping[str, tuple[str, ...]]
    run_defaults: RunSettings  # what an execution started with {} does (cdk.json "run_defaults")
    gate: GateThresholds
    eval_candidates: tuple[Candidate, ...]
    eval_baseline_candidate: str
    eval_threads: int
    delete_rejected_deployments: bool
    data_retention_days: int | None
    prices: Mapping[str, TokenPrice]
    api_auth: str
    api_gateway_cloudwatch_role: str
    api_rate_limit: float
    api_burst_limit: int
    retain_data: bool
    notification_email: str | None
    powertools_layer_version: int
    lambda_architecture: str
    python_runtime: str
    log_retention_days: int
    router: RouterConfig
    alarms: AlarmThresholds
    capture: CaptureConfig = CaptureConfig(enabled=False, redact_patterns=())
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()

    @property
    def powertools_layer_arn(self) -> str:
        """The AWS-managed Powertools for AWS Lambda (Python) v3 layer for this runtime/architecture."""
        python = self.python_runtime.replace(".", "")
        return (
            f"arn:aws:lambda:{self.region}:017000801446:layer:"
            f"AWSLambdaPowertoolsPythonV3-{python}-{self.lambda_architecture}:{self.powertools_layer_version}"
        )


def _channels(key: str, value: Any) -> ChannelSet:
    try:
        return ChannelSet.from_obj(_as_json(key, value))
    except ChannelConfigError as exc:
        raise ConfigError(key, str(exc)) from None


def _prices(key: str, value: Any) -> dict[str, TokenPrice]:
    value = _as_json(key, value)
    if not isinstance(value, dict) or not value:
        raise ConfigError(key, 'must be an object {model_id: {"input": usd_per_1k, "output": usd_per_1k}}')
    prices: dict[str, TokenPrice] = {}
    for model_id, entry in value.items():
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise ConfigError(f"{key}.{model_id}", 'must be {"input": number, "output": number} (USD per 1K tokens)')
        prices[model_id] = TokenPrice(
            input=_as_float(f"{key}.{model_id}.input", entry["input"], 0.0, 1.0),
            output=_as_float(f"{key}.{model_id}.output", entry["output"], 0.0, 1.0),
        )
    return prices


def _model_id_list(key: str, value: Any) -> tuple[str, ...]:
    value = _as_json(key, value)
    if not isinstance(value, list) or not value:
        raise ConfigError(key, "must be a non-empty list of Bedrock model or inference-profile ids")
    return tuple(_as_model_id(f"{key}[{i}]", item) for i, item in enumerate(value))


_CANDIDATE_NAME = re.compile(r"^[a-z0-9](-?[a-z0-9]){0,30}$")
DISTILLED_CANDIDATE_MODEL = DISTILLED


@dataclass(frozen=True)
class Candidate:
    """A router evaluated on the held-out set. ``model`` ``"distilled"`` means the run's new deployment."""

    name: str
    model: str
    prompt_kind: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "model": self.model, "prompt_kind": self.prompt_kind}


def _as_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _CANDIDATE_NAME.match(value):
        raise ConfigError(key, f"must be 1-32 lower-case letters, digits and single hyphens, got {value!r}")
    return value


def _candidates(key: str, value: Any) -> tuple[Candidate, ...]:
    value = _as_json(key, value)
    if not isinstance(value, list) or not 1 <= len(value) <= 6:
        raise ConfigError(key, 'must be a list of 1..6 {"name", "model", "prompt_kind"} objects')
    candidates = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, dict) or set(item) != {"name", "model", "prompt_kind"}:
            raise ConfigError(where, 'must be {"name", "model", "prompt_kind"}')
        model = (
            item["model"]
            if item["model"] == DISTILLED_CANDIDATE_MODEL
            else _as_model_id(f"{where}.model", item["model"])
        )
        kind = _as_choice(f"{where}.prompt_kind", item["prompt_kind"], PROMPT_NAMES)
        candidates.append(Candidate(_as_name(f"{where}.name", item["name"]), model, kind))
    names = [c.name for c in candidates]
    reserved = sorted(set(names) & set(RESERVED_CANDIDATE_NAMES))
    if reserved:
        raise ConfigError(
            key,
            f"candidate name(s) {', '.join(reserved)} are taken by the run's evaluation folders "
            f"({', '.join(RESERVED_CANDIDATE_NAMES)}); choose another",
        )
    if len(set(names)) != len(names):
        raise ConfigError(key, f"candidate names must be unique, got {names}")
    _check_distilled(key, [c for c in candidates if c.model == DISTILLED_CANDIDATE_MODEL])
    return tuple(candidates)


def _check_distilled(key: str, distilled: list[Candidate]) -> None:
    """One distilled candidate per student prompt it was trained on, and exactly one with the ``student`` prompt:
    the one the gate judges (weights then reasoning, what the router serves by default)."""
    trained = (PromptKind.STUDENT.value, STUDENT_WEIGHTS_ONLY)
    if any(c.prompt_kind not in trained for c in distilled):
        raise ConfigError(
            key, f"a distilled candidate must use a student prompt it was trained on: {', '.join(trained)}"
        )
    kinds = [c.prompt_kind for c in distilled]
    if kinds.count(PromptKind.STUDENT.value) != 1 or len(set(kinds)) != len(kinds):
        raise ConfigError(
            key,
            'must contain exactly one candidate with "model": "distilled" and "prompt_kind": "student" (the gate '
            'judges it) and at most one more with "prompt_kind": "student_weights_only"',
        )


def _email(key: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise ConfigError(key, f"must be an e-mail address or empty, got {value!r}")
    return value.strip()


def _retention_days(key: str, value: Any) -> int | None:
    """Days after which run data (``runs/``, ``tmp/``) and uploaded queries (``inputs/``) expire; null keeps them."""
    if value in (None, "", 0):
        return None
    return _as_int(key, value, 1, 3_650)


def _stack_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _STACK_NAME.match(value):
        raise ConfigError(key, f"must match {_STACK_NAME.pattern} (CloudFormation stack name), got {value!r}")
    return value


def _prompt_kind(key: str, value: Any) -> str:
    return str(_as_choice(key, value.strip().lower() if isinstance(value, str) else value, PROMPT_KINDS))


def _router_models(key: str, value: Any) -> tuple[RouterModel, ...]:
    value = _as_json(key, value)
    shape = '{"model_id": "...", "prompt_kind": "student" | "teacher"}'
    if not isinstance(value, list) or len(value) > MAX_ROUTER_FALLBACK_MODELS:
        raise ConfigError(key, f"must be a list of at most {MAX_ROUTER_FALLBACK_MODELS} {shape} objects")
    models: list[RouterModel] = []
    for index, entry in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"model_id", "prompt_kind"}:
            raise ConfigError(where, f"must be {shape}, got {entry!r}")
        model = RouterModel(
            model_id=_as_model_id(f"{where}.model_id", entry["model_id"]),
            prompt_kind=_prompt_kind(f"{where}.prompt_kind", entry["prompt_kind"]),
        )
        if model.model_id in {m.model_id for m in models}:
            raise ConfigError(where, f"repeats model {model.model_id!r}")
        models.append(model)
    return tuple(models)


AUTO_DEFAULT_WEIGHTS = "auto"
AUTO_PRIMARY_WEIGHT = 0.4


def _weights_spec(key: str, value: Any) -> str | dict[str, float]:
    """``"auto"`` or ``{channel: weight}``; checked against the channels in :func:`_default_weights`."""
    if isinstance(value, str) and value.strip().lower() == AUTO_DEFAULT_WEIGHTS:
        return AUTO_DEFAULT_WEIGHTS
    value = _as_json(key, value)
    if not isinstance(value, dict) or not value:
        raise ConfigError(key, f'must be "{AUTO_DEFAULT_WEIGHTS}" or an object {{channel: weight}}, got {value!r}')
    return {str(name): _as_float(f"{key}.{name}", weight, 0.0, 1.0) for name, weight in value.items()}


def _default_weights(key: str, spec: str | dict[str, float], channels: ChannelSet) -> dict[str, float]:
    """The weights the router answers with when no model can: every channel, each in [0, 1], summing to 1.

    ``"auto"`` gives the first channel 0.4 and shares the rest equally: the reference router's fixed
    0.4 / 0.2 / 0.2 / 0.2 for the default channels, and still valid when the channels are reconfigured.
    """
    names = channels.names
    if isinstance(spec, str):
        rest = round((1.0 - AUTO_PRIMARY_WEIGHT) / (len(names) - 1), 10)
        return {name: AUTO_PRIMARY_WEIGHT if index == 0 else rest for index, name in enumerate(names)}
    unknown = [name for name in spec if name not in names]
    if unknown:
        raise ConfigError(key, f"names unknown channel(s) {', '.join(unknown)}; the channels are {', '.join(names)}")
    missing = [name for name in names if name not in spec]
    if missing:
        raise ConfigError(key, f"has no weight for channel(s) {', '.join(missing)}; give every channel a weight")
    total = math.fsum(spec.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(key, f"weights must sum to 1, got {total:.6g}")
    return {name: spec[name] for name in names}


def _cors_origins(key: str, value: Any) -> tuple[str, ...]:
    value = _as_json(key, value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, f'must be a list of origins such as ["https://search.example.com"], got {value!r}')
    origins = tuple(v.strip().rstrip("/") for v in value)
    for origin in origins:
        if origin != "*" and not _CORS_ORIGIN.match(origin):
            raise ConfigError(key, f"{origin!r} is not an origin (scheme://host[:port]) or '*'")
    if "*" in origins and len(origins) > 1:
        raise ConfigError(key, "'*' allows every origin; list it alone")
    return origins


def _optional_int(key: str, value: Any, lo: int, hi: int) -> int | None:
    """``null`` (or ``"null"`` / ``"none"`` / ``""`` from ``-c key=...``) or an integer in ``lo..hi``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    try:
        return _as_int(key, value, lo, hi)
    except ConfigError:
        raise ConfigError(key, f"must be null (unreserved) or an integer in {lo}..{hi}, got {value!r}") from None


def _optional_score(key: str, value: Any) -> float | None:
    """``null`` (off; or ``"null"`` / ``"none"`` / ``""`` from ``-c key=...``) or a 1-5 score."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    try:
        return _as_float(key, value, 1.0, 5.0)
    except ConfigError:
        raise ConfigError(key, f"must be null (off) or a score in 1..5, got {value!r}") from None


_RATE = re.compile(r"^rate\((?P<value>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)$")
_CRON = re.compile(r"^cron\((?P<fields>[^()]+)\)$")


def _schedule_expression(key: str, value: Any) -> str | None:
    """``null`` (off) or an EventBridge Scheduler recurring expression: ``rate(<n> <unit>)`` (``minute``/``hour``/
    ``day`` singular for 1, plural otherwise) or ``cron(<6 fields>)`` (minutes hours day-of-month month day-of-week
    year), evaluated in UTC."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    if not isinstance(value, str):
        raise ConfigError(key, f"must be null, rate(...) or cron(...), got {value!r}")
    expression = value.strip()
    rate, cron = _RATE.match(expression), _CRON.match(expression)
    if rate:
        singular = rate["value"] == "1"
        if singular == rate["unit"].endswith("s"):
            wanted = rate["unit"].rstrip("s") if singular else f"{rate['unit']}s"
            raise ConfigError(key, f"{expression!r}: write rate({rate['value']} {wanted}) (EventBridge's rule)")
        minutes = int(rate["value"]) * {"m": 1, "h": 60, "d": 1_440}[rate["unit"][0]]
        if minutes < 60:
            raise ConfigError(key, f"{expression!r} is more often than hourly; a pipeline run takes hours")
        return expression
    fields = cron["fields"].split() if cron else []
    if len(fields) == 6:
        if not fields[0].isdigit() or int(fields[0]) > 59:
            raise ConfigError(
                key, f"{expression!r}: the minutes field must be one minute (0-59): a pipeline run takes hours"
            )
        if (fields[2] == "?") == (fields[4] == "?"):
            raise ConfigError(
                key, f"{expression!r}: exactly one of day-of-month and day-of-week must be ? (EventBridge's rule)"
            )
        return expression
    raise ConfigError(
        key,
        f"must be null, rate(<n> <unit>) or cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>), "
        f"e.g. cron(0 3 ? * SUN *) for 03:00 UTC every Sunday; got {value!r}",
    )


MAX_REDACT_PATTERNS = 20
MAX_REDACT_PATTERN_CHARS = 500


def _redact_patterns(key: str, value: Any) -> tuple[str, ...]:
    """A list of Python regexes (the router applies them with ``re``); one that does not compile fails synth,
    naming its index and the compiler's message."""
    value = _as_json(key, value)
    if not isinstance(value, list) or len(value) > MAX_REDACT_PATTERNS:
        raise ConfigError(key, f"must be a list of at most {MAX_REDACT_PATTERNS} regular expressions, got {value!r}")
    patterns: list[str] = []
    for index, pattern in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_REDACT_PATTERN_CHARS:
            raise ConfigError(
                where,
                f"must be a non-empty regular expression of at most {MAX_REDACT_PATTERN_CHARS} "
                f"characters, got {pattern!r}",
            )
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(where, f"is not a valid regular expression ({exc}): {pattern!r}") from None
        if compiled.search(""):
            raise ConfigError(
                where, f"matches the empty string, so it would redact between every character: {pattern!r}"
            )
        patterns.append(pattern)
    return tuple(patterns)


def _router_config(values: Mapping[str, Any]) -> RouterConfig:
    """The ``router_*`` / ``api_*`` keys (parsed one by one) checked against each other and the channels."""
    if values["router_call_timeout_ms"] > values["router_timeout_ms"]:
        raise ConfigError("router_call_timeout_ms", "must not exceed router_timeout_ms (the total time budget)")
    default_model = RouterModel(values["router_default_model_id"], values["router_default_prompt_kind"])
    if default_model.model_id in {m.model_id for m in values["router_fallback_models"]}:
        raise ConfigError("router_fallback_models", f"repeats the default model {default_model.model_id!r}")
    return RouterConfig(
        default_model=default_model,
        fallback_models=values["router_fallback_models"],
        default_weights=_default_weights(
            "router_default_weights", values["router_default_weights"], values["channels"]
        ),
        timeout_ms=values["router_timeout_ms"],
        call_timeout_ms=values["router_call_timeout_ms"],
        cache_size=values["router_cache_size"],
        cache_ttl_seconds=values["router_cache_ttl_seconds"],
        model_ttl_seconds=values["router_model_ttl_seconds"],
        max_query_chars=values["router_max_query_chars"],
        log_queries=values["router_log_queries"],
        cors_origins=values["api_cors_origins"],
        execution_log_level=values["api_execution_log_level"],
        waf=values["api_waf"],
        breaker_failures=values["router_breaker_failures"],
        breaker_open_seconds=values["router_breaker_open_seconds"],
        fallback_max_share=values["router_fallback_max_share"],
        fallback_window_seconds=values["router_fallback_window_seconds"],
        fallback_min_requests=values["router_fallback_min_requests"],
        reserved_concurrency=values["router_reserved_concurrency"],
        memory_mb=values["router_memory_mb"],
        snapstart=values["router_snapstart"],
    )


# key → parser. The defaults live in cdk.json; this table says what each key may hold.
_Parser = Callable[[str, Any], Any]
FIELDS: dict[str, _Parser] = {
    "stack_name": _stack_name,
    "region": lambda k, v: _as_choice(k, v, SUPPORTED_REGIONS),
    "teacher_preference": _model_id_list,
    "distillation_pairs": _distillation_pairs,
    "student_job_model_id": _as_model_id,
    "student_model_id": _as_model_id,
    "baseline_model_id": _as_model_id,
    "judge_model_id": _as_model_id,
    "channels": _channels,
    "run_defaults": _run_defaults,
    "gate_min_valid_json_rate": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "gate_noninferiority_metric": lambda k, v: _as_choice(k, v, NON_INFERIORITY_METRICS),
    "gate_noninferiority_margin": lambda k, v: _as_float(k, v, 0.0, 4.0),
    "gate_max_overall_mae": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "gate_min_judge_score": lambda k, v: _as_float(k, v, 1.0, 5.0),
    "gate_require_judge": _as_bool,
    "gate_min_production_rubric": _optional_score,
    "eval_candidates": _candidates,
    "eval_baseline_candidate": _as_name,
    "eval_threads": lambda k, v: _as_int(k, v, 1, 32),
    "delete_rejected_deployments": _as_bool,
    "data_retention_days": _retention_days,
    "prices": _prices,
    "api_auth": lambda k, v: _as_choice(k, v, API_AUTH_MODES),
    "api_gateway_cloudwatch_role": lambda k, v: _as_choice(k, v, API_GATEWAY_CLOUDWATCH_ROLE_MODES),
    "api_rate_limit": lambda k, v: _as_float(k, v, 1.0, 10_000.0),
    "api_burst_limit": lambda k, v: _as_int(k, v, 1, 5_000),
    "retain_data": _as_bool,
    "notification_email": _email,
    "powertools_layer_version": lambda k, v: _as_int(k, v, 1, 10_000),
    "lambda_architecture": lambda k, v: _as_choice(k, v, ARCHITECTURES),
    "python_runtime": lambda k, v: _as_choice(k, v, PYTHON_RUNTIMES),
    "log_retention_days": lambda k, v: _as_choice(k, v, LOG_RETENTION_DAYS),
    # Routing API (infra/routing_api.py, lambdas/search_router/router/)
    "router_default_model_id": _as_model_id,
    "router_default_prompt_kind": _prompt_kind,
    "router_fallback_models": _router_models,
    "router_default_weights": _weights_spec,
    "router_timeout_ms": lambda k, v: _as_int(k, v, 100, 25_000),
    "router_call_timeout_ms": lambda k, v: _as_int(k, v, 50, 25_000),
    "router_cache_size": lambda k, v: _as_int(k, v, 0, 100_000),
    "router_cache_ttl_seconds": lambda k, v: _as_int(k, v, 0, 86_400),
    "router_model_ttl_seconds": lambda k, v: _as_int(k, v, 1, 600),
    "router_max_query_chars": lambda k, v: _as_int(k, v, 1, 10_000),
    "router_log_queries": _as_bool,
    "router_breaker_failures": lambda k, v: _as_int(k, v, 0, 100),
    "router_breaker_open_seconds": lambda k, v: _as_int(k, v, 1, 3_600),
    "router_fallback_max_share": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "router_fallback_window_seconds": lambda k, v: _as_int(k, v, 10, 3_600),
    "router_fallback_min_requests": lambda k, v: _as_int(k, v, 1, 10_000),
    # Lambda's per-function limit is the account's concurrency quota (1,000 by default) minus the 100 it keeps
    # unreserved: a larger value fails at deploy, not here.
    "router_reserved_concurrency": lambda k, v: _optional_int(k, v, 1, 10_000),
    # Lambda's memory range (MB); the default is sized from benchmarks/cold_start.py (see the README).
    "router_memory_mb": lambda k, v: _as_int(k, v, 128, 10_240),
    "router_snapstart": _as_bool,
    "api_cors_origins": _cors_origins,
    "api_execution_log_level": lambda k, v: _as_choice(
        k, v.strip().upper() if isinstance(v, str) else v, API_EXECUTION_LOG_LEVELS
    ),
    "api_waf": _as_bool,
    # Monitoring (infra/monitoring.py): router alarms to the notification topic
    "alarm_fallback_rate": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "alarm_p99_latency_ms": lambda k, v: _as_int(k, v, 100, 30_000),
    # Capture of routed queries (infra/capture.py, router/capture.py); retention: data_retention_days
    "capture_queries": _as_bool,
    "capture_redact_patterns": _redact_patterns,
    # The daily drift check (infra/drift.py, pipeline/drift.py; capture_queries only)
    "drift_window_days": lambda k, v: _as_int(k, v, 1, 30),
    "drift_min_records": lambda k, v: _as_int(k, v, 1, 1_000_000),
    "drift_max_records": lambda k, v: _as_int(k, v, 1_000, 10_000_000),
    "drift_max_unseen_share": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "drift_max_channel_shift": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "drift_max_fallback_rate": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "drift_max_default_rate": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "drift_max_escalated_share": lambda k, v: _as_float(k, v, 0.0, 1.0),
    # Scheduled retraining on captured queries (infra/retrain.py, pipeline/retraining.py; capture_queries only)
    "retrain_schedule": _schedule_expression,
    "retrain_min_new_queries": lambda k, v: _as_int(k, v, 1, 1_000_000),
    "retrain_heldout_queries": lambda k, v: _as_int(k, v, 0, 989),
    "retrain_window_days": lambda k, v: _as_int(k, v, 1, 366),
}


def _is_foreign_key(key: str) -> bool:
    """Context keys owned by the CDK itself (feature flags, lookups, CLI settings)."""
    return key.startswith("@") or ":" in key or key in ("acknowledged-issue-numbers", "cli-telemetry")


def read_cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(json.load(handle).get("context", {}))


def _check_keys(context: Mapping[str, Any]) -> None:
    """Every key is a project setting, a run_defaults override or CDK's own; moved and renamed keys say where."""
    known = set(FIELDS)
    for key in context:
        if key in MOVED_TO_RUN_DEFAULTS:
            raise ConfigError(
                key, f"moved into the run_defaults block as '{MOVED_TO_RUN_DEFAULTS[key]}'; move it there in cdk.json"
            )
        if key.startswith(RUN_DEFAULTS_PREFIX):
            continue  # -c run_defaults.<setting>=<value>, merged into the block
        if key in RENAMED_KEYS:
            raise ConfigError(key, f"was renamed to '{RENAMED_KEYS[key]}'; rename it in cdk.json")
        if key not in known and not _is_foreign_key(key):
            hint = difflib.get_close_matches(key, sorted(known), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(key, f"unknown key{suggestion} Known keys: {', '.join(sorted(known))}")


def parse_config(context: Mapping[str, Any]) -> AppConfig:
    """Validate a full context mapping (cdk.json merged with overrides) into an :class:`AppConfig`."""
    _check_keys(context)
    context = _with_run_default_overrides(context)
    values: dict[str, Any] = {}
    for key, parse in FIELDS.items():
        if key not in context:
            raise ConfigError(key, "is missing (cdk.json context must define it)")
        values[key] = parse(key, context[key])

    for role in ("student_model_id", "baseline_model_id", "judge_model_id"):
        if values[role] not in values["prices"] and not values[role].startswith("arn:"):
            raise ConfigError("prices", f"has no entry for {role} {values[role]!r}; cost estimates need it")
    if values["eval_baseline_candidate"] not in {c.name for c in values["eval_candidates"]}:
        raise ConfigError("eval_baseline_candidate", "must name one of eval_candidates")
    for candidate in values["eval_candidates"]:
        if candidate.model != DISTILLED_CANDIDATE_MODEL and candidate.model not in values["prices"]:
            raise ConfigError("prices", f"has no entry for candidate {candidate.name}'s model {candidate.model!r}")
    _check_teachers(values)
    if values["drift_max_records"] < values["drift_min_records"]:
        raise ConfigError("drift_max_records", "must be at least drift_min_records")
    _check_retrain(values)
    metric, margin = values["gate_noninferiority_metric"], values["gate_noninferiority_margin"]
    if metric != "rubric_mean" and margin > 1:
        raise ConfigError(
            "gate_noninferiority_margin",
            f"must be within 0..1 for {metric} (a share or an error of weights); got {margin!r} (0..4 is for "
            "rubric_mean, a 1-5 score)",
        )

    return AppConfig(
        stack_name=values["stack_name"],
        region=values["region"],
        models=ModelIds(
            teacher=values["run_defaults"].teacher_model_id,
            student_job=values["student_job_model_id"],
            student=values["student_model_id"],
            baseline=values["baseline_model_id"],
            judge=values["judge_model_id"],
        ),
        channels=values["channels"],
        teacher_preference=values["teacher_preference"],
        distillation_pairs=values["distillation_pairs"],
        run_defaults=values["run_defaults"],
        eval_candidates=values["eval_candidates"],
        eval_baseline_candidate=values["eval_baseline_candidate"],
        eval_threads=values["eval_threads"],
        delete_rejected_deployments=values["delete_rejected_deployments"],
        data_retention_days=values["data_retention_days"],
        gate=GateThresholds(
            min_valid_json_rate=values["gate_min_valid_json_rate"],
            noninferiority_metric=values["gate_noninferiority_metric"],
            noninferiority_margin=values["gate_noninferiority_margin"],
            max_overall_mae=values["gate_max_overall_mae"],
            min_judge_score=values["gate_min_judge_score"],
            require_judge=values["gate_require_judge"],
            min_production_rubric=values["gate_min_production_rubric"],
        ),
        prices=values["prices"],
        api_auth=values["api_auth"],
        api_gateway_cloudwatch_role=values["api_gateway_cloudwatch_role"],
        api_rate_limit=values["api_rate_limit"],
        api_burst_limit=values["api_burst_limit"],
        retain_data=values["retain_data"],
        notification_email=values["notification_email"],
        powertools_layer_version=values["powertools_layer_version"],
        lambda_architecture=values["lambda_architecture"],
        python_runtime=values["python_runtime"],
        log_retention_days=values["log_retention_days"],
        router=_router_config(values),
        alarms=AlarmThresholds(
            fallback_rate=values["alarm_fallback_rate"], p99_latency_ms=values["alarm_p99_latency_ms"]
        ),
        capture=CaptureConfig(enabled=values["capture_queries"], redact_patterns=values["capture_redact_patterns"]),
        drift=DriftConfig(**{name: values[f"drift_{name}"] for name in DriftConfig.__dataclass_fields__}),
        retrain=RetrainConfig(**{name: values[f"retrain_{name}"] for name in RetrainConfig.__dataclass_fields__}),
    )


def _check_retrain(values: Mapping[str, Any]) -> None:
    """The scheduled retraining against what it needs: captured queries, and room for its held-out sample."""
    if values["retrain_schedule"] is None:
        return
    if not values["capture_queries"]:
        raise ConfigError("retrain_schedule", "needs capture_queries true (it retrains on the captured queries)")
    heldout, needed = values["retrain_heldout_queries"], values["retrain_min_new_queries"]
    if heldout >= needed:
        raise ConfigError(
            "retrain_heldout_queries",
            f"({heldout}) must be smaller than retrain_min_new_queries ({needed}): the held-out sample is drawn "
            "from the new queries and the rest of them train",
        )
    eval_examples = values["run_defaults"].eval_examples
    if heldout + eval_examples > MAX_JUDGED_HELDOUT:
        raise ConfigError(
            "retrain_heldout_queries",
            f"({heldout}) plus run_defaults.eval_examples ({eval_examples}) must be at most {MAX_JUDGED_HELDOUT}: "
            "one judge job scores every held-out query",
        )


def _check_teachers(values: Mapping[str, Any]) -> None:
    """The teacher settings against each other: a choice that can never work fails synth, not a run."""
    preference, pairs, student = (
        values["teacher_preference"],
        values["distillation_pairs"],
        values["student_job_model_id"],
    )
    if len(set(preference)) != len(preference):
        raise ConfigError("teacher_preference", f"lists a model twice: {list(preference)}")
    if student.startswith(GEO_PREFIXES) or not is_customization_id(student):
        raise ConfigError(
            "student_job_model_id",
            "must be the customization id of the base model with its context suffix (e.g. "
            f"'amazon.nova-micro-v1:0:128k'), not an inference profile or an on-demand id; got {student!r}",
        )
    teacher = values["run_defaults"].teacher_model_id
    if teacher != AUTO_TEACHER and teacher not in preference:
        raise ConfigError(
            "run_defaults.teacher_model_id",
            f"must be 'auto' or one of teacher_preference {list(preference)}; got {teacher!r}",
        )
    paired = [t for t in preference if base_model_id(student) in pairs.get(base_model_id(t), ())]
    if not paired:
        raise ConfigError(
            "teacher_preference",
            f"no teacher in it is paired with the student {base_model_id(student)} in distillation_pairs, so no run "
            "could ever distil; add a documented pair or a teacher",
        )
    if teacher != AUTO_TEACHER and teacher not in paired:
        raise ConfigError(
            "run_defaults.teacher_model_id",
            f"{teacher} is not paired with the student {base_model_id(student)} in distillation_pairs",
        )
    for model in preference:
        if model not in values["prices"]:
            raise ConfigError("prices", f"has no entry for teacher {model!r}; cost estimates need it")


def load_config(app_context: Mapping[str, Any] | None = None) -> AppConfig:
    """``cdk.json`` context, overlaid with the app's whole context (``-c key=value``), validated."""
    return parse_config({**read_cdk_json_context(), **(app_context or {})})


def pipeline_defaults(config: AppConfig) -> dict[str, object]:
    """What an execution started with ``{}`` does (every key can be overridden in the input): cdk.json's
    ``run_defaults``, as validated."""
    return config.run_defaults.model_dump()
