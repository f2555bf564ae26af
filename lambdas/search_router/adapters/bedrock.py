"""Bedrock control-plane helpers for pipeline tasks: create once (or find what an earlier attempt created), stop
evaluation and batch inference jobs, a batch job's request, status and output lines, tag shapes. Errors are
classified by :mod:`search_router.adapters.aws_errors`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError, error_code, error_message, reraise_transient
from search_router.adapters.clients import CLIENTS
from search_router.handlers.observability import logger

__all__ = [
    "BatchJobStatus",
    "batch_job_request",
    "batch_job_status",
    "batch_output_lines",
    "bedrock_tags",
    "create_once",
    "find_by_name",
    "name_taken",
    "stop_batch_job",
    "stop_evaluation_jobs",
]

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
    "batch": ("list_model_invocation_jobs", "invocationJobSummaries", "jobName", "jobArn"),
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


# ---------------------------------------------------------------------------------------------------------------
# Batch inference (CreateModelInvocationJob, modelInvocationType "Converse")
# ---------------------------------------------------------------------------------------------------------------
BATCH_RUNNING: Final = frozenset({"Submitted", "Validating", "Scheduled", "InProgress", "Stopping"})
"""``GetModelInvocationJob.status`` values of a job that has not ended (botocore's ``ModelInvocationJobStatus``)."""
BATCH_SUCCEEDED: Final = frozenset({"Completed", "PartiallyCompleted"})
"""Ended with output to read (``PartiallyCompleted``: some records failed; they are counted by their errors)."""
BATCH_COUNTS: Final = ("totalRecordCount", "processedRecordCount", "successRecordCount", "errorRecordCount")
BATCH_OUTPUT_SUFFIX: Final = ".jsonl.out"
"""Bedrock writes ``<input file name>.out`` per input file (under ``<output s3Uri>/<job id>/``, listed, not assumed)."""


def batch_job_request(
    *,
    job_name: str,
    role_arn: str,
    model_id: str,
    input_uri: str,
    output_uri: str,
    token: str,
    tags: dict[str, str],
    timeout_hours: int = 24,
) -> dict[str, Any]:
    """The exact CreateModelInvocationJob request of a Converse batch job (``timeout_hours`` 24-168)."""
    if not 24 <= timeout_hours <= 168:
        raise ValueError(f"a batch job's timeout must be 24-168 hours, got {timeout_hours}")
    return {
        "jobName": job_name,
        "roleArn": role_arn,
        "clientRequestToken": token,
        "modelId": model_id,
        "modelInvocationType": "Converse",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri}},
        "timeoutDurationInHours": timeout_hours,
        "tags": bedrock_tags(tags),
    }


@dataclass(frozen=True)
class BatchJobStatus:
    """What ``GetModelInvocationJob`` says of a job: its status, the service's message, its record counts."""

    status: str
    message: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    submit_time: Any = None

    @property
    def running(self) -> bool:
        return self.status in BATCH_RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status in BATCH_SUCCEEDED


def batch_job_status(job_arn: str) -> BatchJobStatus:
    """The job's status; throttling and 5xx raise :class:`~search_router.contract.errors.TransientError`."""
    try:
        job = CLIENTS.get("bedrock").get_model_invocation_job(jobIdentifier=job_arn)
    except ClientError as exc:
        reraise_transient(exc)
        raise
    counts = {key: int(job[key]) for key in BATCH_COUNTS if key in job}
    return BatchJobStatus(
        status=str(job["status"]), message=job.get("message"), counts=counts, submit_time=job.get("submitTime")
    )


def stop_batch_job(job_arn: str) -> bool:
    """Stop a batch job, best effort (it bills while it runs): True when it is stopping or had already ended."""
    try:
        CLIENTS.get("bedrock").stop_model_invocation_job(jobIdentifier=job_arn)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("ResourceNotFoundException", "ValidationException", "ConflictException"):
            return True  # gone, or not in a status that can be stopped (it ended)
        logger.warning("batch job not stopped", job_arn=job_arn, code=code)
        return False
    return True


def batch_output_lines(output_uri: str) -> Iterator[str]:
    """Every line of every ``*.jsonl.out`` file under the job's output location (the manifest is not a record)."""
    bucket, prefix = s3io.parse_s3_uri(output_uri)
    for key in sorted(s3io.list_keys(bucket, prefix)):
        if key.endswith(BATCH_OUTPUT_SUFFIX):
            yield from s3io.get_text(bucket, key).splitlines()
