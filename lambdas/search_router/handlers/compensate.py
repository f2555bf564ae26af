"""Compensation: what a failed, timed-out or aborted pipeline execution created is stopped and deleted, and the
failure is announced with what was removed, kept or left.

A Catch sees neither an abort nor a timeout, and a catch-all would make every failure final (a redrive would
re-run the Fail state). So the pipeline has none: EventBridge starts the compensation state machine
(``stepfunctions/compensation.asl.json``) for every ``Step Functions Execution Status Change`` to FAILED,
TIMED_OUT or ABORTED, and :func:`reconcile`, on a schedule, starts it for any such execution whose event was
lost (EventBridge delivers these events on a best-effort basis).

:func:`sweep` is one poll of that state machine:

- the first poll *claims* the execution attempt (an S3 object written only if absent, keyed by run and redrive
  count), so two starts for the same failure never notify twice;
- every poll removes the run's resources (tags ``stack=<stack>`` and ``run-id=<run>``) with the shared
  :class:`search_router.adapters.runtime_resources.ResourceSweeper`, unless the run asked to keep them
  (``keep_failed_artifacts``); the deployment the router serves (its SSM parameter) and that deployment's model
  are never touched;
- after an abort or a timeout a task may still be running and create a resource, so the sweep is complete only
  once ``SETTLE_SECONDS`` have passed since the execution stopped;
- past ``DEADLINE_SECONDS`` (or on a permission error) it stops and reports what is left.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters.aws_errors import ClientError, error_code, reraise_transient
from search_router.adapters.clients import CLIENTS
from search_router.adapters.runtime_resources import RUN_TAG, STACK_TAG, Leftover, ResourceSweeper, Scope, SweepReport
from search_router.contract.environment import CompensationEnvironment
from search_router.contract.errors import InvalidRunInput, TransientError
from search_router.contract.layout import RunLayout
from search_router.contract.promotion import model_id_of
from search_router.contract.run import run_id_from_execution, settings_from_input
from search_router.contract.tasks import SweepInput
from search_router.handlers.observability import logger, metrics, task_handler

ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")
# After these, a task that was running when the execution stopped may still create a resource.
UNSETTLED = ("ABORTED", "TIMED_OUT")
POLL_SECONDS = 30
MAX_TEXT = 4_000  # error and cause carried in state and notifications (Step Functions keeps state under 256 KB)
MAX_ITEMS = 50  # resources listed per category
# reconcile(): which executions it looks at, and how long it leaves the EventBridge path to act first.
RECONCILE_WINDOW = timedelta(days=2)
RECONCILE_GRACE = timedelta(minutes=15)
LONGEST_EXECUTION = timedelta(days=8)  # the pipeline's TimeoutSeconds
RECONCILED_SOURCE = "search-router.reconcile"


@dataclass(frozen=True)
class CompensationSettings:
    """The function's environment (``infra/compensation.py`` writes it)."""

    stack_name: str
    state_machine_arn: str
    bucket: str
    model_parameter: str
    settle_seconds: int
    deadline_seconds: int
    defaults: Mapping[str, Any]
    poll_seconds: int = POLL_SECONDS

    @classmethod
    def from_environment(cls, environment: CompensationEnvironment | None = None) -> CompensationSettings:
        """The settings of ``environment``, by default this function's own (:meth:`CompensationEnvironment.load`)."""
        environment = CompensationEnvironment.load() if environment is None else environment
        return cls(
            stack_name=environment.stack_name,
            state_machine_arn=environment.state_machine_arn,
            bucket=environment.data_bucket,
            model_parameter=environment.model_parameter,
            settle_seconds=environment.settle_seconds,
            deadline_seconds=environment.deadline_seconds,
            defaults=environment.pipeline_defaults,
            poll_seconds=POLL_SECONDS if environment.poll_seconds is None else environment.poll_seconds,
        )


# ----------------------------------------------------------------------------------------------------------
# What happened to the execution
# ----------------------------------------------------------------------------------------------------------


