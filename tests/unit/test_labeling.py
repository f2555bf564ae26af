"""Teacher labeling at scale (search_router.pipeline.labeling) against the botocore-validating Bedrock fake."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.validate import validate_parameters

from search_router.adapters.aws_errors import TEACHER_RETRY_CODES as RETRYABLE_ERRORS
from search_router.adapters.converse import BedrockConverse, converse_text
from search_router.pipeline.dataset import DatasetTooSmall, ensure_trainable
from search_router.pipeline.labeling import TeacherUnavailable, label_queries
from search_router.pipeline.queries.query import Query
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import teacher_prompt
from simulation.bedrock.values import ConverseRequest, FakeError
from simulation.bedrock_fake import BedrockFake

TEACHER = "us.amazon.nova-premier-v1:0"
VALID = '{"visual":0.6,"audio":0.1,"transcription":0.1,"metadata":0.2,"reasoning":"Mostly scenery."}'


def no_sleep(_: float) -> None:
    return None


def queries(n: int, seed: int = 1) -> list[Query]:
    return synthesize_queries(DEFAULT_CHANNELS, n, seed=seed)


def plain(texts: list[str]) -> list[Query]:
    return [Query(text=text, category="user", source="user") for text in texts]


def label(fake: BedrockFake, items: list[Query], **kw: Any) -> Any:
    kw.setdefault("sleep", no_sleep)
    kw.setdefault("rng", random.Random(0))
    return label_queries(
        items, teacher=BedrockConverse(fake.runtime), model_id=TEACHER, channels=DEFAULT_CHANNELS, **kw
    )


def calls_for(fake: BedrockFake, text: str) -> int:
    return sum(1 for call in fake.calls_to("Converse") if call["messages"][0]["content"][0]["text"] == text)


# ------------------------------------------------------------------------------------------------ happy path
def test_request_uses_the_teacher_prompt_and_temperature(bedrock: BedrockFake) -> None:
    result = label(bedrock, plain(["sunset over snowy mountains"]))
    assert bedrock.calls_to("Converse") == [
        {
            "modelId": TEACHER,
            "system": [{"text": teacher_prompt(DEFAULT_CHANNELS)}],
            "messages": [{"role": "user", "content": [{"text": "sunset over snowy mountains"}]}],
            "inferenceConfig": {"maxTokens": 300, "temperature": 0.3},
        }
    ]
    [example] = result.examples
    assert example.query == "sunset over snowy mountains" and example.category == "user" and example.source == "user"
    assert sum(example.weights.values()) == pytest.approx(1.0)
    assert list(example.weights) == list(DEFAULT_CHANNELS.names)
    assert example.reasoning


def test_every_query_is_labeled_under_30_percent_throttling(bedrock: BedrockFake) -> None:
    # Given a teacher that throttles 30% of calls (reproducibly)
    bedrock.error_rate("ThrottlingException", 0.3, seed=11)
    items = queries(300)
    delays: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            delays.append(seconds)

    # When
    result = label(bedrock, items, threads=16, sleep=sleep)
    # Then every query is labeled, in input order, and every throttled call was retried after a backoff
    assert [e.query for e in result.examples] == [q.text for q in items]
    assert [e.category for e in result.examples] == [q.category for q in items]
    calls = len(bedrock.calls_to("Converse"))
    assert result.calls == calls
    assert result.throttled == calls - 300
    assert result.retries == result.throttled == len(delays)
    assert 0.25 < result.throttled / calls < 0.35
    assert all(0.0 <= d <= 20.0 for d in delays)
    assert result.errors == Counter() and result.invalid == Counter() and result.unlabeled == []
    assert result.input_tokens > 0 and result.output_tokens > 0


def test_throttling_outcome_is_reproducible(bedrock: BedrockFake) -> None:
    bedrock.error_rate("ThrottlingException", 0.3, seed=3)
    first = label(bedrock, queries(120), threads=8)
    again = BedrockFake().with_default_catalog()
    again.error_rate("ThrottlingException", 0.3, seed=3)
    second = label(again, queries(120), threads=8)
    assert (first.throttled, first.retries, len(first.examples)) == (second.throttled, second.retries, 120)
    assert [e.query for e in first.examples] == [e.query for e in second.examples]


def test_backoff_is_exponential_with_full_jitter_and_capped(bedrock: BedrockFake) -> None:
    # Given a teacher that always throttles
    bedrock.script_errors("Converse", "ThrottlingException", times=None)
    delays: list[float] = []
    # When one query is tried with 6 retries (base 0.5 s, cap 4 s)
    result = label(bedrock, plain(["q"]), threads=1, max_throttle_retries=6, max_delay_s=4.0, sleep=delays.append)
    # Then each delay is within [0, min(cap, base * 2**attempt)] and the query ends as an error, not a crash
    bounds = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(delays) == 6
    assert all(0.0 <= d <= bound for d, bound in zip(delays, bounds, strict=True))
    assert max(delays[3:]) > 1.0  # jitter spreads over the capped range, not only the first bound
    assert result.errors == Counter({"ThrottlingException": 1})
    assert result.throttled == 7 and result.retries == 6
    assert len(bedrock.calls_to("Converse")) == 7
    assert "ThrottlingException" in RETRYABLE_ERRORS


def test_network_timeouts_are_retried(bedrock: BedrockFake) -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def responder(request: ConverseRequest) -> Any:
        with lock:
            first = request.user_text not in seen
            seen.add(request.user_text)
        if first:
            return ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
        return VALID

    bedrock.responder = responder
    result = label(bedrock, queries(20), threads=4)
    assert len(result.examples) == 20
    assert result.throttled == 20 and result.retries == 20


# ------------------------------------------------------------------------------------------------ invalid answers
def test_invalid_answers_are_retried_once_then_dropped_and_counted_by_reason(bedrock: BedrockFake) -> None:
    # Given answers that are bad for some queries: a sum of 0.97 (fine for the router's 0.05, not for training
    # data), prose without JSON, and a missing channel
    answers = {
        "bad sum": '{"visual":0.5,"audio":0.27,"transcription":0.1,"metadata":0.1}',
        "prose": "The visual channel matters most here.",
        "missing": '{"visual":1.0,"reasoning":"x"}',
    }

    def responder(request: ConverseRequest) -> str:
        for marker, answer in answers.items():
            if request.user_text.startswith(marker):
                return answer
        return VALID

    bedrock.responder = responder
    items = plain([f"good {i}" for i in range(10)] + ["bad sum 1", "bad sum 2", "prose 1", "missing 1"])
    # When
    result = label(bedrock, items, threads=4)
    # Then
    assert [e.query for e in result.examples] == [f"good {i}" for i in range(10)]
    assert result.invalid == Counter({"bad_sum": 2, "no_json": 1, "missing_channels": 1})
    assert result.invalid_total == 4
    assert all(calls_for(bedrock, text) == 2 for text in ("bad sum 1", "bad sum 2", "prose 1", "missing 1"))
    assert all(calls_for(bedrock, f"good {i}") == 1 for i in range(10))
    assert result.retries == 4 and result.throttled == 0
    sample = next(s for s in result.invalid_samples if s["query"] == "prose 1")
    assert sample["reason"] == "no_json" and sample["text"] == answers["prose"]


def test_invalid_answers_can_be_dropped_without_retry(bedrock: BedrockFake) -> None:
    bedrock.responder = lambda request: "no json here"
    result = label(bedrock, plain(["a", "b"]), max_invalid_retries=0)
    assert result.invalid == Counter({"no_json": 2}) and result.retries == 0
    assert len(bedrock.calls_to("Converse")) == 2


def test_a_first_invalid_then_valid_answer_is_kept(bedrock: BedrockFake) -> None:
    attempts: Counter[str] = Counter()
    lock = threading.Lock()

    def responder(request: ConverseRequest) -> str:
        with lock:
            attempts[request.user_text] += 1
            first = attempts[request.user_text] == 1
        return "```json\n{visual: maybe}\n```" if first else VALID

    bedrock.responder = responder
    items = queries(25)
    result = label(bedrock, items, threads=5)
    assert [e.query for e in result.examples] == [q.text for q in items]
    assert result.invalid == Counter()
    assert result.retries == 25
    assert set(attempts.values()) == {2}


def test_invalid_samples_are_capped_at_20(bedrock: BedrockFake) -> None:
    bedrock.responder = lambda request: "x" * 2000
    result = label(bedrock, queries(30), max_invalid_retries=0)
    assert result.invalid_total == 30
    assert len(result.invalid_samples) == 20
    assert all(len(s["text"]) == 500 for s in result.invalid_samples)


# ------------------------------------------------------------------------------------------------ errors
def test_access_denied_on_every_call_raises_teacher_unavailable_early(bedrock: BedrockFake) -> None:
    bedrock.script_errors(
        "Converse", "AccessDeniedException", times=None, message="not authorized to perform bedrock:InvokeModel"
    )
    with pytest.raises(TeacherUnavailable) as caught:
        label(bedrock, queries(500), threads=8)
    assert caught.value.code == "AccessDeniedException"
    assert "bedrock:InvokeModel" in str(caught.value)
    # it stopped after the first 20 identical failures (plus the calls already in flight), not after 500
    assert len(bedrock.calls_to("Converse")) <= 20 + 8


def test_teacher_unavailable_also_for_a_handful_of_queries(bedrock: BedrockFake) -> None:
    bedrock.script_errors("Converse", "ResourceNotFoundException", times=None)
    with pytest.raises(TeacherUnavailable, match="ResourceNotFoundException"):
        label(bedrock, queries(3))
    assert len(bedrock.calls_to("Converse")) == 3  # non-retryable: one call each


def test_non_retryable_errors_on_some_queries_are_counted_not_raised(bedrock: BedrockFake) -> None:
    def responder(request: ConverseRequest) -> Any:
        if request.user_text.startswith("reject"):
            return FakeError("ValidationException", "Input is too long for requested model.")
        return VALID

    bedrock.responder = responder
    items = plain(["reject 1", "fine 1", "reject 2", "fine 2"])
    result = label(bedrock, items, threads=2)
    assert [e.query for e in result.examples] == ["fine 1", "fine 2"]
    assert result.errors == Counter({"ValidationException": 2})
    assert result.error_messages["ValidationException"] == "Input is too long for requested model."
    assert result.retries == 0 and len(bedrock.calls_to("Converse")) == 4


def test_throttling_that_never_ends_is_an_error_not_teacher_unavailable(bedrock: BedrockFake) -> None:
    bedrock.script_errors("Converse", "ThrottlingException", times=None)
    result = label(bedrock, queries(3), threads=1, max_throttle_retries=2)
    assert result.examples == []
    assert result.errors == Counter({"ThrottlingException": 3})
    assert len(bedrock.calls_to("Converse")) == 9
    assert result.throttled == 9 and result.retries == 6


# ------------------------------------------------------------------------------------------------ throttle budget
def test_a_teacher_that_throttles_throughout_stops_the_shard_at_the_budget(bedrock: BedrockFake) -> None:
    # Given a teacher that throttles every call, and a clock advancing with every backoff sleep
    bedrock.script_errors("Converse", "ThrottlingException", times=None)
    now = [0.0]
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            now[0] += max(seconds, 1.0)

    items = queries(50)
    result = label(
        bedrock, items, threads=4, throttle_budget_s=30.0, sleep=sleep, clock=lambda: now[0], max_throttle_retries=50
    )
    # Then the shard stops once nothing has answered for 30 s, instead of retrying until its deadline
    assert result.throttle_stopped is True
    assert result.examples == [] and result.errors == Counter()
    assert result.unlabeled_by_reason == Counter({"throttled": 50})
    assert len(result.unlabeled) == 50
    assert 30.0 <= now[0] < 30.0 + 4 * 20.0  # at most one backoff per thread past the budget
    assert result.to_stats()["unlabeled_by_reason"] == {"throttled": 50}


def test_a_small_shard_throttled_throughout_is_still_blamed_on_throttling(bedrock: BedrockFake) -> None:
    # Given the default retries and budget, a shard smaller than the thread pool can spend (12 backoffs of at
    # most 20 s, ~80 s a query, in a 240 s budget), and a teacher that throttles everything
    bedrock.script_errors("Converse", "ThrottlingException", times=None)
    now = [0.0]
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            now[0] += seconds / 16  # sixteen threads sleep side by side

    result = label(bedrock, queries(40), threads=16, throttle_budget_s=240.0, sleep=sleep, clock=lambda: now[0])
    # Then most queries end as errors (their retries ran out) rather than as unlabeled ...
    assert result.errors["ThrottlingException"] + result.unlabeled_by_reason["throttled"] == 40
    # ... and the run's failure still names throttling as the reason
    with pytest.raises(DatasetTooSmall) as failure:
        ensure_trainable(
            0,
            requested=40,
            labeled=0,
            invalid=0,
            duplicates=0,
            errors=result.errors_total,
            unlabeled=len(result.unlabeled),
            calls=result.calls,
            throttled=result.throttled,
            unlabeled_throttled=result.unlabeled_by_reason["throttled"],
            errors_throttled=result.errors["ThrottlingException"],
        )
    assert "The teacher's throttling was the reason" in str(failure.value)
    assert f"{result.errors['ThrottlingException']} queries gave up after every retry was throttled" in str(
        failure.value
    )


def test_a_teacher_that_throttles_but_answers_is_not_stopped(bedrock: BedrockFake) -> None:
    # 60% throttling, but answers keep coming: the budget never runs out
    bedrock.error_rate("ThrottlingException", 0.6, seed=3)
    now = [0.0]
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            now[0] += 0.5

    # (30 retries: under 60% random throttling the limiter keeps ~1 call in flight, so one query's retries are
    # consecutive draws of the fake's throttling stream, and 13 throttled in a row would drop it once in ~12 runs)
    result = label(
        bedrock,
        queries(60),
        threads=4,
        throttle_budget_s=30.0,
        sleep=sleep,
        clock=lambda: now[0],
        max_throttle_retries=30,
    )
    assert result.throttle_stopped is False
    assert len(result.examples) == 60 and result.throttled > 0


# ------------------------------------------------------------------------------------------------ deadline
def test_queries_left_at_the_deadline_are_counted_as_unlabeled(bedrock: BedrockFake) -> None:
    # Given a clock that advances one second per teacher call and a deadline at t=5
    now = [0.0]

    def responder(request: ConverseRequest) -> str:
        now[0] += 1.0
        return VALID

    bedrock.responder = responder
    items = queries(12)
    # When
    result = label(bedrock, items, threads=1, deadline=5.0, clock=lambda: now[0])
    # Then five are labeled and the other seven are returned, in order, as unlabeled
    assert [e.query for e in result.examples] == [q.text for q in items[:5]]
    assert result.unlabeled == items[5:]
    assert result.to_stats()["unlabeled"] == 7
    assert result.unlabeled_by_reason == Counter({"deadline": 7})
    assert len(bedrock.calls_to("Converse")) == 5


def test_a_backoff_that_would_end_past_the_deadline_is_not_slept(bedrock: BedrockFake) -> None:
    bedrock.script_errors("Converse", "ThrottlingException", times=None)
    slept: list[float] = []
    result = label(
        bedrock,
        plain(["q"]),
        threads=1,
        deadline=0.1,
        clock=lambda: 0.0,
        base_delay_s=10.0,
        sleep=slept.append,
        rng=random.Random(1),
    )
    assert [q.text for q in result.unlabeled] == ["q"]
    assert slept == [] and result.errors == Counter()


def test_a_past_deadline_starts_nothing(bedrock: BedrockFake) -> None:
    result = label(bedrock, queries(10), deadline=-1.0)
    assert len(result.unlabeled) == 10 and result.examples == []
    assert bedrock.calls_to("Converse") == []


# ------------------------------------------------------------------------------------------------ stats
def test_stats_are_json_serialisable_and_consistent(bedrock: BedrockFake) -> None:
    bedrock.error_rate("ThrottlingException", 0.2, seed=1)
    result = label(bedrock, queries(40), threads=4)
    stats = json.loads(json.dumps(result.to_stats()))
    assert stats["labeled"] == 40
    assert stats["calls"] == 40 + stats["throttled"]
    assert stats["input_tokens"] == result.input_tokens > 0
    assert stats["elapsed_s"] >= 0
    assert stats["invalid"] == {} and stats["errors"] == {} and stats["unlabeled"] == 0


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="threads must be >= 1"):
        label_queries([], teacher=BedrockConverse(object()), model_id=TEACHER, channels=DEFAULT_CHANNELS, threads=0)


# ------------------------------------------------------------------------------------------------ converse_text
class ValidatingRuntime:
    """A minimal bedrock-runtime stand-in: validates Converse parameters against botocore's model."""

    def __init__(self, response: dict[str, Any]) -> None:
        model = botocore.session.get_session().get_service_model("bedrock-runtime")
        self._shape = model.operation_model("Converse").input_shape
        self.response = response
        self.params: list[dict[str, Any]] = []

    def converse(self, **params: Any) -> dict[str, Any]:
        validate_parameters(params, self._shape)  # raises ParamValidationError on a wrong name or type
        self.params.append(params)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


