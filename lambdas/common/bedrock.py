"""Bedrock control-plane helpers for pipeline tasks: error classification and tag shapes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.errors import TransientError
from common.observability import logger
from routing.aws import CLIENTS
from routing.labeling import error_code

__all__ = [
    "TRANSIENT_CODES",
    "bedrock_tags",
    "error_code",
    "error_message",
    "reraise_transient",
    "stop_evaluation_jobs",
]

TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalServerException", "TooManyRequestsException"}
)


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", str(exc)))


def reraise_transient(exc: ClientError) -> None:
    """Turn throttling and 5xx answers into :class:`TransientError`, which the state machine retries."""
    if error_code(exc) in TRANSIENT_CODES:
        raise TransientError(f"{error_code(exc)}: {error_message(exc)}") from exc


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
