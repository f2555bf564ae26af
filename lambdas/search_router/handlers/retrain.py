"""ScheduledRetraining (``retrain_schedule`` with ``capture_queries``; EventBridge Scheduler): start the pipeline on
the captured queries, or say why not.

Reads the compacted days (``inputs/captured/<date>.jsonl``) of the last ``retrain_window_days`` and the last
scheduled run (``retrain/state.json``), and decides as :func:`search_router.pipeline.retraining.decide` does. A
start writes the run's two query files
(``inputs/retrain/<execution>/queries.jsonl`` and ``production-heldout.jsonl``) and starts the pipeline with them
(``mix_user_queries`` false: the captured queries, most frequent first, topped up with synthesized ones); a skip
(too few new queries, or a pipeline execution already running) is published to the notification topic with the
reason. Every decision is recorded (``retrain/decisions/<time>.json`` and ``retrain/latest.json``).

The execution is named after the schedule's time (``retrain-<yyyyMMddTHHmmssZ>``) and its input depends on the
files only, so a retried invocation finds its own execution (running: started again with the same name and input,
which Step Functions answers with the same execution; finished: ``ExecutionAlreadyExists``) and starts no second
run.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import ClientError, error_code
from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import RetrainEnvironment
from search_router.contract.layout import (
    CAPTURED_INPUTS,
    RETRAIN_LATEST,
    RETRAIN_STATE,
    captured_day,
    retrain_decision,
    retrain_heldout,
    retrain_queries,
)
from search_router.contract.tasks import RetrainInput, RetrainOutput
from search_router.handlers.notify import sns_subject
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.queries.captured import query_file
from search_router.pipeline.retraining import RUN_IN_PROGRESS, START, CapturedQueries, RetrainDecision, decide

JSONL = "application/x-ndjson"
NOT_A_DAY_FILE = "not_a_captured_day_file"


def _captured(bucket: str, since: date, seen: tuple[date, date] | None) -> CapturedQueries:
    """The compacted days from ``since`` on, and the keys of the days in ``seen`` (the last scheduled run's window)
    before ``since``: what that run saw stays seen. Other days are listed, not read: memory stays bounded."""
    captured = CapturedQueries()
    for key in sorted(s3io.list_keys(bucket, CAPTURED_INPUTS)):
        day = captured_day(key)
        if day is None:
            captured.malformed[NOT_A_DAY_FILE] += 1
        elif day >= since:
            captured.add_day(day, s3io.get_text(bucket, key), where=key)
        elif seen is not None and seen[0] <= day <= seen[1]:
            captured.add_earlier_day(s3io.get_text(bucket, key))
    return captured


def _others_running(state_machine_arn: str, execution: str) -> list[str]:
    """Names of the pipeline's running executions other than ``execution`` (at most a page of them)."""
    page = CLIENTS.get("stepfunctions").list_executions(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=100
    )
    return [item["name"] for item in page.get("executions", []) if item["name"] != execution]


def _start(state_machine_arn: str, execution: str, execution_input: dict[str, Any]) -> str:
    """Start (or find, on a retried invocation) the execution; its ARN."""
    try:
        response = CLIENTS.get("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=execution, input=json.dumps(execution_input, sort_keys=True)
        )
    except ClientError as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            raise
        logger.info("Scheduled execution already exists (a retried invocation)", execution=execution)
        prefix, name = state_machine_arn.split(":stateMachine:", 1)
        return f"{prefix}:execution:{name}:{execution}"
    return str(response["executionArn"])


def _notify_skip(environment: RetrainEnvironment, decision: RetrainDecision, execution: str) -> None:
    subject = sns_subject(f"{environment.stack_name}: scheduled retraining skipped ({decision.status})")
    message = "\n".join(
        [
            f"The scheduled retraining {execution} started no run: {decision.explanation()}",
            f"New distinct queries: {decision.new_queries} (needed: {decision.min_new_queries}); captured days "
            f"considered: {decision.days}; distinct captured queries in all: {decision.captured_queries}.",
            f"Decision: s3://{environment.data_bucket}/{RETRAIN_LATEST}",
        ]
    )
    CLIENTS.get("sns").publish(TopicArn=environment.topic_arn, Subject=subject, Message=message)


def _already_started(bucket: str, state: dict[str, Any], token: str) -> dict[str, Any]:
    """A retried invocation after its run was started and recorded: nothing more to do."""
    logger.info("Scheduled run already started by an earlier attempt", execution=state["execution"])
    return RetrainOutput(
        status=START,
        explanation=f"{state['execution']} was started by an earlier attempt of this schedule",
        execution_arn=state.get("execution_arn"),
        decision_uri=s3io.s3_uri(bucket, retrain_decision(token)),
        new_queries=0,
        training_queries=0,
        heldout_queries=0,
        malformed={},
    ).to_state()


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del context
    task = RetrainInput.model_validate(event or {})
    environment = RetrainEnvironment.load()
    moment = (task.scheduled_time or datetime.now(UTC)).astimezone(UTC)
    token = f"{moment:%Y%m%dT%H%M%SZ}"
    execution = f"retrain-{token}"
    bucket = environment.data_bucket
    state = s3io.get_json_object(bucket, RETRAIN_STATE)  # the last scheduled run; None before the first
    if state and state.get("execution") == execution:
        return _already_started(bucket, state, token)
    through = date.fromisoformat(state["through"]) if state and state.get("through") else None
    since = moment.date() - timedelta(days=environment.window_days)
    seen = (date.fromisoformat(state.get("window_start") or since.isoformat()), through) if state and through else None
    decision = decide(
        _captured(bucket, since, seen),
        through=through,
        min_new=environment.min_new_queries,
        heldout=environment.heldout_queries,
        max_training=environment.max_training_queries,
        seed=execution,
    )
    running = _others_running(environment.state_machine_arn, execution) if decision.start else []
    if running:
        decision = decision.skipped(RUN_IN_PROGRESS)
    execution_arn = None
    record: dict[str, Any] = {"scheduled_time": moment.isoformat(), "execution": execution, **decision.summary()}
    if decision.start:
        queries_uri = s3io.put_bytes(bucket, retrain_queries(execution), query_file(decision.training), JSONL)
        heldout_uri = (  # retrain_heldout_queries 0: no production held-out (an empty file would hold none)
            s3io.put_bytes(bucket, retrain_heldout(execution), query_file(decision.heldout), JSONL)
            if decision.heldout
            else None
        )
        execution_arn = _start(
            environment.state_machine_arn,
            execution,
            {
                "queries_s3_uri": queries_uri,
                "mix_user_queries": False,
                **({"production_heldout_s3_uri": heldout_uri} if heldout_uri else {}),
            },
        )
        through_day = decision.through.isoformat() if decision.through else None
        s3io.put_json(
            bucket,
            RETRAIN_STATE,
            {
                "execution": execution,
                "execution_arn": execution_arn,
                "through": through_day,
                "window_start": since.isoformat(),
                "started_at": token,
            },
        )
        record.update(execution_arn=execution_arn, queries_uri=queries_uri, production_heldout_uri=heldout_uri)
    else:
        record["running_executions"] = running
        _notify_skip(environment, decision, execution)
    decision_uri = s3io.put_json(bucket, retrain_decision(token), record)
    s3io.put_json(bucket, RETRAIN_LATEST, record)
    metrics.add_metric(name="RetrainStarted" if decision.start else "RetrainSkipped", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RetrainNewQueries", unit=MetricUnit.Count, value=decision.new_queries)
    log = logger.info if decision.start and not decision.malformed else logger.warning
    log("Scheduled retraining decided", **{k: v for k, v in record.items() if k != "malformed_samples"})
    return RetrainOutput(
        status=decision.status,
        explanation=decision.explanation(),
        execution_arn=execution_arn,
        decision_uri=decision_uri,
        new_queries=decision.new_queries,
        training_queries=len(decision.training),
        heldout_queries=len(decision.heldout),
        malformed=dict(decision.malformed),
    ).to_state()
