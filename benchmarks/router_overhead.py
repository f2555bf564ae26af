"""Router overhead: what ``POST /route`` adds to the model call, the handler's import time, and how much sooner
streaming yields the weights than waiting for the whole answer.

1. **Per-request overhead**: the real Lambda handler (Powertools resolver, validation, logging, metrics, model
   selection, cache, thread-pool deadline, parser) called with an API Gateway event, in process, against a
   zero-latency model client; the time spent inside the client is measured and subtracted. p50/p99 over
   ``--requests`` requests for a cache miss with reasoning and one without (both stream since issue 12) and a
   cache hit. Tracing is off (outside Lambda); logs and EMF metrics are formatted and written (to a sink).
2. **Cold-start import**: ``import search_router.handlers.router_api`` in a fresh interpreter with the Lambda
   environment (``LAMBDA_TASK_ROOT`` set, so the Tracer patches botocore as in Lambda), median of 5, minus the median
   of a bare interpreter start.
3. **Time to weights**: a simulated model emitting one token every 15 ms, the weights in the first third of the
   answer (the reasoning after them), served by the botocore-validating Bedrock fake: the handler with
   ``include_reasoning=false`` (ConverseStream, stops at the weights) vs ``true`` with the whole answer generated
   before the first event (what a unary Converse call waited for).

4. **Tokens per route for each prompt** (issue 12): input and output tokens of the teacher prompt and of the two
   student prompts (weights then reasoning; weights only), mean over synthesized queries with the simulation's
   answers, under two estimates (4 characters per token, as the Bedrock fake and ``cli estimate`` count; and a
   BPE-like lexical count, :func:`lexical_tokens`); and the weights-only forms the shared parser reads, to choose
   the compact one.
5. **Time to weights with a first-token delay** (issue 12): a promoted student, first token after 300 ms, then one
   token every 15 ms: today's full answer (Converse) against the weights-only prompt streamed with early exit.

1b. **The micro-router** (issue 12, source ``micro``): the same handler with a promotion naming a micro-router
   artifact, trained with the pipeline's code on 400 synthesized queries labeled by the simulation's teacher,
   read once from S3 through a real client behind botocore's Stubber (no network); τ is the lowest confidence
   among the measured queries (weights only), so every one is answered by it, which the run checks.
6. **Cold start ratio** (issue 12): :func:`benchmarks.cold_start.cold_start_ratio` (import + first request in
   fresh processes, the router against a minimal handler, ``--cold-start-runs`` of each, at least 7).

A summary puts the figures side by side with the targets, PASS or MISS each: overhead p50 < 2 ms per source,
import < 500 ms, streaming time-to-weights <= half the full-answer time; weights-only answer <= 25 output tokens;
time to weights <= 0.45x today's full answer (with the first-token delay); cold start <= 1.4x. A MISS is a figure,
not an error: the process exits 1 only when a measurement failed (an exception, or a request answered by another
source than the one measured).

Run from the repository root::

    .venv/bin/python -m benchmarks.router_overhead [--requests 2000] [--cold-start-runs 7]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = ROOT / "lambdas"
sys.path.insert(0, str(LAMBDAS))
sys.path.insert(0, str(ROOT))

PARAMETER = "/benchmark/router/promoted-model"
MODEL = "us.amazon.nova-micro-v1:0"
FALLBACK = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
ANSWER = '{"visual":0.7,"audio":0.1,"transcription":0.1,"metadata":0.1,"reasoning":"Mostly what is seen."}'
TOKEN_SECONDS = 0.015
CHARS_PER_TOKEN = 4
IMPORT_RUNS = 5
STREAM_RUNS = 5
LIMIT_OVERHEAD_P50_MS = 2.0
LIMIT_IMPORT_MS = 500.0
LIMIT_STREAM_RATIO = 0.5

ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "router_api",
    "POWERTOOLS_METRICS_NAMESPACE": "Benchmark",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def _router_environment(**overrides: Any) -> dict[str, str]:
    from search_router.router.settings import to_environment
    from search_router.shared.channels import DEFAULT_CHANNELS

    settings: dict[str, Any] = {
        "model_parameter": PARAMETER,
        "default_model": {"model_id": MODEL, "prompt_kind": "teacher"},
        "fallback_models": [{"model_id": FALLBACK, "prompt_kind": "teacher"}],
        "default_weights": {"visual": 0.4, "audio": 0.2, "transcription": 0.2, "metadata": 0.2},
        "timeout_ms": 3000,
        "call_timeout_ms": 2000,
        "cache_size": 10_000,
        "cache_ttl_seconds": 300,
        "model_ttl_seconds": 30,
        "max_query_chars": 1000,
        "log_queries": False,
        "breaker_failures": 5,
        "breaker_open_seconds": 30,
        "fallback_max_share": 0.1,
        "fallback_window_seconds": 60,
        "fallback_min_requests": 20,
        "partition": "aws",
        "region": "us-east-1",
        "account_id": "123456789012",
        **overrides,
    }
    return {**to_environment(**settings), "CHANNELS": DEFAULT_CHANNELS.to_json()}


# --------------------------------------------------------------------------------------------------------------
# Test doubles for the AWS clients (benchmark only)
# --------------------------------------------------------------------------------------------------------------
class ZeroLatencyRuntime:
    """Answers Converse / ConverseStream at once; accumulates the time spent inside its calls."""

    def __init__(self) -> None:
        self.inside_seconds = 0.0
        self.calls = 0
        self._events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        self._events += [
            {"contentBlockDelta": {"delta": {"text": ANSWER[i : i + CHARS_PER_TOKEN]}, "contentBlockIndex": 0}}
            for i in range(0, len(ANSWER), CHARS_PER_TOKEN)
        ]
        self._events += [{"messageStop": {"stopReason": "end_turn"}}]

    def converse(self, **params: Any) -> dict[str, Any]:
        started = time.perf_counter()
        del params
        self.calls += 1
        response = {
            "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 200, "outputTokens": 30, "totalTokens": 230},
        }
        self.inside_seconds += time.perf_counter() - started
        return response

    def converse_stream(self, **params: Any) -> dict[str, Any]:
        del params
        self.calls += 1
        return {"stream": _TimedStream(self, self._events)}


class _TimedStream:
    def __init__(self, owner: ZeroLatencyRuntime, events: list[dict[str, Any]]) -> None:
        self._owner = owner
        self._events = events

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self._events:
            started = time.perf_counter()
            item = event
            self._owner.inside_seconds += time.perf_counter() - started
            yield item

    def close(self) -> None:
        return None


class StaticParameter:
    """An SSM client whose GetParameter returns the promotion at once."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get_parameter(self, Name: str) -> dict[str, Any]:
        return {"Parameter": {"Name": Name, "Type": "String", "Value": self._value, "Version": 1}}


