"""Names that several parts of the project must spell the same way, each defined once here.

- :data:`DISTILLED`: the evaluation candidate (``eval_candidates``' ``"model": "distilled"``) and price key
  that stand for the run's own deployment;
- :class:`RouterMetric`: the router's Powertools metrics, which the router emits and the dashboard and alarms read
  (namespace = the stack name, dimension ``service=router_api``; the ones with a second dimension name it);
- :data:`CORS_ALLOW_HEADERS`: the request headers a browser may send to ``POST /route``, which the API's preflight
  and the router's CORS answers allow alike;
- :class:`PipelineState`: the states of ``stepfunctions/pipeline.asl.json``, which ``cli status`` and
  ``make simulate`` display (a test holds the three together).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

DISTILLED: Final = "distilled"

CORS_ALLOW_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "X-Amz-Content-Sha256",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Api-Key",
)


class RouterMetric(StrEnum):
    """A metric of the routing API's function. :attr:`dimension` names the extra dimension of the counts that
    have one series per value (an error code, a model id ...); the others carry only ``service``."""

    ROUTE_LATENCY = "RouteLatency"
    CACHE_HIT = "CacheHit"
    FALLBACK_MODEL_USED = "FallbackModelUsed"
    DEFAULT_WEIGHTS_USED = "DefaultWeightsUsed"
    FALLBACK_CAPPED = "FallbackCapped"
    BAD_REQUEST = "BadRequest"
    INTERNAL_ERROR = "InternalError"
    MODEL_ERROR = "ModelError"
    PARSE_FAILURE = "ParseFailure"
    CIRCUIT_OPEN = "CircuitOpen"
    CIRCUIT_OPENED = "CircuitOpened"
    MODEL_PARAMETER_INVALID = "ModelParameterInvalid"
    MICRO_ROUTER_ANSWERED = "MicroRouterAnswered"
    MICRO_ROUTER_UNAVAILABLE = "MicroRouterUnavailable"
    """The promoted micro-router could not be used (its artifact missing, unreadable, broken, or for other
    channels; a malformed ``micro_router`` block; a failed prediction): counted once per load attempt, the
    problem in the log line; the model answers."""
    CAPTURE_FAILED = "CaptureFailed"
    """Captured queries Firehose did not take (a failed PutRecordBatch counts its every record, a partial one its
    ``FailedPutCount``); the responses were never affected (``capture_queries``)."""
    CAPTURE_DROPPED = "CaptureDropped"
    """Captured queries dropped because the container's capture buffer was full (Firehose slower than the
    traffic, or unreachable)."""

    @property
    def dimension(self) -> str | None:
        return _ROUTER_METRIC_DIMENSIONS.get(self)

    @property
    def own_dimension(self) -> str:
        """:attr:`dimension` of a count that must have one (one series per value); ``ValueError`` otherwise."""
        dimension = self.dimension
        if dimension is None:
            raise ValueError(f"{self} has no dimension of its own")
        return dimension


_ROUTER_METRIC_DIMENSIONS: Final = {
    RouterMetric.MODEL_ERROR: "code",
    RouterMetric.PARSE_FAILURE: "reason",
    RouterMetric.CIRCUIT_OPEN: "model",
    RouterMetric.CIRCUIT_OPENED: "model",
    RouterMetric.MODEL_PARAMETER_INVALID: "problem",
}


class PipelineState(StrEnum):
    """Every state of the pipeline's definition, inner states of its Maps included."""

    READ_INPUT = "ReadInput"
    PREFLIGHT = "Preflight"
    PLAN_QUERIES = "PlanQueries"
    IS_BATCH_LABELING = "IsBatchLabeling"
    START_BATCH_LABELING = "StartBatchLabeling"
    WAIT_FOR_BATCH_LABELING = "WaitForBatchLabeling"
    CHECK_BATCH_LABELING = "CheckBatchLabeling"
    IS_BATCH_LABELING_DONE = "IsBatchLabelingDone"
    COLLECT_BATCH_LABELS = "CollectBatchLabels"
    LABEL_SHARDS = "LabelShards"
    LABEL_SHARD = "LabelShard"  # inside LabelShards
    PREPARE_DATASET = "PrepareDataset"
    IS_MICRO_ROUTER_ENABLED = "IsMicroRouterEnabled"
    TRAIN_MICRO_ROUTER = "TrainMicroRouter"
    MICRO_ROUTER_SKIPPED = "MicroRouterSkipped"
    MICRO_ROUTER_FAILED = "MicroRouterFailed"
    START_DISTILLATION = "StartDistillation"
    WAIT_FOR_DISTILLATION = "WaitForDistillation"
    CHECK_DISTILLATION = "CheckDistillation"
    IS_DISTILLATION_DONE = "IsDistillationDone"
    START_DEPLOYMENT = "StartDeployment"
    WAIT_FOR_DEPLOYMENT = "WaitForDeployment"
    CHECK_DEPLOYMENT = "CheckDeployment"
    IS_DEPLOYMENT_ACTIVE = "IsDeploymentActive"
    RECORD_OUTPUTS = "RecordOutputs"
    EVALUATE_CANDIDATES = "EvaluateCandidates"
    EVALUATE_CANDIDATE = "EvaluateCandidate"  # inside EvaluateCandidates
    SHADOW_REPLAY = "ShadowReplay"
    SHADOW_FAILED = "ShadowFailed"
    IS_JUDGE_ENABLED = "IsJudgeEnabled"
    START_JUDGE = "StartJudge"
    WAIT_FOR_JUDGE = "WaitForJudge"
    CHECK_JUDGE = "CheckJudge"
    IS_JUDGE_DONE = "IsJudgeDone"
    JUDGE_SKIPPED = "JudgeSkipped"
    REPORT = "Report"
    QUALITY_GATE = "QualityGate"
    PROMOTE = "Promote"
    REJECT = "Reject"
    NOTIFY_SUCCESS = "NotifySuccess"
    RUN_SUCCEEDED = "RunSucceeded"


INNER_STATES: Final = frozenset({PipelineState.LABEL_SHARD, PipelineState.EVALUATE_CANDIDATE})
"""States that run inside a Map (their events are not the execution's top-level steps)."""
