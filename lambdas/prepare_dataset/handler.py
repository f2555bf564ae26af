"""PrepareDataset: merge the labeled shards into the training file, the held-out set and the manifest.

De-duplicates (normalized query) across shards, holds out a stratified sample that is never trained on,
writes ``bedrock-conversation-2024`` records (compact student prompt as system, the teacher's weights-first
JSON as the assistant turn) and validates the file against the service's limits before anything is
submitted. Too few valid examples fail the run with the numbers (and, when the teacher kept throttling, with
that as the reason); the manifest is written on that path too.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import s3io
from common.errors import PipelineError
from common.observability import logger, metrics, task_handler
from common.run import RunState, env
from routing.channels import load_channels
from routing.dataset import (
    MAX_RECORDS,
    MIN_RECORDS,
    build_manifest,
    ensure_trainable,
    heldout_record,
    read_examples,
    split_heldout,
    training_jsonl,
    validate_training_jsonl,
)
from routing.labeling import RETRYABLE_ERRORS, UNLABELED_THROTTLED


def _read_shards(bucket: str, run: RunState) -> tuple[list[Any], dict[str, Any]]:
    examples: list[Any] = []
    invalid: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    unlabeled_by_reason: Counter[str] = Counter()
    throttle_stopped_shards = 0
    totals = {"unlabeled": 0, "calls": 0, "retries": 0, "throttled": 0, "input_tokens": 0, "output_tokens": 0}
    invalid_samples: list[dict[str, str]] = []
    keys = sorted(s3io.list_keys(bucket, f"{run.tmp_prefix}labeled/"))
    for key in (k for k in keys if k.endswith(".jsonl")):
        examples.extend(read_examples(s3io.get_text(bucket, key)))
        stats = s3io.get_json(bucket, key.removesuffix(".jsonl") + ".stats.json")
        invalid.update(stats["invalid"])
        errors.update(stats["errors"])
        unlabeled_by_reason.update(stats.get("unlabeled_by_reason") or {})
        throttle_stopped_shards += int(bool(stats.get("throttle_stopped")))
        for name in totals:
            totals[name] += int(stats.get(name) or 0)
        invalid_samples.extend(stats.get("invalid_samples", [])[: max(0, 20 - len(invalid_samples))])
    return examples, {
        "invalid": invalid,
        "errors": errors,
        "invalid_samples": invalid_samples,
        "shards": len([k for k in keys if k.endswith(".jsonl")]),
        "unlabeled_by_reason": dict(unlabeled_by_reason),
        "throttle_stopped_shards": throttle_stopped_shards,
        **totals,
    }


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = RunState.model_validate(event["run"])
    settings = run.settings
    bucket = env("DATA_BUCKET")
    channels = load_channels(env("CHANNELS"))
    plan = event["plan"]

    examples, stats = _read_shards(bucket, run)
    train, heldout, duplicates = split_heldout(examples, settings.eval_examples, seed=settings.seed)
    train = train[:MAX_RECORDS]
    counts = {
        "requested": settings.total_queries,
        "labeled": len(examples),
        "invalid": sum(stats["invalid"].values()),
        "duplicates": duplicates,
        "errors": sum(stats["errors"].values()),
        "unlabeled": stats["unlabeled"],
    }

    training_text = training_jsonl(train, channels)
    dataset_prefix = f"{run.run_prefix}dataset/"
    files: dict[str, str] = {}
    enough = len(train) >= MIN_RECORDS
    if enough:
        report = validate_training_jsonl(training_text, channels)
        if not report.ok:
            raise PipelineError(f"the training file failed validation: {'; '.join(report.errors[:5])}")
        files["train"] = s3io.put_text(bucket, f"{dataset_prefix}train.jsonl", training_text, "application/x-ndjson")
        files["heldout"] = s3io.put_jsonl(
            bucket, f"{dataset_prefix}heldout.jsonl", [heldout_record(e) for e in heldout]
        )
    # The manifest is written on every path, so a run that fails here still says what happened to each query.
    manifest = build_manifest(
        channels=channels,
        requested=settings.total_queries,
        planned=plan["planned"],
        labeled=len(examples),
        invalid=stats["invalid"],
        errors=stats["errors"],
        duplicates=duplicates,
        unlabeled=stats["unlabeled"],
        train=train,
        heldout=heldout,
        teacher_model_id=run.teacher_model_id,
        student_model_id=json.loads(env("MODELS"))["student_job"],
        seed=settings.seed,
        labeling={k: v for k, v in stats.items() if k not in ("invalid", "errors")},
        extra={
            "files": files,
            "teacher": run.teacher.model_dump() if run.teacher else {"model_id": run.teacher_model_id},
            "trainable": enough,
        },
    )
    manifest_uri = s3io.put_json(bucket, f"{dataset_prefix}manifest.json", manifest)
    ensure_trainable(
        len(train),
        **counts,
        calls=stats["calls"],
        throttled=stats["throttled"],
        unlabeled_throttled=stats["unlabeled_by_reason"].get(UNLABELED_THROTTLED, 0),
        errors_throttled=sum(n for code, n in stats["errors"].items() if code in RETRYABLE_ERRORS),
    )
    train_uri, heldout_uri = files["train"], files["heldout"]

    metrics.add_metric(name="TrainingExamples", unit="Count", value=len(train))
    metrics.add_metric(name="DroppedTeacherAnswers", unit="Count", value=counts["invalid"])
    logger.info("dataset prepared", train=len(train), heldout=len(heldout), **{k: v for k, v in counts.items()})
    return {
        "train_uri": train_uri,
        "heldout_uri": heldout_uri,
        "manifest_uri": manifest_uri,
        "train_records": len(train),
        "heldout_records": len(heldout),
        **{k: v for k, v in counts.items() if k != "requested"},
    }
