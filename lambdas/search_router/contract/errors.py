"""Named exceptions raised by pipeline tasks (domain ones, such as ``DatasetTooSmall`` and
``TeacherUnavailable``, live in the ``routing`` package).

The state machine matches on these names (the Lambda ``errorType``) in Retry and Catch rules, and the
failure notification shows their messages, so each message says what happened and what to change.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: a failure the run cannot recover from by retrying."""


class InvalidRunInput(PipelineError):
    """The execution input (merged over the defaults) is invalid."""


class ModelNotUsable(PipelineError):
    """A configured model is missing, not enabled, legacy, or unsupported in this Region."""


class DistillationFailed(PipelineError):
    """The customization job ended Failed or Stopped."""


class DistillationTimedOut(PipelineError):
    """The customization job ran past the configured maximum duration and was stopped."""


class BatchLabelingFailed(PipelineError):
    """The batch labeling job could not start, ended Failed, Stopped or Expired, or the plan is below its minimum."""


class DeploymentFailed(PipelineError):
    """The custom model deployment ended Failed."""


class TransientError(Exception):
    """A temporary failure (e.g. Bedrock throttling on a control-plane call); the state machine retries."""


class ShadowReplayFailed(PipelineError):
    """The production queries could not be replayed against the model in service (its promotion document is
    missing or routes to other channels, or it answered none of them); the state machine catches it and the
    report says why."""
