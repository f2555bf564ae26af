"""PlanQueries: decide which queries the teacher labels, and split them into shards for the Map state.

Queries are synthesized (templates × vocabulary, deterministic by seed) and/or read from the user's file
(``queries_s3_uri``). Shards go to ``tmp/<run>/plan/``; only their keys travel through the state.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.tasks import RunTask, ShardPlan, ShardRef
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.queries.plan_output import QueryPlan, UserFileStats, shard_document
from search_router.pipeline.queries.planning import plan_queries, unseen_template_queries
from search_router.pipeline.queries.user_files import parse_user_queries
from search_router.shared.channels import load_channels


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = RunTask.model_validate(event).run
    settings = run.settings
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    channels = load_channels(environment.channels)

    user: UserFileStats | None = None
    if settings.queries_s3_uri:
        source_bucket, key = s3io.parse_s3_uri(settings.queries_s3_uri)
        user = UserFileStats(settings.queries_s3_uri, parse_user_queries(s3io.get_bytes(source_bucket, key), key=key))
        logger.info("user queries read", **user.log_fields())
        metrics.add_metric(name="UserQueriesRejected", unit="Count", value=user.rejected)
        if user.control_character_lines:
            logger.warning("user query lines with control characters were rejected", lines=user.control_character_lines)

    planned = plan_queries(
        channels,
        n_total=settings.total_queries,
        seed=settings.seed,
        user=user.parsed.queries if user is not None else None,
        mix_user=settings.mix_user_queries,
        unseen_heldout=unseen_template_queries(settings.eval_examples, settings.heldout_unseen_template_share),
    )
    plan = QueryPlan.of(planned, requested=settings.total_queries, shard_size=settings.shard_size, user=user)
    shards = []
    for index, chunk in enumerate(plan.shards()):
        key = run.layout.plan_shard(index)
        s3io.put_json(bucket, key, shard_document(chunk))
        shards.append(ShardRef(index=index, key=key, count=len(chunk)))

    summary = plan.summary()
    s3io.put_json(bucket, run.layout.plan, summary)
    metrics.add_metric(name="QueriesPlanned", unit="Count", value=len(planned))
    logger.info("queries planned", extra={k: v for k, v in summary.items() if k != "user_queries"})
    return ShardPlan(
        shards=shards, planned=len(planned), requested=settings.total_queries, shard_size=plan.shard_size
    ).to_state()
