"""LabelShard: the teacher labels one shard of queries, checkpointing as it goes, resuming where it stopped.

Calls in flight follow the teacher's quota (an AIMD limiter with the run's ``threads`` as ceiling, see
:mod:`search_router.pipeline.concurrency`). Every query that reaches a final outcome is checkpointed to
``tmp/<run>/labeled/shard-NNNNN/part-*.json`` every :data:`~search_router.pipeline.checkpoint.DEFAULT_EVERY` outcomes or
:data:`~search_router.pipeline.checkpoint.DEFAULT_EVERY_S` seconds (:mod:`search_router.pipeline.checkpoint`). When the
shard is done it writes ``shard-NNNNN.jsonl`` (labeled examples, in plan order) and, last, ``shard-NNNNN.stats.json``
(counts of invalid answers by reason, errors by code, unlabeled queries by reason, retries, tokens; over every
invocation).

Safe to invoke again with the same input (a Step Functions retry after ``TransientError``, ``Lambda.Unknown`` or
``Sandbox.Timedout``, or a redrive): a shard whose stats exist returns them without a call; otherwise it reads its
parts and asks the teacher only about the queries it has not answered yet (an error is asked again), so no
answered query is paid for twice and every count stays exact. It stops starting calls :data:`SAFETY_MARGIN_S`
before the Lambda deadline (more than one teacher call can take, plus the writes); if queries are left and this
invocation made progress, it raises ``TransientError`` (the state machine's retrier for it re-invokes the shard,
which resumes). Nothing is dropped silently.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any, Final

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.clients import CLIENTS
from search_router.adapters.converse import TEACHER_CALL_TIMEOUT_S, TEACHER_CLIENT_CONFIG, BedrockConverse
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import TransientError
from search_router.contract.layout import ShardKeys
from search_router.contract.run import RunState
from search_router.contract.tasks import LabelShardInput, ShardSummary
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.checkpoint import Checkpoint, ShardProgress, add_usage
from search_router.pipeline.concurrency import AdaptiveConcurrency
from search_router.pipeline.dataset import write_examples
from search_router.pipeline.labeling import UNLABELED_DEADLINE, LabelingResult, label_queries
from search_router.pipeline.queries.query import Query
from search_router.shared.channels import load_channels

# Teacher calls (TEACHER_CLIENT_CONFIG): one attempt each, at most TEACHER_CALL_TIMEOUT_S long; label_queries retries
# (with jitter, seen by the concurrency limiter).
WRITE_ALLOWANCE_S: Final = 20.0
"""Time kept for the last checkpoint part and the shard's output files."""
SAFETY_MARGIN_S: Final = TEACHER_CALL_TIMEOUT_S + WRITE_ALLOWANCE_S
"""Stop starting teacher calls this long before the Lambda timeout: a call started just before the deadline still
ends (or times out) and its outcome is written before Lambda stops the function. Must stay larger than
:data:`TEACHER_CALL_TIMEOUT_S` (asserted in the tests)."""
# Patience with a throttling teacher: with 30% of calls throttled, 13 in a row happen once in ~6 million queries;
# the deadline above bounds the total wait, and whatever is left is counted as unlabeled, never dropped.
MAX_THROTTLE_RETRIES = 12


def labeled_key(run: RunState, index: int) -> str:
    return run.layout.shard(index).examples


def stats_key(run: RunState, index: int) -> str:
    return run.layout.shard(index).stats


