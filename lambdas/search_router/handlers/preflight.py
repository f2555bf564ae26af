"""Preflight: validate the run's input, choose the teacher, and make sure every model the run needs is usable here.

Fails fast, before any money is spent, with a message that names the setting to change. The model rules are
those of ``python -m cli doctor`` (:mod:`search_router.adapters.bedrock_catalog`,
:mod:`search_router.pipeline.model_checks`): lifecycle ACTIVE, model access granted, the student offered for
DISTILLATION in this Region, a documented teacher-student pair. ``teacher_model_id: "auto"`` picks the first usable
teacher of ``teacher_preference``; the choice (and every teacher refused before it, with the reason) travels in the run
state to the labeling, the job and the report.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError, error_code, reraise_transient
from search_router.adapters.bedrock_catalog import (
    BedrockCatalog,
    ModelPlan,
    Readiness,
    assess_models,
    plan_from_environment,
)
from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import InvalidRunInput, ModelNotUsable
from search_router.contract.layout import INPUTS
from search_router.contract.run import (
    RunSettings,
    RunState,
    RunTeacher,
    run_id_from_execution,
    settings_from_input,
)
from search_router.contract.tasks import PreflightFindings, PreflightInput, PreflightOutput
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.fusion import parse_score_samples
from search_router.pipeline.gate import GateThresholds
from search_router.pipeline.model_checks import teacher_not_allowed
from search_router.shared.channels import ChannelSet, load_channels

MAX_QUERY_FILE_BYTES = 200 * 1024 * 1024


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def model_plan(settings: RunSettings) -> ModelPlan:
    """The run's models: the deployed configuration (this function's environment) with the run's own settings."""
    return plan_from_environment(os.environ, teacher=settings.teacher_model_id, judge=settings.judge)


def check_models(settings: RunSettings) -> Readiness:
    """Every model the run needs, checked with the same rules as ``python -m cli doctor``; raises
    :class:`ModelNotUsable` naming each problem and its fix (a transient error is retried by the state machine)."""
    catalog = BedrockCatalog(CLIENTS.get("bedrock"), _region())
    try:
        readiness = assess_models(catalog, model_plan(settings))
    except ClientError as exc:
        reraise_transient(exc)
        raise
    failure = readiness.failure_message()
    if failure:
        raise ModelNotUsable(failure)
    return readiness


def check_input_file(
    uri: str,
    bucket: str,
    *,
    setting: str = "queries_s3_uri",
    extensions: tuple[str, ...] = (".txt", ".jsonl", ".csv"),
    example: str = "queries.txt",
) -> dict[str, Any]:
    """The user's input file named by run setting ``setting``: in this stack's bucket under inputs/, with one of
    ``extensions``, present, readable and at most 200 MB; ``InvalidRunInput`` says what to change."""
    source_bucket, key = s3io.parse_s3_uri(uri)
    if source_bucket != bucket:
        raise InvalidRunInput(
            f"{setting} must point into this stack's data bucket (s3://{bucket}/inputs/...), got {uri}"
        )
    if not key.startswith(INPUTS):
        raise InvalidRunInput(f"{setting} must be under s3://{bucket}/inputs/, got {uri}")
    if not key.endswith(extensions):
        raise InvalidRunInput(f"{setting} must end in {' or '.join(extensions)}, got {uri}")
    try:
        metadata = s3io.head(bucket, key)
    except ClientError as exc:
        if error_code(exc) not in ("403", "AccessDenied", "Forbidden"):
            raise
        raise InvalidRunInput(
            f"{setting} {uri} cannot be read ({error_code(exc)}): it may not exist, or be encrypted with a key "
            f"this stack cannot use; upload it with default encryption (aws s3 cp {example} {uri})"
        ) from None
    if metadata is None:
        raise InvalidRunInput(f"{setting} {uri} does not exist; upload it first (aws s3 cp {example} {uri})")
    if metadata["ContentLength"] > MAX_QUERY_FILE_BYTES:
        raise InvalidRunInput(f"{setting} {uri} is {metadata['ContentLength']} bytes; the limit is 200 MB")
    return {"uri": uri, "bytes": metadata["ContentLength"]}


