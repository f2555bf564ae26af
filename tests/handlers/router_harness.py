"""Harness for the router Lambda's tests: API Gateway events, environment, a manual clock, SSM through moto,
Bedrock through the botocore-validating fake, and the Lambda's logs and EMF metrics as data."""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from search_router.handlers import router_api as handler
from search_router.handlers.observability import logger
from search_router.handlers.router_api import build_service
from search_router.router.settings import load_settings, to_environment
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.bedrock.values import ACCOUNT_ID, ConverseRequest, FakeError
from simulation.bedrock_fake import BedrockFake
from tests.manual_clock import ManualClock

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
PARAMETER_NAME = "/test/router/promoted-model"
PRIMARY = "us.amazon.nova-micro-v1:0"
FALLBACK = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
CHANNEL_NAMES = DEFAULT_CHANNELS.names
DEFAULT_WEIGHTS = {"visual": 0.4, "audio": 0.2, "transcription": 0.2, "metadata": 0.2}
VALID_ANSWER = '{"visual":0.7,"audio":0.1,"transcription":0.1,"metadata":0.1,"reasoning":"Mostly what is seen."}'
FALLBACK_ANSWER = '{"visual":0.1,"audio":0.6,"transcription":0.2,"metadata":0.1,"reasoning":"Mostly sound."}'

