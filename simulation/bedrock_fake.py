"""An in-memory Amazon Bedrock (control plane and runtime) behind real boto3 clients, for the tests and for
``make simulate``.

Why real clients: every request goes through botocore's own serializer and parameter validation, so a
misspelled or missing parameter raises :class:`botocore.exceptions.ParamValidationError` exactly as it would in
AWS, and every error reaches the caller as the modelled :class:`botocore.exceptions.ClientError` subclass
(``client.exceptions.ThrottlingException`` ...) with the HTTP status from the service model.

How it hooks in (botocore 1.44, ``BaseClient._make_api_call``):

1. ``before-parameter-build.<service>.<Operation>`` receives the caller's keyword arguments and the per-call
   ``context`` dict; the fake stores a reference to the arguments in that context. botocore's own handlers on the
   same event run first (``generate_idempotent_uuid`` fills a missing ``clientRequestToken`` with a UUID4, so the
   fake sees the token the service would see).
2. botocore serializes the request; this is where ``ParamValidationError`` is raised.
3. ``before-call.<service>.<Operation>`` is emitted with ``emit_until_response``: the first handler that returns
   a ``(http_response, parsed)`` tuple short-circuits the HTTP layer. The fake answers there. ``parsed`` is
   returned to the caller as is (so a :class:`FakeEventStream` can stand in for botocore's ``EventStream``), and
   ``http_response.status_code >= 300`` makes the client raise ``client.exceptions.from_code(Error.Code)``.

Consequences worth knowing:

- Nothing reaches ``before-send``, which is where moto hooks in, so the fake wins inside ``moto.mock_aws()``.
- botocore's retry loop lives in ``Endpoint._send_request``, which a ``before-call`` short-circuit skips: a
  scripted ``ThrottlingException`` surfaces on the first attempt whatever the client's retry configuration
  (the fake's own clients also say ``max_attempts=1``). Code that relies on botocore's retries is therefore not
  retried here; code with its own retry loop is exercised exactly.
- botocore checks required members, types and minimum lengths, but not enums, patterns or maximum lengths. The
  fake adds the name/token rules stated in ``docs/bedrock-facts.md`` (``ValidationException`` with the service's
  wording), checks model ids against its catalog, and validates each of its own responses against the output
  shape, so a response key the real service does not have (``modelDeploymentArn``...) cannot leak into tests.

Usage::

    fake = BedrockFake().with_default_catalog().install()   # search_router.adapters.clients.CLIENTS now serves the fake
    fake.responder = lambda request: ConverseReply('{"visual": 1, ...}', input_tokens=30)
    fake.script_errors("Converse", "ThrottlingException", times=2)
    ...
    assert fake.calls_to("CreateModelCustomizationJob")[0]["customizationType"] == "DISTILLATION"

Operations that are not modelled raise ``NotImplementedError`` naming the operation, so a test never passes
because the fake silently answered something it does not understand.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import EventStreamError
from botocore.model import OperationModel, ServiceModel
from botocore.validate import ParamValidator, validate_parameters

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

CONTROL_SERVICE = "bedrock"
RUNTIME_SERVICE = "bedrock-runtime"
RUNTIME_OPERATIONS = frozenset({"Converse", "ConverseStream"})

# The fake's clients never retry (see the module docstring: retries are skipped anyway) and never wait long.
FAKE_CLIENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)

__all__ = [
    "ACCOUNT_ID",
    "AVAILABILITY_MODEL_ID",
    "CLIENT_REQUEST_TOKEN",
    "CONTROL_SERVICE",
    "CUSTOMIZATION_JOB_NAME",
    "CUSTOM_MODEL_NAME",
    "DEFAULT_FOUNDATION_MODELS",
    "DEFAULT_PROFILES",
    "DEPLOYMENT_NAME",
    "EVALUATION_JOB_NAME",
    "FAKE_CLIENT_CONFIG",
    "NAME_RULES",
    "REGION",
    "RUNTIME_OPERATIONS",
    "RUNTIME_SERVICE",
    "BedrockFake",
    "ConverseReply",
    "ConverseRequest",
    "EvaluationJobRequest",
    "FakeError",
    "FakeEventStream",
    "FakeServiceError",
    "FoundationModel",
    "InferenceProfile",
    "NameRule",
    "Responder",
    "default_responder",
]

_PARAMS_KEY = "bedrock_fake_params"
_ID_ALPHABET = string.ascii_lowercase + string.digits

# --------------------------------------------------------------------------------------------------------------
# Request rules botocore does not check (docs/bedrock-facts.md; the patterns are the service model's). The
# compiled expressions are equivalent rewrites where the model's pattern backtracks exponentially in Python
# (``[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*`` with a long run of dashes).
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameRule:
    """A constraint on one top-level string member: length range and a full-match pattern."""

    member: str
    pattern: str  # as the service documents it, for the error message
    regex: re.Pattern[str]  # what is matched (full match)
    min_len: int
    max_len: int


CUSTOMIZATION_JOB_NAME = NameRule(
    "jobName", r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*", re.compile(r"[a-zA-Z0-9][a-zA-Z0-9+\-.]*"), 1, 63
)
CUSTOM_MODEL_NAME = NameRule(
    "customModelName", r"([0-9a-zA-Z][_-]?){1,63}", re.compile(r"(?:[0-9a-zA-Z][_-]?){1,63}"), 1, 63
)
DEPLOYMENT_NAME = NameRule(
    "modelDeploymentName", r"([0-9a-zA-Z][_-]?){1,63}", re.compile(r"(?:[0-9a-zA-Z][_-]?){1,63}"), 1, 63
)
CLIENT_REQUEST_TOKEN = NameRule(
    "clientRequestToken",
    r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?",
    re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?"),
    1,
    256,
)
EVALUATION_JOB_NAME = NameRule(
    "jobName", r"[a-z0-9](-*[a-z0-9]){0,62}", re.compile(r"[a-z0-9](?:-*[a-z0-9]){0,62}"), 1, 63
)

# GetFoundationModelAvailability.modelId: the service model's pattern as it is (inputs are at most 140 characters).
_AVAILABILITY_MODEL_ID_PATTERN = (
    r"[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([a-z0-9-]{1,63}[.]){0,2}[a-z0-9-]{1,63}([:][a-z0-9-]{1,63}){0,2}"
    r"(/[a-z0-9]{12}|)"
)
AVAILABILITY_MODEL_ID = NameRule(
    "modelId", _AVAILABILITY_MODEL_ID_PATTERN, re.compile(_AVAILABILITY_MODEL_ID_PATTERN), 0, 140
)

NAME_RULES: dict[str, tuple[NameRule, ...]] = {
    "CreateModelCustomizationJob": (CUSTOMIZATION_JOB_NAME, CUSTOM_MODEL_NAME, CLIENT_REQUEST_TOKEN),
    "CreateCustomModelDeployment": (DEPLOYMENT_NAME, CLIENT_REQUEST_TOKEN),
    "CreateEvaluationJob": (EVALUATION_JOB_NAME, CLIENT_REQUEST_TOKEN),
    "GetFoundationModelAvailability": (AVAILABILITY_MODEL_ID,),
}

# HTTP statuses for codes a service model does not declare (used only when the model has no error shape).
_FALLBACK_STATUS = {"InternalServerException": 500, "ServiceUnavailableException": 503}


# --------------------------------------------------------------------------------------------------------------
# Public value types
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConverseRequest:
    """What a responder sees of one Converse / ConverseStream call.

    ``model_id`` is the ``modelId`` as sent (a deployment ARN, a ``us.`` profile id ...); ``target_kind`` says
    what the fake resolved it to: ``"deployment"``, ``"inference-profile"`` or ``"foundation-model"``.
    ``user_text`` is the text of the last user message, ``system_text`` the joined system blocks.
    """

    operation: str
    model_id: str
    target_kind: str
    system_text: str
    user_text: str
    inference_config: dict[str, Any]
    params: dict[str, Any]


@dataclass(frozen=True)
class ConverseReply:
    """A responder's answer. Unset token counts are estimated (~4 characters a token); an unset latency is the
    measured time of the call including ``delay_s``."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class FakeError:
    """Return (or raise :class:`FakeServiceError`) from a responder to make the call fail like the service does:
    the client raises ``client.exceptions.<code>`` with the model's HTTP status."""

    code: str
    message: str = "Scripted error from BedrockFake"


