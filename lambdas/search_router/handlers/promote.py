"""Promote / Reject: the router's model changes only when the quality gate passed.

``promote`` writes the SSM parameter the router reads (a ``contract.promotion.PromotionDocument``: the deployment
ARN, the prompt kind it was trained with, channels, run id, metrics). When the report enabled the cascade
(``report.micro_router.enabled``), it first copies the run's micro-router to
``promoted/micro-router/<run>/<sha256>.bin`` (outside ``runs/``, so the run folder's retention never takes it from the
router; named by its content, so a reused run id never overwrites it) and names that copy and τ in the document.
SSM keeps every earlier version, so a rollback is one step.
``reject`` keeps the router as it is and, when configured, deletes the rejected deployment.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError, error_code, error_message
from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.promotion import MicroRouterPromotion, PromotionDocument
from search_router.contract.tasks import DecisionInput, Promoted, Rejected
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.shared.channels import load_channels
from search_router.shared.prompts import PromptKind

DIGEST_CHARS = 16
"""Hex digits of the artifact's sha256 in its promoted key (64 bits: no two artifacts of a stack collide)."""


def promoted_micro_router(task: DecisionInput, environment: PipelineEnvironment) -> MicroRouterPromotion | None:
    """The micro-router the promotion names (its promoted copy, made here), or None when the cascade is off."""
    cascade = task.report.micro_router
    if cascade is None or not cascade.enabled:
        return None
    if cascade.artifact_uri is None or cascade.tau is None:
        raise ValueError("the report enabled the cascade without naming the micro-router's artifact and τ")
    artifact = s3io.get_bytes(*s3io.parse_s3_uri(cascade.artifact_uri))
    key = task.run.layout.promoted_micro_router(hashlib.sha256(artifact).hexdigest()[:DIGEST_CHARS])
    # idempotent (a re-entered Promote writes the same bytes to the same key); named by content, never overwritten
    uri = s3io.put_bytes(environment.data_bucket, key, artifact, "application/octet-stream")
    return MicroRouterPromotion(artifact_uri=uri, tau=cascade.tau)


def promoted_value(
    task: DecisionInput, environment: PipelineEnvironment, micro_router: MicroRouterPromotion | None = None
) -> PromotionDocument:
    """The promotion parameter's value: the run's deployment, with the student prompt it was trained for, and
    the micro-router when the cascade is enabled."""
    return PromotionDocument(
        model_id=task.deployment.deployment_arn,
        prompt_kind=PromptKind.STUDENT,
        channels=list(load_channels(environment.channels).names),
        run_id=task.run.run_id,
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        metrics=task.report.summary,
        report_uri=task.report.markdown_uri,
        micro_router=micro_router,
    )


def _current(ssm: Any, name: str) -> tuple[dict[str, Any], int] | None:
    """The parameter's value (parsed) and version; None when it is missing or holds no JSON object."""
    try:
        parameter = ssm.get_parameter(Name=name)["Parameter"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise
    try:
        value = json.loads(parameter["Value"])
    except ValueError:
        return None
    return (value, int(parameter["Version"])) if isinstance(value, dict) else None


@task_handler
def promote(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    environment = PipelineEnvironment.load()
    task = DecisionInput.model_validate(event)
    value = promoted_value(task, environment, promoted_micro_router(task, environment))
    name = environment.model_parameter
    ssm = CLIENTS.get("ssm")
    # Re-entered (a retry after a timeout, a redrive of a later step): this run's promotion is already in place,
    # and writing it again would add a parameter version (the rollback history) for nothing.
    current = _current(ssm, name)
    if current is not None and (current[0].get("model_id"), current[0].get("run_id")) == (value.model_id, value.run_id):
        logger.info("model already promoted", parameter=name, version=current[1], model_id=value.model_id)
        return Promoted(outcome="promoted", parameter=name, version=current[1], model_id=value.model_id).to_state()
    response = ssm.put_parameter(Name=name, Value=value.to_parameter(), Type="String", Overwrite=True)
    metrics.add_metric(name="ModelsPromoted", unit="Count", value=1)
    if value.micro_router is not None:
        metrics.add_metric(name="MicroRoutersPromoted", unit="Count", value=1)
    logger.info(
        "model promoted",
        parameter=name,
        version=response["Version"],
        model_id=value.model_id,
        micro_router=value.micro_router.model_dump() if value.micro_router else None,
    )
    return Promoted(outcome="promoted", parameter=name, version=response["Version"], model_id=value.model_id).to_state()


@task_handler
def reject(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = DecisionInput.model_validate(event)
    arn = task.deployment.deployment_arn
    failures = task.report.failures
    deleted = False
    delete_error = None
    if PipelineEnvironment.load().delete_rejected_deployments:
        try:
            CLIENTS.get("bedrock").delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
            deleted = True
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                deleted = True  # re-entered: an earlier attempt deleted it
            else:
                delete_error = error_message(exc)
                logger.warning("rejected deployment not deleted", deployment_arn=arn, error=delete_error)
    metrics.add_metric(name="ModelsRejected", unit="Count", value=1)
    logger.info("model rejected", deployment_arn=arn, failures=failures, deleted=deleted)
    return Rejected(
        outcome="rejected", failures=failures, deployment_deleted=deleted, delete_error=delete_error
    ).to_state()
