"""What every operation of the fake shares: the stores, the scripting knobs, ids, idempotency and List pages."""

from __future__ import annotations

import base64
import json
import random
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.model import ServiceModel
from botocore.validate import ParamValidator

from simulation.bedrock.catalog import FoundationModel, InferenceProfile, foundation_model_id_of, profile_id_of
from simulation.bedrock.records import (
    BatchJobRecord,
    CustomModelRecord,
    DeploymentRecord,
    ErrorRate,
    EvaluationRecord,
    IdempotencyTokens,
    JobRecord,
    ScriptedError,
)
from simulation.bedrock.stream import FakeEventStream
from simulation.bedrock.values import (
    CONTROL_SERVICE,
    EvaluationJobRequest,
    FakeError,
    FakeServiceError,
    Responder,
    default_responder,
)

_ID_ALPHABET = string.ascii_lowercase + string.digits
# HTTP statuses for codes a service model does not declare (used only when the model has no error shape).
_FALLBACK_STATUS = {"InternalServerException": 500, "ServiceUnavailableException": 503}

Handler = Callable[[dict[str, Any]], dict[str, Any]]
Filter = tuple[Callable[[Any], Any], Callable[[Any, Any], bool]]
"""A List filter: what a request parameter is compared with (``value(resource)``) and how (``test(wanted, value)``)."""


def equals(wanted: Any, value: Any) -> bool:
    return bool(wanted == value)


def contains(wanted: Any, value: Any) -> bool:
    """``nameContains`` (a substring) or ``by...Type`` (one of a resource's values)."""
    return wanted in value


def after(wanted: Any, value: Any) -> bool:
    return bool(value > wanted)


def before(wanted: Any, value: Any) -> bool:
    return bool(value < wanted)


def matches(resource: Any, params: Mapping[str, Any], filters: Mapping[str, Filter]) -> bool:
    """Whether ``resource`` passes every filter whose parameter the request sends."""
    return all(
        params.get(name) is None or test(params[name], value(resource)) for name, (value, test) in filters.items()
    )


