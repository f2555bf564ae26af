"""The pipeline's model calls: one Bedrock Converse call, its client configurations, and its failures classified.

Two callers: labeling (the teacher, :func:`search_router.pipeline.labeling.label_queries`, through the label shard)
and the evaluation of a candidate (:mod:`search_router.handlers.evaluate`). Both retry in the task, so both clients
make a single attempt (a botocore retry would hide the throttling from labeling's limiter and stretch one call past
the timeouts the tasks plan with). :class:`BedrockConverse` is what they call: a failed call raises
:class:`~search_router.shared.model_calls.ModelCallError`, retryable for :data:`~.aws_errors.TEACHER_RETRY_CODES`
and network errors, an overload for :data:`~.aws_errors.THROTTLING_CODES`.
"""

from __future__ import annotations

import time
from typing import Any, Final

from botocore.config import Config

from search_router.adapters.aws_errors import (
    TEACHER_RETRY_CODES,
    THROTTLING_CODES,
    ClientError,
    error_code,
    error_message,
    is_transport_error,
)
from search_router.pipeline.labeling import ConverseOutcome
from search_router.shared.model_calls import ModelCallError, converse_request, converse_response_text

TEACHER_CONNECT_TIMEOUT_S: Final = 5
TEACHER_READ_TIMEOUT_S: Final = 60
TEACHER_MAX_ATTEMPTS: Final = 1
# Teacher calls: retries are done by label_queries (with jitter, and seen by the concurrency limiter), so botocore
# does not retry on its own: a botocore retry would hide the throttling from the limiter and stretch one call.
TEACHER_CLIENT_CONFIG: Final = Config(
    connect_timeout=TEACHER_CONNECT_TIMEOUT_S,
    read_timeout=TEACHER_READ_TIMEOUT_S,
    retries={"max_attempts": TEACHER_MAX_ATTEMPTS, "mode": "standard"},
    max_pool_connections=64,
)
TEACHER_CALL_TIMEOUT_S: Final = TEACHER_MAX_ATTEMPTS * (TEACHER_CONNECT_TIMEOUT_S + TEACHER_READ_TIMEOUT_S)
"""The longest one teacher call can take before botocore gives up on it (one attempt: connect + read)."""

EVAL_CLIENT_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=60, retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=32
)
"""Evaluation calls: one attempt each too (``answer_one`` retries within the Lambda's deadline)."""


def converse_text(
    client: Any,
    *,
    model_id: str,
    system: str,
    user: str,
    max_tokens: int,
    temperature: float,
) -> ConverseOutcome:
    """One ``bedrock-runtime`` Converse call with a system prompt and a single user turn.

    The answer is ``output.message.content`` — a *list* of blocks; the text blocks are joined (a model may put
    a reasoning block before the text). An empty ``system`` is not sent (the service rejects empty text).
    Errors propagate as botocore raises them.
    """
    params: dict[str, Any] = {
        "modelId": model_id,
        **converse_request(system=system, user=user, max_tokens=max_tokens, temperature=temperature),
    }
    started = time.perf_counter()
    response = client.converse(**params)
    latency_ms = (time.perf_counter() - started) * 1000.0
    text = converse_response_text(response)
    usage = response.get("usage") or {}
    metrics = response.get("metrics") or {}
    return ConverseOutcome(
        text=text,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        latency_ms=latency_ms,
        service_latency_ms=metrics.get("latencyMs"),
        stop_reason=response.get("stopReason"),
    )


def converse_failure(exc: BaseException) -> ModelCallError:
    """A failed Converse call as the pipeline sees it: the error code and the service's message; retryable for
    :data:`TEACHER_RETRY_CODES` and network errors (a network error's code is its class name); an overload for
    :data:`THROTTLING_CODES` (labeling's limiter halves its calls in flight)."""
    code = error_code(exc)
    service_error = isinstance(exc, ClientError)
    return ModelCallError(
        code,
        error_message(exc),
        retryable=is_transport_error(exc) or (service_error and code in TEACHER_RETRY_CODES),
        overload=service_error and code in THROTTLING_CODES,
    )


class BedrockConverse:
    """:class:`~search_router.pipeline.labeling.Converse` over a ``bedrock-runtime`` client (or anything with a
    compatible ``converse``): :func:`converse_text`, whatever fails raised as :func:`converse_failure`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __call__(
        self, *, model_id: str, system: str, user: str, max_tokens: int, temperature: float
    ) -> ConverseOutcome:
        try:
            return converse_text(
                self._client,
                model_id=model_id,
                system=system,
                user=user,
                max_tokens=max_tokens,
                temperature=temperature,
            )
        except Exception as exc:
            raise converse_failure(exc) from exc
