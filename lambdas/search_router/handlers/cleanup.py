"""Removes the run-time Bedrock resources of this stack when the stack is deleted.

A CDK Provider-framework custom resource (``infra/cleanup.py``): ``on_event`` answers CloudFormation,
``is_complete`` is polled until the work is done. Create and Update do nothing (the physical id never
changes, so CloudFormation never sends a replacement Delete). Delete, and only while the stack itself is
``DELETE_IN_PROGRESS``, finds what the pipeline created for *this* stack (tag ``stack=<stack name>``; other
stacks' and untagged resources are never touched) and, on every poll, in this order:

1. stops RUNNING executions of the pipeline state machine, so no new job or deployment appears, and waits
   ``SettleSeconds`` after the last stop (a task already running may still create one);
2. stops in-progress model customization jobs and evaluation jobs and waits until they have stopped;
3. deletes custom model deployments (also ``Creating`` ones) and waits until they are gone;
4. then deletes the custom models.

A poll is complete only when it finds nothing of this stack left. Throttling, ``ConflictException`` (a model
still used by a deployment) and a deployment Bedrock won't delete yet are retried on the next poll;
``ResourceNotFoundException`` means already gone. Permission errors, and anything still left at the
handler's own deadline (``CleanupDeadline``, set by ``on_event`` well inside the Provider's total timeout),
fail the delete with a message listing the ARNs left and how to remove them; a retried ``cdk destroy``
sends a new Delete and the cleanup continues from what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters.aws_errors import ClientError, error_message
from search_router.adapters.clients import CLIENTS
from search_router.adapters.runtime_resources import (
    EXECUTION,
    KINDS,
    STACK_TAG,
    Leftover,
    ResourceSweeper,
    Scope,
    SweepReport,
)
from search_router.handlers.observability import logger, metrics, tracer

PHYSICAL_ID_PREFIX = "runtime-resource-cleanup"
DEADLINE_KEY = "CleanupDeadline"  # epoch seconds, returned by on_event and passed to every is_complete poll
STACK_DELETING = "DELETE_IN_PROGRESS"
MAX_LISTED = 20  # ARNs spelled out in a failure message (CloudFormation truncates long reasons)


class CleanupIncomplete(Exception):
    """Run-time resources of the stack are left; the message lists them and how to remove them."""


@dataclass(frozen=True)
class CleanupSettings:
    """The custom resource's properties (``infra/cleanup.py`` writes them) and the stack's id."""

    stack_name: str  # value of the ``stack`` tag
    stack_id: str
    state_machine_arn: str
    settle_seconds: int
    deadline_seconds: int

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> CleanupSettings:
        props = event.get("ResourceProperties") or {}
        missing = [k for k in ("StackName", "StateMachineArn", "DeadlineSeconds") if not props.get(k)]
        if missing:
            raise ValueError(f"the custom resource lacks properties {missing}; it was not created by this stack")
        return cls(
            stack_name=str(props["StackName"]),
            stack_id=str(event.get("StackId") or props["StackName"]),
            state_machine_arn=str(props["StateMachineArn"]),
            settle_seconds=int(props.get("SettleSeconds", 0)),
            deadline_seconds=int(props["DeadlineSeconds"]),
        )

    @property
    def scope(self) -> Scope:
        """Everything tagged ``stack=<this stack>`` in the state machine's account and Region."""
        return Scope(tags={STACK_TAG: self.stack_name}, arn_prefix=Scope.arn_prefix_of(self.state_machine_arn))


# ----------------------------------------------------------------------------------------------------------
# One poll
# ----------------------------------------------------------------------------------------------------------


