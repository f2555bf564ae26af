"""LLM judge: ``judge_repeats`` Bedrock Model Evaluation jobs per candidate (one by default), a custom
``OverallQuality`` metric over the candidate's precomputed answers, the teacher's weights as ground truth. Each
repeat has its own job name, idempotency token and output prefix (``RunLayout.judge_output``); CheckJudge polls
every job and records the keys of a completed job's results, which the report reads per query.

The judge never fails the *execution*: a job that cannot be created, fails, runs too long or cannot be read is
reported as ``missing`` with the reason, and the quality gate fails on it (``gate_require_judge``, default true)
with that reason in the report and the notification.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.adapters.aws_errors import (
    TRANSIENT_CODES,
    ClientError,
    error_code,
    error_message,
    reraise_transient,
)
from search_router.adapters.bedrock import bedrock_tags, create_once, stop_evaluation_jobs
from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.run import RunState, evaluation_job_name, next_wait_seconds
from search_router.contract.tasks import (
    JUDGE_IN_PROGRESS,
    CheckJudgeInput,
    JudgeJob,
    JudgeState,
    StartJudgeInput,
)
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.judge import JUDGE_METRIC, judge_custom_metric, parse_judge_scores

# A judge job that has not finished after this long is stopped and reported missing.
MAX_JUDGE_HOURS = 12.0
MAX_WAIT_SECONDS = 900
# A judge score stands for the candidate only when most of the judged records carry one.
MIN_SCORED_SHARE = 0.9
FINAL = ("Completed", "Failed", "Stopped", "Deleting")


def _repeat_parts(repeat: int) -> tuple[str, ...]:
    """What a repeat adds to the first job's name and token: nothing for the first (named as before repeats)."""
    return () if repeat == 1 else (str(repeat),)


def job_request(run: RunState, name: str, judge_input_uri: str, repeat: int = 1) -> dict[str, Any]:
    """The CreateEvaluationJob request of judge repeat ``repeat`` of candidate ``name``'s answers
    (``judge_input_uri``). A repeat's name ends ``-judge-N`` (the first's ``-judge``), so no two candidates' or
    repeats' names meet; its token's purpose has ``--repeat-N``, which no candidate name can contain."""
    environment = PipelineEnvironment.load()
    stack_name = environment.stack_name
    evaluator = {"bedrockEvaluatorModels": [{"modelIdentifier": environment.models["judge"]}]}
    of_repeat = "" if repeat == 1 else f" (repeat {repeat})"
    return {
        "jobName": evaluation_job_name(stack_name, run.run_id, name, "judge", *_repeat_parts(repeat)),
        "jobDescription": f"LLM-as-judge OverallQuality for candidate {name} of run {run.run_id}{of_repeat}",
        "roleArn": environment.bedrock_role_arn,
        "clientRequestToken": run.token(f"judge-{name}" + "".join(f"--repeat-{p}" for p in _repeat_parts(repeat))),
        "applicationType": "ModelEvaluation",
        "evaluationConfig": {
            "automated": {
                "datasetMetricConfigs": [
                    {
                        "taskType": "General",
                        "dataset": {
                            "name": f"heldout-{name}"[:63],
                            "datasetLocation": {"s3Uri": judge_input_uri},
                        },
                        "metricNames": [JUDGE_METRIC],
                    }
                ],
                "evaluatorModelConfig": evaluator,
                "customMetricConfig": {"customMetrics": [judge_custom_metric()], "evaluatorModelConfig": evaluator},
            }
        },
        "inferenceConfig": {"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": name}}]},
        "outputDataConfig": {"s3Uri": s3io.s3_uri(environment.data_bucket, run.layout.judge_output(name, repeat))},
        "jobTags": bedrock_tags(run.tags(stack_name)),
    }


def _judge_job(repeat: int, **fields: Any) -> JudgeJob:
    """A JudgeJob of judge repeat ``repeat``: ``repeat`` is given from the second on (the first looks as it did
    before repeats)."""
    return JudgeJob.model_validate(fields if repeat == 1 else {**fields, "repeat": repeat})


def _missing(name: str, reason: str, repeat: int = 1) -> JudgeJob:
    return _judge_job(repeat, candidate=name, status="missing", reason=reason, score=None)


def _lost(job: JudgeJob, reason: str) -> JudgeJob:
    """``job`` (its candidate and repeat) reported missing with ``reason``."""
    return _missing(job.candidate, reason, job.repeat_number)


