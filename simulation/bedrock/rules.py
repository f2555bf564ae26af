"""Request rules botocore does not check (docs/bedrock-facts.md; the patterns are the service model's).

The compiled expressions are equivalent rewrites where the model's pattern backtracks exponentially in Python
(``[a-zA-Z0-9](-*[a-zA-Z0-9+\\-.])*`` with a long run of dashes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulation.bedrock.values import FakeServiceError


@dataclass(frozen=True)
class NameRule:
    """A constraint on one top-level string member: length range and a full-match pattern."""

    member: str
    pattern: str  # as the service documents it, for the error message
    regex: re.Pattern[str]  # what is matched (full match)
    min_len: int
    max_len: int


CUSTOMIZATION_JOB_NAME = NameRule(
    "jobName", r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*", re.compile(r"[a-zA-Z0-9][a-zA-Z0-9+\-.]*"), 1, 63
)
CUSTOM_MODEL_NAME = NameRule(
    "customModelName", r"([0-9a-zA-Z][_-]?){1,63}", re.compile(r"(?:[0-9a-zA-Z][_-]?){1,63}"), 1, 63
)
DEPLOYMENT_NAME = NameRule(
    "modelDeploymentName", r"([0-9a-zA-Z][_-]?){1,63}", re.compile(r"(?:[0-9a-zA-Z][_-]?){1,63}"), 1, 63
)
CLIENT_REQUEST_TOKEN = NameRule(
    "clientRequestToken",
    r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?",
    re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?"),
    1,
    256,
)
INVOCATION_JOB_NAME = NameRule(
    "jobName",
    r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}",
    re.compile(r"[a-zA-Z0-9][a-zA-Z0-9+\-.]*"),
    1,
    63,
)
EVALUATION_JOB_NAME = NameRule(
    "jobName", r"[a-z0-9](-*[a-z0-9]){0,62}", re.compile(r"[a-z0-9](?:-*[a-z0-9]){0,62}"), 1, 63
)

# GetFoundationModelAvailability.modelId: the service model's pattern as it is (inputs are at most 140 characters).
_AVAILABILITY_MODEL_ID_PATTERN = (
    r"[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([a-z0-9-]{1,63}[.]){0,2}[a-z0-9-]{1,63}([:][a-z0-9-]{1,63}){0,2}"
    r"(/[a-z0-9]{12}|)"
)
AVAILABILITY_MODEL_ID = NameRule(
    "modelId", _AVAILABILITY_MODEL_ID_PATTERN, re.compile(_AVAILABILITY_MODEL_ID_PATTERN), 0, 140
)

NAME_RULES: dict[str, tuple[NameRule, ...]] = {
    "CreateModelCustomizationJob": (CUSTOMIZATION_JOB_NAME, CUSTOM_MODEL_NAME, CLIENT_REQUEST_TOKEN),
    "CreateCustomModelDeployment": (DEPLOYMENT_NAME, CLIENT_REQUEST_TOKEN),
    "CreateEvaluationJob": (EVALUATION_JOB_NAME, CLIENT_REQUEST_TOKEN),
    "CreateModelInvocationJob": (INVOCATION_JOB_NAME, CLIENT_REQUEST_TOKEN),
    "GetFoundationModelAvailability": (AVAILABILITY_MODEL_ID,),
}


def check_names(operation: str, params: dict[str, Any]) -> None:
    """``ValidationException`` (with the service's wording) for a name or token that breaks its rule."""
    for rule in NAME_RULES.get(operation, ()):
        value = params.get(rule.member)
        if value is None:
            continue
        if len(value) > rule.max_len:
            raise FakeServiceError(
                "ValidationException",
                f"1 validation error detected: Value '{value}' at '{rule.member}' failed to satisfy "
                f"constraint: Member must have length less than or equal to {rule.max_len}",
            )
        if len(value) < rule.min_len or not rule.regex.fullmatch(value):
            raise FakeServiceError(
                "ValidationException",
                f"1 validation error detected: Value '{value}' at '{rule.member}' failed to satisfy "
                f"constraint: Member must satisfy regular expression pattern: {rule.pattern}",
            )