SETTINGS = {
    "model_parameter": PARAMETER_NAME,
    "default_model": {"model_id": PRIMARY, "prompt_kind": "teacher"},
    "fallback_models": [{"model_id": FALLBACK, "prompt_kind": "teacher"}],
    "default_weights": DEFAULT_WEIGHTS,
    "timeout_ms": 2000,
    "call_timeout_ms": 1000,
    "cache_size": 100,
    "cache_ttl_seconds": 300,
    "model_ttl_seconds": 30,
    "max_query_chars": 1000,
    "log_queries": False,
    # the guards off unless a test is about them (one failure must not skip a model in the other tests)
    "breaker_failures": 0,
    "breaker_open_seconds": 30,
    "fallback_max_share": 1.0,
    "fallback_window_seconds": 60,
    "fallback_min_requests": 20,
    "partition": "aws",
    "region": "us-east-1",
    "account_id": ACCOUNT_ID,
}


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def post_event(body: Any) -> dict[str, Any]:
    """The ``router_post`` event with another JSON body (a ``str`` body is sent as is)."""
    event = load_event("router_post")
    event["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return event


def promotion(model_id: str, prompt_kind: str = "student", channels: Any = CHANNEL_NAMES, **extra: Any) -> str:
    """A parameter value as the pipeline's Promote step writes it."""
    value = {
        "model_id": model_id,
        "prompt_kind": prompt_kind,
        "channels": list(channels),
        "run_id": "run-1",
        "promoted_at": "2026-11-28T12:00:00Z",
        "metrics": {"overall_mae": 0.05},
        **extra,
    }
    return json.dumps(value)


def by_model(answers: Mapping[str, str | FakeError | Callable[[ConverseRequest], Any]]) -> Callable[..., Any]:
    """A responder answering per ``modelId``; a model not listed is a test error."""

    def respond(request: ConverseRequest) -> Any:
        answer = answers[request.model_id]
        return answer(request) if callable(answer) else answer

    return respond


def assert_valid_weights(body: Mapping[str, Any]) -> None:
    weights = body["weights"]
    assert list(weights) == list(CHANNEL_NAMES)
    for value in weights.values():
        assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0, weights
    assert abs(math.fsum(weights.values()) - 1.0) <= 1e-9, weights


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "router"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:router"
    aws_request_id: str = "4b8d8c5e-1111-2222-3333-444455556666"


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _json_documents(text: str) -> Iterator[dict[str, Any]]:
    decoder = json.JSONDecoder()
    index = text.find("{")
    while index != -1:
        try:
            document, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(document, dict):
            yield document
        index = text.find("{", end)


class RouterHarness:
    def __init__(
        self,
        *,
        bedrock: BedrockFake,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        clock: ManualClock,
    ) -> None:
        self.bedrock = bedrock
        self.clock = clock
        self._monkeypatch = monkeypatch
        self._capsys = capsys
        self._logs = io.StringIO()
        self._stdout = ""
        self._stderr = ""
        self._previous_stream: Any = None
        self.ssm = boto3.client("ssm", region_name="us-east-1")
        self.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, FALLBACK: FALLBACK_ANSWER})

    # --- set-up ------------------------------------------------------------------------------------------
    def configure(self, **overrides: Any) -> None:
        """(Re)build the router from environment variables made of :data:`SETTINGS` and ``overrides``."""
        environment = to_environment(**{**SETTINGS, **overrides})
        environment["CHANNELS"] = DEFAULT_CHANNELS.to_json()
        for name, value in environment.items():
            self._monkeypatch.setenv(name, value)
        handler.use_service(build_service(load_settings(os.environ), clock=self.clock))

    def set_parameter(self, value: str) -> None:
        self.ssm.put_parameter(Name=PARAMETER_NAME, Value=value, Type="String", Overwrite=True)

    def capture_logs(self) -> None:
        """Send the function's log lines to a buffer (the Powertools handler keeps its stream otherwise)."""
        stream_handler = logger.registered_handler
        assert isinstance(stream_handler, logging.StreamHandler)
        self._previous_stream = stream_handler.setStream(self._logs)

    def release_logs(self) -> None:
        stream_handler = logger.registered_handler
        assert isinstance(stream_handler, logging.StreamHandler)
        if self._previous_stream is not None:
            stream_handler.setStream(self._previous_stream)

    # --- calls -------------------------------------------------------------------------------------------
    def invoke(self, event: dict[str, Any]) -> Reply:
        response = handler.lambda_handler(copy.deepcopy(event), LambdaContext())
        captured = self._capsys.readouterr()
        self._stdout += captured.out
        self._stderr += captured.err
        body = json.loads(response["body"]) if response.get("body") else {}
        return Reply(response["statusCode"], body, dict(response.get("headers") or {}))

    def post(self, body: Any) -> Reply:
        return self.invoke(post_event(body))

    def route(self, query: str, *, include_reasoning: bool = True) -> Reply:
        reply = self.post({"query": query, "include_reasoning": include_reasoning})
        assert reply.status == 200, reply.body
        assert_valid_weights(reply.body)
        return reply

    # --- what the function emitted -----------------------------------------------------------------------
    def logs(self) -> list[dict[str, Any]]:
        return list(_json_documents(self._logs.getvalue()))

    def emitted(self) -> str:
        """Everything the function wrote: its log lines (as written), stdout (EMF metrics ...) and stderr."""
        captured = self._capsys.readouterr()
        self._stdout += captured.out
        self._stderr += captured.err
        return "\n".join((self._logs.getvalue(), self._stdout, self._stderr))

    def metrics(self) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
        """EMF metrics emitted so far: (name, ((dimension, value), ...)) → summed value."""
        counts: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        for document in _json_documents(self._stdout):
            meta = document.get("_aws")
            if not isinstance(meta, dict):
                continue
            for directive in meta.get("CloudWatchMetrics", []):
                dimension_names = sorted({d for group in directive.get("Dimensions", []) for d in group})
                dimensions = tuple((d, str(document[d])) for d in dimension_names if d != "service")
                for metric in directive.get("Metrics", []):
                    values = document[metric["Name"]]
                    total = sum(values) if isinstance(values, list) else values
                    counts[(metric["Name"], dimensions)] += total
        return counts

    def metric(self, name: str, **dimensions: str) -> float:
        return self.metrics()[(name, tuple(sorted(dimensions.items())))]

    def calls(self, operation: str, model_id: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.bedrock.calls_to(operation) if model_id is None or c["modelId"] == model_id]

    def model_calls(self) -> int:
        return len(self.bedrock.calls_to("Converse")) + len(self.bedrock.calls_to("ConverseStream"))
