"""The fake's internal records: customization jobs, custom models, deployments, evaluation jobs, scripts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class ScriptedError:
    operation: str
    code: str
    message: str
    remaining: int | None  # None: every matching call
    model_id: str | None


@dataclass
class ErrorRate:
    code: str
    rate: float
    rng: random.Random


@dataclass
class JobRecord:
    arn: str
    name: str
    params: dict[str, Any]
    base_model_arn: str
    created: datetime
    polls_to_complete: int
    fail_message: str | None
    fail_after_polls: int
    status: str = "InProgress"
    polls: int = 0
    last_modified: datetime | None = None
    end_time: datetime | None = None
    output_model_arn: str | None = None


@dataclass
class CustomModelRecord:
    arn: str
    name: str
    job: JobRecord
    created: datetime
    polls_to_active: int = 0
    polls: int = 0
    status: str = "Active"


@dataclass
class DeploymentRecord:
    arn: str
    name: str
    model_arn: str
    params: dict[str, Any]
    created: datetime
    polls_to_active: int
    fail_message: str | None
    status: str = "Creating"
    polls: int = 0
    last_updated: datetime | None = None
    update_model_arn: str | None = None
    update_status: str | None = None
    update_polls: int = 0


@dataclass
class EvaluationRecord:
    arn: str
    job_id: str
    name: str
    params: dict[str, Any]
    created: datetime
    polls_to_complete: int
    fail_messages: tuple[str, ...] | None
    status: str = "InProgress"
    polls: int = 0
    last_modified: datetime | None = None


@dataclass
class BatchJobRecord:
    arn: str
    name: str
    params: dict[str, Any]
    created: datetime
    polls_to_complete: int
    fail_message: str | None
    corrupt_lines: int
    status: str = "Submitted"
    polls: int = 0
    last_modified: datetime | None = None
    end_time: datetime | None = None
    message: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class IdempotencyTokens:
    """Request fingerprints by client token, per create operation."""

    by_token: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (fingerprint, arn)
