"""TrainMicroRouter: train the micro-router on the training file PrepareDataset wrote, write its artifact under the
run, and predict the held-out set so the micro-router can be evaluated like a candidate.

The training file's examples get their templates from the groups file beside it (``dataset.train_groups_uri``), so
the confidence is calibrated on whole templates the weights never saw (``training.calibration_groups`` is
``templates``). A run prepared before that file existed (redriven) has none: each query is its own group
(``queries``), as before. A groups file that does not match the training file line by line fails the task.

Runs in the function with the numpy layer (training needs numpy; the router, which only predicts, does not).
Too few training records for the micro-router is a named failure (``MicroRouterNotTrainable``), never a silent
skip.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import PipelineError
from search_router.contract.tasks import MicroRouterTraining, TrainMicroRouterInput
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.dataset import examples_from_training_jsonl, read_training_groups
from search_router.pipeline.micro_router_training import (
    assign_training_groups,
    predict_heldout,
    train_micro_router,
)
from search_router.shared.channels import load_channels


class MicroRouterNotTrainable(PipelineError):
    """The training file cannot train the micro-router (too few records, or not the file PrepareDataset wrote), or
    its groups file does not match it."""


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = TrainMicroRouterInput.model_validate(event)
    run, dataset = task.run, task.dataset
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    channels = load_channels(environment.channels)

    try:
        examples = examples_from_training_jsonl(s3io.get_text(*s3io.parse_s3_uri(dataset.train_uri)), channels)
    except ValueError as exc:
        raise MicroRouterNotTrainable(f"the micro-router cannot be trained from {dataset.train_uri}: {exc}") from exc
    if dataset.train_groups_uri is not None:
        try:
            groups = read_training_groups(s3io.get_text(*s3io.parse_s3_uri(dataset.train_groups_uri)))
            examples = assign_training_groups(examples, groups)
        except ValueError as exc:
            raise MicroRouterNotTrainable(
                f"the groups file {dataset.train_groups_uri} does not belong to the training file "
                f"{dataset.train_uri}: {exc}"
            ) from exc
    try:
        router = train_micro_router(examples, channels.names)
    except ValueError as exc:
        raise MicroRouterNotTrainable(f"the micro-router cannot be trained from {dataset.train_uri}: {exc}") from exc
    heldout = [
        json.loads(line) for line in s3io.get_text(*s3io.parse_s3_uri(dataset.heldout_uri)).splitlines() if line.strip()
    ]
    predictions = predict_heldout(router, heldout)

    layout = run.layout
    artifact = router.to_bytes()
    artifact_uri = s3io.put_bytes(bucket, layout.micro_router_artifact, artifact, "application/octet-stream")
    predictions_uri = s3io.put_jsonl(bucket, layout.micro_router_predictions, predictions)
    mae = math.fsum(line["mae"] for line in predictions) / len(predictions) if predictions else None
    metrics.add_metric(name="MicroRouterTrainingExamples", unit="Count", value=len(examples))
    logger.info(
        "micro-router trained",
        examples=len(examples),
        heldout=len(predictions),
        bytes=len(artifact),
        mae=mae,
        calibration_groups=router.training["calibration_groups"],
        groups_file=dataset.train_groups_uri,
    )
    return MicroRouterTraining(
        artifact_uri=artifact_uri,
        predictions_uri=predictions_uri,
        train_records=len(examples),
        heldout_records=len(predictions),
        artifact_bytes=len(artifact),
        mae_overall=None if mae is None else round(mae, 6),
        training=dict(router.training),
    ).to_state()
