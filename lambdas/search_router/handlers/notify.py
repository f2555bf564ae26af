"""Notify: publish the end of a run to SNS: a finished run with its headline (the pipeline's last step), or a
failed, timed-out or aborted one with its cause, what to do next and what its compensation removed, kept or left
(the compensation state machine's last step). Delivery is at least once: a retried publish may repeat a message.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.tasks import Notification, NotifyInput
from search_router.handlers.observability import logger, metrics, task_handler

# SNS Publish: the Subject must be ASCII without line breaks and *fewer than* 100 characters.
SUBJECT_MAX = 99


# Errors a redrive cannot fix: the cause is in the input, the models or the data, and a redrive re-runs the same
# step with the same input. Anything else (timeouts, throttling that outlasted the retries) may pass on a redrive.
FIX_AND_RESTART = frozenset(
    {
        "InvalidRunInput",
        "ModelNotUsable",
        "DatasetTooSmall",
        "TeacherUnavailable",
        "DistillationFailed",
        "DistillationTimedOut",
        "DeploymentFailed",
        "TooManyShardsFailed",
    }
)
STORAGE_NOTE = (
    "A kept custom model is billed for storage every month until it is deleted; a kept deployment costs nothing "
    "while idle (on-demand, billed per token)."
)
STATUS_TEXT = {"FAILED": "FAILED", "TIMED_OUT": "TIMED OUT", "ABORTED": "ABORTED"}


def cause_text(cause: Any) -> str:
    """Lambda errors arrive as a JSON cause with ``errorMessage``; other causes are plain text."""
    text = "" if cause is None else str(cause)
    try:
        parsed = json.loads(text)
    except (TypeError, ValueError):
        return text
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return text


def _console(region: str, execution_arn: str) -> str:
    if not execution_arn or not region:
        return ""
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def what_next(failure: dict[str, Any]) -> str:
    """One sentence: start a new run, or redrive (and what a redrive would find)."""
    status, error = failure.get("status"), str(failure.get("error") or "")
    state = failure.get("failed_state") or "the failed step"
    arn = failure.get("execution_arn", "<execution ARN>")
    redrive = f"aws stepfunctions redrive-execution --execution-arn {arn}"
    if status == "ABORTED":
        hint = f"The execution was stopped (by a user, or by cdk destroy) in {state}."
        return f"{hint} To continue from there: {redrive}"
    if error in FIX_AND_RESTART:
        return (
            "Fix what the cause says and start a new run; a redrive would re-run the same step and fail the same way."
        )
    if error == "States.ExceedToleratedFailureThreshold":
        return (
            "More than max_failed_shards_percent of the labeling shards failed after their retries; the Map Run of "
            f"LabelShards in the console shows each shard's error. A redrive re-runs only the failed shards: {redrive}"
        )
    if status == "TIMED_OUT":
        return f"The execution ran past its time limit in {state}. To continue from there: {redrive}"
    return f"This looks transient ({error or 'no error name'} in {state}); a redrive continues from it: {redrive}"


def _resource_lines(title: str, items: list[dict[str, Any]]) -> list[str]:
    if not items:
        return []
    return [f"{title}:"] + [f"- {i.get('kind')} {i.get('arn')} ({i.get('state')})" for i in items]


def compose_failure(compensation: dict[str, Any], *, stack_name: str, region: str) -> tuple[str, str]:
    """(subject, message) for a failed, timed-out or aborted run, from the compensation's last sweep."""
    failure = compensation
    run_id = failure.get("run_id") or failure.get("execution_name") or "unknown run"
    status = STATUS_TEXT.get(str(failure.get("status")), str(failure.get("status") or "FAILED"))
    state = failure.get("failed_state")
    error = failure.get("error") or ("(stopped)" if failure.get("status") == "ABORTED" else "error")
    where = f" in {state}" if state else ""
    subject = f"[{stack_name}] run {run_id} {status}{where}: {error}"
    lines = [
        f"Run {run_id} of {stack_name} {status}{where}.",
        f"Error: {error}",
        f"Cause: {cause_text(failure.get('cause')) or 'none given'}",
        f"What next: {what_next(failure)}",
    ]
    if failure.get("cleanup_error"):
        lines.append(
            f"Clean-up could not run: {cause_text(failure['cleanup_error'])}. Check the resources tagged "
            f"run-id={run_id} in the Bedrock console."
        )
    else:
        removed, kept, left = failure.get("removed", []), failure.get("kept", []), failure.get("left", [])
        lines.append(f"Clean-up of what the run created (tags stack={stack_name}, run-id={run_id}):")
        if not (removed or kept or left):
            lines.append("- nothing was running or left")
        lines += _resource_lines("Removed", removed)
        lines += _resource_lines("Kept", kept)
        if any(item.get("kind") == "custom model" for item in kept):
            lines.append(STORAGE_NOTE)
        lines += _resource_lines("LEFT (could not be removed; remove them by hand)", left)
        lines += [f"- could not check: {item}" for item in failure.get("unchecked", [])[:5]]
        lines += [f"- not allowed: {item}" for item in failure.get("fatal", [])[:5]]
        if removed and str(failure.get("error") or "") not in FIX_AND_RESTART:
            lines.append(
                "A redrive past distillation needs what was removed; set keep_failed_artifacts: true in the "
                "input to keep it next time."
            )
    console = _console(region, str(failure.get("execution_arn") or ""))
    if console:
        lines.append(f"Execution: {console}")
    return sns_subject(subject), "\n".join(lines)