class _Context:
    function_name = "router"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:router"
    aws_request_id = "benchmark"


def _event(query: str, include_reasoning: bool) -> dict[str, Any]:
    return {
        "resource": "/route",
        "path": "/route",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": None,
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "benchmark", "resourcePath": "/route", "httpMethod": "POST", "stage": "v1"},
        "body": json.dumps({"query": query, "include_reasoning": include_reasoning}),
        "isBase64Encoded": False,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Logs and EMF metrics are formatted and written as in Lambda, to a sink instead of the terminal."""
    from search_router.handlers.observability import logger

    handler = logger.registered_handler
    previous = handler.setStream(io.StringIO())  # type: ignore[attr-defined]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield
    handler.setStream(previous)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------------------
# 1. per-request overhead
# --------------------------------------------------------------------------------------------------------------
def measure_overhead(requests: int) -> dict[str, dict[str, float]]:
    os.environ.update(ENVIRONMENT)
    os.environ.update(_router_environment())
    from search_router.adapters.clients import CLIENTS
    from search_router.handlers import router_api as handler

    runtime = ZeroLatencyRuntime()
    CLIENTS.override("bedrock-runtime", runtime)
    CLIENTS.override(
        "ssm",
        StaticParameter(json.dumps({"model_id": MODEL, "prompt_kind": "teacher", "channels": list(_channel_names())})),
    )
    handler.use_service(None)
    context = _Context()
    results: dict[str, dict[str, float]] = {}

    def run(label: str, queries: list[str], include_reasoning: bool, expected_source: str) -> None:
        samples: list[float] = []
        with _quiet():
            for query in queries:
                runtime.inside_seconds = 0.0
                started = time.perf_counter()
                response = handler.lambda_handler(_event(query, include_reasoning), context)
                elapsed = time.perf_counter() - started - runtime.inside_seconds
                body = json.loads(response["body"])
                if response["statusCode"] != 200 or body["source"] != expected_source:
                    raise AssertionError(f"{label}: unexpected response {response}")
                samples.append(elapsed * 1000)
        results[label] = {
            "p50": _percentile(samples, 0.50),
            "p99": _percentile(samples, 0.99),
            "mean": statistics.fmean(samples),
        }

    # warm-up: first request builds the service and clients; the first call of each path warms caches
    run("warm-up", [f"warm up {i}" for i in range(50)], True, "model")
    run("warm-up", [f"warm up stream {i}" for i in range(50)], False, "model")
    del results["warm-up"]
    run("cache miss, with reasoning (stream)", [f"sunset over mountains {i}" for i in range(requests)], True, "model")
    run("cache miss, weights only (ConverseStream)", [f"thunder at night {i}" for i in range(requests)], False, "model")
    run("cache hit", ["sunset over mountains 0"] * requests, True, "cache")
    handler.use_service(None)
    CLIENTS.reset()
    return results


# --------------------------------------------------------------------------------------------------------------
# 1b. per-request overhead of the micro-router (source ``micro``)
# --------------------------------------------------------------------------------------------------------------
MICRO_TRAIN_QUERIES = 400
MICRO_ARTIFACT_URI = "s3://benchmark-artifacts/runs/benchmark/micro-router.bin"


def train_benchmark_micro_router() -> Any:
    """A micro-router trained with the pipeline's code (:func:`train_micro_router`) on
    :data:`MICRO_TRAIN_QUERIES` synthesized queries labeled by the simulation's teacher (synthetic: what it costs
    the router to answer from one, not how well it routes)."""
    from search_router.pipeline.dataset import LabeledExample
    from search_router.pipeline.micro_router_training import train_micro_router
    from search_router.pipeline.queries.synthesis import synthesize_queries
    from search_router.shared.channels import DEFAULT_CHANNELS

    models = _simulated_models()
    examples = [
        LabeledExample(q.text, q.category, q.source, models.teacher_weights(q.text), None, q.template)
        for q in synthesize_queries(DEFAULT_CHANNELS, MICRO_TRAIN_QUERIES, seed=7)
    ]
    return train_micro_router(examples, DEFAULT_CHANNELS.names)


def _stubbed_s3(artifact: bytes) -> tuple[Any, Any]:
    """A real S3 client behind botocore's Stubber (the request checked against the service model, no network):
    one GetObject of :data:`MICRO_ARTIFACT_URI` answering ``artifact``; the router loads it once per container."""
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from search_router.adapters.s3io import parse_s3_uri

    bucket, key = parse_s3_uri(MICRO_ARTIFACT_URI)
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(artifact), len(artifact)), "ContentLength": len(artifact)},
        {"Bucket": bucket, "Key": key},
    )
    stubber.activate()
    return client, stubber


def measure_micro_overhead(requests: int) -> dict[str, float]:
    """The handler answering from a promoted micro-router (weights only, so the cascade applies): τ is the lowest
    confidence among the measured queries, so each is answered by it; a request answered otherwise fails the run."""
    os.environ.update(ENVIRONMENT)  # before the handler's import: Powertools reads it then
    os.environ.update(_router_environment())
    from search_router.adapters.clients import CLIENTS
    from search_router.handlers import router_api as handler
    from search_router.pipeline.queries.synthesis import synthesize_queries
    from search_router.shared.channels import DEFAULT_CHANNELS

    model = train_benchmark_micro_router()
    artifact = model.to_bytes()
    queries = [q.text for q in synthesize_queries(DEFAULT_CHANNELS, requests + 50, seed=8)]
    tau = min(model.predict(query).confidence for query in queries)
    promotion = {
        "model_id": MODEL,
        "prompt_kind": "teacher",
        "channels": list(_channel_names()),
        "micro_router": {"artifact_uri": MICRO_ARTIFACT_URI, "tau": math.floor(tau * 1000) / 1000},
    }
    runtime = ZeroLatencyRuntime()
    s3, stubber = _stubbed_s3(artifact)
    CLIENTS.override("bedrock-runtime", runtime)
    CLIENTS.override("s3", s3)
    CLIENTS.override("ssm", StaticParameter(json.dumps(promotion)))
    handler.use_service(None)
    context = _Context()
    samples: list[float] = []
    try:
        with _quiet():
            for index, query in enumerate(queries):
                started = time.perf_counter()
                response = handler.lambda_handler(_event(query, False), context)
                elapsed = time.perf_counter() - started
                body = json.loads(response["body"])
                if response["statusCode"] != 200 or body["source"] != "micro":
                    raise AssertionError(f"micro: unexpected response {response}")
                if index >= 50:  # the first requests load the artifact and warm the path
                    samples.append(elapsed * 1000)
        stubber.assert_no_pending_responses()
    finally:
        stubber.deactivate()
        handler.use_service(None)
        CLIENTS.reset()
    if runtime.calls:
        raise AssertionError(f"micro: the model was called {runtime.calls} times")
    return {
        "p50": _percentile(samples, 0.50),
        "p99": _percentile(samples, 0.99),
        "mean": statistics.fmean(samples),
        "tau": promotion["micro_router"]["tau"],  # type: ignore[index]
        "artifact_kb": len(artifact) / 1024,
        "examples": MICRO_TRAIN_QUERIES,
    }


def _channel_names() -> tuple[str, ...]:
    from search_router.shared.channels import DEFAULT_CHANNELS

    return DEFAULT_CHANNELS.names


# --------------------------------------------------------------------------------------------------------------
# 2. cold-start import
# --------------------------------------------------------------------------------------------------------------
def _subprocess_seconds(code: str, environment: dict[str, str], extra: list[str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *(extra or []), "-c", code], env=environment, check=True, capture_output=True, cwd=ROOT
    )
    return time.perf_counter() - started


def measure_import() -> dict[str, Any]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(LAMBDAS),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(LAMBDAS),
        "AWS_LAMBDA_FUNCTION_NAME": "router",
        **{k: v for k, v in ENVIRONMENT.items() if k != "POWERTOOLS_TRACE_DISABLED"},
        **_router_environment(),
    }
    # one run to fill the OS file cache and the byte-code caches, as a Lambda image has them
    _subprocess_seconds("import search_router.handlers.router_api", environment)
    bare = statistics.median(_subprocess_seconds("pass", environment) for _ in range(IMPORT_RUNS))
    full = statistics.median(
        _subprocess_seconds("import search_router.handlers.router_api", environment) for _ in range(IMPORT_RUNS)
    )
    profile = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import search_router.handlers.router_api"],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stderr
    # the handler's direct imports, by cumulative time ("import time: self | cumulative |  name", nested by 2)
    direct: list[tuple[str, int]] = []
    for line in profile.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2]
            depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
            if depth == 1:
                direct.append((name.strip(), int(parts[1])))
    heaviest = sorted(direct, key=lambda item: -item[1])[:6]
    return {"bare_ms": bare * 1000, "import_ms": (full - bare) * 1000, "heaviest": heaviest}


# --------------------------------------------------------------------------------------------------------------
# 3. time to weights: streaming vs the full answer
# --------------------------------------------------------------------------------------------------------------
STREAM_REASONING = (
    "The query describes what the viewer sees: a landscape at a time of day, so the visual index leads; "
    "no sound, speech or names."
)


def _streaming_router(prompt_kind: str) -> tuple[Any, Callable[[bool, int], float]]:
    """The router handler against the botocore-validating Bedrock fake (one 4-character token per event), the
    promoted model asked with ``prompt_kind``: the fake, and a function timing one ``POST /route`` in ms."""
    os.environ.update(ENVIRONMENT)
    os.environ.update(_router_environment(timeout_ms=10_000, call_timeout_ms=10_000, cache_size=0))
    from search_router.adapters.clients import CLIENTS
    from search_router.handlers import router_api as handler
    from simulation.bedrock_fake import BedrockFake

    fake = BedrockFake().with_default_catalog().install()
    fake.stream_chunk_chars = CHARS_PER_TOKEN
    promoted = {"model_id": MODEL, "prompt_kind": prompt_kind, "channels": list(_channel_names())}
    CLIENTS.override("ssm", StaticParameter(json.dumps(promoted)))
    handler.use_service(None)
    context = _Context()

    def timed(include_reasoning: bool, index: int) -> float:
        started = time.perf_counter()
        response = handler.lambda_handler(_event(f"sunset over mountains {index}", include_reasoning), context)
        elapsed = time.perf_counter() - started
        if json.loads(response["body"])["source"] != "model":
            raise AssertionError(f"unexpected response {response}")
        return elapsed * 1000

    return fake, timed


def _reset_router() -> None:
    from search_router.adapters.clients import CLIENTS
    from search_router.handlers import router_api as handler

    handler.use_service(None)
    CLIENTS.reset()


def measure_streaming() -> dict[str, float]:
    answer = json.dumps(
        {"visual": 0.8, "audio": 0.0, "transcription": 0.0, "metadata": 0.2, "reasoning": STREAM_REASONING},
        separators=(",", ":"),
    )
    weights_chars = answer.index('"reasoning"')
    tokens = -(-len(answer) // CHARS_PER_TOKEN)
    fake, timed = _streaming_router("teacher")
    fake.responder = lambda request: answer

    with _quiet():
        # full answer: Converse returns after every token was generated
        fake.delay_s, fake.stream_event_delay_s = tokens * TOKEN_SECONDS, 0.0
        full = statistics.median(timed(True, i) for i in range(STREAM_RUNS))
        # streaming: one token every 15 ms, the router stops at the weights
        fake.delay_s, fake.stream_event_delay_s = 0.0, TOKEN_SECONDS
        streamed = statistics.median(timed(False, i) for i in range(STREAM_RUNS))
    events_read = fake.last_stream.events_read
    _reset_router()
    return {
        "tokens": tokens,
        "weights_share": weights_chars / len(answer),
        "full_ms": full,
        "streamed_ms": streamed,
        "ratio": streamed / full,
        "events_read": events_read,
        "events_total": fake.last_stream.total_events,
    }


# --------------------------------------------------------------------------------------------------------------
# 4. tokens per route for each prompt (issue 12, "the fewest tokens")
# --------------------------------------------------------------------------------------------------------------
TOKEN_QUERIES = 300
FIRST_TOKEN_SECONDS = 0.3
TTW_RUNS = 5
LIMIT_WEIGHTS_ONLY_TOKENS = 25
LIMIT_TTW_RATIO = 0.45
ISSUE_FULL_ANSWER_TOKENS = 57  # issue 12: today's answers (weights and a reasoning sentence), ~57 output tokens
_LEXICAL = re.compile(r'\{"|":|,"|"\}|[A-Za-z]+|[0-9]{1,3}|[^\sA-Za-z0-9]')
_LEXICAL_WORD_CHARS = 8


def lexical_tokens(text: str) -> int:
    """A BPE-like token estimate (no tokenizer of the Nova models is public): a word of up to 8 letters is one
    token (longer ones one per 8), a number one token per 3 digits, the JSON pairs ``{"`` ``":`` ``,"`` ``"}`` one
    token, any other punctuation one token each; white space joins the next token."""
    count = 0
    for match in _LEXICAL.finditer(text):
        piece = match.group()
        count += -(-len(piece) // _LEXICAL_WORD_CHARS) if piece.isalpha() else 1
    return count


def chars_tokens(text: str) -> float:
    """The estimate the Bedrock fake and ``cli estimate`` use: 4 characters per token."""
    return len(text) / CHARS_PER_TOKEN


def _token_queries() -> list[str]:
    from search_router.pipeline.queries.synthesis import synthesize_queries
    from search_router.shared.channels import DEFAULT_CHANNELS

    return [query.text for query in synthesize_queries(DEFAULT_CHANNELS, TOKEN_QUERIES, seed=12)]


def _simulated_models() -> Any:
    from search_router.shared.channels import DEFAULT_CHANNELS
    from simulation.models import SimulatedModels

    return SimulatedModels(DEFAULT_CHANNELS, teacher_model_ids=("us.amazon.nova-pro-v1:0",), seed=12)


def measure_tokens() -> dict[str, dict[str, float]]:
    """Input and output tokens per route of each prompt, mean over synthesized queries; the answers are the
    simulation's (``simulation/models.py``: the teacher's, the distilled model's in the form the prompt asks)."""
    from search_router.shared.channels import DEFAULT_CHANNELS
    from search_router.shared.prompts import student_prompt, teacher_prompt

    queries = _token_queries()
    models = _simulated_models()
    prompts = {
        "teacher (teacher prompt)": (teacher_prompt(DEFAULT_CHANNELS), models.teacher_answer),
        "student, weights then reasoning": (
            student_prompt(DEFAULT_CHANNELS),
            lambda query: models.distilled_answer(query, reasoning=True),
        ),
        "student, weights only": (
            student_prompt(DEFAULT_CHANNELS, reasoning=False),
            lambda query: models.distilled_answer(query, reasoning=False),
        ),
    }
    figures: dict[str, dict[str, float]] = {}
    for label, (system, answer) in prompts.items():
        answers = [answer(query) for query in queries]
        figures[label] = {
            "input_chars": statistics.fmean(chars_tokens(system + query) for query in queries),
            "input_lexical": statistics.fmean(lexical_tokens(system) + lexical_tokens(query) for query in queries),
            "output_chars": statistics.fmean(chars_tokens(text) for text in answers),
            "output_lexical": statistics.fmean(lexical_tokens(text) for text in answers),
        }
    return figures