def is_child_execution(execution_arn: str) -> bool:
    """A Distributed Map's child executions (``execution:<machine>/<map label>:<id>``) are the Map's business."""
    parts = execution_arn.split(":")
    return len(parts) >= 7 and "/" in parts[6]


def _clip(text: Any) -> str | None:
    if text in (None, ""):
        return None
    value = str(text)
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 3] + "..."


def failed_state(states: Any, execution_arn: str) -> str | None:
    """The top-level state that was running when the execution ended: the newest state entered and not exited
    (newest first by event id, whatever order the pages come in)."""
    pages = states.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, reverseOrder=True, includeExecutionData=False, PaginationConfig={"MaxItems": 1000}
    )
    events = sorted((e for page in pages for e in page.get("events", [])), key=lambda e: -int(e.get("id", 0)))
    exited: set[str] = set()
    depth = 0  # inside an inline Map iteration (read backwards: its end comes first)
    for event in events:
        kind = str(event.get("type", ""))
        if kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            depth += 1
        elif kind == "MapIterationStarted":
            depth = max(0, depth - 1)
        elif depth:
            continue
        elif kind.endswith("StateExited"):
            exited.add(str(event.get("stateExitedEventDetails", {}).get("name")))
        elif kind.endswith("StateEntered"):
            name = str(event.get("stateEnteredEventDetails", {}).get("name"))
            if name not in exited:
                return name
    return None


def keep_artifacts(defaults: Mapping[str, Any], execution_input: str | None) -> bool:
    """The run's ``keep_failed_artifacts``: its input over the deployed defaults (an input Preflight refused
    falls back to the default)."""
    try:
        overrides = json.loads(execution_input) if execution_input else {}
        return settings_from_input(dict(defaults), overrides).keep_failed_artifacts
    except (InvalidRunInput, ValueError):
        return bool(defaults.get("keep_failed_artifacts"))  # unreadable: clean up, the side that bills nothing


