"""ShadowReplay: the run's production held-out queries, replayed against the model in service.

The held-out file's records of split ``production`` (a scheduled run's sample of captured traffic, labeled by
the teacher; at most ``shadow_max_queries``, a sample seeded by ``seed`` when there are more) are asked of the
model the promotion parameter names (``model_id`` with its ``prompt_kind``; before the first promotion, the
router's default model: what production serves), exactly as a candidate is evaluated
(:func:`search_router.handlers.evaluate.answer_one`). The answers go to ``runs/<run>/evaluation/shadow/``; the
report compares them with the gated candidate's. Without production queries the step is ``skipped`` and calls
no model. A replay that cannot run raises ``ShadowReplayFailed``, which the state machine catches: the run goes
on and the report says why.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.errors import ShadowReplayFailed, TransientError
from search_router.contract.promotion import PromotionDocument
from search_router.contract.tasks import ShadowReplay, ShadowReplayInput
from search_router.handlers.drift_check import promotion_document
from search_router.handlers.evaluate import answer_all, read_heldout
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.metrics import compute_metrics
from search_router.pipeline.shadow import NO_PRODUCTION_QUERIES, SHADOW_OK, SHADOW_SKIPPED, production_sample
from search_router.router.model_source import ParameterUnavailable
from search_router.shared.channels import ChannelSet, load_channels
from search_router.shared.prompts import named_prompt


def model_in_service(parameter: str, channels: ChannelSet) -> PromotionDocument:
    """The promotion document of ``parameter``; ``ShadowReplayFailed`` when there is none or it routes to other
    channels (its answers could not be compared), ``TransientError`` when SSM cannot be read now."""
    try:
        document = promotion_document(parameter)
    except ParameterUnavailable as exc:
        raise TransientError(f"the promotion parameter {parameter} cannot be read now: {exc}") from exc
    if document is None:
        raise ShadowReplayFailed(
            f"the promotion parameter {parameter} does not exist or holds no promotion document: the model in "
            "service is unknown"
        )
    if tuple(document.channels) != channels.names:
        raise ShadowReplayFailed(
            f"the model in service ({document.model_id}) routes to channels {', '.join(document.channels)}, this "
            f"run to {', '.join(channels.names)}: its answers cannot be compared"
        )
    return document


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ShadowReplayInput.model_validate(event)
    run = task.run
    environment = PipelineEnvironment.load()
    channels = load_channels(environment.channels)
    items, production = production_sample(
        read_heldout(task.dataset.heldout_uri), limit=run.settings.shadow_max_queries, seed=run.settings.seed
    )
    if not items:
        logger.info("shadow replay skipped", reason=NO_PRODUCTION_QUERIES)
        metrics.add_metric(name="ShadowReplaySkipped", unit="Count", value=1)
        return ShadowReplay(
            status=SHADOW_SKIPPED, production_queries=0, replayed=0, reason=NO_PRODUCTION_QUERIES
        ).to_state()
    document = model_in_service(environment.model_parameter, channels)
    results = answer_all(
        items,
        model_id=document.model_id,
        system=named_prompt(document.prompt_kind, channels),
        channels=channels,
        threads=environment.eval_threads,
        context=context,
    )
    summary = compute_metrics(results, channels, price=None)
    if not summary["answered"]:
        raise ShadowReplayFailed(
            f"the model in service ({document.model_id}) answered none of {len(results)} production queries "
            f"(errors: {', '.join(f'{k} × {v}' for k, v in summary['errors_by_kind'].items())})"
        )
    bucket, layout = environment.data_bucket, run.layout
    results_uri = s3io.put_jsonl(bucket, layout.shadow_results, [r.to_dict() for r in results])
    summary_uri = s3io.put_json(
        bucket,
        layout.shadow_summary,
        {
            "model_id": document.model_id,
            "prompt_kind": document.prompt_kind.value,
            "promoted_run_id": document.run_id,
            "micro_router_in_service": document.micro_router is not None,
            "production_queries": production,
            "replayed": len(results),
            "seed": run.settings.seed,
            "metrics": summary,
        },
    )
    metrics.add_metric(name="ShadowQueriesReplayed", unit="Count", value=len(results))
    logger.info(
        "shadow replay done",
        model_id=document.model_id,
        replayed=len(results),
        production_queries=production,
        valid_json_rate=summary["valid_json_rate"],
        mae_overall=summary["mae_overall"],
    )
    return ShadowReplay(
        status=SHADOW_OK,
        production_queries=production,
        replayed=len(results),
        model_id=document.model_id,
        prompt_kind=document.prompt_kind.value,
        results_uri=results_uri,
        summary_uri=summary_uri,
        valid_json_rate=summary["valid_json_rate"],
        mae_overall=summary["mae_overall"],
        **({"promoted_run_id": document.run_id} if document.run_id else {}),
    ).to_state()
