"""PlanQueries: decide which queries the teacher labels, and split them into shards for the Map state.

Queries are synthesized (templates × vocabulary, deterministic by seed) and/or read from the user's file
(``queries_s3_uri``). Shards go to ``tmp/<run>/plan/``; only their keys travel through the state.
"""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.run import RunState
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.queries.planning import plan_queries
from search_router.pipeline.queries.user_files import REJECTED_CONTROL_CHARACTERS, parse_user_queries
from search_router.shared.channels import load_channels

# Keep the Map's item list (and so the state) small whatever the shard size asked for.
MAX_SHARDS = 500


def shard_size_for(total: int, requested: int) -> int:
    return max(requested, math.ceil(total / MAX_SHARDS))


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = RunState.model_validate(event["run"])
    settings = run.settings
    bucket = PipelineEnvironment.load().data_bucket
    channels = load_channels(PipelineEnvironment.load().channels)

    user_stats: dict[str, Any] | None = None
    user_queries = None
    if settings.queries_s3_uri:
        source_bucket, key = s3io.parse_s3_uri(settings.queries_s3_uri)
        parsed = parse_user_queries(s3io.get_bytes(source_bucket, key), key=key)
        user_queries = parsed.queries
        user_stats = {"uri": settings.queries_s3_uri, **parsed.to_stats()}
        user_stats["invalid_samples"] = parsed.invalid_samples[:10]
        logger.info("user queries read", **{k: v for k, v in user_stats.items() if k != "invalid_samples"})
        rejected_controls = parsed.rejected.get(REJECTED_CONTROL_CHARACTERS, 0)
        metrics.add_metric(name="UserQueriesRejected", unit="Count", value=parsed.invalid + parsed.too_long)
        if rejected_controls:
            logger.warning("user query lines with control characters were rejected", lines=rejected_controls)

    planned = plan_queries(
        channels,
        n_total=settings.total_queries,
        seed=settings.seed,
        user=user_queries,
        mix_user=settings.mix_user_queries,
    )
    size = shard_size_for(len(planned), settings.shard_size)
    shards = []
    for index, start in enumerate(range(0, len(planned), size)):
        chunk = planned[start : start + size]
        key = run.layout.plan_shard(index)
        s3io.put_json(
            bucket, key, {"queries": [{"text": q.text, "category": q.category, "source": q.source} for q in chunk]}
        )
        shards.append({"index": index, "key": key, "count": len(chunk)})

    categories: dict[str, int] = {}
    for query in planned:
        categories[query.category] = categories.get(query.category, 0) + 1
    plan = {
        "requested": settings.total_queries,
        "planned": len(planned),
        "shortfall": settings.total_queries - len(planned),
        "shard_size": size,
        "shards": len(shards),
        "per_category": categories,
        "user_queries": user_stats,
    }
    s3io.put_json(bucket, run.layout.plan, plan)
    metrics.add_metric(name="QueriesPlanned", unit="Count", value=len(planned))
    logger.info("queries planned", extra={k: v for k, v in plan.items() if k != "user_queries"})
    return {"shards": shards, "planned": len(planned), "requested": settings.total_queries, "shard_size": size}
