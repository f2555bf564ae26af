"""EvaluateCandidate: one candidate router answers every held-out query; raw results and metrics go to S3.

A candidate is ``{"name", "model", "prompt_kind"}``; ``model`` ``"distilled"`` means this run's deployment,
invoked with its *deployment* ARN and exactly a compact student prompt it was trained on: ``student`` (weights then
reasoning, what the quality gate judges: the router's default, ``include_reasoning`` true) or
``student_weights_only`` (what the router sends with ``include_reasoning`` false), so the report compares both.
Every answer is recorded (raw text, parse result, client latency, the service's ``latencyMs``, tokens, errors),
never dropped.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.clients import CLIENTS
from search_router.adapters.converse import EVAL_CLIENT_CONFIG, BedrockConverse
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.names import DISTILLED
from search_router.contract.tasks import Candidate, Deployment, EvaluateCandidateInput, Evaluation
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.judge import CALIBRATION_QUERY, calibration_record, judge_prompt
from search_router.pipeline.metrics import Price, QueryResult, compute_metrics
from search_router.shared.answer.decision import RoutingDecision
from search_router.shared.answer.formatting import format_answer
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import ChannelSet, load_channels
from search_router.shared.model_calls import ModelCallError
from search_router.shared.prompts import named_prompt

# A deployment that just became Active may answer ModelNotReadyException or throttle for a while: retry what the
# adapter calls retryable (aws_errors.TEACHER_RETRY_CODES, network errors) with full-jitter backoff (up to 20 s a wait)
# for as long as the Lambda's deadline allows, so service warm-up is not scored as model quality. What still fails is
# recorded with its error code (and shows in the report).
MAX_ATTEMPTS = 10
MAX_BACKOFF_S = 20.0
SAFETY_MARGIN_S = 60.0
MAX_TOKENS = 300


def model_for(candidate: Candidate, deployment: Deployment | None) -> str:
    if candidate.model == DISTILLED:
        if deployment is None:
            raise ValueError(f"candidate {candidate.name} needs this run's deployment, which does not exist")
        return deployment.deployment_arn
    return candidate.model


def price_for(candidate: Candidate, prices: dict[str, Any]) -> Price | None:
    entry = prices.get(candidate.model) or prices.get(candidate.name)
    return Price.from_dict(entry) if entry else None


def answer_one(
    client: Any,
    *,
    model_id: str,
    system: str,
    item: dict[str, Any],
    channels: ChannelSet,
    sleep: Any = time.sleep,
    rng: random.Random | None = None,
    deadline: float | None = None,
) -> QueryResult:
    """Ask one held-out query (``client``: a ``bedrock-runtime`` client); retry transient errors a few times, then
    record the error."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    converse = BedrockConverse(client)
    for attempt in range(MAX_ATTEMPTS):
        try:
            outcome = converse(
                model_id=model_id, system=system, user=item["query"], max_tokens=MAX_TOKENS, temperature=0.0
            )
        except ModelCallError as exc:
            pause = rng.uniform(0, min(MAX_BACKOFF_S, 0.5 * 2**attempt))
            in_time = deadline is None or time.monotonic() + pause < deadline
            if exc.retryable and attempt + 1 < MAX_ATTEMPTS and in_time:
                sleep(pause)
                continue
            return QueryResult(
                query=item["query"],
                category=item.get("category"),
                reference=item["reference"],
                error_kind=exc.code,
                split=item.get("split"),
            )
        return QueryResult.from_parse(
            query=item["query"],
            category=item.get("category"),
            reference=item["reference"],
            raw_text=outcome.text,
            parsed=parse_routing_answer(outcome.text, channels),
            latency_ms=outcome.latency_ms,
            service_latency_ms=outcome.service_latency_ms,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            split=item.get("split"),
        )
    raise AssertionError("unreachable")


