"""What each task of the state machines receives and returns, as typed models.

The pipeline's state is one JSON document (:class:`PipelineState`) that the tasks fill in: Preflight writes
``run`` and ``preflight``, PlanQueries ``plan``, PrepareDataset ``dataset`` and so on (each task's ``ResultPath``).
A task's input is the subset its ``Parameters`` pick from that document (``stepfunctions/pipeline.asl.json``), and
its output is the model the next tasks read. So a field has one definition here, whoever writes or reads it:
the handler validates its input on entry (a malformed state fails the task with the field that is wrong) and
returns ``Output(...).to_state()``.

``tests/infra/test_task_contract.py`` holds the ASL to these models: every task's ``Parameters`` are exactly its
input model's fields, every ``ResultPath`` a field of :class:`PipelineState` of that task's output type, and every
path a ``Choice``, ``Wait`` or ``Map`` reads resolves to a field of the model it points into.

An optional field (one with a default) is written only when the task gave it, so an optional value is in the state
only when it is known (for example ``output_model_arn`` once the distilled model is Active), and a document read
from the state is written back as it was.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from search_router.contract.run import RunState


class Payload(BaseModel):
    """A task's input or output: unknown fields are an error; an optional field not given is left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="wrap")
    def _omit_not_given(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name, field in type(self).model_fields.items():
            if name not in self.model_fields_set and not field.is_required():
                data.pop(name, None)
        return data

    def to_state(self) -> dict[str, Any]:
        """The JSON document the state machine stores (``ResultPath``)."""
        return self.model_dump(mode="json")


class RunTask(Payload):
    """The input of a task that needs only the run."""

    run: RunState


# ---------------------------------------------------------------------------------------------------------------
# Preflight
# ---------------------------------------------------------------------------------------------------------------


class PreflightInput(Payload):
    """The execution input (``{}`` is valid) and the execution's identity (the context object)."""

    input: Any = None  # anything: Preflight says what is wrong with it (InvalidRunInput)
    execution_arn: str
    execution_name: str
    started_at: str


class PreflightFindings(Payload):
    """What Preflight checked: the teacher it chose and each model's verdict (``ModelVerdict.to_dict``)."""

    teacher: dict[str, Any]
    models: list[dict[str, Any]]
    router_models: list[dict[str, Any]]
    query_file: dict[str, Any] | None
    production_file: dict[str, Any] | None = None
    score_samples: dict[str, Any] | None = None


class PreflightOutput(Payload):
    """Preflight's ``ResultPath`` is ``$``: this is the whole state from here on."""

    run: RunState
    preflight: PreflightFindings


# ---------------------------------------------------------------------------------------------------------------
# Queries and labeling
# ---------------------------------------------------------------------------------------------------------------


class ShardRef(Payload):
    """One shard of the plan: its queries are in ``key`` (``RunLayout.plan_shard``)."""

    index: int = Field(ge=0)
    key: str
    count: int = Field(ge=0)


class ShardPlan(Payload):
    """PlanQueries' output (``$.plan``); the label Map iterates over ``shards``."""

    shards: list[ShardRef]
    planned: int = Field(ge=0)
    requested: int = Field(ge=0)
    shard_size: int = Field(ge=1)


class LabelShardInput(Payload):
    run: RunState
    shard: ShardRef


class ShardSummary(Payload):
    """LabelShard's output (the Map discards it; the shard's files in S3 are what PrepareDataset reads)."""

    index: int
    labeled: int
    invalid: int
    unlabeled: int


class StartBatchLabelingInput(Payload):
    run: RunState
    plan: ShardPlan


class BatchLabelingJob(Payload):
    """StartBatchLabeling's output (``$.batch_labeling``): the job and where its records and output are."""

    job_arn: str
    job_name: str
    input_uri: str
    output_uri: str
    records: int = Field(ge=1)


class CheckBatchLabelingInput(Payload):
    run: RunState
    batch_labeling: BatchLabelingJob


class BatchLabelingStatus(Payload):
    """CheckBatchLabeling's output (``$.batch_labeling_status``): ``InProgress`` until the job ended with output
    (``Completed``); a job that ended otherwise raises ``BatchLabelingFailed``."""

    status: str
    service_status: str
    counts: dict[str, int]
    elapsed_minutes: float
    next_wait_seconds: int


class CollectBatchLabelsInput(Payload):
    run: RunState
    plan: ShardPlan
    batch_labeling: BatchLabelingJob


class BatchLabelsSummary(Payload):
    """CollectBatchLabels' output (``$.batch_labels``); the shards' labeled files are what PrepareDataset reads."""

    shards: int
    labeled: int
    invalid: int
    errors: int
    unlabeled: int
    unreadable: int


class PrepareDatasetInput(Payload):
    run: RunState
    plan: ShardPlan


class Dataset(Payload):
    """PrepareDataset's output (``$.dataset``): the training and held-out files and what became of every query."""

    train_uri: str
    heldout_uri: str
    manifest_uri: str
    train_records: int
    heldout_records: int
    labeled: int
    invalid: int
    duplicates: int
    errors: int
    unlabeled: int
    withheld: int = 0
    """Examples of the held-out templates kept out of training beyond the unseen-template share."""
    train_groups_uri: str | None = None
    """The groups file beside the training file (``RunLayout.train_groups``): each training line's template, for the
    micro-router's calibration groups. Absent in the state of a run prepared before it existed."""


# ---------------------------------------------------------------------------------------------------------------
# Distillation and deployment
# ---------------------------------------------------------------------------------------------------------------


class TrainMicroRouterInput(Payload):
    run: RunState
    dataset: Dataset


class MicroRouterTraining(Payload):
    """TrainMicroRouter's result: the artifact, the held-out predictions, and the figures of the fit."""

    artifact_uri: str
    predictions_uri: str
    train_records: int
    heldout_records: int
    artifact_bytes: int
    mae_overall: float | None
    training: dict[str, Any]


class MicroRouterFailure(Payload):
    """``$.micro_router`` when TrainMicroRouter failed with ``MicroRouterNotTrainable`` (the Catch's error
    ``{"Error", "Cause"}``): the run goes on without a micro-router and the report says why."""

    error: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.error.get("Cause") or self.error.get("Error") or "no reason given")


