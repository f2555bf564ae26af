"""Batch labeling (``labeling_mode: batch``): StartBatchLabeling, CheckBatchLabeling, CollectBatchLabels.

``start`` writes one Converse record per planned query (every shard's, in plan order) to
``runs/<run>/batch-labeling/input/queries.jsonl`` and creates the batch inference job, idempotent per execution
(``clientRequestToken`` from the execution ARN; a re-entered start finds the job by its name). A plan below the
batch minimum is refused (:class:`~search_router.contract.errors.BatchLabelingFailed`, naming both numbers and
``labeling_mode: on_demand``). ``check`` is polled by the state machine's Wait/Check loop; a job that ends
``Failed``, ``Stopped`` or ``Expired`` fails the run with the service's message. ``collect`` reads the job's
``*.jsonl.out`` files with the shared parser and writes each shard's ``shard-NNNNN.jsonl`` and
``shard-NNNNN.stats.json`` exactly as LabelShard does, so PrepareDataset and everything after it are unchanged.
"""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError, error_message
from search_router.adapters.bedrock import (
    batch_job_request,
    batch_job_status,
    batch_output_lines,
    create_once,
)
from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import BatchLabelingFailed
from search_router.contract.run import RunState, bedrock_name, hours_since, next_wait_seconds
from search_router.contract.tasks import (
    BatchLabelingJob,
    BatchLabelingStatus,
    BatchLabelsSummary,
    CheckBatchLabelingInput,
    CollectBatchLabelsInput,
    ShardPlan,
    StartBatchLabelingInput,
)
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.batch_labeling import BatchTooSmall, batch_input, parse_batch_output, shard_labels
from search_router.pipeline.dataset import write_examples
from search_router.pipeline.queries.query import Query
from search_router.shared.channels import load_channels

MAX_WAIT_SECONDS: Final = 1800
"""Longest wait between two status checks of a job that has been queued or running for hours."""


def _plan_queries(bucket: str, plan: ShardPlan) -> list[Query]:
    """Every planned query, shard by shard in index order (the record ids are positions in this list)."""
    queries: list[Query] = []
    for shard in sorted(plan.shards, key=lambda item: item.index):
        queries += [
            Query(text=q["text"], category=q["category"], source=q["source"], template=q.get("template"))
            for q in s3io.get_json(bucket, shard.key)["queries"]
        ]
    return queries


def job_request(run: RunState, *, input_uri: str, output_uri: str) -> dict[str, Any]:
    """The exact CreateModelInvocationJob request for this run."""
    environment = PipelineEnvironment.load()
    return batch_job_request(
        job_name=bedrock_name(environment.stack_name, run.run_id, "label"),
        role_arn=environment.bedrock_role_arn,
        model_id=run.teacher_model_id,
        input_uri=input_uri,
        output_uri=output_uri,
        token=run.token("batch-label"),
        tags=run.tags(environment.stack_name),
    )


@task_handler
def start(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = StartBatchLabelingInput.model_validate(event)
    run = task.run
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    queries = _plan_queries(bucket, task.plan)
    try:
        records = batch_input(queries, channels=load_channels(environment.channels))
    except BatchTooSmall as exc:
        raise BatchLabelingFailed(str(exc)) from None
    input_uri = s3io.put_text(bucket, run.layout.batch_labeling_input, records, "application/x-ndjson")
    output_uri = s3io.s3_uri(bucket, run.layout.batch_labeling_output_prefix)
    request = job_request(run, input_uri=input_uri, output_uri=output_uri)
    bedrock = CLIENTS.get("bedrock")
    try:
        job_arn, created = create_once(
            bedrock, "batch", request["jobName"], bedrock.create_model_invocation_job, request
        )
    except ClientError as exc:
        raise BatchLabelingFailed(
            f"could not start batch labeling job {request['jobName']}: {error_message(exc)}"
        ) from None
    if created:
        metrics.add_metric(name="BatchLabelingJobsStarted", unit="Count", value=1)
        logger.info("batch labeling job started", job_arn=job_arn, job_name=request["jobName"], records=len(queries))
    return BatchLabelingJob(
        job_arn=job_arn, job_name=request["jobName"], input_uri=input_uri, output_uri=output_uri, records=len(queries)
    ).to_state()


@task_handler
def check(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = CheckBatchLabelingInput.model_validate(event)
    job = task.batch_labeling
    status = batch_job_status(job.job_arn)
    elapsed = hours_since(status.submit_time)
    logger.info("batch labeling status", job_arn=job.job_arn, status=status.status, counts=status.counts)
    if not status.running and not status.succeeded:
        metrics.add_metric(name="BatchLabelingJobsFailed", unit="Count", value=1)
        why = status.message or (
            "it was stopped (by hand, or by the compensation of an earlier failed attempt of this run); start a new run"
            if status.status == "Stopped"
            else "no message given"
        )
        raise BatchLabelingFailed(f"batch labeling job {job.job_name} {status.status}: {why}")
    return BatchLabelingStatus(
        status="Completed" if status.succeeded else "InProgress",
        service_status=status.status,
        counts=status.counts,
        elapsed_minutes=round(elapsed * 60, 1),
        next_wait_seconds=next_wait_seconds(task.run.settings.poll_seconds, elapsed * 3600, cap=MAX_WAIT_SECONDS),
    ).to_state()


@task_handler
def collect(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = CollectBatchLabelsInput.model_validate(event)
    run, plan = task.run, task.plan
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    queries = _plan_queries(bucket, plan)
    if len(queries) != task.batch_labeling.records:
        raise BatchLabelingFailed(
            f"the plan holds {len(queries)} queries but batch labeling job {task.batch_labeling.job_name} was "
            f"given {task.batch_labeling.records}: the plan changed after the job started"
        )
    channels = load_channels(environment.channels)
    output = parse_batch_output(batch_output_lines(task.batch_labeling.output_uri), queries, channels=channels)
    shards = sorted(plan.shards, key=lambda item: item.index)
    for shard, labels in zip(shards, shard_labels(output, [s.count for s in shards]), strict=True):
        keys = run.layout.shard(shard.index)
        stats = {**labels.stats, "shard": shard.index}
        s3io.put_text(bucket, keys.examples, write_examples(labels.examples), "application/x-ndjson")
        s3io.put_json(bucket, keys.stats, stats)  # last: the shard is done
    stats = output.to_stats()
    metrics.add_metric(name="ExamplesLabeled", unit="Count", value=stats["labeled"])
    metrics.add_metric(name="InvalidTeacherAnswers", unit="Count", value=stats["invalid_total"])
    logger.info(
        "batch labels collected",
        labeled=stats["labeled"],
        invalid=stats["invalid"],
        errors=stats["errors"],
        unlabeled=stats["unlabeled_by_reason"],
        batch=stats["batch"],
    )
    return BatchLabelsSummary(
        shards=len(shards),
        labeled=stats["labeled"],
        invalid=stats["invalid_total"],
        errors=stats["errors_total"],
        unlabeled=stats["unlabeled"],
        unreadable=stats["batch"]["unreadable"],
    ).to_state()
