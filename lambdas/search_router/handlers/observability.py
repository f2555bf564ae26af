"""The one place Powertools objects are created. Handlers import ``logger``, ``tracer`` and ``metrics``.

Service name and metrics namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE`` (set per function by the Lambda factory).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

TRACED_MODULES = ("botocore",)

logger = Logger(utc=True)
# Only botocore is patched (every AWS call the functions make goes through it): patching every library the X-Ray
# SDK knows imports and wraps each of them at cold start (~40 ms measured, benchmarks/cold_start.py).
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()


def run_id_of(event: Any) -> str | None:
    """The run a task's event belongs to: ``run.run_id`` (every task after Preflight), or the execution's name
    (Preflight, which derives the run id from it), or a compensation's ``compensation.run_id``."""
    if not isinstance(event, dict):
        return None
    for holder in (event.get("run"), event.get("compensation"), event):
        if isinstance(holder, dict) and isinstance(holder.get("run_id"), str):
            return holder["run_id"]
    name = event.get("execution_name")
    if isinstance(name, str):
        from search_router.contract.run import run_id_from_execution

        return run_id_from_execution(name)
    return None


def task_handler(function: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Callable[[dict[str, Any], Any], Any]:
    """The Powertools decorators every pipeline task gets, in the house order: logger context, then metrics
    flushing, then tracing. Every log line of the invocation carries the run id (``run_id``) as its
    correlation key; the state is cleared between invocations."""

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    @functools.wraps(function)
    def wrapper(event: dict[str, Any], context: Any) -> dict[str, Any]:
        run_id = run_id_of(event)
        if run_id is not None:
            logger.append_keys(run_id=run_id)
        return function(event, context)

    return wrapper