def _start_one(bedrock: Any, run: RunState, name: str, judge_input_uri: str, repeat: int) -> JudgeJob:
    request = job_request(run, name, judge_input_uri, repeat)
    try:
        # Re-entered after the job was created (a retry, a redrive): create_once finds that job.
        arn, _ = create_once(bedrock, "evaluation", request["jobName"], bedrock.create_evaluation_job, request)
    except ClientError as exc:
        # Throttling or a 5xx: the state machine retries the whole step (TransientError); the jobs created before
        # are found again by create_once, so no job is created twice.
        reraise_transient(exc)
        logger.warning("judge job not created", candidate=name, repeat=repeat, code=error_code(exc))
        why = error_message(exc)
        if error_code(exc) == "ServiceQuotaExceededException":
            why += (
                f" (this run starts {run.settings.judge_repeats} judge job(s) per candidate at once: lower "
                "judge_repeats, or raise the quota on concurrent automatic model evaluation jobs)"
            )
        return _missing(name, f"could not create the judge job: {why}", repeat)
    return _judge_job(repeat, candidate=name, status="InProgress", job_arn=arn, score=None)


@task_handler
def start(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = StartJudgeInput.model_validate(event)
    run = task.run
    bedrock = CLIENTS.get("bedrock")
    jobs = [
        _start_one(bedrock, run, evaluation.name, evaluation.judge_input_uri, repeat)
        for evaluation in task.evaluations
        for repeat in range(1, run.settings.judge_repeats + 1)
    ]
    return JudgeState(
        done=all(j.status != JUDGE_IN_PROGRESS for j in jobs),
        jobs=jobs,
        started_at=datetime.now(UTC).isoformat(),
        next_wait_seconds=run.settings.poll_seconds,
    ).to_state()


def _scores(job: JudgeJob, run: RunState) -> JudgeJob:
    candidate, repeat = job.candidate, job.repeat_number
    bucket = PipelineEnvironment.load().data_bucket
    prefix = run.layout.judge_output(candidate, repeat)
    keys = [key for key in s3io.list_keys(bucket, prefix) if key.endswith("_output.jsonl")]
    lines: list[str] = []
    for key in keys:
        lines.extend(s3io.get_text(bucket, key).splitlines())
    judged = parse_judge_scores(lines)
    if judged.problem:
        return _missing(candidate, judged.problem, repeat)
    if not judged.ratings:
        return _missing(
            candidate,
            f"the judge job finished but no {JUDGE_METRIC} scores were found under s3://{bucket}/{prefix}",
            repeat,
        )
    if len(judged.ratings) < MIN_SCORED_SHARE * judged.records:
        return _missing(
            candidate,
            f"only {len(judged.ratings)} of {judged.records} judged records carry an {JUDGE_METRIC} score; not trusted",
            repeat,
        )
    return _judge_job(
        repeat,
        candidate=candidate,
        status="ok",
        job_arn=job.job_arn,
        score=sum(judged.ratings) / len(judged.ratings),
        scored=len(judged.ratings),
        records=judged.records,
        scale=judged.scale,
        calibration=judged.calibration,
        output_keys=keys,
    )


@task_handler
def check(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = CheckJudgeInput.model_validate(event)
    run, state = task.run, task.judge
    if state.started_at is None or state.jobs is None:
        raise ValueError("CheckJudge needs the judge state StartJudge wrote (started_at and jobs)")
    bedrock = CLIENTS.get("bedrock")
    started = datetime.fromisoformat(state.started_at)
    overdue = (datetime.now(UTC) - started).total_seconds() / 3600.0 > MAX_JUDGE_HOURS
    jobs = []
    for job in state.jobs:
        if job.status != JUDGE_IN_PROGRESS or job.job_arn is None:
            jobs.append(job)
            continue
        try:
            described = bedrock.get_evaluation_job(jobIdentifier=job.job_arn)
        except ClientError as exc:
            if error_code(exc) in TRANSIENT_CODES:
                jobs.append(job)  # look again at the next poll
                continue
            jobs.append(_lost(job, f"could not read the judge job: {error_message(exc)}"))
            continue
        status = described["status"]
        if status == "Completed":
            jobs.append(_scores(job, run))
        elif status in FINAL:
            reasons = "; ".join(described.get("failureMessages", [])) or "no message given"
            jobs.append(_lost(job, f"judge job {status}: {reasons}"))
        elif overdue:
            stop_evaluation_jobs([job.job_arn])
            jobs.append(_lost(job, f"judge job still {status} after {MAX_JUDGE_HOURS:.0f} h; stopped"))
        else:
            jobs.append(job)
    done = all(j.status != JUDGE_IN_PROGRESS for j in jobs)
    if done:
        missing = sum(1 for j in jobs if j.status == "missing")
        metrics.add_metric(name="JudgeJobsMissing", unit="Count", value=missing)
    status_lines = [
        {"candidate": j.candidate, "repeat": j.repeat_number, "status": j.status, "score": j.score} for j in jobs
    ]
    logger.info("judge status", jobs=status_lines)
    elapsed_s = (datetime.now(UTC) - started).total_seconds()
    return JudgeState(
        done=done,
        jobs=jobs,
        started_at=state.started_at,
        next_wait_seconds=next_wait_seconds(run.settings.poll_seconds, elapsed_s, cap=MAX_WAIT_SECONDS),
    ).to_state()