class StartDistillationInput(Payload):
    run: RunState
    dataset: Dataset


class DistillationJob(Payload):
    """StartDistillation's output (``$.distillation``)."""

    job_arn: str
    job_name: str
    custom_model_name: str


class CheckDistillationInput(Payload):
    run: RunState
    distillation: DistillationJob


class DistillationStatus(Payload):
    """CheckDistillation's output (``$.distillation_status``): ``Completed`` only once the custom model is Active,
    and then with ``output_model_arn`` (and ``training_loss`` when the job reported one)."""

    status: str
    sub_status: dict[str, str | None]
    elapsed_minutes: float
    next_wait_seconds: int
    output_model_arn: str | None = None
    training_loss: float | None = None


class StartDeploymentInput(Payload):
    run: RunState
    distillation_status: DistillationStatus


class Deployment(Payload):
    """StartDeployment's output (``$.deployment``)."""

    deployment_arn: str
    deployment_name: str
    model_arn: str


class CheckDeploymentInput(Payload):
    run: RunState
    deployment: Deployment


class DeploymentStatus(Payload):
    """CheckDeployment's output (``$.deployment_status``)."""

    status: str
    next_wait_seconds: int


class RecordOutputsInput(Payload):
    run: RunState
    dataset: Dataset
    distillation: DistillationJob
    distillation_status: DistillationStatus
    deployment: Deployment


class RecordedOutputs(Payload):
    """RecordOutputs' output (``$.outputs``): where ``runs/<run>/outputs.json`` was written."""

    outputs_uri: str


