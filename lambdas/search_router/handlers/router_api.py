"""``POST /route``: validate the request, route it, log and count what happened, shape the response.

The composition root of the router: :func:`build_service` puts the domain (``search_router.router``) together with
its adapters (the Bedrock invoker, the SSM parameter reader, the cached clients), once per container.

Status codes are decided here and only here: 400 for a request that breaks the contract (the message names
the field) or whose body cannot be read (not base64, not UTF-8, nested too deeply, an integer too long:
``request_body``), 200 with valid weights for everything else, including every model problem. A 5xx happens
only if even the default weights cannot be produced (the function's settings are broken).

Privacy: with ``router_log_queries`` off (the default) no log line carries the query or text that may quote
it: the ``Routed`` line has the query's length, attempts keep their code but not a private detail (a
parse-failure detail quotes the answer, which may echo the query; a service or botocore message may quote the
request), and an exception is logged by its type and stack, not its message (settings errors excepted: they
quote the function's environment only). The event is never logged (``log_event=False`` overrides
``POWERTOOLS_LOGGER_LOG_EVENT``), and the router's trace annotations and metadata carry no query either (the
X-Ray SDK's own botocore subsegments record a failed call's message).

Cold start (``benchmarks/cold_start.py``): API Gateway's request model is the first check of a body; this module
repeats it for callers that bypass it (:func:`handle`: the body read strictly, then :class:`RouteRequest`, the
same 400 messages) instead of Powertools' REST resolver with OpenAPI validation, which cost ~140 ms of import
for routing one path. Nothing on this module's import path imports pydantic (``router/api_models.py`` and
``contract/promotion_rules.py`` are plain Python), and the router's clients are made from service models cut to
the operations it calls (``adapters/service_models.py``). In Lambda the init phase validates the settings,
builds the service and creates both clients (:func:`initialize_container`), so the first request creates
nothing and a SnapStart snapshot (``router_snapstart``) holds them; the after-restore hook reseeds ``random``.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
import time
import traceback
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters.bedrock_runtime import BedrockInvoker, router_client_config
from search_router.adapters.clients import CLIENTS
from search_router.adapters.s3_artifacts import artifact_reader
from search_router.adapters.ssm import parameter_reader
from search_router.contract.names import RouterMetric
from search_router.handlers.observability import logger, metrics, tracer
from search_router.router.api_models import (
    InvalidRequestError,
    RequestValidationError,
    RouteRequest,
    RouteResponse,
    bad_request_body,
    describe_validation_errors,
)
from search_router.router.guards import CircuitEvent, Transition
from search_router.router.micro_source import MicroRouterSource
from search_router.router.model_source import PromotedModelSource
from search_router.router.request_body import UnreadableBodyError, decode_body, media_type, parse_json_body
from search_router.router.service import (
    Attempt,
    AttemptOutcome,
    DefaultReason,
    RouteOutcome,
    RouterService,
    Source,
    normalize_query,
)
from search_router.router.settings import ENV_CORS_ORIGINS, RouterSettings, SettingsError, load_settings
from search_router.router.sizing import invoker_threads
from search_router.shared.answer.formatting import round_weights

if TYPE_CHECKING:  # capture_queries: imported when a capture stream is configured, never on the default path
    from search_router.router.capture import QueryCapture

WEIGHT_DECIMALS = 4
CLIENT_PROFILE = "router"  # the router's own clients (its configuration), apart from any other in the process
ROUTER_CLIENTS = ("bedrock-runtime", "ssm")
ENV_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"  # set by Lambda in every execution environment


ROUTE_PATH = "/route"
JSON_MEDIA_TYPE = "application/json"


def _allowed_origins() -> Collection[str]:
    """``api_cors_origins``: from the settings, or straight from the environment when they cannot be built."""
    if _service is not None:
        return _service.settings.cors_origins
    try:
        origins = json.loads(os.environ.get(ENV_CORS_ORIGINS) or "[]")
    except ValueError:
        return ()
    return [o for o in origins if isinstance(o, str)] if isinstance(origins, list) else ()


@dataclass(frozen=True)
class Reply:
    """An HTTP answer before it becomes the proxy integration's response."""

    status: int
    body: dict[str, Any]


_service: RouterService | None = None