def compact_forms() -> dict[str, dict[str, float]]:
    """The weights-only forms the shared parser reads, measured to choose the compact one: tokens (both
    estimates), mean over the simulated distilled model's weights."""
    from search_router.shared.answer.decision import RoutingDecision
    from search_router.shared.answer.formatting import format_answer, round_weights
    from search_router.shared.answer.parser import parse_routing_answer
    from search_router.shared.channels import DEFAULT_CHANNELS

    models = _simulated_models()
    decisions = [
        parse_routing_answer(models.distilled_answer(query, reasoning=False), DEFAULT_CHANNELS).decision  # type: ignore[union-attr]
        for query in _token_queries()
    ]

    def one_decimal(decision: RoutingDecision) -> str:
        return format_answer(decision, DEFAULT_CHANNELS, decimals=1, with_reasoning=False)

    forms = {
        "compact JSON, 2 decimals, 0 not 0.0 (chosen)": lambda d: format_answer(
            d, DEFAULT_CHANNELS, with_reasoning=False
        ),
        "compact JSON, 2 decimals, 0.0": lambda d: format_answer(
            RoutingDecision(d.weights, "-"), DEFAULT_CHANNELS
        ).replace(',"reasoning":"-"', ""),
        "JSON with spaces (json.dumps)": lambda d: json.dumps(round_weights(d.weights, DEFAULT_CHANNELS)),
        'nested {"weights": {...}}': lambda d: json.dumps(
            {"weights": round_weights(d.weights, DEFAULT_CHANNELS)}, separators=(",", ":")
        ),
        "compact JSON, 1 decimal (less precise)": one_decimal,
    }
    figures: dict[str, dict[str, float]] = {}
    for label, render in forms.items():
        texts = [render(decision) for decision in decisions]
        if not all(parse_routing_answer(text, DEFAULT_CHANNELS).ok for text in texts):
            raise AssertionError(f"the form {label!r} does not parse")
        figures[label] = {
            "chars": statistics.fmean(chars_tokens(text) for text in texts),
            "lexical": statistics.fmean(lexical_tokens(text) for text in texts),
        }
    return figures