# ---------------------------------------------------------------------------------------------------------------
# Evaluation, judge, report, decision
# ---------------------------------------------------------------------------------------------------------------


class Candidate(Payload):
    """One evaluation candidate (``RunState.candidates``, from the ``candidates`` setting)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    model: str
    prompt_kind: str


class EvaluateCandidateInput(Payload):
    run: RunState
    candidate: Candidate
    dataset: Dataset
    deployment: Deployment | None = None


class Evaluation(Payload):
    """EvaluateCandidate's output: one item of ``$.evaluations``."""

    name: str
    model_id: str
    prompt_kind: str
    results_uri: str
    metrics_uri: str
    judge_input_uri: str
    valid_json_rate: float | None
    mae_overall: float | None


class ShadowReplayInput(Payload):
    run: RunState
    dataset: Dataset


class ShadowReplay(Payload):
    """ShadowReplay's output (``$.shadow``): the model in service (the promotion parameter's ``model_id`` and
    ``prompt_kind``; before the first promotion the router's default model) answered ``replayed`` of the run's
    ``production_queries`` held-out queries (split ``production``; at most ``shadow_max_queries``). ``skipped``
    with the ``reason`` when there was nothing to replay (no Bedrock call)."""

    status: Literal["ok", "skipped"]
    production_queries: int = Field(ge=0)
    replayed: int = Field(ge=0)
    reason: str | None = None
    model_id: str | None = None
    prompt_kind: str | None = None
    promoted_run_id: str | None = None
    results_uri: str | None = None
    summary_uri: str | None = None
    valid_json_rate: float | None = None
    mae_overall: float | None = None


class ShadowFailure(Payload):
    """``$.shadow`` when ShadowReplay failed after its retries (the Catch's error ``{"Error", "Cause"}``): the run
    goes on without the replay and the report says why."""

    error: dict[str, Any]

    @property
    def reason(self) -> str:
        """``<error type>: <message>`` of a Lambda failure (whose ``Cause`` is its JSON error document), else the
        ``Cause`` or ``Error`` as given."""
        cause = self.error.get("Cause")
        try:
            document = json.loads(cause) if isinstance(cause, str) else None
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("errorMessage"):
            return f"{document.get('errorType') or self.error.get('Error')}: {document['errorMessage']}"
        return str(cause or self.error.get("Error") or "no reason given")


class StartJudgeInput(Payload):
    run: RunState
    evaluations: list[Evaluation]


JUDGE_IN_PROGRESS = "InProgress"
"""The status of a judge job still running (Bedrock's own status; a finished job is ``ok`` or ``missing``)."""


class JudgeJob(Payload):
    """One candidate's judge job: ``InProgress`` with its ARN, ``ok`` with a score, or ``missing`` with a reason.

    ``repeat`` is the job's number among the candidate's ``judge_repeats`` (left out for the first, which looks as
    it did before repeats existed); ``output_keys`` the S3 keys of its completed job's ``*_output.jsonl`` results
    (the report reads the per-query ratings from them with ``s3:GetObject`` alone)."""

    candidate: str
    status: str
    score: float | None
    repeat: int | None = Field(default=None, ge=1)
    job_arn: str | None = None
    reason: str | None = None
    scored: int | None = None
    records: int | None = None
    scale: str | None = None
    calibration: float | None = None
    output_keys: list[str] | None = None

    @property
    def repeat_number(self) -> int:
        return self.repeat or 1


class JudgeState(Payload):
    """``$.judge``: the judge jobs while they run; ``{"done": true, "skipped": true}`` when the judge is off; with
    ``error`` (the Catch's ``ResultPath``) when a judge step failed."""

    done: bool | None = None
    jobs: list[JudgeJob] | None = None
    started_at: str | None = None
    next_wait_seconds: int | None = None
    skipped: bool | None = None
    error: dict[str, Any] | None = None


