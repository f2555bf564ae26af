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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routing.channels import ChannelConfigError, ChannelSet

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"

# Regions where Bedrock Model Distillation (us-east-1) and on-demand custom model deployment
# (us-east-1, us-west-2) are offered. See docs/bedrock-facts in the README's configuration section.
SUPPORTED_REGIONS = ("us-east-1", "us-west-2")
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
ARCHITECTURES = ("arm64", "x86_64")
PYTHON_RUNTIMES = ("python3.12", "python3.13")

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Bedrock model ids and inference-profile ids, e.g. "amazon.nova-micro-v1:0:128k",
# "us.anthropic.claude-haiku-4-5-20251001-v1:0". ARNs are accepted too.
_MODEL_ID = re.compile(r"^(arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{0,12}:[a-z-]+/)?[a-z0-9][a-z0-9.:_-]{2,199}$")
_GEO_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au.", "global.")


class ConfigError(ValueError):
    """A configuration value is invalid. ``key`` names the offending ``cdk.json`` context key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"Invalid configuration '{key}': {message}")
        self.key = key


def is_inference_profile_id(model_id: str) -> bool:
    """True for system inference-profile ids such as ``us.amazon.nova-micro-v1:0``."""
    return model_id.startswith(_GEO_PREFIXES)


# ---------------------------------------------------------------------------------------------------
# Value coercion: context values from cdk.json are JSON; values from ``-c key=value`` are strings.
# ---------------------------------------------------------------------------------------------------


def _as_int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, f"must be an integer in {lo}..{hi}, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigError(key, f"must be an integer in {lo}..{hi}, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(key, f"must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _as_float(key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, f"must be a number in {lo}..{hi}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(key, f"must be a number in {lo}..{hi}, got {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(key, f"must be a number in {lo}..{hi}, got {value!r}")
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
    max_rubric_drop_vs_baseline: float
    max_overall_mae: float
    min_judge_score: float


@dataclass(frozen=True)
class TokenPrice:
    """US dollars per 1,000 tokens."""

    input: float
    output: float


@dataclass(frozen=True)
class AppConfig:
    stack_name: str
    region: str
    models: ModelIds
    channels: ChannelSet
    train_examples: int
    eval_examples: int
    shard_size: int
    generation_concurrency: int
    labeling_threads: int
    distillation_poll_seconds: int
    deployment_poll_seconds: int
    max_distillation_hours: int
    judge_enabled: bool
    gate: GateThresholds
    prices: Mapping[str, TokenPrice]
    api_auth: str
    api_rate_limit: float
    api_burst_limit: int
    retain_data: bool
    notification_email: str | None
    powertools_layer_version: int
    lambda_architecture: str
    python_runtime: str
    log_retention_days: int
    extra: Mapping[str, Any] = field(default_factory=dict)

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


def _email(key: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise ConfigError(key, f"must be an e-mail address or empty, got {value!r}")
    return value.strip()


def _stack_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _STACK_NAME.match(value):
        raise ConfigError(key, f"must match {_STACK_NAME.pattern} (CloudFormation stack name), got {value!r}")
    return value


# key → parser. The defaults live in cdk.json; this table says what each key may hold.
_Parser = Callable[[str, Any], Any]
FIELDS: dict[str, _Parser] = {
    "stack_name": _stack_name,
    "region": lambda k, v: _as_choice(k, v, SUPPORTED_REGIONS),
    "teacher_model_id": _as_model_id,
    "student_job_model_id": _as_model_id,
    "student_model_id": _as_model_id,
    "baseline_model_id": _as_model_id,
    "judge_model_id": _as_model_id,
    "channels": _channels,
    "train_examples": lambda k, v: _as_int(k, v, 100, 15_000),
    "eval_examples": lambda k, v: _as_int(k, v, 10, 1_000),
    "shard_size": lambda k, v: _as_int(k, v, 10, 5_000),
    "generation_concurrency": lambda k, v: _as_int(k, v, 1, 40),
    "labeling_threads": lambda k, v: _as_int(k, v, 1, 64),
    "distillation_poll_seconds": lambda k, v: _as_int(k, v, 0, 3_600),
    "deployment_poll_seconds": lambda k, v: _as_int(k, v, 0, 3_600),
    "max_distillation_hours": lambda k, v: _as_int(k, v, 1, 168),
    "judge_enabled": _as_bool,
    "gate_min_valid_json_rate": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "gate_max_rubric_drop_vs_baseline": lambda k, v: _as_float(k, v, 0.0, 4.0),
    "gate_max_overall_mae": lambda k, v: _as_float(k, v, 0.0, 1.0),
    "gate_min_judge_score": lambda k, v: _as_float(k, v, 1.0, 5.0),
    "prices": _prices,
    "api_auth": lambda k, v: _as_choice(k, v, API_AUTH_MODES),
    "api_rate_limit": lambda k, v: _as_float(k, v, 1.0, 10_000.0),
    "api_burst_limit": lambda k, v: _as_int(k, v, 1, 5_000),
    "retain_data": _as_bool,
    "notification_email": _email,
    "powertools_layer_version": lambda k, v: _as_int(k, v, 1, 10_000),
    "lambda_architecture": lambda k, v: _as_choice(k, v, ARCHITECTURES),
    "python_runtime": lambda k, v: _as_choice(k, v, PYTHON_RUNTIMES),
    "log_retention_days": lambda k, v: _as_choice(k, v, LOG_RETENTION_DAYS),
}

# Keys later constructs read from ``AppConfig.extra`` after validating them themselves.
EXTENSION_FIELDS: dict[str, _Parser] = {}


def _is_foreign_key(key: str) -> bool:
    """Context keys owned by the CDK itself (feature flags, lookups, CLI settings)."""
    return key.startswith("@") or ":" in key or key in ("acknowledged-issue-numbers", "cli-telemetry")


def read_cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(json.load(handle).get("context", {}))


def parse_config(context: Mapping[str, Any]) -> AppConfig:
    """Validate a full context mapping (cdk.json merged with overrides) into an :class:`AppConfig`."""
    known = set(FIELDS) | set(EXTENSION_FIELDS)
    for key in context:
        if key not in known and not _is_foreign_key(key):
            hint = difflib.get_close_matches(key, sorted(known), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(key, f"unknown key{suggestion} Known keys: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for key, parse in FIELDS.items():
        if key not in context:
            raise ConfigError(key, "is missing (cdk.json context must define it)")
        values[key] = parse(key, context[key])
    extra = {key: parse(key, context[key]) for key, parse in EXTENSION_FIELDS.items() if key in context}

    if values["eval_examples"] >= values["train_examples"]:
        raise ConfigError("eval_examples", "must be smaller than train_examples")
    for role in ("student_model_id", "baseline_model_id", "judge_model_id"):
        if values[role] not in values["prices"] and not values[role].startswith("arn:"):
            raise ConfigError("prices", f"has no entry for {role} {values[role]!r}; cost estimates need it")
    if values["student_job_model_id"].startswith(_GEO_PREFIXES):
        raise ConfigError(
            "student_job_model_id",
            "must be the customization id of the base model (e.g. 'amazon.nova-micro-v1:0:128k'), "
            "not an inference profile",
        )

    return AppConfig(
        stack_name=values["stack_name"],
        region=values["region"],
        models=ModelIds(
            teacher=values["teacher_model_id"],
            student_job=values["student_job_model_id"],
            student=values["student_model_id"],
            baseline=values["baseline_model_id"],
            judge=values["judge_model_id"],
        ),
        channels=values["channels"],
        train_examples=values["train_examples"],
        eval_examples=values["eval_examples"],
        shard_size=values["shard_size"],
        generation_concurrency=values["generation_concurrency"],
        labeling_threads=values["labeling_threads"],
        distillation_poll_seconds=values["distillation_poll_seconds"],
        deployment_poll_seconds=values["deployment_poll_seconds"],
        max_distillation_hours=values["max_distillation_hours"],
        judge_enabled=values["judge_enabled"],
        gate=GateThresholds(
            min_valid_json_rate=values["gate_min_valid_json_rate"],
            max_rubric_drop_vs_baseline=values["gate_max_rubric_drop_vs_baseline"],
            max_overall_mae=values["gate_max_overall_mae"],
            min_judge_score=values["gate_min_judge_score"],
        ),
        prices=values["prices"],
        api_auth=values["api_auth"],
        api_rate_limit=values["api_rate_limit"],
        api_burst_limit=values["api_burst_limit"],
        retain_data=values["retain_data"],
        notification_email=values["notification_email"],
        powertools_layer_version=values["powertools_layer_version"],
        lambda_architecture=values["lambda_architecture"],
        python_runtime=values["python_runtime"],
        log_retention_days=values["log_retention_days"],
        extra=extra,
    )


def load_config(app_context: Callable[[str], Any] | Mapping[str, Any] | None = None) -> AppConfig:
    """``cdk.json`` context, overlaid with the app's context (``-c key=value``), validated.

    ``app_context`` is either a mapping or a ``node.try_get_context``-style getter.
    """
    merged = read_cdk_json_context()
    if app_context is None:
        return parse_config(merged)
    if isinstance(app_context, Mapping):
        merged.update(app_context)
        return parse_config(merged)
    for key in list(FIELDS) + list(EXTENSION_FIELDS):
        value = app_context(key)
        if value is not None:
            merged[key] = value
    return parse_config(merged)
