"""DriftCheck (``capture_queries``; EventBridge Scheduler, daily): the routed queries captured over the last
``drift_window_days`` days (``captured/raw/<date>/``) against the promoted run's training file
(``runs/<run>/dataset/train.jsonl``, the run of the promotion parameter's ``run_id``), as
:func:`search_router.pipeline.drift.drift_summary` computes it. Publishes each figure as a metric (none when there
is too little traffic or no promoted run: the alarms treat missing data as not breaching), and writes the summary
to ``drift/<date>.json`` and ``drift/latest.json``. Malformed captured lines are counted by reason (summary, log,
``DriftLinesMalformed``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError
from search_router.adapters.clients import CLIENTS
from search_router.adapters.ssm import parameter_reader
from search_router.contract.environment import DriftCheckEnvironment
from search_router.contract.errors import PipelineError
from search_router.contract.layout import DRIFT_LATEST, RunLayout, captured_raw_prefix, drift_summary_key
from search_router.contract.promotion import PromotionDocument
from search_router.contract.tasks import DriftCheckInput, DriftCheckOutput
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.dataset import LabeledExample, examples_from_training_jsonl
from search_router.pipeline.drift import DriftSettings, drift_summary, figures, read_routes, window_days
from search_router.router.model_source import ParameterNotFound
from search_router.shared.channels import ChannelSet, load_channels


def promotion_document(name: str) -> PromotionDocument | None:
    """The promotion document; None before the first promotion (no parameter, or not a document of ours)."""
    try:
        value = parameter_reader(lambda: CLIENTS.get("ssm"), name)()
    except ParameterNotFound:
        return None
    try:
        return PromotionDocument.model_validate(json.loads(value))
    except ValueError:
        logger.warning("Promotion parameter is not a promotion document", parameter=name)
        return None


class TrainingDataUnreadable(PipelineError):
    """The promoted run's training file cannot be read (expired by ``data_retention_days``, or not the file
    PrepareDataset wrote)."""


def _training(bucket: str, run_id: str | None, channels: ChannelSet) -> list[LabeledExample] | None:
    if run_id is None:
        return None
    key = RunLayout(run_id).train
    try:
        return examples_from_training_jsonl(s3io.get_text(bucket, key), channels)
    except (ClientError, ValueError) as exc:
        raise TrainingDataUnreadable(f"the promoted run {run_id}'s training file s3://{bucket}/{key}: {exc}") from exc


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del context
    task = DriftCheckInput.model_validate(event or {})
    end = task.date or (datetime.now(UTC) - timedelta(days=1)).date()
    environment = DriftCheckEnvironment.load()
    bucket, channels = environment.data_bucket, load_channels(environment.channels)
    days = window_days(end, environment.window_days)
    keys = [key for day in days for key in sorted(s3io.list_keys(bucket, captured_raw_prefix(day)))]
    routes = read_routes(
        ((key, s3io.get_bytes(bucket, key)) for key in keys), channels.names, max_routes=environment.max_records
    )
    promotion = promotion_document(environment.model_parameter)
    run_id = promotion.run_id if promotion else None
    summary = drift_summary(
        routes.routes,
        _training(bucket, run_id, channels),
        channels.names,
        DriftSettings(
            min_records=environment.min_records,
            micro_router_promoted=promotion is not None and promotion.micro_router is not None,
        ),
        context={
            "window_start": days[0].isoformat(),
            "window_end": end.isoformat(),
            "run_id": run_id,
            "model_id": promotion.model_id if promotion else None,
            "objects": routes.objects,
            "records_read": routes.records,
            "sampled": routes.sampled,
            "malformed": dict(sorted(routes.malformed.items())),
            "malformed_samples": list(routes.samples),
        },
    )
    uri = s3io.put_json(bucket, drift_summary_key(end), summary)
    s3io.put_json(bucket, DRIFT_LATEST, summary)
    values = figures(summary)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)
    metrics.add_metric(name="DriftRecords", unit=MetricUnit.Count, value=len(routes.routes))
    malformed = sum(routes.malformed.values())
    metrics.add_metric(name="DriftLinesMalformed", unit=MetricUnit.Count, value=malformed)
    log = logger.warning if malformed else logger.info
    log("Drift checked", status=summary["status"], summary_uri=uri, records=len(routes.routes), figures=values)
    return DriftCheckOutput(
        status=summary["status"],
        summary_uri=uri,
        records=len(routes.routes),
        figures=values,
        malformed=dict(sorted(routes.malformed.items())),
    ).to_state()


def latest_drift_summary(bucket: str) -> dict[str, Any] | None:
    """``drift/latest.json`` (what :func:`search_router.pipeline.drift.drift_section` renders); None when the
    check has not run yet."""
    return s3io.get_json_object(bucket, DRIFT_LATEST)
