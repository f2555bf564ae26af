"""The Bedrock resources the pipeline creates at run time, found by their tags and removed in a safe order.

Two callers: the stack-delete cleanup (``search_router.handlers.cleanup``: everything tagged ``stack=<stack>``) and the
compensation of a failed, timed-out or aborted run (``search_router.handlers.compensate``: ``stack=<stack>`` *and*
``run-id=<run>``). There is no CloudFormation resource for customization jobs, evaluation jobs, custom models or
custom model deployments, so these tags are the only record of what belongs to whom.

One :meth:`ResourceSweeper.sweep` is one poll, stateless between polls:

1. in-progress model customization jobs and evaluation jobs are stopped (they bill while they run);
2. custom model deployments are deleted (also ``Creating`` ones);
3. custom models are deleted once none of the scope's deployments is left (a deployment pins its model).

A poll is complete only when it finds nothing of the scope left. Throttling, ``ConflictException`` (a model
still used by a deployment) and a deployment Bedrock won't delete yet are left for the next poll;
``ResourceNotFoundException`` means already gone; permission errors are *fatal* (waiting will not fix them).
With ``Scope.keep`` nothing is stopped or deleted: what exists is reported as kept. ``Scope.protected`` ARNs
(the deployment the router serves, and its model) are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from search_router.adapters.aws_errors import TRANSIENT_CODES, ClientError, error_code, error_message
from search_router.contract.tags import RUN_TAG, STACK_TAG
from search_router.handlers.observability import logger

__all__ = ["RUN_TAG", "STACK_TAG", "Kind", "Leftover", "ResourceSweeper", "Scope", "SweepReport"]

ACTIVE_JOB_STATUSES = ("InProgress", "Stopping")

GONE_CODES = frozenset({"ResourceNotFoundException", "ExecutionDoesNotExist", "StateMachineDoesNotExist"})
# Waiting will not fix these: stop and say what is left.
FATAL_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"})


@dataclass(frozen=True)
class Kind:
    """A kind of run-time resource and the AWS CLI command that removes one by hand."""

    label: str
    remove: str


EXECUTION = Kind("pipeline execution", "aws stepfunctions stop-execution --execution-arn <arn>")
CUSTOMIZATION_JOB = Kind("model customization job", "aws bedrock stop-model-customization-job --job-identifier <arn>")
EVALUATION_JOB = Kind("evaluation job", "aws bedrock stop-evaluation-job --job-identifier <arn>")
BATCH_JOB = Kind("batch inference job", "aws bedrock stop-model-invocation-job --job-identifier <arn>")
BATCH_ACTIVE_STATUSES = ("Submitted", "Validating", "Scheduled", "InProgress", "Stopping")
"""A batch labeling job's statuses before it ends (botocore's ``ModelInvocationJobStatus``); all but ``Stopping``
can be stopped."""
DEPLOYMENT = Kind(
    "custom model deployment",
    "aws bedrock delete-custom-model-deployment --custom-model-deployment-identifier <arn>",
)
CUSTOM_MODEL = Kind("custom model", "aws bedrock delete-custom-model --model-identifier <arn>")
KINDS = (EXECUTION, CUSTOMIZATION_JOB, EVALUATION_JOB, BATCH_JOB, DEPLOYMENT, CUSTOM_MODEL)


@dataclass(frozen=True)
class Leftover:
    kind: Kind
    arn: str
    state: str

    def describe(self) -> str:
        return f"{self.kind.label} {self.arn} ({self.state})"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.label, "arn": self.arn, "state": self.state}


@dataclass
class SweepReport:
    """One poll's findings. ``complete`` only when nothing of the scope is left and every check succeeded."""

    leftovers: list[Leftover] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # checks that failed this poll (throttling ...)
    fatal: list[str] = field(default_factory=list)  # errors waiting will not fix (permissions)
    removed: list[Leftover] = field(default_factory=list)  # stop/delete requests accepted this poll
    kept: list[Leftover] = field(default_factory=list)  # found and deliberately left in place

    @property
    def complete(self) -> bool:
        return not (self.leftovers or self.unchecked or self.fatal)

    def summary(self) -> dict[str, Any]:
        return {
            "left": [leftover.describe() for leftover in self.leftovers],
            "unchecked": self.unchecked,
            "fatal": self.fatal,
            "removed": len(self.removed),
            "kept": [leftover.describe() for leftover in self.kept],
        }


