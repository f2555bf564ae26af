"""PlanQueries: decide which queries the teacher labels, and split them into shards for the Map state.

Queries are synthesized (templates × vocabulary, deterministic by seed) and/or read from the user's file
(``queries_s3_uri``); a scheduled run's production queries (``production_heldout_s3_uri``) are labeled too and held
out (``plan.json`` counts what became of each file's lines). Shards go to ``tmp/<run>/plan/``; only their keys
travel through the state.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.tasks import RunTask, ShardPlan, ShardRef
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.queries.plan_output import ProductionFileStats, QueryPlan, UserFileStats, shard_document
from search_router.pipeline.queries.planning import (
    as_production,
    plan_queries,
    production_limit,
    unseen_template_queries,
)
from search_router.pipeline.queries.user_files import parse_user_queries
from search_router.shared.channels import load_channels


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = RunTask.model_validate(event).run
    settings = run.settings
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    channels = load_channels(environment.channels)

    user = _read_query_file(settings.queries_s3_uri, "user", "UserQueriesRejected")
    production: ProductionFileStats | None = None
    production_file = _read_query_file(settings.production_heldout_s3_uri, "production", "ProductionQueriesRejected")
    if production_file is not None:
        held, over_limit = as_production(production_file.parsed.queries, production_limit(settings.eval_examples))
        production = ProductionFileStats.of(production_file, held, over_limit, user)
        if over_limit:
            logger.warning(
                "production queries over the judge's limit were not held out",
                over_limit=over_limit,
                held_out=len(held),
                eval_examples=settings.eval_examples,
            )

    planned = plan_queries(
        channels,
        n_total=settings.total_queries,
        seed=settings.seed,
        user=user.parsed.queries if user is not None else None,
        mix_user=settings.mix_user_queries,
        unseen_heldout=unseen_template_queries(settings.eval_examples, settings.heldout_unseen_template_share),
        production=production.held if production is not None else (),
    )
    requested = settings.total_queries + (len(production.held) if production is not None else 0)
    plan = QueryPlan.of(planned, requested=requested, shard_size=settings.shard_size, user=user, production=production)
    shards = []
    for index, chunk in enumerate(plan.shards()):
        key = run.layout.plan_shard(index)
        s3io.put_json(bucket, key, shard_document(chunk))
        shards.append(ShardRef(index=index, key=key, count=len(chunk)))

    summary = plan.summary()
    s3io.put_json(bucket, run.layout.plan, summary)
    metrics.add_metric(name="QueriesPlanned", unit="Count", value=len(planned))
    logger.info("queries planned", extra={k: v for k, v in summary.items() if k != "user_queries"})
    return ShardPlan(shards=shards, planned=len(planned), requested=requested, shard_size=plan.shard_size).to_state()


def _read_query_file(uri: str | None, kind: str, rejected_metric: str) -> UserFileStats | None:
    """A query file (the user's or the production queries), read and parsed, its rejected lines counted."""
    if not uri:
        return None
    source_bucket, key = s3io.parse_s3_uri(uri)
    stats = UserFileStats(uri, parse_user_queries(s3io.get_bytes(source_bucket, key), key=key))
    logger.info(f"{kind} queries read", **stats.log_fields())
    metrics.add_metric(name=rejected_metric, unit="Count", value=stats.rejected)
    if stats.control_character_lines:
        logger.warning(f"{kind} query lines with control characters were rejected", lines=stats.control_character_lines)
    return stats
