"""The one classification of AWS errors: the code and message of an exception, and the named sets of codes that
each kind of call retries, each with its own policy.

Only ``adapters`` import botocore; handlers name its errors through this module (:class:`ClientError`,
:class:`BotoCoreError`) and the domain never sees them: the adapters turn a failed call into a plain-data error
(:class:`~search_router.shared.model_calls.ModelCallError`, :class:`~search_router.contract.errors.TransientError`,
...). Free of Powertools (the CLI imports it too): importing Powertools' ``Metrics`` fixes its namespace from the
environment of that moment.

Which codes are retried, and how, depends on the call:

- :data:`TRANSIENT_CODES`: control-plane calls of pipeline tasks (create, describe, stop). :func:`reraise_transient`
  raises :class:`~search_router.contract.errors.TransientError` and the state machine's Retry rule runs the task
  again after its backoff; a poller (the judge's, the sweep's) looks again at the next poll.
- :data:`TEACHER_RETRY_CODES`: Converse calls of labeling and evaluation (:mod:`search_router.adapters.converse`),
  with the network errors of :func:`is_transport_error`. Retried in the task with exponential backoff and full
  jitter: labeling up to ``max_throttle_retries`` times a query, under the AIMD limiter; evaluation up to ten
  attempts within the Lambda's deadline.
- :data:`THROTTLING_CODES`: the subset that means "too many requests": labeling's AIMD limiter halves its calls in
  flight on them (:mod:`search_router.pipeline.concurrency`).
- :data:`ROUTER_RETRY_CODES`: the router's model calls (:mod:`search_router.adapters.bedrock_runtime`). One more
  try on the same model after a short jittered backoff, only within the request's time budget
  (:mod:`search_router.router.service`).

The botocore clients themselves retry only where the caller does not: pipeline clients (``PIPELINE_CONFIG``) retry
adaptively, the teacher, evaluation and router clients make one attempt (their callers retry, seen by the limiter or
bounded by the deadline).
"""

from __future__ import annotations

from typing import Final

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from search_router.contract.errors import TransientError

__all__ = [
    "CONNECTION_ERROR",
    "ROUTER_RETRY_CODES",
    "TEACHER_RETRY_CODES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "BotoCoreError",
    "ClientError",
    "error_code",
    "error_message",
    "is_transport_error",
    "reraise_transient",
]

THROTTLING_CODES: Final = frozenset({"ThrottlingException", "ServiceUnavailableException"})
"""The service says "too many requests" (HTTP 429 / 503): slow down, not only try again."""
_SERVER_ERROR: Final = "InternalServerException"
_MODEL_NOT_READY: Final = "ModelNotReadyException"  # a deployment or model that is still warming up

TRANSIENT_CODES: Final = THROTTLING_CODES | {_SERVER_ERROR, "TooManyRequestsException"}
"""Control-plane answers a later attempt may not get (throttling, 5xx): the state machine retries the task."""

TEACHER_RETRY_CODES: Final = THROTTLING_CODES | {_SERVER_ERROR, _MODEL_NOT_READY, "ModelTimeoutException"}
"""Converse answers worth another call with backoff. Everything else (AccessDenied, Validation, ResourceNotFound,
ModelError ...) is final for that query."""

CONNECTION_ERROR: Final = "ConnectionError"
"""The router's code for a call that did not reach the service (connect failed or timed out, connection closed)."""
ROUTER_RETRY_CODES: Final = THROTTLING_CODES | {_SERVER_ERROR, _MODEL_NOT_READY, CONNECTION_ERROR}
"""Errors worth one more try on the same model (transient on the service side or on the way there)."""

_TRANSPORT_ERRORS: Final = (BotocoreConnectionError, ConnectTimeoutError, ReadTimeoutError)


def error_code(exc: BaseException) -> str:
    """The service error code of a ``ClientError`` (in-stream errors carry the event-stream member name,
    ``throttlingException``: the service's spelling is used), the class name of any other exception."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
        return code[:1].upper() + code[1:]
    return type(exc).__name__


def error_message(exc: BaseException) -> str:
    """The service's message of a ``ClientError``; the text of any other exception."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message") or exc)
    return str(exc)


def is_transport_error(exc: BaseException) -> bool:
    """A network-level botocore error (no connection, connect or read timeout): the call may never have arrived."""
    return isinstance(exc, _TRANSPORT_ERRORS)


def reraise_transient(exc: ClientError) -> None:
    """Turn throttling and 5xx answers into :class:`TransientError`, which the state machine retries."""
    if error_code(exc) in TRANSIENT_CODES:
        raise TransientError(f"{error_code(exc)}: {error_message(exc)}") from exc