def _summary(stats: dict[str, Any]) -> dict[str, Any]:
    return ShardSummary(
        index=stats["shard"], labeled=stats["labeled"], invalid=stats["invalid_total"], unlabeled=stats["unlabeled"]
    ).to_state()


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = LabelShardInput.model_validate(event)
    run, shard = task.run, task.shard
    index = shard.index
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    keys = run.layout.shard(index)
    existing = set(s3io.list_keys(bucket, keys.base))
    if keys.stats in existing:  # done by an earlier invocation: answer the same without a call
        stats = s3io.get_json(bucket, keys.stats)
        logger.info("shard already labeled", shard=index, labeled=stats["labeled"])
        return _summary(stats)

    channels = load_channels(environment.channels)
    queries = [
        Query(text=q["text"], category=q["category"], source=q["source"], template=q.get("template"))
        for q in s3io.get_json(bucket, shard.key)["queries"]
    ]
    texts = [q.text for q in queries]
    progress = ShardProgress.merge((s3io.get_json(bucket, k) for k in keys.part_keys(existing)), texts)
    pending = progress.pending(len(queries))
    invocation = getattr(context, "aws_request_id", "") or uuid.uuid4().hex
    checkpoint = Checkpoint(
        shard=index,
        invocation=invocation,
        first_part=progress.last_part + 1,
        write=lambda number, part: s3io.put_json(bucket, keys.part(number, invocation), part),
    )
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_S
    logger.info("labeling shard", shard=index, queries=len(queries), done_before=progress.done, pending=len(pending))
    try:
        result = label_queries(
            [queries[i] for i in pending],
            teacher=BedrockConverse(CLIENTS.get("bedrock-runtime", config=TEACHER_CLIENT_CONFIG)),
            model_id=run.teacher_model_id,
            channels=channels,
            threads=run.settings.threads,
            deadline=deadline,
            base_delay_s=environment.teacher_backoff_base_s,
            max_throttle_retries=MAX_THROTTLE_RETRIES,
            throttle_budget_s=float(run.settings.throttle_budget_seconds),
            limiter=AdaptiveConcurrency(run.settings.threads),
            on_outcome=lambda position, outcome, usage: checkpoint.record(pending[position], outcome, usage),
        )
    except Exception as exc:
        _save_what_was_done(bucket, keys, checkpoint, invocation, exc)
        raise
    checkpoint.flush(result.usage)
    answered_before = progress.answered
    for position, outcome in checkpoint.recorded:  # positions in the plan already
        progress.add(position, outcome)
    # Unlabeled now: pending queries this invocation did not finish that have no outcome at all (a query that had
    # an error before and ran out of time now keeps its error: counted once).
    unlabeled = Counter(
        reason for position, reason in result.unlabeled_at.items() if pending[position] not in progress.outcomes
    )

    incomplete = result.unlabeled_by_reason.get(UNLABELED_DEADLINE, 0)
    new_outcomes = len(checkpoint.recorded)
    _metrics(result, new_outcomes)
    if incomplete and new_outcomes and not result.throttle_stopped:
        error = TransientError(
            f"shard {index} ran out of time with {incomplete} of {len(queries)} queries left ({progress.answered} "
            f"answered, {new_outcomes} outcomes by this invocation); its progress is checkpointed and the retry "
            "resumes from it"
        )
        metrics.add_metric(name="ShardsIncomplete", unit="Count", value=1)
        _write_error(bucket, keys, invocation, error)
        logger.info("shard incomplete, to be resumed", shard=index, done=progress.done, left=incomplete)
        raise error

    stats = {"shard": index, "queries": len(queries), **progress.counts(), **_total_usage(progress, result)}
    stats.update(
        unlabeled=sum(unlabeled.values()),
        unlabeled_by_reason=dict(unlabeled),
        throttle_stopped=result.throttle_stopped,
        invocations=len({*progress.invocations, checkpoint.invocation}),
        resumed=answered_before,
        concurrency=result.concurrency,
    )
    s3io.put_text(bucket, keys.examples, write_examples(progress.examples()), "application/x-ndjson")
    s3io.put_json(bucket, keys.stats, stats)
    logger.info(
        "shard labeled",
        shard=index,
        queries=len(queries),
        labeled=stats["labeled"],
        invalid=stats["invalid"],
        errors=stats["errors"],
        unlabeled=stats["unlabeled_by_reason"],
        resumed=stats["resumed"],
        throttle_stopped=result.throttle_stopped,
        concurrency=result.concurrency,
        elapsed_s=round(result.elapsed_s, 2),
    )
    return _summary(stats)


def _total_usage(progress: ShardProgress, result: LabelingResult) -> dict[str, Any]:
    """Usage over every invocation: what earlier invocations checkpointed (``progress`` as read at the start)
    plus this invocation's whole run."""
    total = add_usage(progress.usage, result.usage)
    labeled = sum(1 for outcome in progress.outcomes.values() if outcome.example is not None)
    return {
        **total.to_dict(),
        "examples_per_s": round(labeled / total.elapsed_s, 3) if total.elapsed_s > 0 else None,
    }


def _metrics(result: LabelingResult, new_outcomes: int) -> None:
    metrics.add_metric(name="ExamplesLabeled", unit="Count", value=len(result.examples))
    metrics.add_metric(name="InvalidTeacherAnswers", unit="Count", value=result.invalid_total)
    metrics.add_metric(name="TeacherThrottled", unit="Count", value=result.throttled)
    metrics.add_metric(name="QueriesDone", unit="Count", value=new_outcomes)


def _save_what_was_done(
    bucket: str, keys: ShardKeys, checkpoint: Checkpoint, invocation: str, error: BaseException
) -> None:
    """On the way out with an error: write the buffered outcomes and the error (best effort, never masking it)."""
    try:
        checkpoint.flush()
    except Exception:
        logger.exception("could not write the last checkpoint part", shard=keys.index)
    _write_error(bucket, keys, invocation, error)


def _write_error(bucket: str, keys: ShardKeys, invocation: str, error: BaseException) -> None:
    try:
        s3io.put_json(
            bucket,
            keys.error,
            {"shard": keys.index, "invocation": invocation, "error": type(error).__name__, "message": str(error)},
        )
    except Exception:
        logger.exception("could not record the shard's error", shard=keys.index)
