"""Distillation: start the Bedrock model customization job (DISTILLATION) and report its status.

``start`` is idempotent per execution (``clientRequestToken`` derived from the execution ARN), so a
redrive never starts a second job. ``check`` is polled by the state machine's Wait/Check/Choice loop; it reports
``Completed`` only once the job's custom model is ``Active`` (it can stay ``Creating`` after the job completes,
and ``CreateCustomModelDeployment`` refuses a model that is not Active).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError, error_code, error_message, reraise_transient
from search_router.adapters.bedrock import bedrock_tags, create_once
from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import DistillationFailed, DistillationTimedOut
from search_router.contract.run import RunState, bedrock_name, hours_since, next_wait_seconds
from search_router.contract.tasks import (
    CheckDistillationInput,
    DistillationJob,
    DistillationStatus,
    StartDistillationInput,
)
from search_router.handlers.observability import logger, metrics, task_handler

# Longest teacher answer Bedrock generates while preparing the distillation data (tokens).
MAX_RESPONSE_LENGTH_FOR_INFERENCE = 1000
IN_PROGRESS = ("InProgress", "Stopping")
MODEL_ACTIVE = "Active"  # GetCustomModel.modelStatus: Creating | Active | Failed
MODEL_FAILED = "Failed"
# Longest wait between two status checks of a job that has been running for hours.
MAX_WAIT_SECONDS = 1800


def job_request(run: RunState, *, train_uri: str) -> dict[str, Any]:
    """The exact CreateModelCustomizationJob request for this run."""
    environment = PipelineEnvironment.load()
    stack_name = environment.stack_name
    tags = bedrock_tags(run.tags(stack_name))
    return {
        "jobName": bedrock_name(stack_name, run.run_id),
        "customModelName": bedrock_name(stack_name, run.run_id, "router"),
        "roleArn": environment.bedrock_role_arn,
        "clientRequestToken": run.token("distill"),
        "baseModelIdentifier": environment.models["student_job"],
        "customizationType": "DISTILLATION",
        "trainingDataConfig": {"s3Uri": train_uri},
        "outputDataConfig": {"s3Uri": s3io.s3_uri(environment.data_bucket, run.layout.distillation_prefix)},
        "customizationConfig": {
            "distillationConfig": {
                "teacherModelConfig": {
                    "teacherModelIdentifier": run.teacher_model_id,
                    "maxResponseLengthForInference": MAX_RESPONSE_LENGTH_FOR_INFERENCE,
                }
            }
        },
        "jobTags": tags,
        "customModelTags": tags,
    }


@task_handler
def start(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = StartDistillationInput.model_validate(event)
    run = task.run
    request = job_request(run, train_uri=task.dataset.train_uri)
    bedrock = CLIENTS.get("bedrock")
    # A retry or a redrive after the job was created: the same clientRequestToken returns it, and should the
    # service refuse the name instead, the job is found by its name (unique per account and Region).
    try:
        job_arn, created = create_once(
            bedrock, "job", request["jobName"], bedrock.create_model_customization_job, request
        )
    except ClientError as exc:
        message = f"could not start distillation job {request['jobName']}: {error_message(exc)}"
        raise DistillationFailed(message) from None
    if created:
        metrics.add_metric(name="DistillationJobsStarted", unit="Count", value=1)
        logger.info("distillation job started", job_arn=job_arn, job_name=request["jobName"])
    return DistillationJob(
        job_arn=job_arn, job_name=request["jobName"], custom_model_name=request["customModelName"]
    ).to_state()


def _model_status(bedrock: Any, job: dict[str, Any]) -> str | None:
    """The status of a completed job's custom model (``GetCustomModel.modelStatus``): it can stay ``Creating``
    after the job says ``Completed``, and a deployment needs it ``Active``. None while the model is not visible."""
    arn = job.get("outputModelArn")
    if not arn:
        return None
    try:
        model = bedrock.get_custom_model(modelIdentifier=arn)
    except ClientError as exc:
        reraise_transient(exc)
        if error_code(exc) == "ResourceNotFoundException":
            return None  # not visible yet: look again at the next poll
        raise
    status = str(model.get("modelStatus", "Creating"))
    if status == MODEL_FAILED:
        metrics.add_metric(name="DistillationJobsFailed", unit="Count", value=1)
        raise DistillationFailed(
            f"distillation job {job.get('jobName', job.get('jobArn'))} completed but its custom model {arn} is "
            f"Failed: {model.get('failureMessage', 'no message given')}"
        )
    return status


@task_handler
def check(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = CheckDistillationInput.model_validate(event)
    run = task.run
    job_arn = task.distillation.job_arn
    bedrock = CLIENTS.get("bedrock")
    try:
        job = bedrock.get_model_customization_job(jobIdentifier=job_arn)
    except ClientError as exc:
        reraise_transient(exc)
        raise
    status = job["status"]
    details = job.get("statusDetails", {})
    sub_status = {
        "validation": details.get("validationDetails", {}).get("status"),
        "data_processing": details.get("dataProcessingDetails", {}).get("status"),
        "training": details.get("trainingDetails", {}).get("status"),
    }
    elapsed = hours_since(job.get("creationTime"))
    logger.info("distillation status", job_arn=job_arn, status=status, sub_status=sub_status, elapsed_h=elapsed)

    if status in ("Failed", "Stopped"):
        metrics.add_metric(name="DistillationJobsFailed", unit="Count", value=1)
        why = job.get("failureMessage") or (
            "it was stopped (by hand, or by the compensation of an earlier failed attempt of this run); start a new run"
            if status == "Stopped"
            else "no message given"
        )
        raise DistillationFailed(f"distillation job {job.get('jobName', job_arn)} {status}: {why}")
    if status == "InProgress" and elapsed > run.settings.max_distillation_hours:
        bedrock.stop_model_customization_job(jobIdentifier=job_arn)
        raise DistillationTimedOut(
            f"distillation job {job.get('jobName', job_arn)} ran {elapsed:.1f} h, more than max_distillation_hours="
            f"{run.settings.max_distillation_hours}; it was stopped. "
            "Raise max_distillation_hours or use fewer examples."
        )
    model_status = _model_status(bedrock, job) if status == "Completed" else None
    sub_status["model"] = model_status
    done = model_status == MODEL_ACTIVE
    result: dict[str, Any] = {
        "status": "Completed" if done else ("InProgress" if status in IN_PROGRESS or status == "Completed" else status),
        "sub_status": sub_status,
        "elapsed_minutes": round(elapsed * 60, 1),
        "next_wait_seconds": next_wait_seconds(run.settings.poll_seconds, elapsed * 3600, cap=MAX_WAIT_SECONDS),
    }
    if done:
        result["output_model_arn"] = job["outputModelArn"]
        loss = job.get("trainingMetrics", {}).get("trainingLoss")
        if loss is not None:
            result["training_loss"] = loss
        metrics.add_metric(name="DistillationJobsCompleted", unit="Count", value=1)
    return DistillationStatus(**result).to_state()