class CheckJudgeInput(Payload):
    run: RunState
    judge: JudgeState


class ReportInput(Payload):
    run: RunState
    evaluations: list[Evaluation]
    dataset: Dataset
    judge: JudgeState | None = None
    micro_router: MicroRouterTraining | MicroRouterFailure | None = None
    shadow: ShadowReplay | ShadowFailure | None = None


class CascadeOutcome(Payload):
    """What the report decided about the cascade (``$.report.micro_router``): ``enabled`` (Promote then names the
    micro-router ``artifact_uri`` and ``tau`` in the promotion document), and ``reason`` in every case."""

    enabled: bool
    reason: str
    artifact_uri: str | None = None
    tau: float | None = Field(default=None, ge=0.0, le=1.0)
    answered_share: float | None = None


class ReportOutput(Payload):
    """Report's output (``$.report``): the gate's verdict and the distilled candidate's headline figures."""

    report_uri: str
    markdown_uri: str
    charts: dict[str, str]
    gate_passed: bool
    failures: list[str]
    headline: str
    candidate: str
    summary: dict[str, float | None]
    micro_router: CascadeOutcome | None = None


class DecisionInput(Payload):
    """The input of Promote and of Reject."""

    run: RunState
    deployment: Deployment
    report: ReportOutput


class Promoted(Payload):
    """Promote's output (``$.decision``)."""

    outcome: Literal["promoted"]
    parameter: str
    version: int
    model_id: str


class Rejected(Payload):
    """Reject's output (``$.decision``)."""

    outcome: Literal["rejected"]
    failures: list[str]
    deployment_deleted: bool
    delete_error: str | None


class NotifyInput(Payload):
    """The end-of-run notification: ``succeeded`` (from the pipeline, with the report) or ``failed`` (from the
    compensation, with its sweep's state, or with the error that kept the sweep from running)."""

    outcome: Literal["succeeded", "failed"]
    run: RunState | None = None
    headline_status: str | None = None
    headline: str | None = None
    report_uri: str | None = None
    compensation: dict[str, Any] | None = None


class Notification(Payload):
    message_id: str
    subject: str


class SweepInput(Payload):
    """One sweep of the compensation: the EventBridge event, the previous sweep's state (``None`` the first
    time) and the compensation execution that claims the failure."""

    event: dict[str, Any]
    previous: dict[str, Any] | None = None
    compensation_execution: str = ""


# ---------------------------------------------------------------------------------------------------------------
# The whole state
# ---------------------------------------------------------------------------------------------------------------