def check_score_samples(uri: str, bucket: str, channels: ChannelSet) -> dict[str, Any]:
    """The fusion metric's score samples (``fusion_scores_s3_uri``), read and parsed now, before any money is
    spent: a bad line fails the run here with its number."""
    found = check_input_file(
        uri, bucket, setting="fusion_scores_s3_uri", extensions=(".jsonl",), example="scores.jsonl"
    )
    try:
        samples = parse_score_samples(s3io.get_text(*s3io.parse_s3_uri(uri)), channels.names)
    except ValueError as exc:
        raise InvalidRunInput(f"fusion_scores_s3_uri {uri}: {exc}") from None
    return {**found, "samples": len(samples)}


def check_gate_needs(settings: RunSettings, thresholds: GateThresholds) -> None:
    """The gate can only require what the run measures: with production held-out queries
    (``production_heldout_s3_uri``), ``gate_min_production_rubric`` needs the judge's ratings of them, so a run
    with the judge off would be refused at the end, after all its spending. (A run without production queries is
    not held to it: the check is not applicable.)"""
    if thresholds.min_production_rubric is not None and not settings.judge and settings.production_heldout_s3_uri:
        raise InvalidRunInput(
            f"judge is false but the stack's gate_min_production_rubric is {thresholds.min_production_rubric:g}: "
            "the gate needs the judge's ratings of the production queries (production_heldout_s3_uri); run with "
            "judge true (or deploy with gate_min_production_rubric null)"
        )


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = PreflightInput.model_validate(event)
    environment = PipelineEnvironment.load()
    settings = settings_from_input(environment.pipeline_defaults, task.input)
    refusal = teacher_not_allowed(settings.teacher_model_id, environment.teacher_preference)
    if refusal is not None:
        raise InvalidRunInput(f"teacher_model_id {settings.teacher_model_id}: {refusal}")
    check_gate_needs(settings, GateThresholds.from_dict(environment.gate))
    readiness = check_models(settings)
    query_file = check_input_file(settings.queries_s3_uri, environment.data_bucket) if settings.queries_s3_uri else None
    production_uri = settings.production_heldout_s3_uri
    production_file = (
        check_input_file(production_uri, environment.data_bucket, setting="production_heldout_s3_uri")
        if production_uri
        else None
    )
    score_samples = (
        check_score_samples(settings.fusion_scores_s3_uri, environment.data_bucket, load_channels(environment.channels))
        if settings.fusion_scores_s3_uri
        else None
    )
    choice = readiness.teacher
    teacher = RunTeacher(
        model_id=str(choice.model_id),
        requested=choice.requested,
        refused=[{"model_id": v.requirement.model_id, "reason": v.reason()} for v in choice.considered if not v.usable],
    )
    run = RunState(
        run_id=run_id_from_execution(task.execution_name),
        execution_arn=task.execution_arn,
        started_at=task.started_at,
        settings=settings,
        candidates=environment.candidates,
        teacher=teacher,
    )
    router_problems = [v for v in readiness.router if not v.usable]
    for verdict in router_problems:
        # The run can go on (the router falls back), but the deployed router is degraded: say so loudly.
        logger.warning("router model not usable", model_id=verdict.requirement.model_id, problems=verdict.problems)
    metrics.add_metric(name="RouterModelsNotUsable", unit="Count", value=len(router_problems))
    logger.info(
        "run accepted",
        run_id=run.run_id,
        teacher=teacher.describe(),
        settings=settings.model_dump(),
        warnings=[w for v in readiness.verdicts for w in v.warnings],
    )
    return PreflightOutput(
        run=run,
        preflight=PreflightFindings(
            teacher=choice.to_dict(),
            models=[v.to_dict() for v in readiness.verdicts],
            router_models=[v.to_dict() for v in readiness.router],
            query_file=query_file,
            **({"production_file": production_file} if production_file else {}),
            **({"score_samples": score_samples} if score_samples else {}),
        ),
    ).to_state()
