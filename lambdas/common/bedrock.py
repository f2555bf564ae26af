"""Bedrock control-plane helpers for pipeline tasks: error classification and tag shapes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.aws_errors import TRANSIENT_CODES, error_code, error_message, reraise_transient
from common.observability import logger
from routing.aws import CLIENTS

__all__ = [
    "TRANSIENT_CODES",
    "bedrock_tags",
    "error_code",
    "error_message",
    "reraise_transient",
    "stop_evaluation_jobs",
]


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