def router_client(service: str, settings: RouterSettings) -> Any:
    """The router's client of ``service`` (:func:`router_client_config`), created once per container from the
    service's trimmed model (``adapters/service_models.py``: the router's operations only)."""
    return CLIENTS.get(service, profile=CLIENT_PROFILE, config=router_client_config(settings), trimmed=True)


def build_service(settings: RouterSettings, *, clock: Callable[[], float] = time.monotonic) -> RouterService:
    """The router from its settings: its AWS clients (once per container, :func:`router_client`), the
    promoted-model source over SSM, the Bedrock invoker with its call pool."""

    def runtime() -> Any:
        return router_client("bedrock-runtime", settings)

    def ssm() -> Any:
        return router_client("ssm", settings)

    def s3() -> Any:
        return router_client("s3", settings)

    return RouterService(
        settings,
        invoker=BedrockInvoker(channels=settings.channels, runtime=runtime, max_workers=invoker_threads(settings)),
        model_source=PromotedModelSource(
            parameter_name=settings.model_parameter,
            channels=settings.channels,
            default_model=settings.default_model,
            ttl_seconds=settings.model_ttl_seconds,
            read_parameter=parameter_reader(ssm, settings.model_parameter),
            clock=clock,
            scope=settings.scope,
        ),
        clock=clock,
        micro_source=MicroRouterSource(
            read_artifact=artifact_reader(s3),
            channels=settings.channels,
            retry_seconds=settings.model_ttl_seconds,
            clock=clock,
        ),
    )


def build_capture(settings: RouterSettings) -> QueryCapture | None:
    """The capture of routed queries (``capture_queries``), or None when no stream is configured. Its modules
    (the capture buffer, the Firehose adapter) are imported only here, so the router without capture imports
    nothing more (``tests/unit/test_router_import_path.py``)."""
    if settings.capture_stream is None:
        return None
    from search_router.adapters.firehose import batch_sender
    from search_router.router.capture import QueryCapture, Redactor

    return QueryCapture(
        batch_sender(capture_client, settings.capture_stream),
        redact=Redactor(settings.capture_redact_patterns),
        on_error=_capture_error,
    )


def capture_client() -> Any:
    """The router's Firehose client (capture only): its trimmed model, short timeouts, created once."""
    from search_router.adapters.firehose import CAPTURE_CLIENT_CONFIG

    return CLIENTS.get("firehose", profile=CLIENT_PROFILE, config=CAPTURE_CLIENT_CONFIG, trimmed=True)


def _capture_error(error: BaseException) -> None:
    """A failed capture batch, logged from the sender thread by its type only (a message may quote a request)."""
    logger.warning("A capture batch was not delivered", exception_name=type(error).__name__)


_captures: dict[int, tuple[RouterService, QueryCapture | None]] = {}


def capture_for(service: RouterService) -> QueryCapture | None:
    """The capture of ``service`` (built once per service from its settings; None when capture is off)."""
    entry = _captures.get(id(service))
    if entry is None or entry[0] is not service:
        entry = (service, build_capture(service.settings))
        _captures.clear()  # one service per container: an earlier one's capture is not kept alive
        _captures[id(service)] = entry
    return entry[1]


def get_service() -> RouterService:
    """The container's router, built from the environment on first use (settings validated once)."""
    global _service  # noqa: PLW0603 - one service per container, created lazily to keep imports fast
    if _service is None:
        _service = build_service(load_settings(os.environ))
    return _service


def use_service(service: RouterService | None) -> None:
    """Install a prebuilt service (tests, benchmarks); ``None`` rebuilds from the environment on next use."""
    global _service  # noqa: PLW0603
    _service = service


def initialize_container(environment: Mapping[str, str]) -> RouterService | None:
    """The function's init phase (in Lambda only, ``AWS_LAMBDA_FUNCTION_NAME`` set; tests install their own
    service): the settings validated and the service built with both AWS clients, so the first request creates
    nothing and, with SnapStart, the snapshot holds them. Nothing remote is read here (the promoted model is read
    by the first request, so a snapshot never carries a stale one). Invalid settings are left to the first
    request, which answers 500 "misconfigured" with the reason in the log (:func:`_unexpected`)."""
    if not environment.get(ENV_LAMBDA_FUNCTION_NAME):
        return None
    try:
        service = build_service(load_settings(environment))
    except SettingsError:
        return None
    use_service(service)
    for client in ROUTER_CLIENTS:
        router_client(client, service.settings)
    capture = capture_for(service)  # capture_queries: its modules and client now, its thread on the first record
    if capture is not None:
        capture_client()
    _register_after_restore(_after_restore)
    freeze_long_lived_objects()
    return service


