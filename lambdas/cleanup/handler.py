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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from common.bedrock import TRANSIENT_CODES, error_code, error_message
from common.observability import logger, metrics, tracer
from routing.aws import CLIENTS

TAG_KEY = "stack"  # the tag every run-time resource carries (common.run.RunState.tags)
PHYSICAL_ID_PREFIX = "runtime-resource-cleanup"
DEADLINE_KEY = "CleanupDeadline"  # epoch seconds, returned by on_event and passed to every is_complete poll
STACK_DELETING = "DELETE_IN_PROGRESS"
ACTIVE_JOB_STATUSES = ("InProgress", "Stopping")
MAX_LISTED = 20  # ARNs spelled out in a failure message (CloudFormation truncates long reasons)

GONE_CODES = frozenset({"ResourceNotFoundException", "ExecutionDoesNotExist", "StateMachineDoesNotExist"})
# Waiting will not fix these: fail the delete now and say what is left.
FATAL_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"})


class CleanupIncomplete(Exception):
    """Run-time resources of the stack are left; the message lists them and how to remove them."""


# ----------------------------------------------------------------------------------------------------------
# What is cleaned up, and what is left
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A kind of run-time resource and the AWS CLI command that removes one by hand."""

    label: str
    remove: str


EXECUTION = Kind("pipeline execution", "aws stepfunctions stop-execution --execution-arn <arn>")
CUSTOMIZATION_JOB = Kind("model customization job", "aws bedrock stop-model-customization-job --job-identifier <arn>")
EVALUATION_JOB = Kind("evaluation job", "aws bedrock stop-evaluation-job --job-identifier <arn>")
DEPLOYMENT = Kind(
    "custom model deployment",
    "aws bedrock delete-custom-model-deployment --custom-model-deployment-identifier <arn>",
)
CUSTOM_MODEL = Kind("custom model", "aws bedrock delete-custom-model --model-identifier <arn>")
KINDS = (EXECUTION, CUSTOMIZATION_JOB, EVALUATION_JOB, DEPLOYMENT, CUSTOM_MODEL)


@dataclass(frozen=True)
class Leftover:
    kind: Kind
    arn: str
    state: str

    def describe(self) -> str:
        return f"{self.kind.label} {self.arn} ({self.state})"


@dataclass
class SweepReport:
    """One poll's findings. ``complete`` only when nothing of the stack is left and every check succeeded."""

    leftovers: list[Leftover] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # checks that failed this poll (throttling ...)
    fatal: list[str] = field(default_factory=list)  # errors waiting will not fix (permissions)
    removed: int = 0  # stop/delete requests accepted this poll

    @property
    def complete(self) -> bool:
        return not (self.leftovers or self.unchecked or self.fatal)

    def summary(self) -> dict[str, Any]:
        return {
            "left": [leftover.describe() for leftover in self.leftovers],
            "unchecked": self.unchecked,
            "fatal": self.fatal,
            "removed": self.removed,
        }


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
    def bedrock_arn_prefix(self) -> str:
        """``arn:<partition>:bedrock:<region>:<account>:``: resources of other accounts are never touched."""
        _, partition, _, region, account = self.state_machine_arn.split(":", 5)[:5]
        return f"arn:{partition}:bedrock:{region}:{account}:"


# ----------------------------------------------------------------------------------------------------------
# One poll
# ----------------------------------------------------------------------------------------------------------


