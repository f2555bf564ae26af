"""LabelShard: the teacher labels one shard of queries (bounded thread pool, backoff on throttling).

Writes ``tmp/<run>/labeled/shard-NNNNN.jsonl`` (labeled examples) and ``...stats.json`` (counts of
invalid answers by reason, errors by code, retries, unlabeled queries). Nothing is dropped silently.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from common import s3io
from common.observability import logger, metrics, task_handler
from common.run import RunState, env
from routing.aws import CLIENTS
from routing.channels import load_channels
from routing.dataset import write_examples
from routing.labeling import label_queries
from routing.queries import Query

# Teacher calls: retries are done by label_queries (with jitter), so botocore does not retry on its own.
TEACHER_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=60, retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=64
)
# Stop starting new teacher calls this long before the Lambda timeout, to write results in time.
SAFETY_MARGIN_S = 60.0
# Patience with a throttling teacher: with 30% of calls throttled, 13 in a row happen once in ~6 million queries;
# the deadline above bounds the total wait, and whatever is left is counted as unlabeled, never dropped.
MAX_THROTTLE_RETRIES = 12


def labeled_key(run: RunState, index: int) -> str:
    return f"{run.tmp_prefix}labeled/shard-{index:05d}.jsonl"


def stats_key(run: RunState, index: int) -> str:
    return f"{run.tmp_prefix}labeled/shard-{index:05d}.stats.json"


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = RunState.model_validate(event["run"])
    shard = event["shard"]
    bucket = env("DATA_BUCKET")
    channels = load_channels(env("CHANNELS"))
    queries = [
        Query(text=q["text"], category=q["category"], source=q["source"])
        for q in s3io.get_json(bucket, shard["key"])["queries"]
    ]
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_S
    result = label_queries(
        queries,
        client=CLIENTS.get("bedrock-runtime", config=TEACHER_CLIENT_CONFIG),
        model_id=run.teacher_model_id,
        channels=channels,
        threads=run.settings.threads,
        deadline=deadline,
        base_delay_s=float(os.environ.get("TEACHER_BACKOFF_BASE_S", "0.5")),
        max_throttle_retries=MAX_THROTTLE_RETRIES,
        throttle_budget_s=float(run.settings.throttle_budget_seconds),
    )
    s3io.put_text(
        bucket,
        labeled_key(run, shard["index"]),
        write_examples(result.examples),
        "application/x-ndjson",
    )
    stats = {"shard": shard["index"], "queries": len(queries), **result.to_stats()}
    s3io.put_json(bucket, stats_key(run, shard["index"]), stats)

    invalid = sum(result.invalid.values())
    metrics.add_metric(name="ExamplesLabeled", unit="Count", value=len(result.examples))
    metrics.add_metric(name="InvalidTeacherAnswers", unit="Count", value=invalid)
    metrics.add_metric(name="TeacherThrottled", unit="Count", value=result.throttled)
    logger.info(
        "shard labeled",
        shard=shard["index"],
        queries=len(queries),
        labeled=len(result.examples),
        invalid=dict(result.invalid),
        errors=dict(result.errors),
        unlabeled=dict(result.unlabeled_by_reason),
        throttle_stopped=result.throttle_stopped,
        elapsed_s=round(result.elapsed_s, 2),
    )
    return {
        "index": shard["index"],
        "labeled": len(result.examples),
        "invalid": invalid,
        "unlabeled": len(result.unlabeled),
    }
