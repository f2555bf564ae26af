"""The one place Powertools objects are created. Handlers import ``logger``, ``tracer`` and ``metrics``.

Service name and metrics namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE`` (set per function by the Lambda factory).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(utc=True)
tracer = Tracer()
metrics = Metrics()


def task_handler(function: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Callable[[dict[str, Any], Any], Any]:
    """The Powertools decorators every pipeline task gets, in the house order: logger context, then metrics
    flushing, then tracing."""

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    @functools.wraps(function)
    def wrapper(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return function(event, context)

    return wrapper