def test_converse_text_reads_the_content_list_usage_and_metrics() -> None:
    client = ValidatingRuntime(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [{"reasoningContent": {"reasoningText": {"text": "thinking"}}}, {"text": VALID}],
                }
            },
            "stopReason": "end_turn",
            "usage": {"inputTokens": 412, "outputTokens": 38, "totalTokens": 450},
            "metrics": {"latencyMs": 812},
        }
    )
    outcome = converse_text(client, model_id=TEACHER, system="sys", user="q", max_tokens=200, temperature=0.0)
    assert outcome.text == VALID
    assert (outcome.input_tokens, outcome.output_tokens) == (412, 38)
    assert outcome.service_latency_ms == 812 and outcome.stop_reason == "end_turn"
    assert outcome.latency_ms >= 0
    assert client.params == [
        {
            "modelId": TEACHER,
            "messages": [{"role": "user", "content": [{"text": "q"}]}],
            "inferenceConfig": {"maxTokens": 200, "temperature": 0.0},
            "system": [{"text": "sys"}],
        }
    ]


def test_converse_text_omits_an_empty_system_prompt_and_propagates_errors() -> None:
    error = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Too many requests"},
            "ResponseMetadata": {"HTTPStatusCode": 429},
        },
        "Converse",
    )
    client = ValidatingRuntime(error)  # type: ignore[arg-type]
    with pytest.raises(ClientError):
        converse_text(client, model_id=TEACHER, system="", user="q", max_tokens=10, temperature=0.3)
    assert "system" not in client.params[0]


def test_label_queries_works_with_a_plain_validating_client() -> None:
    client = ValidatingRuntime({"output": {"message": {"role": "assistant", "content": [{"text": VALID}]}}})
    result = label_queries(
        plain(["a", "b", "c"]), teacher=BedrockConverse(client), model_id=TEACHER, channels=DEFAULT_CHANNELS
    )
    assert [e.query for e in result.examples] == ["a", "b", "c"]
    assert result.input_tokens == 0  # no usage in the response: counted as zero, not a crash