@dataclass(frozen=True)
class Scope:
    """What a sweep may touch: resources of this account and Region carrying every one of ``tags``."""

    tags: Mapping[str, str]
    arn_prefix: str  # ``arn:<partition>:bedrock:<region>:<account>:``: other accounts' resources are never touched
    keep: bool = False  # report what exists, stop and delete nothing
    protected: Mapping[str, str] = field(default_factory=dict)  # ARN -> why it is never touched

    @staticmethod
    def arn_prefix_of(arn: str) -> str:
        """The Bedrock ARN prefix of the account and Region an ARN (e.g. a state machine's) belongs to."""
        _, partition, _, region, account = arn.split(":", 5)[:5]
        return f"arn:{partition}:bedrock:{region}:{account}:"

    def describe(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in sorted(self.tags.items()))


class ResourceSweeper:
    """Finds and removes (or, with ``keep``, reports) the scope's Bedrock resources, one poll at a time."""

    def __init__(self, scope: Scope, *, bedrock: Any, keep_reason: str = "kept") -> None:
        self._scope = scope
        self._bedrock = bedrock
        self._keep_reason = keep_reason

    def sweep(self, report: SweepReport) -> SweepReport:
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
        self._stop_jobs(
            report,
            BATCH_JOB,
            list_operation="list_model_invocation_jobs",
            summaries_key="invocationJobSummaries",
            get=self._bedrock.get_model_invocation_job,
            stop=self._bedrock.stop_model_invocation_job,
            active=BATCH_ACTIVE_STATUSES,
        )
        deployments_gone = self._delete_deployments(report)
        self._delete_models(report, deployments_gone=deployments_gone)
        return report

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
        active: tuple[str, ...] = ACTIVE_JOB_STATUSES,
    ) -> None:
        seen: set[str] = set()
        for status in active:
            for summary in self.list(report, self._bedrock, list_operation, summaries_key, statusEquals=status) or []:
                arn = summary["jobArn"]
                if arn in seen or not self._is_ours(report, arn):
                    continue
                seen.add(arn)
                if self._kept(report, kind, arn, str(summary.get("status"))):
                    continue
                try:
                    current = get(jobIdentifier=arn)["status"]  # the listing may lag behind
                except ClientError as exc:
                    problem = self.problem(report, exc, f"Get {kind.label}", arn)
                    if problem is not None:
                        report.leftovers.append(Leftover(kind, arn, f"{summary.get('status')}; {problem}"))
                    continue
                if current in active and current != "Stopping":
                    try:
                        stop(jobIdentifier=arn)
                    except ClientError as exc:
                        # ValidationException: it finished or began stopping meanwhile; look again next poll.
                        problem = self.problem(report, exc, f"Stop {kind.label}", arn)
                        if problem is not None:
                            report.leftovers.append(Leftover(kind, arn, f"{current}; {problem}"))
                        continue
                    report.removed.append(Leftover(kind, arn, "stopped"))
                    logger.info("job stop requested", kind=kind.label, arn=arn)
                    report.leftovers.append(Leftover(kind, arn, f"{current}; stop requested"))
                elif current in active:
                    report.leftovers.append(Leftover(kind, arn, current))
                # Completed, Failed, Stopped: nothing runs any more (a completed job's model is deleted below).

    # --- Deployments, then models ------------------------------------------------------------------------
    def _delete_deployments(self, report: SweepReport) -> bool:
        """Deletes the scope's deployments; True when this poll saw none of them left (kept ones aside)."""
        deployments = self.list(report, self._bedrock, "list_custom_model_deployments", "modelDeploymentSummaries")
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
            if self._kept(report, DEPLOYMENT, arn, status):
                continue
            try:
                self._bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
            except ClientError as exc:
                # ConflictException / ValidationException: e.g. Bedrock won't delete it while Creating. Next poll.
                problem = self.problem(report, exc, "DeleteCustomModelDeployment", arn)
                if problem is not None:
                    gone = False
                    report.leftovers.append(Leftover(DEPLOYMENT, arn, f"{status}; {problem}"))
                continue
            report.removed.append(Leftover(DEPLOYMENT, arn, "deleted"))
            gone = False  # confirmed gone only when a later poll no longer lists it
            logger.info("deployment deletion requested", arn=arn, status=status)
            report.leftovers.append(Leftover(DEPLOYMENT, arn, f"{status}; deletion requested"))
        return gone

    def _delete_models(self, report: SweepReport, *, deployments_gone: bool) -> None:
        models = self.list(report, self._bedrock, "list_custom_models", "modelSummaries", isOwned=True)
        for model in models or []:
            arn = model["modelArn"]
            if not self._is_ours(report, arn) or self._kept(report, CUSTOM_MODEL, arn, "exists"):
                continue
            if not deployments_gone:
                report.leftovers.append(Leftover(CUSTOM_MODEL, arn, "waiting until the deployments are gone"))
                continue
            try:
                self._bedrock.delete_custom_model(modelIdentifier=arn)
            except ClientError as exc:
                # ConflictException: a deployment (possibly not this scope's) still uses the model. Next poll.
                problem = self.problem(report, exc, "DeleteCustomModel", arn)
                if problem is not None:
                    report.leftovers.append(Leftover(CUSTOM_MODEL, arn, problem))
                continue
            report.removed.append(Leftover(CUSTOM_MODEL, arn, "deleted"))
            logger.info("custom model deletion requested", arn=arn)
            report.leftovers.append(Leftover(CUSTOM_MODEL, arn, "deletion requested"))

    # --- helpers -------------------------------------------------------------------------------------------
    def _kept(self, report: SweepReport, kind: Kind, arn: str, state: str) -> bool:
        """True (and recorded as kept) when the scope keeps everything or protects this ARN."""
        reason = self._scope.protected.get(arn) or (self._keep_reason if self._scope.keep else None)
        if reason is None:
            return False
        report.kept.append(Leftover(kind, arn, f"{state}; {reason}"))
        return True

    def list(self, report: SweepReport, client: Any, operation: str, key: str, **params: Any) -> list[dict] | None:
        """Every item of a paginated List call, or None when it failed this poll (recorded as unchecked)."""
        items: list[dict[str, Any]] = []
        try:
            for page in client.get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:  # e.g. the state machine is already gone: nothing runs
                return []
            problem = self.problem(report, exc, operation_name(operation), None)
            if error_code(exc) not in FATAL_CODES:
                report.unchecked.append(problem or operation)
            return None
        return items

    def _is_ours(self, report: SweepReport, arn: str) -> bool | None:
        """True when ``arn`` carries every tag of the scope; None when its tags could not be read this poll."""
        if not arn.startswith(self._scope.arn_prefix):
            return False
        try:
            tags = self._bedrock.list_tags_for_resource(resourceARN=arn).get("tags", [])
        except ClientError as exc:
            problem = self.problem(report, exc, "ListTagsForResource", arn)
            if problem is None:
                return False
            if error_code(exc) not in FATAL_CODES:
                report.unchecked.append(f"{arn}: {problem}")
            return None
        found = {t.get("key"): t.get("value") for t in tags}
        return all(found.get(key) == value for key, value in self._scope.tags.items())

    @staticmethod
    def problem(report: SweepReport, exc: ClientError, action: str, arn: str | None) -> str | None:
        """None when the resource is already gone; otherwise the problem, recorded for the report."""
        code = error_code(exc)
        if code in GONE_CODES and arn is not None:
            return None
        problem = f"{action} failed: {code}: {error_message(exc)}"
        if code in FATAL_CODES:
            report.fatal.append(f"{arn}: {problem}" if arn else problem)
        level = logger.info if code in TRANSIENT_CODES else logger.warning
        level("run-time resource call failed", action=action, arn=arn, code=code, fatal=code in FATAL_CODES)
        return problem


def operation_name(operation: str) -> str:
    """``list_custom_models`` → ``ListCustomModels`` (the API name, for messages)."""
    return "".join(word.capitalize() for word in operation.split("_"))