class FakeServiceError(Exception):
    """Raised inside the fake (or by a responder) to produce a modelled service error response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class EvaluationJobRequest:
    """Passed to :attr:`BedrockFake.on_evaluation_complete` when an evaluation job completes: the place to write
    fake result files (e.g. with moto S3) under ``<output_s3_uri>/<job_name>/<job_id>/...``."""

    job_arn: str
    job_id: str
    job_name: str
    output_s3_uri: str
    params: dict[str, Any]


Responder = Callable[[ConverseRequest], "str | ConverseReply | FakeError | Exception"]


@dataclass(frozen=True)
class FoundationModel:
    """A catalog entry returned by ``GetFoundationModel``."""

    model_id: str
    provider_name: str
    model_name: str
    lifecycle: str = "ACTIVE"
    inference_types: tuple[str, ...] = ("ON_DEMAND",)
    customizations: tuple[str, ...] = ()
    input_modalities: tuple[str, ...] = ("TEXT",)
    output_modalities: tuple[str, ...] = ("TEXT",)

    @property
    def arn(self) -> str:
        return f"arn:aws:bedrock:{REGION}::foundation-model/{self.model_id}"

    def details(self) -> dict[str, Any]:
        return {
            "modelArn": self.arn,
            "modelId": self.model_id,
            "modelName": self.model_name,
            "providerName": self.provider_name,
            "inputModalities": list(self.input_modalities),
            "outputModalities": list(self.output_modalities),
            "responseStreamingSupported": True,
            "customizationsSupported": list(self.customizations),
            "inferenceTypesSupported": list(self.inference_types),
            "modelLifecycle": {"status": self.lifecycle},
        }


@dataclass(frozen=True)
class InferenceProfile:
    """A system-defined cross-Region inference profile returned by ``GetInferenceProfile``."""

    profile_id: str
    model_arns: tuple[str, ...]
    status: str = "ACTIVE"

    @property
    def arn(self) -> str:
        return f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:inference-profile/{self.profile_id}"

    @property
    def name(self) -> str:
        # InferenceProfileName allows letters, digits and single separators: no dots or colons.
        words = re.split(r"[^0-9a-zA-Z]+", self.profile_id)
        return " ".join(w for w in words if w)[:64]

    def details(self) -> dict[str, Any]:
        return {
            "inferenceProfileName": self.name,
            "description": f"Routes requests to {self.profile_id.split('.', 1)[-1].replace(':', ' ')}",
            "inferenceProfileArn": self.arn,
            "inferenceProfileId": self.profile_id,
            "models": [{"modelArn": arn} for arn in self.model_arns],
            "status": self.status,
            "type": "SYSTEM_DEFINED",
        }


# Default catalog (docs/bedrock-facts.md, as of December 2026): Nova base models are invoked on demand through their
# ``us.`` profiles; the customization variants (``:128k`` / ``:300k`` / ``:1000k``) are what distillation lists.
# Nova Premier is LEGACY (end of life 14 Sep 2026 on its model card).
_PROFILE_REGIONS = ("us-east-1", "us-east-2", "us-west-2")
DEFAULT_FOUNDATION_MODELS: tuple[FoundationModel, ...] = (
    FoundationModel(
        "amazon.nova-premier-v1:0",
        "Amazon",
        "Nova Premier",
        lifecycle="LEGACY",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE", "VIDEO"),
    ),
    FoundationModel(
        "amazon.nova-premier-v1:0:1000k",
        "Amazon",
        "Nova Premier",
        lifecycle="LEGACY",
        inference_types=("PROVISIONED",),
        customizations=("DISTILLATION",),
    ),
    FoundationModel(
        "amazon.nova-pro-v1:0",
        "Amazon",
        "Nova Pro",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE", "VIDEO"),
    ),
    FoundationModel(
        "amazon.nova-lite-v1:0",
        "Amazon",
        "Nova Lite",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE", "VIDEO"),
    ),
    FoundationModel("amazon.nova-micro-v1:0", "Amazon", "Nova Micro", inference_types=("INFERENCE_PROFILE",)),
    FoundationModel(
        "amazon.nova-pro-v1:0:300k",
        "Amazon",
        "Nova Pro",
        inference_types=("PROVISIONED",),
        customizations=("FINE_TUNING", "DISTILLATION"),
    ),
    FoundationModel(
        "amazon.nova-lite-v1:0:300k",
        "Amazon",
        "Nova Lite",
        inference_types=("PROVISIONED",),
        customizations=("FINE_TUNING", "DISTILLATION"),
    ),
    FoundationModel(
        "amazon.nova-micro-v1:0:128k",
        "Amazon",
        "Nova Micro",
        inference_types=("PROVISIONED",),
        customizations=("FINE_TUNING", "DISTILLATION"),
    ),
    FoundationModel(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "Anthropic",
        "Claude Haiku 4.5",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE"),
    ),
    FoundationModel(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Anthropic",
        "Claude Sonnet 4.5",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE"),
    ),
)
DEFAULT_PROFILES: tuple[str, ...] = (
    "us.amazon.nova-premier-v1:0",
    "us.amazon.nova-pro-v1:0",
    "us.amazon.nova-lite-v1:0",
    "us.amazon.nova-micro-v1:0",
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
)


def default_responder(request: ConverseRequest) -> str:
    """A valid routing answer: equal weights over the default channels, weights first, reasoning last."""
    from search_router.shared.channels import DEFAULT_CHANNELS

    names = DEFAULT_CHANNELS.names
    answer: dict[str, Any] = dict.fromkeys(names, round(1 / len(names), 4))
    answer["reasoning"] = f"No channel dominates in {request.user_text[:60]!r}, so the weights are equal."
    return json.dumps(answer)


# --------------------------------------------------------------------------------------------------------------
# ConverseStream
# --------------------------------------------------------------------------------------------------------------


class FakeEventStream:
    """Stands in for botocore's ``EventStream`` in a ConverseStream response.

    Iterable once (like the real stream), yielding the event dicts botocore would yield. ``events_read`` counts
    the events handed out and ``closed`` records ``close()``, so a test can prove a reader stopped early and
    released the stream. An in-stream error raises ``botocore.exceptions.EventStreamError`` whose
    ``Error.Code`` is the event-stream member name (``throttlingException``: lower camel case, as botocore
    reports it from the ``:exception-type`` header).
    """

    def __init__(
        self,
        events: Sequence[dict[str, Any]],
        *,
        event_delay_s: float = 0.0,
        error: FakeError | None = None,
        error_after_events: int = 0,
    ) -> None:
        self._events = list(events)
        self._event_delay_s = event_delay_s
        self._error = error
        self._error_after = error_after_events
        self._position = 0
        self._lock = threading.Lock()
        self.events_read = 0
        self.closed = False

    @property
    def total_events(self) -> int:
        """How many events the stream would yield if read to the end (without a scripted error)."""
        return len(self._events)

    @property
    def fully_read(self) -> bool:
        return self.events_read == len(self._events)

    @property
    def text(self) -> str:
        """The whole answer text the stream carries (for assertions)."""
        return "".join(
            e["contentBlockDelta"]["delta"].get("text", "") for e in self._events if "contentBlockDelta" in e
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            with self._lock:
                if self.closed or self._position >= len(self._events):
                    return
                if self._error is not None and self._position == self._error_after:
                    error = self._error
                    self._error = None
                    raise EventStreamError({"Error": {"Code": error.code, "Message": error.message}}, "ConverseStream")
                event = self._events[self._position]
                self._position += 1
            if self._event_delay_s:
                time.sleep(self._event_delay_s)
            self.events_read += 1
            yield event

    def close(self) -> None:
        self.closed = True


# --------------------------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _ScriptedError:
    operation: str
    code: str
    message: str
    remaining: int | None  # None: every matching call
    model_id: str | None


@dataclass
class _ErrorRate:
    code: str
    rate: float
    rng: random.Random


@dataclass
class _Job:
    arn: str
    name: str
    params: dict[str, Any]
    base_model_arn: str
    created: datetime
    polls_to_complete: int
    fail_message: str | None
    fail_after_polls: int
    status: str = "InProgress"
    polls: int = 0
    last_modified: datetime | None = None
    end_time: datetime | None = None
    output_model_arn: str | None = None


@dataclass
class _CustomModel:
    arn: str
    name: str
    job: _Job
    created: datetime
    polls_to_active: int = 0
    polls: int = 0
    status: str = "Active"


@dataclass
class _Deployment:
    arn: str
    name: str
    model_arn: str
    params: dict[str, Any]
    created: datetime
    polls_to_active: int
    fail_message: str | None
    status: str = "Creating"
    polls: int = 0
    last_updated: datetime | None = None
    update_model_arn: str | None = None
    update_status: str | None = None
    update_polls: int = 0


@dataclass
class _EvaluationJob:
    arn: str
    job_id: str
    name: str
    params: dict[str, Any]
    created: datetime
    polls_to_complete: int
    fail_messages: tuple[str, ...] | None
    status: str = "InProgress"
    polls: int = 0
    last_modified: datetime | None = None


@dataclass
class _Idempotent:
    """Request fingerprints by client token, per create operation."""

    by_token: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (fingerprint, arn)


_shared_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def _create_client(service: str, region: str) -> Any:
    """A real boto3 client with dummy credentials (one shared boto3 session, so models are loaded once)."""
    global _shared_session  # noqa: PLW0603 - a process-wide cache of loaded service models
    with _session_lock:
        if _shared_session is None:
            _shared_session = boto3.session.Session()
        return _shared_session.client(
            service,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - dummy credentials: requests never leave the process
            aws_session_token="testing",  # noqa: S106
            config=FAKE_CLIENT_CONFIG,
        )


def _now_after(previous: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if previous is not None and now <= previous:
        now = previous + timedelta(microseconds=1)
    return now


def _foundation_model_id(identifier: str) -> str:
    if ":foundation-model/" in identifier:
        return identifier.split(":foundation-model/", 1)[1]
    return identifier


def _base_model_id(identifier: str) -> str:
    """A model family without profile prefix or context suffix (``amazon.nova-pro-v1:0``)."""
    without_profile = re.sub(r"^(us|eu|apac|us-gov|ca|jp|au|global)\.", "", _foundation_model_id(identifier))
    return re.sub(r":\d+k$", "", without_profile)


def _profile_id(identifier: str) -> str:
    if ":inference-profile/" in identifier:
        return identifier.split(":inference-profile/", 1)[1]
    return identifier


def _fingerprint(params: dict[str, Any]) -> str:
    without_token = {k: v for k, v in params.items() if k != "clientRequestToken"}
    return json.dumps(without_token, sort_keys=True, default=str)


# --------------------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------------------


class BedrockFake:
    """Stateful, thread-safe in-memory Bedrock behind real ``bedrock`` and ``bedrock-runtime`` boto3 clients.

    Scripting knobs (plain attributes; read when a resource is created or a call is made):

    ``job_polls_to_complete`` / ``deployment_polls_to_active`` / ``evaluation_polls_to_complete``
        how many ``Get*`` calls a customization job / deployment / evaluation job needs to finish (the N-th
        ``Get`` returns the final status; 0 or 1 → the first ``Get``). Captured when the resource is created.
    ``model_polls_to_active``
        how many ``GetCustomModel`` calls a completed job's custom model stays ``Creating`` for (0: ``Active``
        at once); while it is ``Creating``, ``CreateCustomModelDeployment`` on it fails with a ValidationException.
    ``training_loss``
        ``trainingMetrics.trainingLoss`` of completed jobs.
    ``responder``
        ``callable(ConverseRequest) -> str | ConverseReply | FakeError | Exception`` for Converse and
        ConverseStream; an Exception (other than :class:`FakeServiceError`) is raised to the caller as is.
    ``delay_s``
        real ``time.sleep`` before each runtime answer; ``stream_chunk_chars`` and ``stream_event_delay_s``
        shape ConverseStream.
    ``default_page_size``
        ``maxResults`` when a List call sends none.
    ``on_evaluation_complete``
        ``callable(EvaluationJobRequest)`` run (outside the fake's lock) when an evaluation job completes:
        the extension point for writing result files.
    """

    def __init__(self, *, region: str = REGION, seed: int = 0) -> None:
        if region != REGION:
            raise ValueError(f"BedrockFake models {REGION} only (ARNs and catalog are built for it), got {region}")
        self._lock = threading.RLock()
        self._rng = random.Random(seed)  # noqa: S311 - reproducible ids, not security
        self._control = _create_client(CONTROL_SERVICE, region)
        self._runtime = _create_client(RUNTIME_SERVICE, region)
        self._validator = ParamValidator()

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

        self._foundation_models: dict[str, FoundationModel] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._profiles: dict[str, InferenceProfile] = {}
        self._jobs: dict[str, _Job] = {}
        self._models: dict[str, _CustomModel] = {}
        self._deployments: dict[str, _Deployment] = {}
        self._evaluations: dict[str, _EvaluationJob] = {}
        self._tags: dict[str, list[dict[str, str]]] = {}
        self._idempotency: dict[str, _Idempotent] = {}
        self._scripted: list[_ScriptedError] = []
        self._error_rates: dict[str, _ErrorRate] = {}
        self._stream_errors: list[tuple[FakeError, int]] = []
        self._next_job_failure: tuple[str, int | None] | None = None
        self._next_deployment_failure: str | None = None
        self._next_evaluation_failure: tuple[str, ...] | None = None

        self._operations: dict[str, dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
            CONTROL_SERVICE: {
                "GetFoundationModel": self._get_foundation_model,
                "GetFoundationModelAvailability": self._get_foundation_model_availability,
                "ListFoundationModels": self._list_foundation_models,
                "GetInferenceProfile": self._get_inference_profile,
                "ListInferenceProfiles": self._list_inference_profiles,
                "CreateModelCustomizationJob": self._create_job,
                "GetModelCustomizationJob": self._get_job,
                "StopModelCustomizationJob": self._stop_job,
                "ListModelCustomizationJobs": self._list_jobs,
                "GetCustomModel": self._get_custom_model,
                "ListCustomModels": self._list_custom_models,
                "DeleteCustomModel": self._delete_custom_model,
                "CreateCustomModelDeployment": self._create_deployment,
                "GetCustomModelDeployment": self._get_deployment,
                "ListCustomModelDeployments": self._list_deployments,
                "UpdateCustomModelDeployment": self._update_deployment,
                "DeleteCustomModelDeployment": self._delete_deployment,
                "CreateEvaluationJob": self._create_evaluation,
                "GetEvaluationJob": self._get_evaluation,
                "StopEvaluationJob": self._stop_evaluation,
                "ListEvaluationJobs": self._list_evaluations,
                "ListTagsForResource": self._list_tags,
                "TagResource": self._tag_resource,
                "UntagResource": self._untag_resource,
            },
            RUNTIME_SERVICE: {
                "Converse": self._converse,
                "ConverseStream": self._converse_stream,
            },
        }
        self.attach(self._control)
        self.attach(self._runtime)

    # ---------------------------------------------------------------------------------------------------- wiring
    @property
    def control(self) -> Any:
        """The real ``bedrock`` boto3 client answered by this fake."""
        return self._control

    @property
    def runtime(self) -> Any:
        """The real ``bedrock-runtime`` boto3 client answered by this fake."""
        return self._runtime

    def attach(self, client: Any) -> Any:
        """Answer ``client`` (any boto3 ``bedrock`` or ``bedrock-runtime`` client, e.g. one built with the
        project's retry config) from this fake's state as well; returns the client."""
        service = client.meta.service_model.service_id.hyphenize()
        if service not in (CONTROL_SERVICE, RUNTIME_SERVICE):
            raise ValueError(f"BedrockFake answers bedrock and bedrock-runtime clients, not {service}")
        client.meta.events.register(
            f"before-parameter-build.{service}.*", self._capture_params, unique_id=f"bedrock-fake-params-{id(self)}"
        )
        # register_first: nothing else registered on before-call (a Stubber, say) may answer before the fake.
        client.meta.events.register_first(
            f"before-call.{service}.*", self._make_before_call(service), unique_id=f"bedrock-fake-call-{id(self)}"
        )
        return client

    def install(self) -> Self:
        """Make ``search_router.adapters.clients.CLIENTS.get("bedrock" | "bedrock-runtime")`` return this fake's
        clients (whatever
        ``config`` the caller passes). The root conftest resets ``CLIENTS`` after every test."""
        from search_router.adapters.clients import CLIENTS

        CLIENTS.override(CONTROL_SERVICE, self._control)
        CLIENTS.override(RUNTIME_SERVICE, self._runtime)
        return self

    def calls_to(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every call to ``operation`` (e.g. ``"Converse"``), in call order."""
        with self._lock:
            return [params for name, params in self.calls if name == operation]

    @property
    def last_stream(self) -> FakeEventStream:
        """The most recent ConverseStream response stream."""
        with self._lock:
            if not self.streams:
                raise AssertionError("no ConverseStream call was made")
            return self.streams[-1]

    # --------------------------------------------------------------------------------------------------- catalog
    def add_foundation_model(
        self,
        model_id: str,
        *,
        lifecycle: str = "ACTIVE",
        inference_types: Sequence[str] = ("ON_DEMAND",),
        customizations: Sequence[str] = (),
        provider_name: str | None = None,
        model_name: str | None = None,
    ) -> FoundationModel:
        """Add (or replace) a foundation model; ``GetFoundationModel`` accepts its id or ARN."""
        provider = provider_name or model_id.split(".", 1)[0].capitalize()
        model = FoundationModel(
            model_id=model_id,
            provider_name=provider,
            model_name=(model_name or model_id.split(".", 1)[-1].split(":", 1)[0])[:20],
            lifecycle=lifecycle,
            inference_types=tuple(inference_types),
            customizations=tuple(customizations),
        )
        with self._lock:
            self._foundation_models[model_id] = model
        return model

    def set_model_access(
        self,
        model_id: str,
        *,
        authorization: str = "AUTHORIZED",
        entitlement: str = "AVAILABLE",
        agreement: str = "AVAILABLE",
        region: str = "AVAILABLE",
        agreement_error: str | None = None,
    ) -> None:
        """What ``GetFoundationModelAvailability`` answers for a model (by id, profile id or customization id;
        stored for its base model): e.g. ``authorization="NOT_AUTHORIZED"`` for model access not granted."""
        agreement_availability: dict[str, Any] = {"status": agreement}
        if agreement_error:
            agreement_availability["errorMessage"] = agreement_error
        with self._lock:
            self._access[_base_model_id(model_id)] = {
                "agreementAvailability": agreement_availability,
                "authorizationStatus": authorization,
                "entitlementAvailability": entitlement,
                "regionAvailability": region,
            }

    def set_model_lifecycle(self, model_id: str, lifecycle: str) -> None:
        """Flip a catalog model to ``"LEGACY"`` (or back to ``"ACTIVE"``), e.g. to exercise preflight: every id of
        its family (``amazon.nova-premier-v1:0`` and ``amazon.nova-premier-v1:0:1000k``) changes together."""
        family = _base_model_id(model_id)
        with self._lock:
            matches = [m for m in self._foundation_models.values() if _base_model_id(m.model_id) == family]
            if not matches:
                raise KeyError(f"{model_id} is not in the fake's catalog")
            for model in matches:
                self._foundation_models[model.model_id] = FoundationModel(**{**model.__dict__, "lifecycle": lifecycle})

    def add_inference_profile(
        self, profile_id: str, model_ids: Sequence[str], *, status: str = "ACTIVE"
    ) -> InferenceProfile:
        """Add a system-defined profile routing to ``model_ids`` (foundation model ids or ARNs)."""
        arns = tuple(
            m if m.startswith("arn:") else f"arn:aws:bedrock:{REGION}::foundation-model/{m}" for m in model_ids
        )
        profile = InferenceProfile(profile_id=profile_id, model_arns=arns, status=status)
        with self._lock:
            self._profiles[profile_id] = profile
        return profile

    def with_default_catalog(self) -> Self:
        """Preload the models and ``us.`` profiles of docs/bedrock-facts.md, with model access granted to all:
        every model ACTIVE except Nova Premier, which is LEGACY (flip it back with
        ``set_model_lifecycle("amazon.nova-premier-v1:0", "ACTIVE")``)."""
        with self._lock:
            for model in DEFAULT_FOUNDATION_MODELS:
                self._foundation_models[model.model_id] = model
        for profile_id in DEFAULT_PROFILES:
            model_id = profile_id.split(".", 1)[1]
            self.add_inference_profile(
                profile_id, [f"arn:aws:bedrock:{region}::foundation-model/{model_id}" for region in _PROFILE_REGIONS]
            )
        return self

    # ------------------------------------------------------------------------------------------------- scripting
    def script_errors(
        self,
        operation: str,
        code: str,
        *,
        times: int | None = 1,
        model_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``operation`` fail with error ``code`` (``times=None``: every call).

        ``code`` must be an error the operation's service declares (the HTTP status comes from its shape:
        ThrottlingException 429, ModelNotReadyException 429, ServiceUnavailableException 503,
        ModelTimeoutException 408, ModelErrorException 424, ValidationException 400, AccessDeniedException 403,
        ResourceNotFoundException 404, InternalServerException 500). ``model_id`` restricts the script to calls
        whose ``modelId`` equals it (Converse / ConverseStream only). Scripts are consumed in the order added.
        """
        service = self._service_of(operation)
        self._status_for(service, code)  # raises for an unknown code
        if model_id is not None and operation not in RUNTIME_OPERATIONS:
            raise ValueError(f"model_id only applies to {sorted(RUNTIME_OPERATIONS)}, not {operation}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for every call)")
        with self._lock:
            self._scripted.append(
                _ScriptedError(
                    operation=operation,
                    code=code,
                    message=message or f"Scripted {code} from BedrockFake",
                    remaining=times,
                    model_id=model_id,
                )
            )

    def error_rate(
        self,
        code: str,
        rate: float,
        *,
        seed: int = 0,
        operations: Sequence[str] = ("Converse", "ConverseStream"),
    ) -> None:
        """Fail a random ``rate`` (0..1) of calls to ``operations`` with ``code``, reproducibly by ``seed``.
        ``rate=0`` switches it off."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        for operation in operations:
            self._status_for(self._service_of(operation), code)
        with self._lock:
            for operation in operations:
                if rate == 0.0:
                    self._error_rates.pop(operation, None)
                else:
                    self._error_rates[operation] = _ErrorRate(
                        code,
                        rate,
                        random.Random(f"{seed}:{operation}"),  # noqa: S311 - reproducible, not security
                    )

    @property
    def pending_scripted_errors(self) -> int:
        """Scripted errors not yet consumed (``times=None`` scripts count as one)."""
        with self._lock:
            return len(self._scripted)

    def script_stream_error(self, code: str, *, after_events: int = 1, message: str | None = None) -> None:
        """Make the next ConverseStream's stream raise ``EventStreamError`` after ``after_events`` events.
        ``code`` is an exception of the stream union, in either spelling (``ThrottlingException`` or
        ``throttlingException``); the raised error carries the lower-camel member name, as botocore does."""
        stream_shape = self._runtime.meta.service_model.shape_for("ConverseStreamOutput")
        members = {name for name, shape in stream_shape.members.items() if shape.metadata.get("exception")}
        member = code[:1].lower() + code[1:]
        if member not in members:
            raise ValueError(f"{code} is not a ConverseStream event-stream exception; one of {sorted(members)}")
        with self._lock:
            self._stream_errors.append((FakeError(member, message or f"Scripted {member}"), after_events))

    def fail_next_job(self, message: str, *, after_polls: int | None = None) -> None:
        """The next customization job created ends ``Failed`` with ``failureMessage=message``, on the ``Get``
        where it would have completed (or after ``after_polls`` Gets)."""
        with self._lock:
            self._next_job_failure = (message, after_polls)

    def fail_next_deployment(self, message: str) -> None:
        """The next deployment created ends ``Failed`` with ``failureMessage=message`` instead of ``Active``."""
        with self._lock:
            self._next_deployment_failure = message

    def fail_next_evaluation(self, *messages: str) -> None:
        """The next evaluation job created ends ``Failed`` with ``failureMessages=list(messages)``."""
        with self._lock:
            self._next_evaluation_failure = messages or ("Scripted evaluation failure",)

    def backdate(self, arn: str, *, hours: float) -> None:
        """Make a customization or evaluation job look ``hours`` older (its ``creationTime``), e.g. to exercise
        a run's maximum-duration check."""
        with self._lock:
            job = self._jobs.get(arn) or self._evaluations.get(arn)
            if job is None:
                raise KeyError(f"no customization or evaluation job {arn}")
            job.created -= timedelta(hours=hours)

    # ------------------------------------------------------------------------------------------------ inspection
    def job(self, identifier: str) -> dict[str, Any]:
        """The current ``GetModelCustomizationJob`` view of a job, without counting as a poll."""
        with self._lock:
            return self._job_view(self._find_job(identifier))

    def deployment(self, identifier: str) -> dict[str, Any]:
        """The current ``GetCustomModelDeployment`` view of a deployment, without counting as a poll."""
        with self._lock:
            return self._deployment_view(self._find_deployment(identifier))

    @property
    def custom_model_arns(self) -> list[str]:
        with self._lock:
            return list(self._models)

    @property
    def deployment_arns(self) -> list[str]:
        with self._lock:
            return list(self._deployments)

    # ------------------------------------------------------------------------------------------------ dispatcher
    def _capture_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS_KEY] = params

    def _make_before_call(self, service: str) -> Callable[..., tuple[AWSResponse, dict[str, Any]]]:
        def before_call(model: OperationModel, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return self._handle(service, model, context)

        return before_call

    def _handle(
        self, service: str, operation_model: OperationModel, context: dict[str, Any]
    ) -> tuple[AWSResponse, dict[str, Any]]:
        name = operation_model.name
        if _PARAMS_KEY not in context:
            raise RuntimeError(f"BedrockFake saw {name} without its parameters (before-parameter-build missed)")
        params = copy.deepcopy(context[_PARAMS_KEY])
        # Belt and braces: the client validated already unless created with parameter_validation=False.
        if operation_model.input_shape is not None:
            validate_parameters(params, operation_model.input_shape)
        with self._lock:
            self.calls.append((name, copy.deepcopy(params)))
        handler = self._operations[service].get(name)
        if handler is None:
            raise NotImplementedError(
                f"BedrockFake does not model {service}.{name}; add it to simulation/bedrock_fake.py"
            )
        try:
            self._raise_scripted(name, params)
            self._check_names(name, params)
            result = handler(params)
        except FakeServiceError as error:
            return self._error_response(service, error.code, error.message)
        status = int(operation_model.http.get("responseCode", 200))
        if name != "ConverseStream" and operation_model.output_shape is not None:
            report = self._validator.validate(result, operation_model.output_shape)
            if report.has_errors():
                raise AssertionError(f"BedrockFake built an invalid {name} response:\n{report.generate_report()}")
        result["ResponseMetadata"] = self._response_metadata(status)
        return AWSResponse(None, status, {}, None), result

    @staticmethod
    def _response_metadata(status: int) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        return {
            "RequestId": request_id,
            "HTTPStatusCode": status,
            "HTTPHeaders": {"x-amzn-requestid": request_id, "content-type": "application/json"},
            "RetryAttempts": 0,
        }

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

    def _error_response(self, service: str, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
        status = self._status_for(service, code)
        parsed: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": self._response_metadata(status),
            "message": message,
        }
        return AWSResponse(None, status, {"x-amzn-errortype": code}, None), parsed

    def _raise_scripted(self, operation: str, params: dict[str, Any]) -> None:
        with self._lock:
            for script in self._scripted:
                if script.operation != operation:
                    continue
                if script.model_id is not None and params.get("modelId") != script.model_id:
                    continue
                if script.remaining is not None:
                    script.remaining -= 1
                    if script.remaining == 0:
                        self._scripted.remove(script)
                raise FakeServiceError(script.code, script.message)
            rate = self._error_rates.get(operation)
            if rate is not None and rate.rng.random() < rate.rate:
                raise FakeServiceError(rate.code, f"Random {rate.code} from BedrockFake (rate {rate.rate:.0%})")

    @staticmethod
    def _check_names(operation: str, params: dict[str, Any]) -> None:
        for rule in NAME_RULES.get(operation, ()):
            value = params.get(rule.member)
            if value is None:
                continue
            if len(value) > rule.max_len:
                raise FakeServiceError(
                    "ValidationException",
                    f"1 validation error detected: Value '{value}' at '{rule.member}' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {rule.max_len}",
                )
            if len(value) < rule.min_len or not rule.regex.fullmatch(value):
                raise FakeServiceError(
                    "ValidationException",
                    f"1 validation error detected: Value '{value}' at '{rule.member}' failed to satisfy "
                    f"constraint: Member must satisfy regular expression pattern: {rule.pattern}",
                )

    # ---------------------------------------------------------------------------------------------- id helpers
    def _new_id(self) -> str:
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(12))

    def _idempotent(self, operation: str, params: dict[str, Any]) -> str | None:
        """The ARN a previous call with the same token created; ConflictException if its parameters differ."""
        token = params.get("clientRequestToken")
        if token is None:
            return None
        seen = self._idempotency.setdefault(operation, _Idempotent()).by_token.get(token)
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
            self._idempotency.setdefault(operation, _Idempotent()).by_token[token] = (_fingerprint(params), arn)

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

    @staticmethod
    def _sorted(items: list[Any], params: dict[str, Any], created: Callable[[Any], datetime]) -> list[Any]:
        return sorted(items, key=created, reverse=params.get("sortOrder", "Descending") == "Descending")

    def _tags_or_empty(self, tags: list[dict[str, str]] | None) -> list[dict[str, str]]:
        return [dict(t) for t in tags or []]

    # ------------------------------------------------------------------------------------------ catalog handlers
    def _find_foundation_model(self, identifier: str) -> FoundationModel | None:
        return self._foundation_models.get(_foundation_model_id(identifier))

    def _get_foundation_model(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._find_foundation_model(params["modelIdentifier"])
        if model is None:
            raise FakeServiceError("ResourceNotFoundException", f"Model {params['modelIdentifier']} not found.")
        return {"modelDetails": model.details()}

    def _get_foundation_model_availability(self, params: dict[str, Any]) -> dict[str, Any]:
        model_id = params["modelId"]
        with self._lock:
            known = any(_base_model_id(m) == _base_model_id(model_id) for m in self._foundation_models)
            access = copy.deepcopy(self._access.get(_base_model_id(model_id)))
        if not known:
            raise FakeServiceError("ResourceNotFoundException", f"Model {model_id} not found.")
        return {
            "modelId": model_id,
            **(
                access
                or {
                    "agreementAvailability": {"status": "AVAILABLE"},
                    "authorizationStatus": "AUTHORIZED",
                    "entitlementAvailability": "AVAILABLE",
                    "regionAvailability": "AVAILABLE",
                }
            ),
        }

    def _list_foundation_models(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            models = list(self._foundation_models.values())
        provider = params.get("byProvider")
        customization = params.get("byCustomizationType")
        inference = params.get("byInferenceType")
        modality = params.get("byOutputModality")
        selected = [
            m.details()
            for m in models
            if (provider is None or m.provider_name.lower() == provider.lower())
            and (customization is None or customization in m.customizations)
            and (inference is None or inference in m.inference_types)
            and (modality is None or modality in m.output_modalities)
        ]
        return {"modelSummaries": selected}

    def _get_inference_profile(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            profile = self._profiles.get(_profile_id(params["inferenceProfileIdentifier"]))
        if profile is None:
            raise FakeServiceError(
                "ResourceNotFoundException", f"Inference profile {params['inferenceProfileIdentifier']} not found."
            )
        return profile.details()

    def _list_inference_profiles(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            profiles = [p.details() for p in self._profiles.values()]
        if params.get("typeEquals") not in (None, "SYSTEM_DEFINED"):
            profiles = []
        return self._paginate("ListInferenceProfiles", profiles, params, "inferenceProfileSummaries")

    def _resolve_known_model(self, identifier: str, role: str) -> None:
        """A model reference in a create request must name a catalog model, profile or custom model."""
        if identifier in self._models or self._find_foundation_model(identifier) is not None:
            return
        if self._profiles.get(_profile_id(identifier)) is not None:
            return
        raise FakeServiceError("ValidationException", f"The provided {role} identifier {identifier!r} is invalid.")

    # -------------------------------------------------------------------------------- customization job handlers
    def _create_job(self, params: dict[str, Any]) -> dict[str, Any]:
        operation = "CreateModelCustomizationJob"
        customization_type = params.get("customizationType", "FINE_TUNING")
        with self._lock:
            existing = self._idempotent(operation, params)
            if existing is not None:
                return {"jobArn": existing}
            base = self._find_foundation_model(params["baseModelIdentifier"])
            if base is None:
                raise FakeServiceError(
                    "ValidationException",
                    f"The provided base model identifier {params['baseModelIdentifier']!r} is invalid.",
                )
            if customization_type not in base.customizations:
                raise FakeServiceError(
                    "ValidationException",
                    f"Model {base.model_id} does not support {customization_type} customization "
                    f"(supports {list(base.customizations)}); use the customization id such as "
                    "'amazon.nova-micro-v1:0:128k'.",
                )
            if customization_type == "DISTILLATION":
                distillation = params.get("customizationConfig", {}).get("distillationConfig")
                if distillation is None:
                    raise FakeServiceError(
                        "ValidationException",
                        "customizationConfig.distillationConfig is required for customizationType DISTILLATION",
                    )
                teacher = distillation["teacherModelConfig"]["teacherModelIdentifier"]
                self._resolve_known_model(teacher, "teacher model")
            data = params["trainingDataConfig"]
            if "s3Uri" not in data and "invocationLogsConfig" not in data:
                raise FakeServiceError("ValidationException", "trainingDataConfig needs s3Uri or invocationLogsConfig")
            if any(job.name == params["jobName"] for job in self._jobs.values()):
                raise FakeServiceError(
                    "ConflictException", f"A customization job named {params['jobName']!r} already exists."
                )
            taken = {m.name for m in self._models.values()} | {
                j.params["customModelName"] for j in self._jobs.values() if j.status in ("InProgress", "Stopping")
            }
            if params["customModelName"] in taken:
                raise FakeServiceError(
                    "ConflictException", f"A custom model named {params['customModelName']!r} already exists."
                )
            failure = self._next_job_failure
            self._next_job_failure = None
            polls = max(self.job_polls_to_complete, 1)
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:model-customization-job/{base.model_id}/{self._new_id()}"
            created = _now_after(self._latest_creation())
            self._jobs[arn] = _Job(
                arn=arn,
                name=params["jobName"],
                params=params,
                base_model_arn=base.arn,
                created=created,
                last_modified=created,
                polls_to_complete=polls,
                fail_message=failure[0] if failure else None,
                fail_after_polls=(failure[1] if failure and failure[1] is not None else polls),
            )
            self._tags[arn] = self._tags_or_empty(params.get("jobTags"))
            self._remember_token(operation, params, arn)
        return {"jobArn": arn}

    def _latest_creation(self) -> datetime | None:
        stamps = [j.created for j in self._jobs.values()]
        stamps += [m.created for m in self._models.values()]
        stamps += [d.created for d in self._deployments.values()]
        stamps += [e.created for e in self._evaluations.values()]
        return max(stamps, default=None)

    def _find_job(self, identifier: str) -> _Job:
        job = self._jobs.get(identifier) or next((j for j in self._jobs.values() if j.name == identifier), None)
        if job is None:
            raise FakeServiceError("ResourceNotFoundException", f"Customization job {identifier} not found.")
        return job

    def _advance_job(self, job: _Job) -> None:
        now = _now_after(job.last_modified)
        if job.status == "Stopping":
            job.status, job.end_time, job.last_modified = "Stopped", now, now
            return
        if job.status != "InProgress":
            return
        job.polls += 1
        job.last_modified = now
        if job.fail_message is not None and job.polls >= job.fail_after_polls:
            job.status, job.end_time = "Failed", now
        elif job.polls >= job.polls_to_complete:
            job.status, job.end_time = "Completed", now
            model_id = _foundation_model_id(job.base_model_arn)
            model_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:custom-model/{model_id}/{self._new_id()}"
            job.output_model_arn = model_arn
            self._models[model_arn] = _CustomModel(
                arn=model_arn,
                name=job.params["customModelName"],
                job=job,
                created=now,
                polls_to_active=self.model_polls_to_active,
                status="Active" if self.model_polls_to_active <= 0 else "Creating",
            )
            self._tags[model_arn] = self._tags_or_empty(job.params.get("customModelTags"))

    def _status_details(self, job: _Job) -> dict[str, Any]:
        phases = ("validationDetails", "dataProcessingDetails", "trainingDetails")
        if job.status == "Completed":
            return {phase: {"status": "Completed"} for phase in phases}
        current = min(len(phases) - 1, job.polls * len(phases) // max(job.polls_to_complete, 1))
        details = {}
        for index, phase in enumerate(phases):
            if index < current:
                status = "Completed"
            elif index == current:
                status = job.status
            else:
                status = "NotStarted"
            details[phase] = {"status": status}
        return details

    def _job_view(self, job: _Job) -> dict[str, Any]:
        params = job.params
        view: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "outputModelName": params["customModelName"],
            "roleArn": params["roleArn"],
            "status": job.status,
            "statusDetails": self._status_details(job),
            "creationTime": job.created,
            "lastModifiedTime": job.last_modified,
            "baseModelArn": job.base_model_arn,
            "hyperParameters": copy.deepcopy(params.get("hyperParameters", {})),
            "trainingDataConfig": copy.deepcopy(params["trainingDataConfig"]),
            "validationDataConfig": copy.deepcopy(params.get("validationDataConfig", {"validators": []})),
            "outputDataConfig": copy.deepcopy(params["outputDataConfig"]),
            "customizationType": params.get("customizationType", "FINE_TUNING"),
        }
        for key in ("clientRequestToken", "customizationConfig", "vpcConfig"):
            if key in params:
                view[key] = copy.deepcopy(params[key])
        if job.end_time is not None:
            view["endTime"] = job.end_time
        if job.status == "Failed":
            view["failureMessage"] = job.fail_message
        if job.output_model_arn is not None:
            view["outputModelArn"] = job.output_model_arn
            view["trainingMetrics"] = {"trainingLoss": self.training_loss}
        return view

    def _get_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._find_job(params["jobIdentifier"])
            self._advance_job(job)
            return self._job_view(job)

    def _stop_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._find_job(params["jobIdentifier"])
            if job.status != "InProgress":
                raise FakeServiceError(
                    "ValidationException", f"Job {job.name} can't be stopped in status {job.status}."
                )
            job.status = "Stopping"
            job.last_modified = _now_after(job.last_modified)
        return {}

    def _list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            jobs = [
                j
                for j in self._jobs.values()
                if (params.get("statusEquals") in (None, j.status))
                and (params.get("nameContains") is None or params["nameContains"] in j.name)
                and (params.get("creationTimeAfter") is None or j.created > params["creationTimeAfter"])
                and (params.get("creationTimeBefore") is None or j.created < params["creationTimeBefore"])
            ]
            summaries = []
            for job in self._sorted(jobs, params, lambda j: j.created):
                summary: dict[str, Any] = {
                    "jobArn": job.arn,
                    "baseModelArn": job.base_model_arn,
                    "jobName": job.name,
                    "status": job.status,
                    "statusDetails": self._status_details(job),
                    "lastModifiedTime": job.last_modified,
                    "creationTime": job.created,
                    "customModelName": job.params["customModelName"],
                    "customizationType": job.params.get("customizationType", "FINE_TUNING"),
                }
                if job.end_time is not None:
                    summary["endTime"] = job.end_time
                if job.output_model_arn is not None:
                    summary["customModelArn"] = job.output_model_arn
                summaries.append(summary)
        return self._paginate("ListModelCustomizationJobs", summaries, params, "modelCustomizationJobSummaries")

    # ------------------------------------------------------------------------------------- custom model handlers
    def _find_model(self, identifier: str) -> _CustomModel:
        model = self._models.get(identifier) or next((m for m in self._models.values() if m.name == identifier), None)
        if model is None:
            raise FakeServiceError("ResourceNotFoundException", f"Custom model {identifier} not found.")
        return model

    def _model_view(self, model: _CustomModel) -> dict[str, Any]:
        params = model.job.params
        view: dict[str, Any] = {
            "modelArn": model.arn,
            "modelName": model.name,
            "jobName": model.job.name,
            "jobArn": model.job.arn,
            "baseModelArn": model.job.base_model_arn,
            "customizationType": params.get("customizationType", "FINE_TUNING"),
            "hyperParameters": copy.deepcopy(params.get("hyperParameters", {})),
            "trainingDataConfig": copy.deepcopy(params["trainingDataConfig"]),
            "outputDataConfig": copy.deepcopy(params["outputDataConfig"]),
            "trainingMetrics": {"trainingLoss": self.training_loss},
            "creationTime": model.created,
            "modelStatus": model.status,
        }
        if "customizationConfig" in params:
            view["customizationConfig"] = copy.deepcopy(params["customizationConfig"])
        return view

    def _get_custom_model(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._find_model(params["modelIdentifier"])
            if model.status == "Creating":
                model.polls += 1
                if model.polls >= model.polls_to_active:
                    model.status = "Active"
            return self._model_view(model)

    def _list_custom_models(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            models = [
                m
                for m in self._models.values()
                if (params.get("nameContains") is None or params["nameContains"] in m.name)
                and (params.get("baseModelArnEquals") in (None, m.job.base_model_arn))
                and (params.get("foundationModelArnEquals") in (None, m.job.base_model_arn))
                and (params.get("modelStatus") in (None, m.status))
            ]
            summaries = [
                {
                    "modelArn": m.arn,
                    "modelName": m.name,
                    "creationTime": m.created,
                    "baseModelArn": m.job.base_model_arn,
                    "baseModelName": _foundation_model_id(m.job.base_model_arn).split(":", 1)[0],
                    "customizationType": m.job.params.get("customizationType", "FINE_TUNING"),
                    "ownerAccountId": ACCOUNT_ID,
                    "modelStatus": m.status,
                }
                for m in self._sorted(models, params, lambda m: m.created)
            ]
        return self._paginate("ListCustomModels", summaries, params, "modelSummaries")

    def _delete_custom_model(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._find_model(params["modelIdentifier"])
            users = [d.name for d in self._deployments.values() if model.arn in (d.model_arn, d.update_model_arn)]
            if users:
                raise FakeServiceError(
                    "ConflictException",
                    f"Custom model {model.name} can't be deleted while deployments use it: {users}.",
                )
            del self._models[model.arn]
            self._tags.pop(model.arn, None)
        return {}

    # --------------------------------------------------------------------------------------- deployment handlers
    def _find_deployment(self, identifier: str) -> _Deployment:
        deployment = self._deployments.get(identifier) or next(
            (d for d in self._deployments.values() if d.name == identifier), None
        )
        if deployment is None:
            raise FakeServiceError("ResourceNotFoundException", f"Custom model deployment {identifier} not found.")
        return deployment

    def _create_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        operation = "CreateCustomModelDeployment"
        with self._lock:
            existing = self._idempotent(operation, params)
            if existing is not None:
                return {"customModelDeploymentArn": existing}
            if params["modelArn"] not in self._models:
                raise FakeServiceError("ResourceNotFoundException", f"Custom model {params['modelArn']} not found.")
            if self._models[params["modelArn"]].status != "Active":
                # docs/bedrock-facts.md: a deployment needs the custom model Active (the wording is the fake's).
                raise FakeServiceError(
                    "ValidationException",
                    f"Custom model {params['modelArn']} is {self._models[params['modelArn']].status}; "
                    "it must be Active to be deployed.",
                )
            if any(d.name == params["modelDeploymentName"] for d in self._deployments.values()):
                raise FakeServiceError(
                    "ConflictException", f"A deployment named {params['modelDeploymentName']!r} already exists."
                )
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:custom-model-deployment/{self._new_id()}"
            created = _now_after(self._latest_creation())
            self._deployments[arn] = _Deployment(
                arn=arn,
                name=params["modelDeploymentName"],
                model_arn=params["modelArn"],
                params=params,
                created=created,
                last_updated=created,
                polls_to_active=max(self.deployment_polls_to_active, 1),
                fail_message=self._next_deployment_failure,
            )
            self._next_deployment_failure = None
            self._tags[arn] = self._tags_or_empty(params.get("tags"))
            self._remember_token(operation, params, arn)
        return {"customModelDeploymentArn": arn}

    def _advance_deployment(self, deployment: _Deployment) -> None:
        now = _now_after(deployment.last_updated)
        if deployment.status == "Creating":
            deployment.polls += 1
            if deployment.polls >= deployment.polls_to_active:
                deployment.status = "Failed" if deployment.fail_message is not None else "Active"
                deployment.last_updated = now
        elif deployment.update_status == "Updating":
            deployment.update_polls += 1
            if deployment.update_polls >= deployment.polls_to_active:
                deployment.model_arn = deployment.update_model_arn or deployment.model_arn
                deployment.update_status = "UpdateCompleted"
                deployment.last_updated = now

    def _deployment_view(self, deployment: _Deployment) -> dict[str, Any]:
        view: dict[str, Any] = {
            "customModelDeploymentArn": deployment.arn,
            "modelDeploymentName": deployment.name,
            "modelArn": deployment.model_arn,
            "createdAt": deployment.created,
            "status": deployment.status,
            "lastUpdatedAt": deployment.last_updated,
        }
        if "description" in deployment.params:
            view["description"] = deployment.params["description"]
        if deployment.status == "Failed":
            view["failureMessage"] = deployment.fail_message
        if deployment.update_status is not None:
            view["updateDetails"] = {
                "modelArn": deployment.update_model_arn,
                "updateStatus": deployment.update_status,
            }
        return view

    def _get_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            deployment = self._find_deployment(params["customModelDeploymentIdentifier"])
            self._advance_deployment(deployment)
            return self._deployment_view(deployment)

    def _list_deployments(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            deployments = [
                d
                for d in self._deployments.values()
                if params.get("statusEquals") in (None, d.status)
                and params.get("modelArnEquals") in (None, d.model_arn)
                and (params.get("nameContains") is None or params["nameContains"] in d.name)
                and (params.get("createdAfter") is None or d.created > params["createdAfter"])
                and (params.get("createdBefore") is None or d.created < params["createdBefore"])
            ]
            summaries = []
            for d in self._sorted(deployments, params, lambda d: d.created):
                summary: dict[str, Any] = {
                    "customModelDeploymentArn": d.arn,
                    "customModelDeploymentName": d.name,
                    "modelArn": d.model_arn,
                    "createdAt": d.created,
                    "status": d.status,
                    "lastUpdatedAt": d.last_updated,
                }
                if d.status == "Failed":
                    summary["failureMessage"] = d.fail_message
                summaries.append(summary)
        return self._paginate("ListCustomModelDeployments", summaries, params, "modelDeploymentSummaries")

    def _update_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            deployment = self._find_deployment(params["customModelDeploymentIdentifier"])
            if params["modelArn"] not in self._models:
                raise FakeServiceError("ResourceNotFoundException", f"Custom model {params['modelArn']} not found.")
            if deployment.status != "Active" or deployment.update_status == "Updating":
                raise FakeServiceError(
                    "ValidationException",
                    f"Deployment {deployment.name} can't be updated in status {deployment.status}"
                    f"{' (update in progress)' if deployment.update_status == 'Updating' else ''}.",
                )
            deployment.update_model_arn = params["modelArn"]
            deployment.update_status = "Updating"
            deployment.update_polls = 0
            deployment.last_updated = _now_after(deployment.last_updated)
            return {"customModelDeploymentArn": deployment.arn}

    def _delete_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            deployment = self._find_deployment(params["customModelDeploymentIdentifier"])
            del self._deployments[deployment.arn]
            self._tags.pop(deployment.arn, None)
        return {}

    # --------------------------------------------------------------------------------------- evaluation handlers
    def _create_evaluation(self, params: dict[str, Any]) -> dict[str, Any]:
        operation = "CreateEvaluationJob"
        with self._lock:
            existing = self._idempotent(operation, params)
            if existing is not None:
                return {"jobArn": existing}
            if any(e.name == params["jobName"] for e in self._evaluations.values()):
                raise FakeServiceError(
                    "ConflictException", f"An evaluation job named {params['jobName']!r} already exists."
                )
            for evaluator in self._evaluator_ids(params):
                self._resolve_known_model(evaluator, "evaluator model")
            job_id = self._new_id()
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:evaluation-job/{job_id}"
            created = _now_after(self._latest_creation())
            self._evaluations[arn] = _EvaluationJob(
                arn=arn,
                job_id=job_id,
                name=params["jobName"],
                params=params,
                created=created,
                last_modified=created,
                polls_to_complete=max(self.evaluation_polls_to_complete, 1),
                fail_messages=self._next_evaluation_failure,
            )
            self._next_evaluation_failure = None
            self._tags[arn] = self._tags_or_empty(params.get("jobTags"))
            self._remember_token(operation, params, arn)
        return {"jobArn": arn}

    @staticmethod
    def _evaluator_ids(params: dict[str, Any]) -> list[str]:
        automated = params["evaluationConfig"].get("automated", {})
        judges = automated.get("evaluatorModelConfig", {}).get("bedrockEvaluatorModels", [])
        ids = [m["modelIdentifier"] for m in judges]
        custom = automated.get("customMetricConfig", {}).get("evaluatorModelConfig", {})
        ids += [m["modelIdentifier"] for m in custom.get("bedrockEvaluatorModels", [])]
        return ids

    def _find_evaluation(self, identifier: str) -> _EvaluationJob:
        if not identifier.startswith("arn:"):
            raise FakeServiceError(
                "ValidationException", f"jobIdentifier must be an evaluation job ARN, got {identifier!r}"
            )
        job = self._evaluations.get(identifier)
        if job is None:
            raise FakeServiceError("ResourceNotFoundException", f"Evaluation job {identifier} not found.")
        return job

    def _evaluation_view(self, job: _EvaluationJob) -> dict[str, Any]:
        params = job.params
        view: dict[str, Any] = {
            "jobName": job.name,
            "status": job.status,
            "jobArn": job.arn,
            "roleArn": params["roleArn"],
            "jobType": "Automated" if "automated" in params["evaluationConfig"] else "Human",
            "applicationType": params.get("applicationType", "ModelEvaluation"),
            "evaluationConfig": copy.deepcopy(params["evaluationConfig"]),
            "inferenceConfig": copy.deepcopy(params["inferenceConfig"]),
            "outputDataConfig": copy.deepcopy(params["outputDataConfig"]),
            "creationTime": job.created,
            "lastModifiedTime": job.last_modified,
        }
        for key in ("jobDescription", "customerEncryptionKeyId"):
            if key in params:
                view[key] = params[key]
        if job.status == "Failed":
            view["failureMessages"] = list(job.fail_messages or ())
        return view

    def _get_evaluation(self, params: dict[str, Any]) -> dict[str, Any]:
        completed: EvaluationJobRequest | None = None
        with self._lock:
            job = self._find_evaluation(params["jobIdentifier"])
            now = _now_after(job.last_modified)
            if job.status == "Stopping":
                job.status, job.last_modified = "Stopped", now
            elif job.status == "InProgress":
                job.polls += 1
                if job.polls >= job.polls_to_complete:
                    job.status = "Failed" if job.fail_messages is not None else "Completed"
                    job.last_modified = now
                    if job.status == "Completed":
                        completed = EvaluationJobRequest(
                            job_arn=job.arn,
                            job_id=job.job_id,
                            job_name=job.name,
                            output_s3_uri=job.params["outputDataConfig"]["s3Uri"],
                            params=copy.deepcopy(job.params),
                        )
            view = self._evaluation_view(job)
        if completed is not None and self.on_evaluation_complete is not None:
            self.on_evaluation_complete(completed)
        return view

    def _stop_evaluation(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._find_evaluation(params["jobIdentifier"])
            if job.status != "InProgress":
                raise FakeServiceError(
                    "ValidationException", f"Evaluation job {job.name} can't be stopped in status {job.status}."
                )
            job.status = "Stopping"
            job.last_modified = _now_after(job.last_modified)
        return {}

    def _list_evaluations(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            jobs = [
                j
                for j in self._evaluations.values()
                if params.get("statusEquals") in (None, j.status)
                and params.get("applicationTypeEquals") in (None, j.params.get("applicationType", "ModelEvaluation"))
                and (params.get("nameContains") is None or params["nameContains"] in j.name)
            ]
            summaries = []
            for job in self._sorted(jobs, params, lambda j: j.created):
                automated = job.params["evaluationConfig"].get("automated") or job.params["evaluationConfig"].get(
                    "human", {}
                )
                models = job.params["inferenceConfig"].get("models", [])
                summaries.append(
                    {
                        "jobArn": job.arn,
                        "jobName": job.name,
                        "status": job.status,
                        "creationTime": job.created,
                        "jobType": "Automated" if "automated" in job.params["evaluationConfig"] else "Human",
                        "evaluationTaskTypes": [c["taskType"] for c in automated.get("datasetMetricConfigs", [])],
                        "modelIdentifiers": [
                            m["bedrockModel"]["modelIdentifier"] for m in models if "bedrockModel" in m
                        ],
                        "evaluatorModelIdentifiers": self._evaluator_ids(job.params)[:1],
                        "inferenceConfigSummary": {
                            "modelConfigSummary": {
                                "bedrockModelIdentifiers": [
                                    m["bedrockModel"]["modelIdentifier"] for m in models if "bedrockModel" in m
                                ],
                                "precomputedInferenceSourceIdentifiers": [
                                    m["precomputedInferenceSource"]["inferenceSourceIdentifier"]
                                    for m in models
                                    if "precomputedInferenceSource" in m
                                ],
                            }
                        },
                        "applicationType": job.params.get("applicationType", "ModelEvaluation"),
                    }
                )
        page = self._paginate("ListEvaluationJobs", summaries, params, "jobSummaries")
        if not page["jobSummaries"]:
            del page["jobSummaries"]  # the model says min length 1: an empty list is left out
        return page

    # -------------------------------------------------------------------------------------------- tag handlers
    def resource_tags(self, arn: str) -> dict[str, str]:
        """The tags a resource carries now (``{}`` for an unknown one): what IAM reads as ``aws:ResourceTag``."""
        with self._lock:
            return {t["key"]: t["value"] for t in self._tags.get(arn, [])}

    def _tags_for(self, arn: str) -> list[dict[str, str]]:
        if arn not in self._tags:
            raise FakeServiceError("ResourceNotFoundException", f"Resource {arn} not found.")
        return self._tags[arn]

    def _list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"tags": [dict(t) for t in self._tags_for(params["resourceARN"])]}

    def _tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            tags = self._tags_for(params["resourceARN"])
            new = {t["key"]: t["value"] for t in params["tags"]}
            tags[:] = [t for t in tags if t["key"] not in new] + [{"key": k, "value": v} for k, v in new.items()]
        return {}

    def _untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            tags = self._tags_for(params["resourceARN"])
            tags[:] = [t for t in tags if t["key"] not in set(params["tagKeys"])]
        return {}

    # ---------------------------------------------------------------------------------------- runtime handlers
    def _resolve_invocation_target(self, model_id: str) -> str:
        """What ``modelId`` names, or the error the service gives for it."""
        with self._lock:
            if ":custom-model-deployment/" in model_id:
                deployment = self._deployments.get(model_id)
                if deployment is None:
                    raise FakeServiceError("ResourceNotFoundException", f"Deployment {model_id} not found.")
                if deployment.status != "Active":
                    raise FakeServiceError(
                        "ValidationException",
                        f"Deployment {model_id} is {deployment.status}; it can serve requests once Active.",
                    )
                return "deployment"
            if ":custom-model/" in model_id:
                raise FakeServiceError(
                    "ValidationException",
                    f"Custom model {model_id} can't be invoked on demand: invoke its custom model deployment ARN.",
                )
            if self._profiles.get(_profile_id(model_id)) is not None:
                return "inference-profile"
            model = self._find_foundation_model(model_id)
        if model is None:
            raise FakeServiceError("ValidationException", "The provided model identifier is invalid.")
        if "ON_DEMAND" not in model.inference_types:
            raise FakeServiceError(
                "ValidationException",
                f"Invocation of model ID {model.model_id} with on-demand throughput isn't supported. Retry your "
                "request with the ID or ARN of an inference profile that contains this model.",
            )
        return "foundation-model"

    def _converse_request(self, operation: str, params: dict[str, Any]) -> ConverseRequest:
        target = self._resolve_invocation_target(params["modelId"])
        messages = params.get("messages") or []
        if not messages or messages[-1]["role"] != "user":
            raise FakeServiceError(
                "ValidationException", "A conversation must end with a user message. Add a user message."
            )
        config = params.get("inferenceConfig", {})
        for key in ("temperature", "topP"):
            if key in config and not 0.0 <= config[key] <= 1.0:
                raise FakeServiceError(
                    "ValidationException", f"inferenceConfig.{key} must be between 0 and 1, got {config[key]}"
                )
        return ConverseRequest(
            operation=operation,
            model_id=params["modelId"],
            target_kind=target,
            system_text="\n".join(block["text"] for block in params.get("system", []) if "text" in block),
            user_text="\n".join(block["text"] for block in messages[-1]["content"] if "text" in block),
            inference_config=copy.deepcopy(config),
            params=params,
        )

    def _respond(self, request: ConverseRequest) -> ConverseReply:
        """Run the responder (outside the lock, after ``delay_s``) and normalize its answer."""
        started = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        result = self.responder(request)
        if isinstance(result, FakeError):
            raise FakeServiceError(result.code, result.message)
        if isinstance(result, BaseException):
            raise result
        reply = ConverseReply(text=result) if isinstance(result, str) else result
        elapsed_ms = max(1, round((time.perf_counter() - started) * 1000))
        prompt_chars = len(request.system_text) + len(request.user_text)
        return ConverseReply(
            text=reply.text,
            input_tokens=reply.input_tokens if reply.input_tokens is not None else max(1, prompt_chars // 4),
            output_tokens=reply.output_tokens if reply.output_tokens is not None else max(1, len(reply.text) // 4),
            latency_ms=reply.latency_ms if reply.latency_ms is not None else elapsed_ms,
            stop_reason=reply.stop_reason,
        )

    @staticmethod
    def _usage(reply: ConverseReply) -> dict[str, int]:
        assert reply.input_tokens is not None and reply.output_tokens is not None
        return {
            "inputTokens": reply.input_tokens,
            "outputTokens": reply.output_tokens,
            "totalTokens": reply.input_tokens + reply.output_tokens,
        }

    def _converse(self, params: dict[str, Any]) -> dict[str, Any]:
        reply = self._respond(self._converse_request("Converse", params))
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
            "stopReason": reply.stop_reason,
            "usage": self._usage(reply),
            "metrics": {"latencyMs": reply.latency_ms},
        }

    def _converse_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        reply = self._respond(self._converse_request("ConverseStream", params))
        size = max(1, self.stream_chunk_chars)
        chunks = [reply.text[i : i + size] for i in range(0, len(reply.text), size)] or [""]
        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        events += [{"contentBlockDelta": {"delta": {"text": c}, "contentBlockIndex": 0}} for c in chunks]
        events += [
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": reply.stop_reason}},
            {"metadata": {"usage": self._usage(reply), "metrics": {"latencyMs": reply.latency_ms}}},
        ]
        stream_shape = self._runtime.meta.service_model.shape_for("ConverseStreamOutput")
        for event in events:
            report = self._validator.validate(event, stream_shape)
            if report.has_errors():
                raise AssertionError(f"BedrockFake built an invalid stream event:\n{report.generate_report()}")
        with self._lock:
            error, after = self._stream_errors.pop(0) if self._stream_errors else (None, 0)
            stream = FakeEventStream(
                events, event_delay_s=self.stream_event_delay_s, error=error, error_after_events=after
            )
            self.streams.append(stream)
        return {"stream": stream}
