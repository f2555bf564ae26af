"""The environment of the pipeline's functions: each variable's name, type and encoding, defined once.

The stack builds each function's environment with :meth:`FunctionEnvironment.to_environment` and the handler
reads it back with :meth:`FunctionEnvironment.load` (validated once per cold start: the parse is cached on the
raw values). A field ``data_bucket`` is the variable ``DATA_BUCKET``; a ``str`` is stored as is, an ``int`` in
decimal, a ``bool`` as ``true``/``false``, anything else as compact JSON.

The router's settings have their own model (``search_router.router.settings.RouterSettings``); what every
function gets is :class:`CommonEnvironment` (and Powertools' own ``POWERTOOLS_*``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from types import UnionType
from typing import Any, ClassVar, Self, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

__all__ = [
    "CaptureCompactionEnvironment",
    "CommonEnvironment",
    "CompensationEnvironment",
    "EnvironmentInvalid",
    "FunctionEnvironment",
    "PipelineEnvironment",
    "nullable",
]

_E = TypeVar("_E", bound="FunctionEnvironment")


class EnvironmentInvalid(RuntimeError):
    """A variable is missing or invalid: the function was not deployed by this stack (or was changed by hand)."""


class FunctionEnvironment(BaseModel):
    """Base of a function's environment contract (see the module's docstring for the encoding)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    optional: ClassVar[frozenset[str]] = frozenset()
    """Fields that may be absent from the environment (their model default applies): test and tuning knobs."""

    @classmethod
    def variable(cls, field: str) -> str:
        return field.upper()

    def to_environment(self) -> dict[str, str]:
        """Every variable of this contract, encoded (values may be CDK tokens: strings are passed through)."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None or (name in self.optional and name not in self.model_fields_set):
                continue  # an optional knob left at its default is not written
            out[self.variable(name)] = _encode(value)
        return out

    @classmethod
    def read(cls, environ: Mapping[str, str], name: str) -> Any:
        """One field from another function's environment (the doctor reads a deployed function's), validated
        like :meth:`load` validates it; the other variables need not be there."""
        variable = cls.variable(name)
        text = environ.get(variable)
        if not text:
            raise EnvironmentInvalid(
                f"environment variable {variable} is not set; the function was not deployed by this stack"
            )
        annotation: Any = cls.model_fields[name].annotation
        try:
            return TypeAdapter(annotation).validate_python(_decode(annotation, variable, text))
        except ValidationError as exc:
            raise EnvironmentInvalid(f"environment variable {variable} is invalid: {exc.errors()[0]['msg']}") from None

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The validated environment of this function. Raises :class:`EnvironmentInvalid` naming the variable."""
        environ = os.environ if environ is None else environ
        raw = tuple((name, environ.get(cls.variable(name))) for name in cls.model_fields)
        return _load(cls, raw)


@functools.lru_cache(maxsize=16)
def _load(cls: type[_E], raw: tuple[tuple[str, str | None], ...]) -> _E:
    values: dict[str, Any] = {}
    for name, text in raw:
        variable = cls.variable(name)
        if text is None or text == "":
            if name in cls.optional:
                continue
            raise EnvironmentInvalid(
                f"environment variable {variable} is not set; the function was not deployed by this stack"
            )
        values[name] = _decode(cls.model_fields[name].annotation, variable, text)
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = cls.variable(str(error["loc"][0])) if error["loc"] else cls.__name__
        raise EnvironmentInvalid(f"environment variable {variable} is invalid: {error['msg']}") from None


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, separators=(",", ":"))


def _members(annotation: Any) -> set[Any]:
    """The types a field's annotation admits: a union's members (``int | None`` → ``{int, NoneType}``), else
    the annotation itself."""
    return set(get_args(annotation)) if get_origin(annotation) in (Union, UnionType) else {annotation}


def nullable(annotation: Any) -> bool:
    """True when a field's annotation admits None (``X | None``, ``Optional[X]``)."""
    return type(None) in _members(annotation)


