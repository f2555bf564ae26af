"""RecordOutputs: write what the run produced (dataset, job, model, deployment) to ``runs/<run>/outputs.json``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.run import RunState
from search_router.handlers.observability import logger, task_handler


def outputs_document(event: dict[str, Any]) -> dict[str, Any]:
    run = RunState.model_validate(event["run"])
    return {
        "run_id": run.run_id,
        "execution_arn": run.execution_arn,
        "started_at": run.started_at,
        "recorded_at": datetime.now(UTC).isoformat(),
        "settings": run.settings.model_dump(),
        "dataset": event.get("dataset"),
        "distillation": {
            **(event.get("distillation") or {}),
            "output_model_arn": (event.get("distillation_status") or {}).get("output_model_arn"),
            "training_loss": (event.get("distillation_status") or {}).get("training_loss"),
        },
        "deployment": event.get("deployment"),
    }


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = RunState.model_validate(event["run"])
    document = outputs_document(event)
    uri = s3io.put_json(PipelineEnvironment.load().data_bucket, run.layout.outputs, document)
    logger.info("run outputs recorded", uri=uri)
    return {"outputs_uri": uri}