def answer_all(
    items: list[dict[str, Any]],
    *,
    model_id: str,
    system: str,
    channels: ChannelSet,
    threads: int,
    context: LambdaContext,
) -> list[QueryResult]:
    """Every item asked of ``model_id`` (:func:`answer_one`), ``threads`` at a time, in ``items`` order; retries
    stop in time to leave the Lambda :data:`SAFETY_MARGIN_S` to write the results."""
    client = CLIENTS.get("bedrock-runtime", config=EVAL_CLIENT_CONFIG)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_S
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(items)))) as pool:
        return list(
            pool.map(
                lambda item: answer_one(
                    client, model_id=model_id, system=system, item=item, channels=channels, deadline=deadline
                ),
                items,
            )
        )


def read_heldout(uri: str) -> list[dict[str, Any]]:
    """The held-out records of ``uri`` (PrepareDataset's ``heldout.jsonl``)."""
    bucket, key = s3io.parse_s3_uri(uri)
    return [json.loads(line) for line in s3io.get_text(bucket, key).splitlines() if line.strip()]


def _reference(weights: dict[str, float], channels: ChannelSet) -> str:
    return format_answer(RoutingDecision.from_weights(weights, channels), channels)


def judge_record(result: QueryResult, candidate_name: str, channels: ChannelSet) -> dict[str, Any]:
    """One line of the LLM-judge dataset (precomputed response, reference weights without reasoning)."""
    record: dict[str, Any] = {
        "prompt": judge_prompt(result.query),
        "referenceResponse": _reference(result.reference, channels),
        "modelResponses": [{"response": result.raw_text or "", "modelIdentifier": candidate_name}],
    }
    if result.category:
        record["category"] = result.category
    return record


def judge_dataset(results: list[QueryResult], candidate_name: str, channels: ChannelSet) -> list[dict[str, Any]]:
    """The held-out records, then the calibration record that tells the judge's score scale
    (search_router.pipeline.judge)."""
    names = channels.names
    even = {name: 1.0 / len(names) for name in names}
    calibration = calibration_record(
        judge_prompt(CALIBRATION_QUERY), _reference(even, channels), model_identifier=candidate_name
    )
    return [*(judge_record(r, candidate_name, channels) for r in results), calibration]


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = EvaluateCandidateInput.model_validate(event)
    run, candidate = task.run, task.candidate
    environment = PipelineEnvironment.load()
    bucket = environment.data_bucket
    channels = load_channels(environment.channels)
    prices = environment.prices
    model_id = model_for(candidate, task.deployment)
    system = named_prompt(candidate.prompt_kind, channels)
    items = read_heldout(task.dataset.heldout_uri)
    results = answer_all(
        items, model_id=model_id, system=system, channels=channels, threads=environment.eval_threads, context=context
    )
    price = price_for(candidate, prices)
    summary = compute_metrics(results, channels, price=price)

    results_uri = s3io.put_jsonl(bucket, run.layout.candidate_results(candidate.name), [r.to_dict() for r in results])
    metrics_uri = s3io.put_json(bucket, run.layout.candidate_metrics(candidate.name), summary)
    judge_uri = s3io.put_jsonl(
        bucket,
        run.layout.judge_input(candidate.name),
        judge_dataset(results, candidate.name, channels),
    )
    metrics.add_metric(name="CandidatesEvaluated", unit="Count", value=1)
    logger.info(
        "candidate evaluated",
        candidate=candidate.name,
        model_id=model_id,
        valid_json_rate=summary.get("valid_json_rate"),
        mae_overall=summary.get("mae_overall"),
        rubric_mean=summary.get("rubric_mean"),
    )
    return Evaluation(
        name=candidate.name,
        model_id=model_id,
        prompt_kind=candidate.prompt_kind,
        results_uri=results_uri,
        metrics_uri=metrics_uri,
        judge_input_uri=judge_uri,
        valid_json_rate=summary.get("valid_json_rate"),
        mae_overall=summary.get("mae_overall"),
    ).to_state()
