"""Bedrock control-plane helpers for pipeline tasks: create once (or find what an earlier attempt created), stop
evaluation jobs, tag shapes. Errors are classified by :mod:`search_router.adapters.aws_errors`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search_router.adapters.aws_errors import ClientError, error_code, error_message, reraise_transient
from search_router.adapters.clients import CLIENTS
from search_router.handlers.observability import logger

__all__ = ["bedrock_tags", "create_once", "find_by_name", "name_taken", "stop_evaluation_jobs"]

# What a create call that ran before (a retry after a timeout, a redrive) finds by name: (List operation,
# summaries key, name field, ARN field).
LISTINGS = {
    "job": ("list_model_customization_jobs", "modelCustomizationJobSummaries", "jobName", "jobArn"),
    "deployment": (
        "list_custom_model_deployments",
        "modelDeploymentSummaries",
        "customModelDeploymentName",
        "customModelDeploymentArn",
    ),
    "evaluation": ("list_evaluation_jobs", "jobSummaries", "jobName", "jobArn"),
}


def name_taken(exc: ClientError) -> bool:
    """The create failed because a resource of that name exists (Bedrock answers ConflictException, or a
    ValidationException saying so, depending on the operation)."""
    code, message = error_code(exc), error_message(exc).lower()
    return code == "ConflictException" or (code == "ValidationException" and "already exist" in message)


def find_by_name(bedrock: Any, kind: str, name: str) -> str | None:
    """The ARN of the job, deployment or evaluation job named exactly ``name``, if one exists."""
    operation, key, name_field, arn_field = LISTINGS[kind]
    for page in bedrock.get_paginator(operation).paginate(nameContains=name):
        for summary in page.get(key, []):
            if summary.get(name_field) == name:
                return str(summary[arn_field])
    return None


def create_once(
    bedrock: Any, kind: str, name: str, create: Callable[..., dict[str, Any]], request: dict[str, Any]
) -> tuple[str, bool]:
    """Run ``create(**request)``, or, re-entered after an earlier attempt created the resource (a retry after a
    timeout, a redrive), find that resource by its ``name``. Returns ``(arn, created)``.

    Throttling and 5xx answers raise :class:`~search_router.contract.errors.TransientError` (the state machine retries
    them); any other refusal re-raises the ``ClientError`` for the caller to word.
    """
    arn_field = LISTINGS[kind][3]  # the create response names the ARN like the summaries do
    try:
        return str(create(**request)[arn_field]), True
    except ClientError as exc:
        reraise_transient(exc)
        existing = find_by_name(bedrock, kind, name) if name_taken(exc) else None
        if existing is None:
            raise
        logger.info("created by an earlier attempt (re-entered)", kind=kind, resource_name=name, arn=existing)
        return existing, False


def bedrock_tags(tags: dict[str, str]) -> list[dict[str, Any]]:
    """Bedrock's tag list shape ``[{"key": ..., "value": ...}]``."""
    return [{"key": key, "value": value} for key, value in sorted(tags.items())]


def stop_evaluation_jobs(job_arns: list[str]) -> list[str]:
    """Stop judge jobs, best effort (they bill while they run); returns the ARNs that could not be stopped."""
    failed = []
    for arn in job_arns:
        try:
            CLIENTS.get("bedrock").stop_evaluation_job(jobIdentifier=arn)
        except ClientError as exc:
            if error_code(exc) not in ("ResourceNotFoundException", "ValidationException", "ConflictException"):
                failed.append(arn)
                logger.warning("evaluation job not stopped", job_arn=arn, code=error_code(exc))
    return failed