def _decode(annotation: Any, variable: str, text: str) -> Any:
    kinds = _members(annotation) - {type(None)}
    if kinds <= {str}:
        return text
    if kinds <= {bool}:
        if text not in ("true", "false"):
            raise EnvironmentInvalid(f"environment variable {variable} must be true or false, got {text!r}")
        return text == "true"
    if kinds <= {int, float}:
        return text  # pydantic parses the number and says what is wrong
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EnvironmentInvalid(f"environment variable {variable} is not JSON: {exc}") from None


class CommonEnvironment(FunctionEnvironment):
    """What every function of the stack gets (the Lambda factory; ``POWERTOOLS_*`` are Powertools' own)."""

    channels: str
    """The channel set, as ``ChannelSet.to_json()`` writes it (``search_router.shared.channels.load_channels``)."""


class PipelineEnvironment(CommonEnvironment):
    """The pipeline tasks' environment (one for all of them: infra/pipeline.py)."""

    optional: ClassVar[frozenset[str]] = frozenset({"teacher_backoff_base_s"})

    data_bucket: str
    stack_name: str
    models: dict[str, Any]
    """``student_job``, ``student``, ``baseline``, ``judge`` (model ids) and ``router`` (the router's chain)."""
    teacher_preference: list[str]
    distillation_pairs: dict[str, list[str]]
    pipeline_defaults: dict[str, Any]
    """What an execution started with ``{}`` does: cdk.json's ``run_defaults``, validated by ``RunSettings``."""
    bedrock_role_arn: str
    topic_arn: str
    candidates: list[dict[str, str]]
    baseline_candidate: str
    eval_threads: int
    prices: dict[str, dict[str, float]]
    gate: dict[str, float | bool | str | None]
    model_parameter: str
    delete_rejected_deployments: bool
    teacher_backoff_base_s: float = 0.5
    """First backoff of a throttled teacher call (seconds); the tests shorten it."""


class CompensationEnvironment(FunctionEnvironment):
    """The compensation's Sweep and Reconcile functions (infra/compensation.py)."""

    optional: ClassVar[frozenset[str]] = frozenset({"poll_seconds", "reconcile_grace_seconds"})

    stack_name: str
    state_machine_arn: str
    data_bucket: str
    model_parameter: str
    settle_seconds: int
    deadline_seconds: int
    pipeline_defaults: dict[str, Any]
    compensation_state_machine_arn: str
    poll_seconds: int | None = None
    """Wait between sweeps (the tests shorten it; unset: the handler's POLL_SECONDS)."""
    reconcile_grace_seconds: int | None = None
    """How long a failure may stay unclaimed before Reconcile compensates it (unset: RECONCILE_GRACE)."""


class CaptureCompactionEnvironment(CommonEnvironment):
    """The daily compaction of captured queries (infra/capture.py, ``capture_queries`` only)."""

    data_bucket: str


class DriftCheckEnvironment(CommonEnvironment):
    """The daily drift check (infra/drift.py, ``capture_queries`` only): where the captured routes and the promoted
    run's dataset are, the promotion parameter, and ``drift_window_days`` / ``drift_min_records``."""

    data_bucket: str
    model_parameter: str
    window_days: int
    min_records: int
    max_records: int
    """At most this many routes are kept (a uniform sample of the window's): ``drift_max_records``."""


class RetrainEnvironment(CommonEnvironment):
    """The scheduled retraining (infra/retrain.py, ``retrain_schedule`` with ``capture_queries``): the bucket of the
    captured queries, the pipeline it starts, the topic a skipped schedule is told on, and ``retrain_*``."""

    data_bucket: str
    stack_name: str
    state_machine_arn: str
    topic_arn: str
    min_new_queries: int
    """``retrain_min_new_queries``: fewer new distinct queries since the last scheduled run skip the run."""
    heldout_queries: int
    """``retrain_heldout_queries``: the production held-out sample (split ``production``)."""
    window_days: int
    """``retrain_window_days``: only the compacted days of this many days before the scheduled time are read."""
    max_training_queries: int
    """At most this many captured queries train: the run's size (``run_defaults`` ``num_examples`` +
    ``eval_examples``); synthesized ones top them up when there are fewer."""