def freeze_long_lived_objects() -> None:
    """Move everything the init created (modules, botocore's service models, the clients) out of the garbage
    collector's reach: they live as long as the container, and a full collection that traverses them pauses
    every thread, the one waiting on a model call's deadline included (``gc.freeze``; no collection first: it
    would cost the cold start more than the little garbage of the init costs memory)."""
    gc.freeze()


def _after_restore() -> None:
    """SnapStart: every environment restored from one snapshot starts with the same random state; reseed it so
    that the retry jitter of concurrent environments is not in lockstep."""
    random.seed()


def _register_after_restore(hook: Callable[[], None]) -> bool:
    """Register a SnapStart after-restore hook with ``snapshot_restore_py`` (part of Lambda's managed Python
    runtimes, absent elsewhere: then there is no snapshot to restore from and nothing is registered)."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_after_restore(hook)
    return True


def handle(event: dict[str, Any]) -> Reply:
    """One API Gateway REST proxy event: ``POST /route`` validated and routed; anything else answered with the
    status that says why. API Gateway's request model already refused most bad bodies; this repeats the check
    for a caller that bypasses it (a test invoke, a direct Lambda call) with the same messages, naming the
    field: the body read strictly (``request_body``), then :meth:`RouteRequest.from_body` (strict)."""
    try:
        refused = _refused(event)
        if refused is not None:
            return refused
        return route(_read_request(event))
    except BadRequest as error:
        return _bad_request(error.problems)
    except InvalidRequestError as error:
        return _bad_request([{"field": error.field, "message": error.message}])
    except UnreadableBodyError as error:
        return _bad_request([{"field": "body", "message": error.message}])
    except Exception as error:
        return _unexpected(error)


def _refused(event: dict[str, Any]) -> Reply | None:
    """404 for anything but ``POST /route``, 415 for a body that is not declared JSON; None otherwise."""
    if event.get("httpMethod") != "POST" or (event.get("resource") or event.get("path")) != ROUTE_PATH:
        reply = Reply(HTTPStatus.NOT_FOUND, {"message": "Not found"})
    elif media_type(event) not in ("", JSON_MEDIA_TYPE):
        reply = Reply(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"message": "Content-Type must be application/json (or omitted)"}
        )
    else:
        return None
    metrics.add_metric(name=RouterMetric.BAD_REQUEST, unit=MetricUnit.Count, value=1)
    return reply


class BadRequest(Exception):
    """The body is not a route request; ``problems`` name the fields."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']} {p['message']}" for p in problems))
        self.problems = problems


def _read_request(event: dict[str, Any]) -> RouteRequest:
    text = decode_body(event.get("body"), base64_encoded=bool(event.get("isBase64Encoded")))
    if not text:
        raise BadRequest(describe_validation_errors([{"type": "missing", "loc": ("body",)}]))
    try:
        data = parse_json_body(text)
    except json.JSONDecodeError:
        raise BadRequest(describe_validation_errors([{"type": "json_invalid", "loc": ("body",)}])) from None
    try:
        return RouteRequest.from_body(data)
    except RequestValidationError as error:
        raise BadRequest(describe_validation_errors(error.errors())) from None


def route(request: RouteRequest) -> Reply:
    service = get_service()
    limit = service.settings.max_query_chars
    if len(request.query) > limit:
        raise InvalidRequestError(
            "query", f"must be at most {limit} characters after trimming (got {len(request.query)})"
        )
    outcome = service.route(request.query, include_reasoning=request.include_reasoning)
    _record(service, outcome, request)
    response = _response(service, outcome)
    _capture(service, request, response)
    return Reply(HTTPStatus.OK, response.to_dict())


def _capture(service: RouterService, request: RouteRequest, response: RouteResponse) -> None:
    """Buffer the routed query for capture (after the answer is decided; sent by the capture's thread) and count
    what became of earlier ones. Nothing here can change the response: a failure is a metric and a log line."""
    capture = capture_for(service)
    if capture is None:
        return
    try:
        capture.record(
            query=normalize_query(request.query),
            weights=response.weights,
            source=response.source,
            model=response.model,
            latency_ms=response.latency_ms,
        )
        counts = capture.take_counts()
    except Exception as error:
        _count_capture(RouterMetric.CAPTURE_FAILED, 1)
        logger.error("Capture failed; the response is unchanged", **_exception_fields(error, False))
        return
    _count_capture(RouterMetric.CAPTURE_FAILED, counts.failed)
    _count_capture(RouterMetric.CAPTURE_DROPPED, counts.dropped)