class PipelineState(Payload):
    """The pipeline's state document after Preflight: each field is one task's ``ResultPath``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: RunState
    preflight: PreflightFindings
    plan: ShardPlan | None = None
    batch_labeling: BatchLabelingJob | None = None
    batch_labeling_status: BatchLabelingStatus | None = None
    batch_labels: BatchLabelsSummary | None = None
    dataset: Dataset | None = None
    micro_router: MicroRouterTraining | MicroRouterFailure | None = None
    micro_router_error: dict[str, Any] | None = None
    distillation: DistillationJob | None = None
    distillation_status: DistillationStatus | None = None
    deployment: Deployment | None = None
    deployment_status: DeploymentStatus | None = None
    outputs: RecordedOutputs | None = None
    evaluations: list[Evaluation] | None = None
    shadow: ShadowReplay | ShadowFailure | None = None
    shadow_error: dict[str, Any] | None = None
    judge: JudgeState | None = None
    report: ReportOutput | None = None
    decision: Promoted | Rejected | None = None


TASK_INPUTS: dict[str, type[Payload]] = {
    "Preflight": PreflightInput,
    "PlanQueries": RunTask,
    "LabelShard": LabelShardInput,
    "StartBatchLabeling": StartBatchLabelingInput,
    "CheckBatchLabeling": CheckBatchLabelingInput,
    "CollectBatchLabels": CollectBatchLabelsInput,
    "PrepareDataset": PrepareDatasetInput,
    "TrainMicroRouter": TrainMicroRouterInput,
    "StartDistillation": StartDistillationInput,
    "CheckDistillation": CheckDistillationInput,
    "StartDeployment": StartDeploymentInput,
    "CheckDeployment": CheckDeploymentInput,
    "RecordOutputs": RecordOutputsInput,
    "EvaluateCandidate": EvaluateCandidateInput,
    "ShadowReplay": ShadowReplayInput,
    "StartJudge": StartJudgeInput,
    "CheckJudge": CheckJudgeInput,
    "Report": ReportInput,
    "Promote": DecisionInput,
    "Reject": DecisionInput,
    "NotifySuccess": NotifyInput,
}
"""The input model of each task state of ``stepfunctions/pipeline.asl.json``, by state name."""

TASK_OUTPUTS: dict[str, Any] = {
    "Preflight": PreflightOutput,
    "PlanQueries": ShardPlan,
    "LabelShard": ShardSummary,
    "StartBatchLabeling": BatchLabelingJob,
    "CheckBatchLabeling": BatchLabelingStatus,
    "CollectBatchLabels": BatchLabelsSummary,
    "PrepareDataset": Dataset,
    "TrainMicroRouter": MicroRouterTraining,
    "StartDistillation": DistillationJob,
    "CheckDistillation": DistillationStatus,
    "StartDeployment": Deployment,
    "CheckDeployment": DeploymentStatus,
    "RecordOutputs": RecordedOutputs,
    "EvaluateCandidate": Evaluation,
    "ShadowReplay": ShadowReplay,
    "StartJudge": JudgeState,
    "CheckJudge": JudgeState,
    "Report": ReportOutput,
    "Promote": Promoted,
    "Reject": Rejected,
    "NotifySuccess": Notification,
}
"""The output model of each task state of ``stepfunctions/pipeline.asl.json``, by state name."""

COMPENSATION_TASK_INPUTS: dict[str, type[Payload]] = {
    "Sweep": SweepInput,
    "Notify": NotifyInput,
    "NotifyCleanupFailed": NotifyInput,
}
"""The input model of each task state of ``stepfunctions/compensation.asl.json``, by state name."""


# --- The daily compaction of captured queries (capture_queries; EventBridge Scheduler, not the state machine) ---


class CompactCapturedInput(Payload):
    """``date``: the UTC day to compact; absent (the schedule's ``{}``): yesterday."""

    date: dt.date | None = None


class CompactCapturedOutput(Payload):
    """Where the day's query file is and what its objects held (every malformed line counted by reason)."""

    date: dt.date
    output_uri: str | None  # None when the day had no captured query (nothing is written)
    objects: int
    lines: int
    records: int
    queries: int
    malformed: dict[str, int]
    malformed_samples: list[str]


class DriftCheckInput(Payload):
    """``date``: the last UTC day of the window to check; absent (the schedule's ``{}``): yesterday."""

    date: dt.date | None = None


class DriftCheckOutput(Payload):
    """Where the summary is, its status (``ok``, ``insufficient_traffic``, ``no_training_data``) and the figures
    published (none unless ``ok``)."""

    status: str
    summary_uri: str
    records: int
    figures: dict[str, float]
    malformed: dict[str, int]


class RetrainInput(Payload):
    """The schedule's input: ``scheduled_time`` (EventBridge Scheduler's ``<aws.scheduler.scheduled-time>``, which
    names the execution, so a retried invocation starts no second run); absent (a manual invocation): now."""

    scheduled_time: dt.datetime | None = None


class RetrainOutput(Payload):
    """What the scheduled retraining decided (``status``: ``start`` or why it skipped), the execution it started,
    and where the decision is recorded."""

    status: str
    explanation: str
    execution_arn: str | None
    decision_uri: str
    new_queries: int
    training_queries: int
    heldout_queries: int
    malformed: dict[str, int]