def now_after(previous: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if previous is not None and now <= previous:
        now = previous + timedelta(microseconds=1)
    return now


def _fingerprint(params: dict[str, Any]) -> str:
    without_token = {k: v for k, v in params.items() if k != "clientRequestToken"}
    return json.dumps(without_token, sort_keys=True, default=str)


class FakeState:
    """The stores and knobs every part of the fake reads and writes (always under ``_lock``), and their helpers."""

    def __init__(self, *, control: Any, runtime: Any, seed: int) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)  # noqa: S311 - reproducible ids, not security
        self._control = control
        self._runtime = runtime
        self._validator = ParamValidator()
        self._operations: dict[str, dict[str, Handler]] = {}

        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.streams: list[FakeEventStream] = []

        self.job_polls_to_complete = 2
        self.deployment_polls_to_active = 2
        self.evaluation_polls_to_complete = 2
        self.model_polls_to_active = 0
        self.training_loss = 0.1234
        self.responder: Responder = default_responder
        self.delay_s = 0.0
        self.stream_chunk_chars = 4
        self.stream_event_delay_s = 0.0
        self.default_page_size = 100
        self.on_evaluation_complete: Callable[[EvaluationJobRequest], None] | None = None
        self.batch_polls_to_complete = 2
        self.batch_min_records = 100  # "usually >= 100 records" (docs/bedrock-facts.md)
        self.batch_s3: Any = None

        self._foundation_models: dict[str, FoundationModel] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._profiles: dict[str, InferenceProfile] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._models: dict[str, CustomModelRecord] = {}
        self._deployments: dict[str, DeploymentRecord] = {}
        self._evaluations: dict[str, EvaluationRecord] = {}
        self._tags: dict[str, list[dict[str, str]]] = {}
        self._idempotency: dict[str, IdempotencyTokens] = {}
        self._scripted: list[ScriptedError] = []
        self._error_rates: dict[str, ErrorRate] = {}
        self._stream_errors: list[tuple[FakeError, int]] = []
        self._next_job_failure: tuple[str, int | None] | None = None
        self._next_deployment_failure: str | None = None
        self._next_evaluation_failure: tuple[str, ...] | None = None
        self._batch_jobs: dict[str, BatchJobRecord] = {}
        self._next_batch_failure: str | None = None
        self._next_batch_corruption = 0

    # ------------------------------------------------------------------------------------------- service models
    def _service_of(self, operation: str) -> str:
        for service, operations in self._operations.items():
            if operation in operations:
                return service
        modelled = sorted(op for ops in self._operations.values() for op in ops)
        raise ValueError(f"BedrockFake does not model {operation!r}; modelled operations: {modelled}")

    def _status_for(self, service: str, code: str) -> int:
        client = self._control if service == CONTROL_SERVICE else self._runtime
        service_model: ServiceModel = client.meta.service_model
        shape = service_model.shape_for_error_code(code)
        if shape is not None:
            return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        if code in _FALLBACK_STATUS:
            return _FALLBACK_STATUS[code]
        known = sorted(s.error_code for s in service_model.error_shapes)
        raise ValueError(f"{code!r} is not an error of {service}; one of {known}")

    # ---------------------------------------------------------------------------------------------- id helpers
    def _new_id(self) -> str:
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(12))

    def _idempotent(self, operation: str, params: dict[str, Any]) -> str | None:
        """The ARN a previous call with the same token created; ConflictException if its parameters differ."""
        token = params.get("clientRequestToken")
        if token is None:
            return None
        seen = self._idempotency.setdefault(operation, IdempotencyTokens()).by_token.get(token)
        if seen is None:
            return None
        fingerprint, arn = seen
        if fingerprint != _fingerprint(params):
            raise FakeServiceError(
                "ConflictException",
                f"clientRequestToken {token!r} was already used for {operation} with different parameters",
            )
        return arn

    def _remember_token(self, operation: str, params: dict[str, Any], arn: str) -> None:
        token = params.get("clientRequestToken")
        if token is not None:
            self._idempotency.setdefault(operation, IdempotencyTokens()).by_token[token] = (_fingerprint(params), arn)

    def _paginate(self, operation: str, items: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict:
        page_size = params.get("maxResults") or self.default_page_size
        start = 0
        token = params.get("nextToken")
        if token is not None:
            try:
                decoded = base64.urlsafe_b64decode(token.encode()).decode()
                token_operation, offset = decoded.rsplit(":", 1)
                start = int(offset)
            except ValueError as exc:
                raise FakeServiceError("ValidationException", f"Invalid nextToken {token!r}") from exc
            if token_operation != operation:
                raise FakeServiceError("ValidationException", f"nextToken {token!r} belongs to {token_operation}")
        page: dict[str, Any] = {key: items[start : start + page_size]}
        if start + page_size < len(items):
            page["nextToken"] = base64.urlsafe_b64encode(f"{operation}:{start + page_size}".encode()).decode()
        return page

    def _list_page(
        self,
        operation: str,
        key: str,
        resources: Iterable[Any],
        params: dict[str, Any],
        *,
        filters: Mapping[str, Filter],
        summary: Callable[[Any], dict[str, Any]],
        by_creation: bool = True,
    ) -> dict[str, Any]:
        """One page of a List answer: the ``resources`` the request's ``filters`` keep, newest first unless
        ``sortOrder`` says ``Ascending`` (``by_creation``), each as ``summary`` shows it."""
        with self._lock:
            selected = [resource for resource in resources if matches(resource, params, filters)]
            if by_creation:
                descending = params.get("sortOrder", "Descending") == "Descending"
                selected.sort(key=lambda resource: resource.created, reverse=descending)
            summaries = [summary(resource) for resource in selected]
        return self._paginate(operation, summaries, params, key)

    def _tags_or_empty(self, tags: list[dict[str, str]] | None) -> list[dict[str, str]]:
        return [dict(t) for t in tags or []]

    def _latest_creation(self) -> datetime | None:
        stamps = [j.created for j in self._jobs.values()]
        stamps += [m.created for m in self._models.values()]
        stamps += [d.created for d in self._deployments.values()]
        stamps += [e.created for e in self._evaluations.values()]
        stamps += [b.created for b in self._batch_jobs.values()]
        return max(stamps, default=None)

    def _begin_stop(self, resource: JobRecord | EvaluationRecord, what: str) -> None:
        """``Stop*`` on an in-progress job: ``Stopping`` (the next ``Get`` says ``Stopped``)."""
        if resource.status != "InProgress":
            raise FakeServiceError(
                "ValidationException", f"{what} {resource.name} can't be stopped in status {resource.status}."
            )
        resource.status = "Stopping"
        resource.last_modified = now_after(resource.last_modified)

    # ------------------------------------------------------------------------------------------------- lookups
    def _find_foundation_model(self, identifier: str) -> FoundationModel | None:
        return self._foundation_models.get(foundation_model_id_of(identifier))

    def _resolve_known_model(self, identifier: str, role: str) -> None:
        """A model reference in a create request must name a catalog model, profile or custom model."""
        if identifier in self._models or self._find_foundation_model(identifier) is not None:
            return
        if self._profiles.get(profile_id_of(identifier)) is not None:
            return
        raise FakeServiceError("ValidationException", f"The provided {role} identifier {identifier!r} is invalid.")