class Sweeper:
    """Stops the pipeline's executions, then removes the stack's Bedrock resources (stateless between polls)."""

    def __init__(
        self,
        settings: CleanupSettings,
        *,
        bedrock: Any,
        stepfunctions: Any,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._resources = ResourceSweeper(settings.scope, bedrock=bedrock)
        self._states = stepfunctions
        self._now = now

    def sweep(self) -> SweepReport:
        report = SweepReport()
        self._stop_executions(report)
        return self._resources.sweep(report)

    def _stop_executions(self, report: SweepReport) -> None:
        arn = self._settings.state_machine_arn
        stopped: set[str] = set()
        running = self._resources.list(
            report, self._states, "list_executions", "executions", stateMachineArn=arn, statusFilter="RUNNING"
        )
        for execution in running or []:
            execution_arn = execution["executionArn"]
            try:
                self._states.stop_execution(
                    executionArn=execution_arn,
                    error="StackDeleted",
                    cause="The stack is being deleted; its run-time Bedrock resources are being removed.",
                )
            except ClientError as exc:
                problem = self._resources.problem(report, exc, "StopExecution", execution_arn)
                if problem is not None:
                    report.leftovers.append(Leftover(EXECUTION, execution_arn, f"RUNNING; {problem}"))
                continue
            report.removed.append(Leftover(EXECUTION, execution_arn, "stopped"))
            stopped.add(execution_arn)
            logger.info("execution stopped", execution_arn=execution_arn)
        settle = self._settings.settle_seconds
        if settle <= 0:
            return
        waiting = f"stopped less than {settle} s ago; a task still running may create a resource"
        for execution_arn in sorted(stopped):
            report.leftovers.append(Leftover(EXECUTION, execution_arn, waiting))
        cutoff = self._now() - settle
        aborted = self._resources.list(
            report, self._states, "list_executions", "executions", stateMachineArn=arn, statusFilter="ABORTED"
        )
        for execution in aborted or []:
            stop_date = execution.get("stopDate")
            if execution["executionArn"] in stopped or not isinstance(stop_date, datetime):
                continue
            if stop_date.timestamp() > cutoff:
                report.leftovers.append(Leftover(EXECUTION, execution["executionArn"], waiting))


# ----------------------------------------------------------------------------------------------------------
# The stack guard and the failure message
# ----------------------------------------------------------------------------------------------------------


def stack_status(cloudformation: Any, stack_id: str) -> str | None:
    """The stack's status; None when it could not be read this poll (retried)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except ClientError as exc:
        if "does not exist" in error_message(exc):
            return STACK_DELETING  # nothing left to protect
        logger.warning("could not read the stack status", message=error_message(exc))
        return None
    return str(stacks[0]["StackStatus"]) if stacks else STACK_DELETING


def failure_message(settings: CleanupSettings, report: SweepReport, *, logical_id: str, reason: str) -> str:
    """What is left, why, and how to remove it: the DELETE_FAILED reason CloudFormation shows."""
    tag = f"{STACK_TAG}={settings.stack_name}"
    lines = [f"{reason}: {len(report.leftovers)} run-time resource(s) tagged {tag} are left."]
    lines += [f"- {leftover.describe()}" for leftover in report.leftovers[:MAX_LISTED]]
    if len(report.leftovers) > MAX_LISTED:
        lines.append(f"- ... and {len(report.leftovers) - MAX_LISTED} more (Bedrock console, tag {STACK_TAG}).")
    lines += [f"- could not check: {item}" for item in report.unchecked[:5]]
    lines += [f"- not allowed: {item}" for item in report.fatal[:5]]
    kinds = [kind for kind in KINDS if any(leftover.kind is kind for leftover in report.leftovers)]
    lines.append(
        "Run `cdk destroy` (make destroy) again to continue the cleanup from what is left"
        + (", or remove them yourself: " + "; ".join(kind.remove for kind in kinds) if kinds else "")
        + f". To delete the stack and keep them, run `aws cloudformation delete-stack --stack-name "
        f"{settings.stack_name} --retain-resources {logical_id}`."
    )
    return "\n".join(lines)


def poll(
    event: dict[str, Any],
    *,
    bedrock: Any,
    stepfunctions: Any,
    cloudformation: Any,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """One ``is_complete`` poll: ``{"IsComplete": bool}``, or :class:`CleanupIncomplete` to fail the delete."""
    if event.get("RequestType") != "Delete":
        return {"IsComplete": True}
    settings = CleanupSettings.from_event(event)
    status = stack_status(cloudformation, settings.stack_id)
    if status is None:
        return _not_yet(event, settings, SweepReport(unchecked=["DescribeStacks"]), now)
    if status != STACK_DELETING:
        # A replacement or rollback of this resource while the stack lives on: its resources are in use.
        logger.info("stack is not being deleted; run-time resources are kept", stack_status=status)
        return {"IsComplete": True}
    report = Sweeper(settings, bedrock=bedrock, stepfunctions=stepfunctions, now=now).sweep()
    metrics.add_metric(name="RuntimeResourcesRemoved", unit="Count", value=len(report.removed))
    logger.info("cleanup poll", **report.summary())
    if report.fatal:
        reason = "Stack cleanup is not permitted to finish"
        raise CleanupIncomplete(failure_message(settings, report, logical_id=_logical_id(event), reason=reason))
    if report.complete:
        logger.info("no run-time resources of the stack are left", stack=settings.stack_name)
        return {"IsComplete": True}
    return _not_yet(event, settings, report, now)


def _not_yet(event: dict[str, Any], settings: CleanupSettings, report: SweepReport, now: Callable[[], float]) -> dict:
    deadline = event.get(DEADLINE_KEY)
    if deadline is not None and now() >= float(deadline):
        minutes = round(settings.deadline_seconds / 60)
        reason = f"Stack cleanup did not finish within {minutes} minutes"
        raise CleanupIncomplete(failure_message(settings, report, logical_id=_logical_id(event), reason=reason))
    return {"IsComplete": False}


def _logical_id(event: dict[str, Any]) -> str:
    return str(event.get("LogicalResourceId") or "the cleanup resource")


# ----------------------------------------------------------------------------------------------------------
# Lambda entry points
# ----------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Create/Update: nothing to do, same physical id. Delete: set the deadline the polls fail at."""
    request = event["RequestType"]
    logger.info("cleanup resource event", request_type=request, logical_id=event.get("LogicalResourceId"))
    if request == "Create":
        settings = CleanupSettings.from_event(event)
        return {"PhysicalResourceId": f"{PHYSICAL_ID_PREFIX}-{settings.stack_name}"}
    if request == "Update":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    settings = CleanupSettings.from_event(event)
    deadline = time.time() + settings.deadline_seconds
    logger.info("cleanup starts", deadline=datetime.fromtimestamp(deadline, UTC).isoformat())
    return {"PhysicalResourceId": event["PhysicalResourceId"], DEADLINE_KEY: deadline}


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def is_complete(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return poll(
        event,
        bedrock=CLIENTS.get("bedrock"),
        stepfunctions=CLIENTS.get("stepfunctions"),
        cloudformation=CLIENTS.get("cloudformation"),
    )
