"""An in-memory Amazon Bedrock (control plane and runtime) behind real boto3 clients, for the tests and for
``make simulate``. Its parts (catalog, control plane, runtime, scripting) are the modules of
:mod:`simulation.bedrock`; this module composes them and hooks the fake into botocore.

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

import copy
import threading
import uuid
from collections.abc import Callable
from typing import Any, Self

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.model import OperationModel
from botocore.validate import validate_parameters

from simulation.bedrock.batch_handlers import BatchHandlers
from simulation.bedrock.catalog_handlers import CatalogHandlers
from simulation.bedrock.customization_handlers import CustomizationHandlers
from simulation.bedrock.deployment_handlers import DeploymentHandlers
from simulation.bedrock.evaluation_handlers import EvaluationHandlers
from simulation.bedrock.rules import check_names
from simulation.bedrock.runtime_handlers import RuntimeHandlers
from simulation.bedrock.scripting import Scripting
from simulation.bedrock.stream import FakeEventStream
from simulation.bedrock.tag_handlers import TagHandlers
from simulation.bedrock.values import CONTROL_SERVICE, REGION, RUNTIME_SERVICE, FakeServiceError

# The fake's clients never retry (see the module docstring: retries are skipped anyway) and never wait long.
FAKE_CLIENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)

__all__ = ["FAKE_CLIENT_CONFIG", "BedrockFake"]

_PARAMS_KEY = "bedrock_fake_params"

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


class BedrockFake(
    Scripting,
    CatalogHandlers,
    CustomizationHandlers,
    DeploymentHandlers,
    EvaluationHandlers,
    TagHandlers,
    BatchHandlers,
    RuntimeHandlers,
):
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
    ``batch_polls_to_complete`` / ``batch_min_records`` / ``batch_s3``
        Converse batch jobs (:mod:`simulation.bedrock.batch_handlers`): the ``Get`` that completes a job, the
        fewest records a job accepts, the S3 client its input is read and its output written with
        (:meth:`fail_next_batch_job` and :meth:`corrupt_next_batch_job` script the next job).
    ``on_evaluation_complete``
        ``callable(EvaluationJobRequest)`` run (outside the fake's lock) when an evaluation job completes:
        the extension point for writing result files.
    """

    def __init__(self, *, region: str = REGION, seed: int = 0) -> None:
        if region != REGION:
            raise ValueError(f"BedrockFake models {REGION} only (ARNs and catalog are built for it), got {region}")
        super().__init__(
            control=_create_client(CONTROL_SERVICE, region), runtime=_create_client(RUNTIME_SERVICE, region), seed=seed
        )
        self._operations = {
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
                "CreateModelInvocationJob": self._create_batch,
                "GetModelInvocationJob": self._get_batch,
                "StopModelInvocationJob": self._stop_batch,
                "ListModelInvocationJobs": self._list_batches,
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
            raise NotImplementedError(f"BedrockFake does not model {service}.{name}; add it to simulation/bedrock/")
        try:
            self._raise_scripted(name, params)
            check_names(name, params)
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

    def _error_response(self, service: str, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
        status = self._status_for(service, code)
        parsed: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": self._response_metadata(status),
            "message": message,
        }
        return AWSResponse(None, status, {"x-amzn-errortype": code}, None), parsed
