"""Finding a pipeline run: by execution ARN, execution name or run id, or the latest one.

A run's id is its execution name made safe for S3 keys and Bedrock names
(:func:`search_router.contract.run.run_id_from_execution`), so ``RUN`` may be either.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from cli.errors import NotFoundError
from search_router.contract.run import run_id_from_execution

# How many executions to look through when a run id is not an execution name.
SCAN_LIMIT = 1000
START_HINT = "start one with `python -m cli start`"


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    """The ARN an execution called ``name`` of this (standard) state machine has."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def run_id_of(execution: dict[str, Any]) -> str:
    return run_id_from_execution(execution["name"])


def _describe(sfn: Any, arn: str) -> dict[str, Any] | None:
    try:
        return dict(sfn.describe_execution(executionArn=arn))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "InvalidArn"):
            return None
        raise


def recent_executions(sfn: Any, state_machine_arn: str, limit: int) -> list[dict[str, Any]]:
    """The newest executions first (Step Functions lists them by start date, descending)."""
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, PaginationConfig={"PageSize": min(limit, 100)}
    ):
        found.extend(page.get("executions", []))
        if len(found) >= limit:
            break
    return found[:limit]


def latest_execution(sfn: Any, state_machine_arn: str) -> dict[str, Any]:
    """``DescribeExecution`` of the most recently started execution."""
    newest = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=1).get("executions", [])
    if not newest:
        raise NotFoundError("the pipeline has no executions yet", hint=START_HINT)
    described = _describe(sfn, newest[0]["executionArn"])
    if described is None:  # pragma: no cover - listed a moment ago
        raise NotFoundError(f"execution {newest[0]['executionArn']} disappeared")
    return described


def find_execution(sfn: Any, state_machine_arn: str, run: str) -> dict[str, Any]:
    """``DescribeExecution`` of the run named by an execution ARN, an execution name or a run id."""
    if run.startswith("arn:"):
        described = _describe(sfn, run)
        if described is None:
            raise NotFoundError(f"execution {run} does not exist")
        return described
    described = _describe(sfn, execution_arn_for(state_machine_arn, run))
    if described is not None:
        return described
    recent = recent_executions(sfn, state_machine_arn, SCAN_LIMIT)
    for execution in recent:
        if run_id_of(execution) == run:
            found = _describe(sfn, execution["executionArn"])
            if found is not None:
                return found
    names = ", ".join(run_id_of(e) for e in recent[:5])
    raise NotFoundError(
        f"no run {run!r} in the pipeline's executions",
        hint=f"recent runs: {names}" if names else START_HINT,
    )


def resolve_execution(sfn: Any, state_machine_arn: str, run: str | None) -> dict[str, Any]:
    return latest_execution(sfn, state_machine_arn) if not run else find_execution(sfn, state_machine_arn, run)
