"""Deployment: put the distilled model on an on-demand custom model deployment and wait until Active.

Invoke the result with the *deployment* ARN (``customModelDeploymentArn``) as ``modelId``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters.aws_errors import ClientError, error_message, reraise_transient
from search_router.adapters.bedrock import bedrock_tags, create_once
from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import DeploymentFailed
from search_router.contract.run import RunState, bedrock_name, hours_since, next_wait_seconds
from search_router.contract.tasks import CheckDeploymentInput, Deployment, DeploymentStatus, StartDeploymentInput
from search_router.handlers.observability import logger, metrics, task_handler

# A deployment normally becomes Active within minutes; past this the run fails instead of waiting forever.
MAX_CREATING_HOURS = 3.0
MAX_WAIT_SECONDS = 300


def deployment_request(run: RunState, *, model_arn: str) -> dict[str, Any]:
    stack_name = PipelineEnvironment.load().stack_name
    return {
        "modelDeploymentName": bedrock_name(stack_name, run.run_id),
        "modelArn": model_arn,
        "description": f"Distilled search-intent router of run {run.run_id} ({stack_name})",
        "tags": bedrock_tags(run.tags(stack_name)),
        "clientRequestToken": run.token("deploy"),
    }


@task_handler
def start(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = StartDeploymentInput.model_validate(event)
    if task.distillation_status.output_model_arn is None:
        raise DeploymentFailed(
            "the distillation produced no model to deploy (distillation_status has no output_model_arn)"
        )
    request = deployment_request(task.run, model_arn=task.distillation_status.output_model_arn)
    bedrock = CLIENTS.get("bedrock")
    try:
        arn, created = create_once(
            bedrock,
            "deployment",
            request["modelDeploymentName"],
            bedrock.create_custom_model_deployment,
            request,
        )
    except ClientError as exc:
        raise DeploymentFailed(
            f"could not create deployment {request['modelDeploymentName']}: {error_message(exc)}"
        ) from None
    if created:
        logger.info("deployment requested", deployment_arn=arn)
    return Deployment(
        deployment_arn=arn, deployment_name=request["modelDeploymentName"], model_arn=request["modelArn"]
    ).to_state()


@task_handler
def check(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = CheckDeploymentInput.model_validate(event)
    arn = task.deployment.deployment_arn
    try:
        deployment = CLIENTS.get("bedrock").get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    except ClientError as exc:
        reraise_transient(exc)
        raise
    status = deployment["status"]
    logger.info("deployment status", deployment_arn=arn, status=status)
    if status == "Failed":
        metrics.add_metric(name="DeploymentsFailed", unit="Count", value=1)
        raise DeploymentFailed(
            f"deployment {deployment.get('modelDeploymentName', arn)} Failed: "
            f"{deployment.get('failureMessage', 'no message given')}"
        )
    hours = hours_since(deployment.get("createdAt"))
    if status == "Creating" and hours > MAX_CREATING_HOURS:
        raise DeploymentFailed(
            f"deployment {arn} still Creating after {hours:.1f} h; check the Bedrock console and start a new run"
        )
    wait = next_wait_seconds(task.run.settings.deployment_poll_seconds, hours * 3600, cap=MAX_WAIT_SECONDS)
    return DeploymentStatus(status=status, next_wait_seconds=wait).to_state()