def _count_capture(name: RouterMetric, count: int) -> None:
    if count > 0:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)


def _unexpected(error: Exception) -> Reply:
    metrics.add_metric(name=RouterMetric.INTERNAL_ERROR, unit=MetricUnit.Count, value=1)
    try:
        service = get_service()
    except Exception as broken:
        logger.error("Unexpected error; answering with the default weights", **_exception_fields(error, False))
        logger.error("The router cannot start: its settings are invalid", **_exception_fields(broken, False))
        return Reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "The router is misconfigured"})
    logger.error(
        "Unexpected error; answering with the default weights",
        **_exception_fields(error, service.settings.log_queries),
    )
    outcome = service.default_outcome(error)
    metrics.add_metric(name=RouterMetric.DEFAULT_WEIGHTS_USED, unit=MetricUnit.Count, value=1)
    return Reply(HTTPStatus.OK, _response(service, outcome).to_dict())


initialize_container(os.environ)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del context
    return _proxy_response(handle(event), event)


def _proxy_response(reply: Reply, event: dict[str, Any]) -> dict[str, Any]:
    """The REST proxy integration's answer: JSON, with ``Access-Control-Allow-Origin`` for a configured
    origin (``api_cors_origins``; the preflight itself is API Gateway's mock integration)."""
    headers = {"Content-Type": JSON_MEDIA_TYPE}
    origin = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "origin"), None)
    if isinstance(origin, str) and origin in _allowed_origins():
        headers |= {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    body = json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False)
    return {"statusCode": int(reply.status), "headers": headers, "body": body, "isBase64Encoded": False}


def _response(service: RouterService, outcome: RouteOutcome) -> RouteResponse:
    return RouteResponse(
        weights=round_weights(outcome.decision.weights, service.settings.channels, decimals=WEIGHT_DECIMALS),
        reasoning=outcome.decision.reasoning,
        model=outcome.model,
        source=outcome.source.value,
        latency_ms=outcome.latency_ms,
    )


def _bad_request(problems: list[dict[str, str]]) -> Reply:
    metrics.add_metric(name=RouterMetric.BAD_REQUEST, unit=MetricUnit.Count, value=1)
    logger.info("Bad request", problems=problems)
    return Reply(HTTPStatus.BAD_REQUEST, bad_request_body(problems))


def _record(service: RouterService, outcome: RouteOutcome, request: RouteRequest) -> None:
    """One log line and the business metrics of this request."""
    log_queries = service.settings.log_queries
    _count_outcome(service, outcome)
    selection = outcome.selection
    if selection is not None and selection.refreshed and selection.problem is not None:
        _count(RouterMetric.MODEL_PARAMETER_INVALID, selection.problem.value)
        logger.error(
            "The model parameter is unusable; routing with the fallback selection",
            parameter=service.settings.model_parameter,
            problem=selection.problem.value,
            detail=selection.detail,
            model=selection.model.model_id,
        )
    micro = outcome.micro
    if micro is not None and micro.refreshed and micro.problem is not None:
        metrics.add_metric(name=RouterMetric.MICRO_ROUTER_UNAVAILABLE, unit=MetricUnit.Count, value=1)
        logger.error(
            "The micro-router is unusable; the model answers every query",
            problem=micro.problem.value,
            detail=micro.detail,
        )
    fields: dict[str, Any] = {
        "source": outcome.source.value,
        "model": outcome.model,
        "latency_ms": outcome.latency_ms,
        "include_reasoning": request.include_reasoning,
        "query_chars": len(request.query),
        "attempts": [_attempt_fields(a, log_queries) for a in outcome.attempts],
    }
    if outcome.micro_confidence is not None:
        fields["micro_confidence"] = round(outcome.micro_confidence, 4)
    if outcome.default_reason is not None:
        fields["default_reason"] = outcome.default_reason.value
    if log_queries:
        fields["query"] = request.query
    if outcome.error is not None:
        fields.update(_exception_fields(outcome.error, log_queries))
        logger.error("Routing failed unexpectedly; answered with the default weights", **fields)
    elif outcome.source is Source.DEFAULT:
        logger.warning("No model answered; answered with the default weights", **fields)
    else:
        logger.info("Routed", **fields)