# --------------------------------------------------------------------------------------------------------------
# 5. time to weights with a first-token delay (issue 12)
# --------------------------------------------------------------------------------------------------------------
def measure_time_to_weights() -> dict[str, Any]:
    """POST /route end to end against the botocore-validating Bedrock fake, a promoted student model, a first token
    after 300 ms and one token (4 characters) every 15 ms: today's full answer (weights then reasoning, generated
    in full before the first event as a unary Converse call returned it: the router waits for all of it) against
    the weights-only prompt streamed with early exit, and against the
    weights-then-reasoning answer streamed and cut at the weights (a student that ignores "weights only")."""
    from search_router.shared.answer.decision import RoutingDecision
    from search_router.shared.answer.formatting import format_answer
    from search_router.shared.channels import DEFAULT_CHANNELS
    from search_router.shared.prompts import student_prompt

    reasoning = STREAM_REASONING
    decision = RoutingDecision.from_weights(
        {"visual": 0.8, "audio": 0.0, "transcription": 0.0, "metadata": 0.2}, DEFAULT_CHANNELS, reasoning=reasoning
    )
    weights = format_answer(decision, DEFAULT_CHANNELS, with_reasoning=False)
    full = format_answer(decision, DEFAULT_CHANNELS)
    # the issue's figure for today's answers (~57 output tokens): the same answer with a longer reasoning
    padding = " The scene, not its sound, decides." * 2
    longer = (reasoning + padding)[: ISSUE_FULL_ANSWER_TOKENS * CHARS_PER_TOKEN - len(full) + len(reasoning)]
    reference = format_answer(RoutingDecision(decision.weights, longer), DEFAULT_CHANNELS)
    weights_only_prompt = student_prompt(DEFAULT_CHANNELS, reasoning=False)
    fake, timed = _streaming_router("student")

    full_tokens = -(-len(full) // CHARS_PER_TOKEN)
    reference_tokens = -(-len(reference) // CHARS_PER_TOKEN)
    with _quiet():
        # today: the whole answer is generated before Converse returns
        fake.responder = lambda request: full
        fake.delay_s, fake.stream_event_delay_s = FIRST_TOKEN_SECONDS + full_tokens * TOKEN_SECONDS, 0.0
        today = statistics.median(timed(True, i) for i in range(TTW_RUNS))
        fake.responder = lambda request: reference
        fake.delay_s = FIRST_TOKEN_SECONDS + reference_tokens * TOKEN_SECONDS
        today_reference = statistics.median(timed(True, i) for i in range(TTW_RUNS))
        # the weights-only prompt, streamed: the router stops at the last weight
        fake.responder = lambda request: weights if request.system_text == weights_only_prompt else full
        fake.delay_s, fake.stream_event_delay_s = FIRST_TOKEN_SECONDS, TOKEN_SECONDS
        weights_only = statistics.median(timed(False, i) for i in range(TTW_RUNS))
        weights_only_events = (fake.last_stream.events_read, fake.last_stream.total_events)
        # the full answer streamed and cut at the weights
        fake.responder = lambda request: full
        cut = statistics.median(timed(False, i) for i in range(TTW_RUNS))
    _reset_router()
    return {
        "full_tokens": full_tokens,
        "reference_tokens": reference_tokens,
        "today_reference_ms": today_reference,
        "reference_ratio": weights_only / today_reference,
        "weights_tokens": -(-len(weights) // CHARS_PER_TOKEN),
        "today_ms": today,
        "weights_only_ms": weights_only,
        "cut_ms": cut,
        "ratio": weights_only / today,
        "cut_ratio": cut / today,
        "events": weights_only_events,
    }


def report_tokens() -> dict[str, Any]:
    """Print sections 4 and 5; return the weights-only answer's output tokens (the larger estimate) and the
    time-to-weights ratio, for the summary."""
    print(
        f"\nTokens per route, mean of {TOKEN_QUERIES} synthesized queries, simulated answers "
        "(estimates: 4 characters per token | lexical, BPE-like; see lexical_tokens)"
    )
    tokens = measure_tokens()
    for label, figures in tokens.items():
        print(
            f"  {label:<34} input {figures['input_chars']:6.1f} | {figures['input_lexical']:6.1f}   "
            f"output {figures['output_chars']:5.1f} | {figures['output_lexical']:5.1f}"
        )
    print("  weights-only forms the shared parser reads (output tokens):")
    for label, figures in compact_forms().items():
        print(f"    {label:<40} {figures['chars']:5.1f} | {figures['lexical']:5.1f}")
    worst = max(tokens["student, weights only"]["output_chars"], tokens["student, weights only"]["output_lexical"])

    ttw = measure_time_to_weights()
    print(
        f"\nTime to weights, first token after {FIRST_TOKEN_SECONDS * 1000:.0f} ms then {TOKEN_SECONDS * 1000:.0f} ms "
        f"per token, promoted student, median of {TTW_RUNS} (handler end to end)"
    )
    print(f"  today: full answer, {ttw['full_tokens']} tokens, all at once  {ttw['today_ms']:7.1f} ms")
    print(
        f"  today at the issue's {ttw['reference_tokens']} tokens, all at once {ttw['today_reference_ms']:7.1f} ms   "
        f"(weights-only ratio {ttw['reference_ratio']:.2f})"
    )
    print(
        f"  weights-only prompt, {ttw['weights_tokens']} tokens, streamed   {ttw['weights_only_ms']:7.1f} ms   "
        f"ratio {ttw['ratio']:.2f} (read {ttw['events'][0]} of {ttw['events'][1]} events)"
    )
    print(f"  full answer streamed, cut at the weights  {ttw['cut_ms']:7.1f} ms   ratio {ttw['cut_ratio']:.2f}")
    per_prompt = {label: (f["output_chars"], f["output_lexical"]) for label, f in tokens.items()}
    return {"weights_only_tokens": worst, "ttw_ratio": ttw["ratio"], "per_prompt": per_prompt}


# --------------------------------------------------------------------------------------------------------------
# The run: every section, then one summary against the issue's targets
# --------------------------------------------------------------------------------------------------------------
OVERHEAD_ROWS = (
    ("micro", "micro-router, weights only"),
    ("cache", "cache hit"),
    ("model", "cache miss, with reasoning (stream)"),
    ("model", "cache miss, weights only (ConverseStream)"),
)


class Run:
    """What the sections measured (``figures``), the summary's rows, and the sections that failed to measure
    (an exception, or a request answered by another source than the one measured): the exit status."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}
        self.errors: list[str] = []
        self.rows: list[tuple[str, str, str, bool | None]] = []

    def section(self, name: str, measure: Callable[[], Any]) -> Any:
        try:
            self.figures[name] = measure()
        except Exception as error:  # reported and counted: the run exits non-zero, the other sections still run
            self.errors.append(f"{name}: {type(error).__name__}: {error}")
            print(f"  MEASUREMENT FAILED ({name}): {type(error).__name__}: {error}")
        return self.figures.get(name)

    def target(self, figure: str, measured: str, target: str, passed: bool | None) -> None:
        self.rows.append((figure, measured, target, passed))


def _overhead_section(run: Run, requests: int) -> None:
    print(f"Router overhead per request (in process, zero-latency model, {requests} requests each)")
    overhead = run.section("overhead", lambda: measure_overhead(requests)) or {}
    micro = run.section("micro", lambda: measure_micro_overhead(requests))
    measured = {**({"micro-router, weights only": micro} if micro else {}), **overhead}
    print(f"  {'source':<7}{'request':<44}{'p50':>10}{'p99':>10}{'mean':>10}")
    for source, label in OVERHEAD_ROWS:
        if label in measured:
            f = measured[label]
            print(f"  {source:<7}{label:<44}{f['p50']:7.3f} ms{f['p99']:7.3f} ms{f['mean']:7.3f} ms")
    if micro:
        print(
            f"  micro-router: trained on {micro['examples']} synthesized queries (simulated teacher), artifact "
            f"{micro['artifact_kb']:.0f} KB from S3 (botocore Stubber), tau {micro['tau']:.3f} (the lowest "
            "confidence of the measured queries): every measured request answered with source micro"
        )
    for source, label in OVERHEAD_ROWS:
        if label in measured:
            p50, p99 = measured[label]["p50"], measured[label]["p99"]
            passed = p50 < LIMIT_OVERHEAD_P50_MS
            run.target(f"overhead {source} ({label})", f"p50 {p50:.3f} ms, p99 {p99:.3f} ms", "p50 < 2 ms", passed)


def _import_section(run: Run) -> None:
    print(
        f"\nCold start: import search_router.handlers.router_api (median of {IMPORT_RUNS}, bare interpreter subtracted)"
    )
    imported = run.section("import", measure_import)
    if not imported:
        return
    print(f"  bare interpreter {imported['bare_ms']:7.1f} ms")
    print(f"  handler import   {imported['import_ms']:7.1f} ms")
    print(
        "  heaviest direct imports of the handler (cumulative, -X importtime): "
        + ", ".join(f"{name} {micros / 1000:.0f} ms" for name, micros in imported["heaviest"])
    )
    ms = imported["import_ms"]
    run.target("handler import", f"{ms:.0f} ms", f"< {LIMIT_IMPORT_MS:.0f} ms", ms < LIMIT_IMPORT_MS)


def _streaming_section(run: Run) -> None:
    print(f"\nTime to weights: {TOKEN_SECONDS * 1000:.0f} ms per token, median of {STREAM_RUNS} (handler end to end)")
    stream = run.section("streaming", measure_streaming)
    if not stream:
        return
    print(
        f"  answer {stream['tokens']} tokens, weights in the first {stream['weights_share']:.0%}; "
        f"stream read {stream['events_read']} of {stream['events_total']} events"
    )
    print(f"  full answer (include_reasoning=true)             {stream['full_ms']:7.1f} ms")
    print(f"  streamed weights (include_reasoning=false)       {stream['streamed_ms']:7.1f} ms")
    print(f"  ratio streamed / full                            {stream['ratio']:7.2f}")
    ratio = stream["ratio"]
    run.target("streamed / full answer (no first-token delay)", f"{ratio:.2f}x", "<= 0.5x", ratio <= LIMIT_STREAM_RATIO)


def _tokens_section(run: Run) -> None:
    tokens = run.section("tokens", report_tokens)
    if not tokens:
        return
    for label, (chars, lexical) in tokens["per_prompt"].items():
        run.target(f"output tokens per route, {label}", f"{chars:.1f} (4 chars) | {lexical:.1f} (lexical)", "", None)
    worst = tokens["weights_only_tokens"]
    limit = LIMIT_WEIGHTS_ONLY_TOKENS
    run.target("weights-only output tokens (larger estimate)", f"{worst:.1f}", f"<= {limit}", worst <= limit)
    ratio = tokens["ttw_ratio"]
    run.target(
        "time to weights / today's full answer", f"{ratio:.2f}x", f"<= {LIMIT_TTW_RATIO}x", ratio <= LIMIT_TTW_RATIO
    )


def _cold_start_section(run: Run, runs: int) -> None:
    from benchmarks.cold_start import TARGET_RATIO, cold_start_ratio, format_figures

    print(f"\nCold start, import + first request, fresh processes (benchmarks.cold_start, {runs} runs of each)")
    figures = run.section("cold start", lambda: cold_start_ratio(runs))
    if not figures:
        return
    print("\n".join(f"  {line}" for line in format_figures(figures)))
    ratio = figures.ratio_total
    run.target("cold start router / minimal handler", f"{ratio:.2f}x", f"<= {TARGET_RATIO}x", figures.meets_target)


def _print_summary(run: Run) -> None:
    print("\nSummary (issue 12's figures side by side, against its targets)")
    width = max(len(row[0]) for row in run.rows) if run.rows else 10
    for figure, measured, target, passed in run.rows:
        verdict = "" if passed is None else ("PASS" if passed else "MISS")
        print(f"  {figure:<{width}}  {measured:<34} {target:<12} {verdict}")
    misses = [row[0] for row in run.rows if row[3] is False]
    print("  targets: " + ("all met" if not misses else f"{len(misses)} missed: " + "; ".join(misses)))
    if run.errors:
        print("  MEASUREMENTS FAILED (exit 1): " + "; ".join(run.errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="requests per overhead scenario")
    parser.add_argument(
        "--cold-start-runs", type=int, default=7, help="fresh processes of each handler for the cold start ratio (>= 7)"
    )
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error(f"--requests must be at least 1 (got {args.requests})")
    if args.cold_start_runs < 7:
        parser.error(f"--cold-start-runs must be at least 7 (got {args.cold_start_runs})")
    started = time.perf_counter()
    run = Run()
    _overhead_section(run, args.requests)
    _import_section(run)
    _streaming_section(run)
    _tokens_section(run)
    _cold_start_section(run, args.cold_start_runs)
    _print_summary(run)
    print(f"(benchmark took {time.perf_counter() - started:.1f} s; Python {sys.version.split()[0]})")
    return 1 if run.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
