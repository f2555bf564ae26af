"""The account, Region and services the fake models, and the public value types of its responders."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

CONTROL_SERVICE = "bedrock"
RUNTIME_SERVICE = "bedrock-runtime"
RUNTIME_OPERATIONS = frozenset({"Converse", "ConverseStream"})


@dataclass(frozen=True)
class ConverseRequest:
    """What a responder sees of one Converse / ConverseStream call.

    ``model_id`` is the ``modelId`` as sent (a deployment ARN, a ``us.`` profile id ...); ``target_kind`` says
    what the fake resolved it to: ``"deployment"``, ``"inference-profile"`` or ``"foundation-model"``.
    ``user_text`` is the text of the last user message, ``system_text`` the joined system blocks.
    """

    operation: str
    model_id: str
    target_kind: str
    system_text: str
    user_text: str
    inference_config: dict[str, Any]
    params: dict[str, Any]


@dataclass(frozen=True)
class ConverseReply:
    """A responder's answer. Unset token counts are estimated (~4 characters a token); an unset latency is the
    measured time of the call including ``delay_s``."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class FakeError:
    """Return (or raise :class:`FakeServiceError`) from a responder to make the call fail like the service does:
    the client raises ``client.exceptions.<code>`` with the model's HTTP status."""

    code: str
    message: str = "Scripted error from BedrockFake"


class FakeServiceError(Exception):
    """Raised inside the fake (or by a responder) to produce a modelled service error response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class EvaluationJobRequest:
    """Passed to :attr:`BedrockFake.on_evaluation_complete` when an evaluation job completes: the place to write
    fake result files (e.g. with moto S3) under ``<output_s3_uri>/<job_name>/<job_id>/...``."""

    job_arn: str
    job_id: str
    job_name: str
    output_s3_uri: str
    params: dict[str, Any]


Responder = Callable[[ConverseRequest], "str | ConverseReply | FakeError | Exception"]


def default_responder(request: ConverseRequest) -> str:
    """A valid routing answer: equal weights over the default channels, weights first, reasoning last."""
    from search_router.shared.channels import DEFAULT_CHANNELS

    names = DEFAULT_CHANNELS.names
    answer: dict[str, Any] = dict.fromkeys(names, round(1 / len(names), 4))
    answer["reasoning"] = f"No channel dominates in {request.user_text[:60]!r}, so the weights are equal."
    return json.dumps(answer)