def compose(event: dict[str, Any], *, stack_name: str, region: str) -> tuple[str, str]:
    """(subject, message) for an end-of-run notification."""
    if event.get("outcome") == "failed":
        return compose_failure(event.get("compensation") or {}, stack_name=stack_name, region=region)
    run = event.get("run") or {}
    run_id = run.get("run_id") or "unknown run"
    subject = f"[{stack_name}] run {run_id} {event.get('headline_status', 'finished')}"
    lines = [f"Run {run_id} of {stack_name} finished.", str(event.get("headline", "")).strip()]
    if event.get("report_uri"):
        lines.append(f"Report: {event['report_uri']}")
    console = _console(region, str(run.get("execution_arn") or ""))
    if console:
        lines.append(f"Execution: {console}")
    return sns_subject(subject), "\n".join(line for line in lines if line)


def sns_subject(text: str) -> str:
    """``text`` made a valid SNS subject: printable ASCII only (others become ``?``, whitespace a space), at most
    :data:`SUBJECT_MAX` characters (cut with an ellipsis). The full text stays in the message body."""
    cleaned = "".join(c if " " <= c <= "~" else (" " if c.isspace() else "?") for c in text)
    cleaned = " ".join(cleaned.split())
    if len(cleaned) <= SUBJECT_MAX:
        return cleaned
    return cleaned[: SUBJECT_MAX - 3].rstrip() + "..."


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    environment = PipelineEnvironment.load()
    stack_name = environment.stack_name
    region = context.invoked_function_arn.split(":")[3] if context.invoked_function_arn.count(":") >= 3 else ""
    task = NotifyInput.model_validate(event)
    subject, message = compose(task.to_state(), stack_name=stack_name, region=region)
    response = CLIENTS.get("sns").publish(TopicArn=environment.topic_arn, Subject=subject, Message=message)
    # Failed runs are counted by the compensation (RunsFailed), once per failure, however often this retries.
    metrics.add_metric(
        name="FailureNotificationsSent" if task.outcome == "failed" else "RunsFinished", unit="Count", value=1
    )
    logger.info("notification sent", subject=subject, message_id=response["MessageId"])
    return Notification(message_id=response["MessageId"], subject=subject).to_state()
