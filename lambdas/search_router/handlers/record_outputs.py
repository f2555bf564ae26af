"""RecordOutputs: write what the run produced (dataset, job, model, deployment) to ``runs/<run>/outputs.json``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.tasks import RecordedOutputs, RecordOutputsInput
from search_router.handlers.observability import logger, task_handler


def outputs_document(task: RecordOutputsInput) -> dict[str, Any]:
    """``runs/<run>/outputs.json``: what the run produced, for the operator and for a later clean-up."""
    run = task.run
    return {
        "run_id": run.run_id,
        "execution_arn": run.execution_arn,
        "started_at": run.started_at,
        "recorded_at": datetime.now(UTC).isoformat(),
        "settings": run.settings.model_dump(),
        "dataset": task.dataset.to_state(),
        "distillation": {
            **task.distillation.to_state(),
            "output_model_arn": task.distillation_status.output_model_arn,
            "training_loss": task.distillation_status.training_loss,
        },
        "deployment": task.deployment.to_state(),
    }


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = RecordOutputsInput.model_validate(event)
    uri = s3io.put_json(PipelineEnvironment.load().data_bucket, task.run.layout.outputs, outputs_document(task))
    logger.info("run outputs recorded", uri=uri)
    return RecordedOutputs(outputs_uri=uri).to_state()
