"""Notify: publish the end of a run (success with its headline, or failure with the cause) to SNS.

Robust to partial state: a run that failed in preflight has no run id yet, and the message says so.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common.observability import logger, metrics, task_handler
from common.run import env
from routing.aws import CLIENTS

# SNS Publish: the Subject must be ASCII without line breaks and *fewer than* 100 characters.
SUBJECT_MAX = 99


def _cause_text(error: dict[str, Any]) -> str:
    """Lambda errors arrive as a JSON ``Cause`` with ``errorMessage``; other causes are plain text."""
    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause)
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return str(cause)


def compose(event: dict[str, Any], *, stack_name: str, region: str) -> tuple[str, str]:
    """(subject, message) for an end-of-run notification."""
    state = event.get("state") or {}
    run = event.get("run") or state.get("run") or {}
    run_id = run.get("run_id") or event.get("execution_name") or "unknown run"
    execution_arn = run.get("execution_arn") or event.get("execution_arn") or ""
    console = (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
        if execution_arn
        else ""
    )
    if event.get("outcome") == "failed":
        error = event.get("error") or state.get("error") or {}
        subject = f"[{stack_name}] run {run_id} FAILED: {error.get('Error', 'error')}"
        lines = [
            f"Run {run_id} of {stack_name} failed.",
            f"Error: {error.get('Error', 'unknown')}",
            f"Cause: {_cause_text(error)}",
        ]
    else:
        subject = f"[{stack_name}] run {run_id} {event.get('headline_status', 'finished')}"
        lines = [f"Run {run_id} of {stack_name} finished.", str(event.get("headline", "")).strip()]
        if event.get("report_uri"):
            lines.append(f"Report: {event['report_uri']}")
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
    stack_name = env("STACK_NAME")
    region = context.invoked_function_arn.split(":")[3] if context.invoked_function_arn.count(":") >= 3 else ""
    subject, message = compose(event, stack_name=stack_name, region=region)
    response = CLIENTS.get("sns").publish(TopicArn=env("TOPIC_ARN"), Subject=subject, Message=message)
    metrics.add_metric(name="RunsFailed" if event.get("outcome") == "failed" else "RunsFinished", unit="Count", value=1)
    logger.info("notification sent", subject=subject, message_id=response["MessageId"])
    return {"message_id": response["MessageId"], "subject": subject}