def describe(states: Any, execution_arn: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """What the notification and the sweep need to know about the execution."""
    try:
        description = states.describe_execution(executionArn=execution_arn)
    except ClientError as exc:
        reraise_transient(exc)
        raise
    stop = description.get("stopDate")
    return {
        "execution_arn": execution_arn,
        "execution_name": description["name"],
        "run_id": run_id_from_execution(description["name"]),
        "status": description["status"],
        "error": _clip(description.get("error")),
        "cause": _clip(description.get("cause")),
        "failed_state": failed_state(states, execution_arn),
        "stopped_at": stop.timestamp() if isinstance(stop, datetime) else None,
        "redrive_count": int(description.get("redriveCount") or 0),
        "keep": keep_artifacts(defaults, description.get("input")),
    }


def claim_key(run_id: str, redrive_count: int) -> str:
    """One claim per execution attempt: a redriven execution that fails again is compensated again."""
    return RunLayout(run_id).compensation_claim(redrive_count)


def claim(s3: Any, bucket: str, key: str, body: dict[str, Any]) -> bool:
    """Write the claim only if nobody has: False when another compensation already holds it."""
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(body, separators=(",", ":")).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            return False
        raise
    return True


# ----------------------------------------------------------------------------------------------------------
# What must not be touched
# ----------------------------------------------------------------------------------------------------------


def protected_resources(ssm: Any, bedrock: Any, parameter: str) -> dict[str, str]:
    """The deployment the router's SSM parameter points at, and that deployment's model: in service, whatever
    run created them (a run that failed after promoting must not take the router's model away)."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return {}
        raise TransientError(f"could not read the router's model parameter {parameter}: {exc}") from exc
    model_id = model_id_of(value)  # None: not a promotion this pipeline wrote, nothing of ours is in service
    if not isinstance(model_id, str) or ":custom-model-deployment/" not in model_id:
        return {}
    protected = {model_id: "in service: the router's model parameter points at it"}
    try:
        deployment = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=model_id)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return protected
        raise TransientError(f"could not read the router's deployment {model_id}: {exc}") from exc
    if deployment.get("modelArn"):
        protected[str(deployment["modelArn"])] = "in service: the model of the router's deployment"
    return protected


# ----------------------------------------------------------------------------------------------------------
# One poll
# ----------------------------------------------------------------------------------------------------------


def _merge(previous: list[dict[str, str]], new: list[Leftover]) -> list[dict[str, str]]:
    merged = {(item["arn"], item["state"]): item for item in previous}
    for leftover in new:
        merged.setdefault((leftover.arn, leftover.state), leftover.to_dict())
    return list(merged.values())[:MAX_ITEMS]


def _done(reason: str, **fields: Any) -> dict[str, Any]:
    return {"done": True, "notify": False, "clean": True, "ignored": reason, **fields}


def poll(
    event: Mapping[str, Any],
    previous: Mapping[str, Any],
    settings: CompensationSettings,
    *,
    states: Any,
    bedrock: Any,
    s3: Any,
    ssm: Any,
    now: Callable[[], float] = time.time,
    claimant: str = "",
) -> dict[str, Any]:
    """One sweep of the compensation state machine (pure apart from the clients it is given)."""
    detail = event.get("detail") or {}
    execution_arn = str(detail.get("executionArn") or "")
    if detail.get("stateMachineArn") != settings.state_machine_arn:
        return _done(f"not an execution of {settings.state_machine_arn}", execution_arn=execution_arn)
    if is_child_execution(execution_arn):
        return _done("a Distributed Map child execution", execution_arn=execution_arn)

    polls = int(previous.get("polls", 0))
    if polls == 0:
        facts = describe(states, execution_arn, settings.defaults)
        if facts["status"] not in ENDED_BADLY:
            return _done(f"the execution is {facts['status']} now (redriven?)", execution_arn=execution_arn)
        key = claim_key(facts["run_id"], facts["redrive_count"])
        claimed = claim(
            s3,
            settings.bucket,
            key,
            {"execution_arn": execution_arn, "status": facts["status"], "claimant": claimant, "at": now()},
        )
        if not claimed:
            logger.info("compensation already claimed", execution_arn=execution_arn, claim=key)
            return _done("another compensation handles this failure", execution_arn=execution_arn, claim=key)
        stopped = facts["stopped_at"] or now()
        settle = settings.settle_seconds if facts["status"] in UNSETTLED else 0
        state: dict[str, Any] = {
            **facts,
            "claim": key,
            "settle_until": stopped + settle,
            "deadline": now() + settings.deadline_seconds,
            "removed": [],
        }
        metrics.add_metric(name="RunsFailed", unit="Count", value=1)
        logger.info("compensating", **{k: facts[k] for k in ("execution_arn", "run_id", "status", "keep")})
    else:
        state = {k: v for k, v in previous.items() if k not in ("left", "kept", "unchecked", "fatal")}

    scope = Scope(
        tags={STACK_TAG: settings.stack_name, RUN_TAG: state["run_id"]},
        arn_prefix=Scope.arn_prefix_of(settings.state_machine_arn),
        keep=bool(state["keep"]),
        protected=protected_resources(ssm, bedrock, settings.model_parameter),
    )
    report = ResourceSweeper(scope, bedrock=bedrock, keep_reason="kept: keep_failed_artifacts is true").sweep(
        SweepReport()
    )
    metrics.add_metric(name="RuntimeResourcesRemoved", unit="Count", value=len(report.removed))
    settled = now() >= float(state["settle_until"])
    clean = report.complete and settled
    out_of_time = now() >= float(state["deadline"])
    done = clean or bool(report.fatal) or out_of_time
    result = {
        **state,
        "polls": polls + 1,
        "done": done,
        "notify": done,
        "clean": clean,
        "removed": _merge(state.get("removed", []), report.removed),
        "kept": [k.to_dict() for k in report.kept][:MAX_ITEMS],
        "left": [k.to_dict() for k in report.leftovers][:MAX_ITEMS],
        "unchecked": report.unchecked[:MAX_ITEMS],
        "fatal": report.fatal[:MAX_ITEMS],
        "next_wait_seconds": settings.poll_seconds,
    }
    if not settled and report.complete:
        result["waiting"] = "a task may still create a resource until the settle time has passed"
    logger.info("compensation poll", polls=polls + 1, done=done, clean=clean, **report.summary())
    if done and not clean:
        metrics.add_metric(name="RuntimeResourcesLeft", unit="Count", value=len(report.leftovers) or 1)
    return result


@task_handler
def sweep(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = SweepInput.model_validate(event)
    return poll(
        task.event,
        task.previous or {},
        CompensationSettings.from_environment(),
        states=CLIENTS.get("stepfunctions"),
        bedrock=CLIENTS.get("bedrock"),
        s3=CLIENTS.get("s3"),
        ssm=CLIENTS.get("ssm"),
        claimant=task.compensation_execution,
    )


# ----------------------------------------------------------------------------------------------------------
# Lost events
# ----------------------------------------------------------------------------------------------------------


def _claimed(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def status_change_event(execution: Mapping[str, Any], state_machine_arn: str) -> dict[str, Any]:
    """The fields of a ``Step Functions Execution Status Change`` event that :func:`poll` reads."""

    def iso(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    return {
        "source": RECONCILED_SOURCE,
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": state_machine_arn,
            "name": execution.get("name"),
            "status": execution.get("status"),
            "startDate": iso(execution.get("startDate")),
            "stopDate": iso(execution.get("stopDate")),
        },
    }


def find_unclaimed(
    settings: CompensationSettings, *, states: Any, s3: Any, now: datetime, grace: timedelta = RECONCILE_GRACE
) -> list[tuple[dict[str, Any], str]]:
    """Executions that ended badly within :data:`RECONCILE_WINDOW` (and more than ``grace`` ago, leaving the
    EventBridge path time to act) with no claim: (execution summary, claim key)."""
    found = []
    oldest_start = now - RECONCILE_WINDOW - LONGEST_EXECUTION
    for status in ENDED_BADLY:
        pages = states.get_paginator("list_executions").paginate(
            stateMachineArn=settings.state_machine_arn, statusFilter=status
        )
        for page in pages:
            executions = page.get("executions", [])
            for execution in executions:
                stop = execution.get("stopDate")
                if not isinstance(stop, datetime) or not now - RECONCILE_WINDOW <= stop <= now - grace:
                    continue
                redrives = int(execution.get("redriveCount") or 0)
                key = claim_key(run_id_from_execution(execution["name"]), redrives)
                if not _claimed(s3, settings.bucket, key):
                    found.append((execution, key))
            # Newest first: past the oldest start that can still have stopped inside the window, stop paging.
            if executions and executions[-1]["startDate"] < oldest_start:
                break
    return found


@task_handler
def reconcile(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduled: start the compensation of every recent failure no compensation claimed (a lost event)."""
    environment = CompensationEnvironment.load()
    settings = CompensationSettings.from_environment(environment)
    states = CLIENTS.get("stepfunctions")
    compensation = environment.compensation_state_machine_arn
    started = []
    grace = RECONCILE_GRACE
    if environment.reconcile_grace_seconds is not None:  # 0 is a valid grace (the tests use it)
        grace = timedelta(seconds=environment.reconcile_grace_seconds)
    for execution, key in find_unclaimed(
        settings, states=states, s3=CLIENTS.get("s3"), now=datetime.now(UTC), grace=grace
    ):
        name = "reconcile-" + hashlib.sha256(key.encode()).hexdigest()[:40]
        try:
            states.start_execution(
                stateMachineArn=compensation,
                name=name,
                input=json.dumps(status_change_event(execution, settings.state_machine_arn)),
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                continue  # started by an earlier reconcile; its claim is on the way
            raise
        started.append(execution["executionArn"])
        logger.warning(
            "compensation started for a failure whose event was not seen", execution=execution["executionArn"]
        )
    metrics.add_metric(name="CompensationsReconciled", unit="Count", value=len(started))
    return {"started": started}
