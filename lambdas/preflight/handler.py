"""Preflight: validate the run's input and make sure every model the run needs is usable here.

Fails fast, before any money is spent, with a message that names the setting to change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from common import s3io
from common.bedrock import error_code, error_message, reraise_transient
from common.errors import InvalidRunInput, ModelNotUsable
from common.observability import logger, task_handler
from common.run import RunState, env, pipeline_defaults, run_id_from_execution, settings_from_input
from routing.aws import CLIENTS

MAX_QUERY_FILE_BYTES = 200 * 1024 * 1024
_GEO_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au.", "global.")


@dataclass(frozen=True)
class ModelRequirement:
    """A model the run needs, and the setting a user changes to fix it."""

    role: str
    model_id: str
    setting: str
    needs_distillation: bool = False


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _foundation_id(model_id: str) -> str:
    return model_id.split(".", 1)[1] if model_id.startswith(_GEO_PREFIXES) else model_id


def check_model(requirement: ModelRequirement) -> dict[str, Any]:
    """Raise :class:`ModelNotUsable` unless the model (or inference profile) is ACTIVE here."""
    bedrock = CLIENTS.get("bedrock")
    region = _region()
    fix = f"change '{requirement.setting}' (execution input or cdk.json) to a model that is ACTIVE in {region}"
    model_id = requirement.model_id
    result: dict[str, Any] = {"role": requirement.role, "model_id": model_id}
    try:
        if model_id.startswith(_GEO_PREFIXES):
            profile = bedrock.get_inference_profile(inferenceProfileIdentifier=model_id)
            if profile.get("status") != "ACTIVE":
                raise ModelNotUsable(
                    f"{requirement.role} inference profile {model_id} is {profile.get('status')} in {region}; {fix}"
                )
            result["inference_profile"] = profile.get("inferenceProfileArn")
        details = bedrock.get_foundation_model(modelIdentifier=_foundation_id(model_id))["modelDetails"]
    except ClientError as exc:
        reraise_transient(exc)
        code = error_code(exc)
        if code in ("ResourceNotFoundException", "ValidationException"):
            raise ModelNotUsable(
                f"{requirement.role} model {model_id} does not exist in {region} ({error_message(exc)}); {fix}"
            ) from None
        if code == "AccessDeniedException":
            raise ModelNotUsable(
                f"{requirement.role} model {model_id} is not accessible in {region}: enable model access in the "
                f"Bedrock console (Model access) or {fix}. Service said: {error_message(exc)}"
            ) from None
        raise
    lifecycle = details.get("modelLifecycle", {}).get("status", "UNKNOWN")
    result["lifecycle"] = lifecycle
    if lifecycle != "ACTIVE":
        raise ModelNotUsable(
            f"{requirement.role} model {model_id} is {lifecycle} in {region} and may stop working; {fix}"
            + (" (for example 'us.amazon.nova-pro-v1:0')" if requirement.role == "teacher" else "")
        )
    if requirement.needs_distillation and "DISTILLATION" not in details.get("customizationsSupported", []):
        raise ModelNotUsable(
            f"{requirement.role} model {model_id} does not support DISTILLATION in {region} "
            f"(supports {details.get('customizationsSupported', [])}); {fix}"
        )
    return result


def check_query_file(uri: str, bucket: str) -> dict[str, Any]:
    source_bucket, key = s3io.parse_s3_uri(uri)
    if source_bucket != bucket:
        raise InvalidRunInput(
            f"queries_s3_uri must point into this stack's data bucket (s3://{bucket}/inputs/...), got {uri}"
        )
    if not key.startswith("inputs/"):
        raise InvalidRunInput(f"queries_s3_uri must be under s3://{bucket}/inputs/, got {uri}")
    if not key.endswith((".txt", ".jsonl", ".csv")):
        raise InvalidRunInput(f"queries_s3_uri must end in .txt, .jsonl or .csv, got {uri}")
    try:
        metadata = s3io.head(bucket, key)
    except ClientError as exc:
        if error_code(exc) not in ("403", "AccessDenied", "Forbidden"):
            raise
        raise InvalidRunInput(
            f"queries_s3_uri {uri} cannot be read ({error_code(exc)}): it may not exist, or be encrypted with a key "
            f"this stack cannot use; upload it with default encryption (aws s3 cp queries.txt {uri})"
        ) from None
    if metadata is None:
        raise InvalidRunInput(f"queries_s3_uri {uri} does not exist; upload it first (aws s3 cp queries.txt {uri})")
    if metadata["ContentLength"] > MAX_QUERY_FILE_BYTES:
        raise InvalidRunInput(f"queries_s3_uri {uri} is {metadata['ContentLength']} bytes; the limit is 200 MB")
    return {"uri": uri, "bytes": metadata["ContentLength"]}


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = settings_from_input(pipeline_defaults(), event.get("input"))
    allowed_teachers = json.loads(env("ALLOWED_TEACHERS"))
    if settings.teacher_model_id not in allowed_teachers:
        raise InvalidRunInput(
            f"teacher_model_id {settings.teacher_model_id} is not one this stack may invoke "
            f"({', '.join(allowed_teachers)}); "
            "add it to 'allowed_teacher_model_ids' in cdk.json and redeploy"
        )
    models = json.loads(env("MODELS"))
    requirements = [
        ModelRequirement("teacher", settings.teacher_model_id, "teacher_model_id"),
        ModelRequirement("student (customization base)", models["student_job"], "student_job_model_id", True),
        ModelRequirement("student (inference)", models["student"], "student_model_id"),
        ModelRequirement("baseline router", models["baseline"], "baseline_model_id"),
    ]
    if settings.judge:
        requirements.append(ModelRequirement("judge", models["judge"], "judge_model_id"))
    checks = [check_model(r) for r in requirements]
    query_file = check_query_file(settings.queries_s3_uri, env("DATA_BUCKET")) if settings.queries_s3_uri else None

    run = RunState(
        run_id=run_id_from_execution(event["execution_name"]),
        execution_arn=event["execution_arn"],
        started_at=event["started_at"],
        settings=settings,
        candidates=json.loads(env("CANDIDATES")),
    )
    logger.info("run accepted", run_id=run.run_id, settings=settings.model_dump(), checks=checks)
    return {"run": run.model_dump(), "preflight": {"models": checks, "query_file": query_file}}