class Sweeper:
    """Finds and removes the stack's run-time resources, one poll at a time (stateless between polls)."""

    def __init__(
        self,
        settings: CleanupSettings,
        *,
        bedrock: Any,
        stepfunctions: Any,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._bedrock = bedrock
        self._states = stepfunctions
        self._now = now

    def sweep(self) -> SweepReport:
        report = SweepReport()
        self._stop_executions(report)
        self._stop_jobs(
            report,
            CUSTOMIZATION_JOB,
            list_operation="list_model_customization_jobs",
            summaries_key="modelCustomizationJobSummaries",
            get=self._bedrock.get_model_customization_job,
            stop=self._bedrock.stop_model_customization_job,
        )
        self._stop_jobs(
            report,
            EVALUATION_JOB,
            list_operation="list_evaluation_jobs",
            summaries_key="jobSummaries",
            get=self._bedrock.get_evaluation_job,
            stop=self._bedrock.stop_evaluation_job,
        )
        deployments_gone = self._delete_deployments(report)
        self._delete_models(report, deployments_gone=deployments_gone)
        return report

    # --- Step Functions ----------------------------------------------------------------------------------
    def _stop_executions(self, report: SweepReport) -> None:
        arn = self._settings.state_machine_arn
        stopped: set[str] = set()
        running = self._list(
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
                problem = self._problem(report, exc, "StopExecution", execution_arn)
                if problem is not None:
                    report.leftovers.append(Leftover(EXECUTION, execution_arn, f"RUNNING; {problem}"))
                continue
            report.removed += 1
            stopped.add(execution_arn)
            logger.info("execution stopped", execution_arn=execution_arn)
        settle = self._settings.settle_seconds
        if settle <= 0:
            return
        waiting = f"stopped less than {settle} s ago; a task still running may create a resource"
        for execution_arn in sorted(stopped):
            report.leftovers.append(Leftover(EXECUTION, execution_arn, waiting))
        cutoff = self._now() - settle
        aborted = self._list(
            report, self._states, "list_executions", "executions", stateMachineArn=arn, statusFilter="ABORTED"
        )
        for execution in aborted or []:
            stop_date = execution.get("stopDate")
            if execution["executionArn"] in stopped or not isinstance(stop_date, datetime):
                continue
            if stop_date.timestamp() > cutoff:
                report.leftovers.append(Leftover(EXECUTION, execution["executionArn"], waiting))

    # --- Bedrock jobs --------------------------------------------------------------------------------------
    def _stop_jobs(
        self,
        report: SweepReport,
        kind: Kind,
        *,
        list_operation: str,
        summaries_key: str,
        get: Callable[..., dict[str, Any]],
        stop: Callable[..., Any],
    ) -> None:
        seen: set[str] = set()
        for status in ACTIVE_JOB_STATUSES:
            for summary in self._list(report, self._bedrock, list_operation, summaries_key, statusEquals=status) or []:
                arn = summary["jobArn"]
                if arn in seen or not self._is_ours(report, arn):
                    continue
                seen.add(arn)
                try:
                    current = get(jobIdentifier=arn)["status"]  # the listing may lag behind
                except ClientError as exc:
                    problem = self._problem(report, exc, f"Get {kind.label}", arn)
                    if problem is not None:
                        report.leftovers.append(Leftover(kind, arn, f"{summary.get('status')}; {problem}"))
                    continue
                if current == "InProgress":
                    try:
                        stop(jobIdentifier=arn)
                    except ClientError as exc:
                        # ValidationException: it finished or began stopping meanwhile; look again next poll.
                        problem = self._problem(report, exc, f"Stop {kind.label}", arn)
                        if problem is not None:
                            report.leftovers.append(Leftover(kind, arn, f"InProgress; {problem}"))
                        continue
                    report.removed += 1
                    logger.info("job stop requested", kind=kind.label, arn=arn)
                    report.leftovers.append(Leftover(kind, arn, "InProgress; stop requested"))
                elif current in ACTIVE_JOB_STATUSES:
                    report.leftovers.append(Leftover(kind, arn, current))
                # Completed, Failed, Stopped: nothing runs any more (a completed job's model is deleted below).

    # --- Deployments, then models ------------------------------------------------------------------------
    def _delete_deployments(self, report: SweepReport) -> bool:
        """Deletes the stack's deployments; True when this poll saw none of them left."""
        deployments = self._list(report, self._bedrock, "list_custom_model_deployments", "modelDeploymentSummaries")
        if deployments is None:
            return False
        gone = True
        for deployment in deployments:
            arn = deployment["customModelDeploymentArn"]
            ours = self._is_ours(report, arn)
            if ours is None:
                gone = False
            if not ours:
                continue
            status = deployment.get("status", "unknown status")
            try:
                self._bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
            except ClientError as exc:
                # ConflictException / ValidationException: e.g. Bedrock won't delete it while Creating. Next poll.
                problem = self._problem(report, exc, "DeleteCustomModelDeployment", arn)
                if problem is not None:
                    gone = False
                    report.leftovers.append(Leftover(DEPLOYMENT, arn, f"{status}; {problem}"))
                continue
            report.removed += 1
            gone = False  # confirmed gone only when a later poll no longer lists it
            logger.info("deployment deletion requested", arn=arn, status=status)
            report.leftovers.append(Leftover(DEPLOYMENT, arn, f"{status}; deletion requested"))
        return gone

    def _delete_models(self, report: SweepReport, *, deployments_gone: bool) -> None:
        models = self._list(report, self._bedrock, "list_custom_models", "modelSummaries", isOwned=True)
        for model in models or []:
            arn = model["modelArn"]
            if not self._is_ours(report, arn):
                continue
            if not deployments_gone:
                report.leftovers.append(Leftover(CUSTOM_MODEL, arn, "waiting until the stack's deployments are gone"))
                continue
            try:
                self._bedrock.delete_custom_model(modelIdentifier=arn)
            except ClientError as exc:
                # ConflictException: a deployment (possibly not this stack's) still uses the model. Next poll.
                problem = self._problem(report, exc, "DeleteCustomModel", arn)
                if problem is not None:
                    report.leftovers.append(Leftover(CUSTOM_MODEL, arn, problem))
                continue
            report.removed += 1
            logger.info("custom model deletion requested", arn=arn)
            report.leftovers.append(Leftover(CUSTOM_MODEL, arn, "deletion requested"))

    # --- helpers -------------------------------------------------------------------------------------------
    def _list(
        self, report: SweepReport, client: Any, operation: str, key: str, **params: Any
    ) -> list[dict[str, Any]] | None:
        """Every item of a paginated List call, or None when it failed this poll (recorded as unchecked)."""
        items: list[dict[str, Any]] = []
        try:
            for page in client.get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:  # the state machine is already gone: nothing runs
                return []
            problem = self._problem(report, exc, _operation_name(operation), None)
            if error_code(exc) not in FATAL_CODES:
                report.unchecked.append(problem or operation)
            return None
        return items

    def _is_ours(self, report: SweepReport, arn: str) -> bool | None:
        """True when ``arn`` carries ``stack=<this stack>``; None when its tags could not be read this poll."""
        if not arn.startswith(self._settings.bedrock_arn_prefix):
            return False
        try:
            tags = self._bedrock.list_tags_for_resource(resourceARN=arn).get("tags", [])
        except ClientError as exc:
            problem = self._problem(report, exc, "ListTagsForResource", arn)
            if problem is None:
                return False
            if error_code(exc) not in FATAL_CODES:
                report.unchecked.append(f"{arn}: {problem}")
            return None
        return any(t.get("key") == TAG_KEY and t.get("value") == self._settings.stack_name for t in tags)

    @staticmethod
    def _problem(report: SweepReport, exc: ClientError, action: str, arn: str | None) -> str | None:
        """None when the resource is already gone; otherwise the problem, recorded for the report."""
        code = error_code(exc)
        if code in GONE_CODES and arn is not None:
            return None
        problem = f"{action} failed: {code}: {error_message(exc)}"
        if code in FATAL_CODES:
            report.fatal.append(f"{arn}: {problem}" if arn else problem)
        level = logger.info if code in TRANSIENT_CODES else logger.warning
        level("cleanup call failed", action=action, arn=arn, code=code, fatal=code in FATAL_CODES)
        return problem


def _operation_name(operation: str) -> str:
    """``list_custom_models`` → ``ListCustomModels`` (the API name, for messages)."""
    return "".join(word.capitalize() for word in operation.split("_"))


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
        logger.warning("could not read the stack status", code=error_code(exc), message=error_message(exc))
        return None
    return str(stacks[0]["StackStatus"]) if stacks else STACK_DELETING


def failure_message(settings: CleanupSettings, report: SweepReport, *, logical_id: str, reason: str) -> str:
    """What is left, why, and how to remove it: the DELETE_FAILED reason CloudFormation shows."""
    tag = f"{TAG_KEY}={settings.stack_name}"
    lines = [f"{reason}: {len(report.leftovers)} run-time resource(s) tagged {tag} are left."]
    lines += [f"- {leftover.describe()}" for leftover in report.leftovers[:MAX_LISTED]]
    if len(report.leftovers) > MAX_LISTED:
        lines.append(f"- ... and {len(report.leftovers) - MAX_LISTED} more (Bedrock console, tag {TAG_KEY}).")
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
    metrics.add_metric(name="RuntimeResourcesRemoved", unit="Count", value=report.removed)
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