def _count_outcome(service: RouterService, outcome: RouteOutcome) -> None:
    """The business metrics of one routed request (and a log line per circuit that changed state)."""
    metrics.add_metric(name=RouterMetric.ROUTE_LATENCY, unit=MetricUnit.Milliseconds, value=outcome.latency_ms)
    tracer.put_annotation(key="source", value=outcome.source.value)
    for attempt in outcome.attempts:
        if attempt.outcome is AttemptOutcome.MODEL_ERROR:
            _count(RouterMetric.MODEL_ERROR, attempt.code or "Unknown")
        elif attempt.outcome is AttemptOutcome.PARSE_FAILURE:
            _count(RouterMetric.PARSE_FAILURE, attempt.code or "unknown")
        elif attempt.outcome is AttemptOutcome.CIRCUIT_OPEN:
            _count(RouterMetric.CIRCUIT_OPEN, attempt.model_id)
    for event in outcome.circuit_events:
        _circuit_changed(service, event)
    if outcome.source is Source.CACHE:
        metrics.add_metric(name=RouterMetric.CACHE_HIT, unit=MetricUnit.Count, value=1)
    elif outcome.source is Source.MICRO:
        metrics.add_metric(name=RouterMetric.MICRO_ROUTER_ANSWERED, unit=MetricUnit.Count, value=1)
    elif outcome.source is Source.FALLBACK_MODEL:
        metrics.add_metric(name=RouterMetric.FALLBACK_MODEL_USED, unit=MetricUnit.Count, value=1)
    elif outcome.source is Source.DEFAULT:
        metrics.add_metric(name=RouterMetric.DEFAULT_WEIGHTS_USED, unit=MetricUnit.Count, value=1)
        if outcome.default_reason is DefaultReason.FALLBACK_CAPPED:
            metrics.add_metric(name=RouterMetric.FALLBACK_CAPPED, unit=MetricUnit.Count, value=1)


def _attempt_fields(attempt: Attempt, log_queries: bool) -> dict[str, Any]:
    """An attempt for the log line: a private detail (it may quote the query) only when queries may be logged."""
    fields: dict[str, Any] = {
        "model": attempt.model_id,
        "outcome": attempt.outcome.value,
        "code": attempt.code,
        "ms": attempt.duration_ms,
    }
    if attempt.detail is None or log_queries or not attempt.detail_private:
        fields["detail"] = attempt.detail
    else:
        fields["detail"] = None
        fields["detail_chars"] = len(attempt.detail)  # withheld: router_log_queries is off
    return fields


def _circuit_changed(service: RouterService, event: CircuitEvent) -> None:
    if event.transition is Transition.OPENED:
        _count(RouterMetric.CIRCUIT_OPENED, event.model_id)
        logger.warning(
            "Circuit re-opened: the probe failed" if event.probe else "Circuit opened: the model is skipped",
            model=event.model_id,
            consecutive_failures=event.failures,
            open_seconds=service.settings.breaker_open_seconds,
        )
    else:
        logger.info("Circuit closed: the probe answered", model=event.model_id)


def _exception_fields(error: BaseException, log_queries: bool) -> dict[str, Any]:
    """``exception`` / ``exception_name`` for a log line. Without ``log_queries``, messages are withheld (a
    message can quote anything, the query included); the stack says where it broke. Settings errors quote the
    function's environment only and are kept."""
    if log_queries or isinstance(error, SettingsError):
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    else:
        text = "".join(_stack_without_messages(error))
    return {"exception": text.rstrip(), "exception_name": type(error).__name__}


def _stack_without_messages(error: BaseException) -> list[str]:
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if lines:
            lines.append("Caused by, or raised while handling:\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(current.__traceback__))
        lines.append(f"{type(current).__name__}: <message withheld: router_log_queries is off>\n")
        current = current.__cause__ or current.__context__
    return lines


def _count(name: RouterMetric, value: str) -> None:
    """A count with its own dimension (an EMF record of its own, so it does not tag the other metrics)."""
    dimension = name.own_dimension
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="service", value=metrics.service or "router_api")
        metric.add_dimension(name=dimension, value=value)
