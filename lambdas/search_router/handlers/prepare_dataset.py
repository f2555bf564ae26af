"""PrepareDataset: merge the labeled shards into the training file, the held-out set and the manifest.

Which shards to merge comes from the plan (``plan.shards``), and what became of each from the run's S3 state —
not from the Map's output: a planned shard with ``shard-NNNNN.stats.json`` completed; one without it failed after
its retries. A failed shard's checkpoint parts are used (those examples are real and paid for) and only the rest of
its queries are counted, as unlabeled with reason ``shard_failed``. More failed shards than
``max_failed_shards_percent`` fails the run (``TooManyShardsFailed``, Step Functions' rule for a Map's
``ToleratedFailurePercentage``, so the run tolerates the same share however the Map is configured).

De-duplicates (normalized query) across shards, holds out a stratified sample that is never trained on,
writes ``bedrock-conversation-2024`` records (compact student prompt as system, the teacher's weights-first
JSON as the assistant turn) with, beside them, each record's template id (``train-groups.jsonl``: the
micro-router's calibration groups, which Bedrock's format has no field for), and validates the file against the
service's limits before anything is submitted. Too few valid examples fail the run with the numbers (and, when
the teacher kept throttling, with that as the reason); the manifest is written on those paths too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import TEACHER_RETRY_CODES
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import PipelineError
from search_router.contract.layout import ShardKeys
from search_router.contract.run import RunState
from search_router.contract.tasks import Dataset, PrepareDatasetInput, ShardRef
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.checkpoint import ShardProgress
from search_router.pipeline.dataset import (
    MAX_RECORDS,
    MIN_RECORDS,
    TooManyShardsFailed,
    build_manifest,
    ensure_trainable,
    heldout_record,
    read_examples,
    reasoning_assignment,
    split_heldout_for_run,
    too_many_failed_shards,
    training_groups_jsonl,
    training_groups_summary,
    training_jsonl,
    validate_training_jsonl,
)
from search_router.pipeline.labeling import UNLABELED_SHARD_FAILED, UNLABELED_THROTTLED
from search_router.shared.channels import load_channels

MAX_REPORTED_FAILED_SHARDS = 100
MAX_REPORTED_UNREADABLE = 20
NO_ERROR_RECORDED = "none recorded (the function was stopped, e.g. by its timeout, before it could write one)"
_TOTALS = ("calls", "retries", "throttled", "input_tokens", "output_tokens")


def _failed_shard(bucket: str, keys: ShardKeys, count: int, existing: set[str]) -> tuple[ShardProgress, dict[str, Any]]:
    """What a failed shard left: its merged checkpoint (outcomes beyond the plan's ``count`` ignored) and a summary
    with the last error it recorded."""
    progress = ShardProgress.merge(s3io.get_json(bucket, key) for key in keys.part_keys(existing))
    for index in [i for i in progress.outcomes if not 0 <= i < count]:
        del progress.outcomes[index]
    error = s3io.get_json(bucket, keys.error) if keys.error in existing else {}
    summary = {
        "index": keys.index,
        "queries": count,
        "checkpointed": progress.done,
        "labeled": len(progress.examples()),
        "unlabeled": count - progress.done,
        "invocations": len(progress.invocations),
        "error": error.get("error") or NO_ERROR_RECORDED,
        "message": str(error.get("message", ""))[:500],
    }
    return progress, summary


def _read_shards(bucket: str, run: RunState, planned: Sequence[ShardRef]) -> tuple[list[Any], dict[str, Any]]:
    examples: list[Any] = []
    invalid: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    unlabeled_by_reason: Counter[str] = Counter()
    throttle_stopped_shards = 0
    resumed_shards = 0
    totals = {"unlabeled": 0, **dict.fromkeys(_TOTALS, 0)}
    batch: dict[str, Any] | None = None  # the batch job's output lines (labeling_mode: batch)
    invalid_samples: list[dict[str, str]] = []
    failed: list[dict[str, Any]] = []
    existing = set(s3io.list_keys(bucket, run.layout.labeled_prefix))
    for shard in sorted(planned, key=lambda item: item.index):
        keys = run.layout.shard(shard.index)
        if keys.stats in existing:
            examples.extend(read_examples(s3io.get_text(bucket, keys.examples)))
            stats = s3io.get_json(bucket, keys.stats)
            samples = stats.get("invalid_samples", [])
            unlabeled_by_reason.update(stats.get("unlabeled_by_reason") or {})
            throttle_stopped_shards += int(bool(stats.get("throttle_stopped")))
            resumed_shards += int(int(stats.get("invocations") or 1) > 1)
            totals["unlabeled"] += int(stats.get("unlabeled") or 0)
            batch = _add_batch_lines(batch, stats.get("batch"))
        else:
            progress, summary = _failed_shard(bucket, keys, shard.count, existing)
            failed.append(summary)
            examples.extend(progress.examples())
            stats = progress.counts()
            samples = stats["invalid_samples"]
            unlabeled_by_reason[UNLABELED_SHARD_FAILED] += summary["unlabeled"]
            totals["unlabeled"] += summary["unlabeled"]
        invalid.update(stats["invalid"])
        errors.update(stats["errors"])
        for name in _TOTALS:
            totals[name] += int(stats.get(name) or 0)
        invalid_samples.extend(samples[: max(0, 20 - len(invalid_samples))])
    return examples, {
        "invalid": invalid,
        "errors": errors,
        "invalid_samples": invalid_samples,
        "shards": len(planned) - len(failed),
        "shards_planned": len(planned),
        "shards_failed": len(failed),
        "failed_shards": failed[:MAX_REPORTED_FAILED_SHARDS],
        "failed_shards_labeled": sum(item["labeled"] for item in failed),
        "failed_shards_errors": dict(Counter(item["error"] for item in failed)),
        "resumed_shards": resumed_shards,
        "unlabeled_by_reason": dict(unlabeled_by_reason),
        "throttle_stopped_shards": throttle_stopped_shards,
        **({"batch_output": batch} if batch is not None else {}),
        **totals,
    }


_BATCH_COUNTS = ("records", "unreadable", "unknown_records", "duplicate_records")


def _add_batch_lines(total: dict[str, Any] | None, shard: Any) -> dict[str, Any] | None:
    """The batch output's line counts summed over the shards (each shard's stats carry its part), with the first
    unreadable lines quoted; ``total`` unchanged for an on-demand shard."""
    if not isinstance(shard, dict):
        return total
    total = total or {**dict.fromkeys(_BATCH_COUNTS, 0), "unreadable_samples": []}
    for name in _BATCH_COUNTS:
        total[name] += int(shard.get(name) or 0)
    room = MAX_REPORTED_UNREADABLE - len(total["unreadable_samples"])
    total["unreadable_samples"] += list(shard.get("unreadable_samples") or [])[: max(0, room)]
    return total


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = PrepareDatasetInput.model_validate(event)
    run, plan = task.run, task.plan
    settings = run.settings
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    channels = load_channels(environment.channels)

    examples, stats = _read_shards(bucket, run, plan.shards)
    split = split_heldout_for_run(
        examples,
        channels,
        settings.eval_examples,
        seed=settings.seed,
        unseen_template_share=settings.heldout_unseen_template_share,
    )
    heldout, duplicates = split.heldout, split.duplicates
    train = split.train[:MAX_RECORDS]
    counts = {
        "requested": plan.requested,
        "labeled": len(examples),
        "invalid": sum(stats["invalid"].values()),
        "duplicates": duplicates,
        "withheld": split.withheld,
        "errors": sum(stats["errors"].values()),
        "unlabeled": stats["unlabeled"],
    }

    failed = stats["shards_failed"]
    shard_failed = stats["unlabeled_by_reason"].get(UNLABELED_SHARD_FAILED, 0)
    tolerated = not too_many_failed_shards(failed, stats["shards_planned"], settings.max_failed_shards_percent)
    if failed:
        logger.warning("labeling shards failed", failed=failed, planned=stats["shards_planned"], queries=shard_failed)
        metrics.add_metric(name="LabelingShardsFailed", unit="Count", value=failed)

    with_reasoning = reasoning_assignment(train, settings.reasoning_share, seed=settings.seed)
    training_text = training_jsonl(train, channels, reasoning=with_reasoning)
    layout = run.layout
    files: dict[str, str] = {}
    enough = len(train) >= MIN_RECORDS
    if enough and tolerated:
        report = validate_training_jsonl(training_text, channels)
        if not report.ok:
            raise PipelineError(f"the training file failed validation: {'; '.join(report.errors[:5])}")
        files["train"] = s3io.put_text(bucket, layout.train, training_text, "application/x-ndjson")
        files["train_groups"] = s3io.put_text(
            bucket, layout.train_groups, training_groups_jsonl(train), "application/x-ndjson"
        )
        records = [heldout_record(e, name) for e, name in zip(heldout, split.splits, strict=True)]
        files["heldout"] = s3io.put_jsonl(bucket, layout.heldout, records)
    # The manifest is written on every path, so a run that fails here still says what happened to each query.
    manifest = build_manifest(
        channels=channels,
        requested=plan.requested,
        planned=plan.planned,
        labeled=len(examples),
        invalid=stats["invalid"],
        errors=stats["errors"],
        duplicates=duplicates,
        unlabeled=stats["unlabeled"],
        train=train,
        heldout=heldout,
        teacher_model_id=run.teacher_model_id,
        student_model_id=environment.models["student_job"],
        seed=settings.seed,
        labeling={
            **{k: v for k, v in stats.items() if k not in ("invalid", "errors")},
            "max_failed_shards_percent": settings.max_failed_shards_percent,
            "failed_shards_tolerated": tolerated,
        },
        extra={
            "files": files,
            "heldout_split": split.summary(),
            "teacher": run.teacher.model_dump() if run.teacher else {"model_id": run.teacher_model_id},
            "trainable": enough and tolerated,
            "train_groups": training_groups_summary(train),
            "training_prompts": {
                "reasoning_share": settings.reasoning_share,
                "with_reasoning": sum(with_reasoning),
                "weights_only": len(with_reasoning) - sum(with_reasoning),
            },
        },
    )
    manifest_uri = s3io.put_json(bucket, layout.manifest, manifest)
    if not tolerated:
        raise TooManyShardsFailed(
            failed=failed,
            planned=stats["shards_planned"],
            max_percent=settings.max_failed_shards_percent,
            queries_lost=shard_failed,
            kept=stats["failed_shards_labeled"],
            errors=stats["failed_shards_errors"],
        )
    ensure_trainable(
        len(train),
        **counts,
        calls=stats["calls"],
        throttled=stats["throttled"],
        unlabeled_throttled=stats["unlabeled_by_reason"].get(UNLABELED_THROTTLED, 0),
        errors_throttled=sum(n for code, n in stats["errors"].items() if code in TEACHER_RETRY_CODES),
        unlabeled_failed_shards=shard_failed,
        failed_shards=failed,
    )
    train_uri, heldout_uri = files["train"], files["heldout"]

    metrics.add_metric(name="TrainingExamples", unit="Count", value=len(train))
    metrics.add_metric(name="DroppedTeacherAnswers", unit="Count", value=counts["invalid"])
    logger.info("dataset prepared", train=len(train), heldout=len(heldout), **{k: v for k, v in counts.items()})
    return Dataset(
        train_uri=train_uri,
        train_groups_uri=files["train_groups"],
        heldout_uri=heldout_uri,
        manifest_uri=manifest_uri,
        train_records=len(train),
        heldout_records=len(heldout),
        **{k: v for k, v in counts.items() if k != "requested"},
    ).to_state()
