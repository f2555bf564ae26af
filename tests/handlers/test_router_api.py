"""POST /route: the HTTP contract (valid requests, 400s that name the field), what the model is sent, streaming."""

from __future__ import annotations

import json
import os
import random
import sys
import types
from typing import Any

import pytest

from search_router.handlers import router_api as handler
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import student_prompt, teacher_prompt
from simulation.bedrock.values import ConverseRequest
from tests.handlers.router_harness import (
    FALLBACK,
    FALLBACK_ANSWER,
    PRIMARY,
    VALID_ANSWER,
    RouterHarness,
    assert_valid_weights,
    by_model,
    load_event,
    post_event,
    promotion,
)


def test_a_query_gets_the_model_weights_and_reasoning(router: RouterHarness) -> None:
    # When a client posts a query
    reply = router.invoke(load_event("router_post"))
    # Then the answer is the model's, with every channel, in channel order, and its reasoning
    assert reply.status == 200
    assert reply.body == {
        "weights": {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1},
        "reasoning": "Mostly what is seen.",
        "model": PRIMARY,
        "source": "model",
        "latency_ms": reply.body["latency_ms"],
    }
    assert isinstance(reply.body["latency_ms"], float) and reply.body["latency_ms"] >= 0
    assert_valid_weights(reply.body)
    # And the model was asked once, with the prompt it was configured with (teacher) and the query as user turn
    (call,) = router.calls("ConverseStream")
    assert call["modelId"] == PRIMARY
    assert call["system"] == [{"text": teacher_prompt(DEFAULT_CHANNELS)}]
    assert call["messages"] == [{"role": "user", "content": [{"text": "sunset over snowy mountains"}]}]
    assert call["inferenceConfig"]["temperature"] == 0.0
    assert router.metric("RouteLatency") >= 0


def test_a_promoted_student_is_called_with_the_student_prompt(router: RouterHarness) -> None:
    router.set_parameter(promotion("us.amazon.nova-lite-v1:0", "student"))
    router.bedrock.responder = lambda request: VALID_ANSWER
    router.configure()  # a new container: reads the parameter afresh
    reply = router.route("sunset")
    assert reply.body["model"] == "us.amazon.nova-lite-v1:0"
    (call,) = router.calls("ConverseStream")
    assert call["system"] == [{"text": student_prompt(DEFAULT_CHANNELS)}]


@pytest.mark.parametrize(
    ("event_name", "field", "words"),
    [
        ("router_malformed_not_json", "body", "not valid JSON"),
        ("router_malformed_json_array", "body", "must be a JSON object"),
        ("router_malformed_json_string", "body", "must be a JSON object"),
        ("router_malformed_missing_query", "query", "is required"),
        ("router_malformed_unknown_field", "top_k", "is not a known field"),
        ("router_wrong_type_query_number", "query", "must be a string"),
        ("router_wrong_type_query_null", "query", "must be a string"),
        ("router_wrong_type_include_reasoning_string", "include_reasoning", "must be true or false"),
        ("router_wrong_type_include_reasoning_number", "include_reasoning", "must be true or false"),
        ("router_empty_query", "query", "must not be empty or blank"),
        ("router_blank_query", "query", "must not be empty or blank"),
        ("router_overlong_query", "query", "at most 1000 characters"),
        ("router_no_body", "body", "is required"),
        # bodies the JSON reader itself refuses: a 400, never the internal-error path (issue 10)
        ("router_body_deeply_nested", "body", "is nested more than 32 levels deep"),
        ("router_body_huge_integer", "body", "holds an integer longer than 4300 digits"),
        ("router_body_invalid_base64", "body", "is marked base64-encoded (isBase64Encoded) but is not valid base64"),
        ("router_body_not_utf8", "body", "is not UTF-8 text (invalid byte at position 14)"),
        ("router_query_lone_surrogate", "query", "must be valid Unicode text"),
    ],
)
def test_a_bad_request_is_a_400_that_names_the_field(
    router: RouterHarness, event_name: str, field: str, words: str
) -> None:
    # When the request breaks the contract
    reply = router.invoke(load_event(event_name))
    # Then it is rejected with a message naming the field, and no model is called
    assert reply.status == 400, reply.body
    assert reply.body["errors"][0]["field"] == field
    assert words in reply.body["errors"][0]["message"]
    assert f"{field} {words}" in reply.body["message"] or words in reply.body["message"]
    assert router.model_calls() == 0
    assert router.metric("BadRequest") == 1
    assert router.metric("InternalError") == router.metric("DefaultWeightsUsed") == 0
    (line,) = [entry for entry in router.logs() if entry.get("message") == "Bad request"]
    assert line["level"] == "INFO" and line["problems"] == reply.body["errors"]


@pytest.mark.parametrize(
    ("depth", "message"),
    [(32, "query must be a string"), (33, "body is nested more than 32 levels deep")],
)
def test_nesting_is_refused_past_the_limit(router: RouterHarness, depth: int, message: str) -> None:
    # {"query": [[...]]}: the object is level 1, the lists the rest. At the limit the body is read (and its query
    # refused for its type); one level deeper it is not read at all.
    body = '{"query": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    reply = router.post(body)
    assert reply.status == 400
    assert message in reply.body["message"]


def test_brackets_inside_the_query_text_are_not_nesting(router: RouterHarness) -> None:
    reply = router.post({"query": "[[[{{{" * 20 + ' "quoted" ' + "]]]}}}" * 20})
    assert reply.status == 200, reply.body
    assert reply.body["source"] == "model"


def test_a_base64_encoded_body_is_read(router: RouterHarness) -> None:
    # API Gateway base64-encodes bodies of binary media types; the router decodes them (strictly)
    reply = router.invoke(load_event("router_body_base64"))
    assert reply.status == 200, reply.body
    (call,) = router.calls("ConverseStream")
    assert call["messages"][0]["content"][0]["text"] == "café au lait"


@pytest.mark.parametrize(
    "content_type", ["Application/JSON; charset=UTF-8", "APPLICATION/JSON", "application/json;charset=utf-8"]
)
def test_the_content_type_is_compared_case_insensitively(router: RouterHarness, content_type: str) -> None:
    event = load_event("router_content_type_mixed_case")
    event["headers"]["Content-Type"] = content_type
    reply = router.invoke(event)
    assert reply.status == 200, reply.body
    assert reply.body["source"] == "model"


def test_the_content_type_header_name_may_be_lower_case(router: RouterHarness) -> None:
    event = load_event("router_content_type_mixed_case")
    event["headers"]["content-type"] = event["headers"].pop("Content-Type")
    assert router.invoke(event).status == 200


def test_the_query_limit_is_in_characters_after_trimming(router: RouterHarness) -> None:
    assert router.post({"query": "  " + "é" * 1000 + "  "}).status == 200
    assert router.post({"query": "🎸" * 1000}).status == 200  # emoji are one character each
    over = router.post({"query": "b" * 1001})
    assert over.status == 400
    assert over.body["message"] == "Invalid request: query must be at most 1000 characters after trimming (got 1001)"


def test_the_limit_comes_from_configuration(router: RouterHarness) -> None:
    router.configure(max_query_chars=10)
    assert router.post({"query": "0123456789"}).status == 200
    assert router.post({"query": "0123456789x"}).status == 400


@pytest.mark.parametrize("event_name", ["router_unicode_emoji", "router_unicode_cjk", "router_unicode_rtl"])
def test_unicode_queries_reach_the_model_unchanged(router: RouterHarness, event_name: str) -> None:
    event = load_event(event_name)
    reply = router.invoke(event)
    assert reply.status == 200
    assert_valid_weights(reply.body)
    (call,) = router.calls("ConverseStream")
    assert call["messages"][0]["content"][0]["text"] == json.loads(event["body"])["query"]


def test_whitespace_is_normalized_before_the_model_and_the_cache(router: RouterHarness) -> None:
    router.route("  sunset \t over\n\n mountains  ")
    (call,) = router.calls("ConverseStream")
    assert call["messages"][0]["content"][0]["text"] == "sunset over mountains"
    # the same query spelled with other whitespace is the same cache entry
    assert router.route("sunset over mountains").body["source"] == "cache"


def test_without_reasoning_the_answer_is_streamed_and_the_stream_left_after_the_weights(
    router: RouterHarness,
) -> None:
    # Given a model whose answer streams in small chunks, weights first, then a long reasoning
    long_reasoning = "Because " + "the scene is what matters most here " * 20
    answer = json.dumps(
        {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1, "reasoning": long_reasoning}
    )
    router.bedrock.responder = by_model({PRIMARY: answer})
    router.bedrock.stream_chunk_chars = 5
    # When reasoning is not requested
    reply = router.invoke(load_event("router_post_no_reasoning"))
    # Then the weights come from ConverseStream, without reasoning
    assert reply.status == 200
    assert reply.body["weights"] == {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}
    assert reply.body["reasoning"] is None
    assert reply.body["source"] == "model"
    assert router.calls("Converse") == []
    (call,) = router.calls("ConverseStream")
    assert call["modelId"] == PRIMARY
    # And the stream was closed long before its end: the reasoning was never read
    stream = router.bedrock.last_stream
    assert stream.closed
    assert stream.events_read < stream.total_events / 4


def test_a_streamed_answer_with_reasoning_first_is_still_parsed_in_full(router: RouterHarness) -> None:
    answer = '{"reasoning": "Sound first.", "audio": 0.5, "visual": 0.5, "transcription": 0, "metadata": 0}'
    router.bedrock.responder = by_model({PRIMARY: answer})
    reply = router.route("thunder", include_reasoning=False)
    assert reply.body["weights"]["audio"] == 0.5
    assert reply.body["reasoning"] is None


def test_the_correlation_id_is_the_api_gateway_request_id(router: RouterHarness) -> None:
    event = load_event("router_post")
    router.invoke(event)
    (line,) = [entry for entry in router.logs() if entry.get("message") == "Routed"]
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["source"] == "model"
    assert line["model"] == PRIMARY
    assert line["attempts"][0]["outcome"] == "answered"


def test_the_query_text_is_not_logged_unless_configured(router: RouterHarness) -> None:
    secret = "confidential merger interview with the CEO"
    router.route(secret)
    assert secret not in json.dumps(router.logs())
    router.configure(log_queries=True)
    router.route(secret + " again")
    assert any(line.get("query") == secret + " again" for line in router.logs())


def test_a_non_json_content_type_is_a_415(router: RouterHarness) -> None:
    event = load_event("router_post")
    event["headers"]["Content-Type"] = "text/plain"
    reply = router.invoke(event)
    assert reply.status == 415
    assert "application/json" in reply.body["message"]


def test_an_unknown_path_is_a_404(router: RouterHarness) -> None:
    event = load_event("router_post")
    event["path"] = event["resource"] = "/routes"
    assert router.invoke(event).status == 404


def test_a_broken_function_configuration_is_the_only_5xx(
    router: RouterHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a container whose settings are invalid (the build-time config makes this impossible in practice)
    monkeypatch.setenv("ROUTER_DEFAULT_WEIGHTS", '{"visual": 1.5}')
    handler.use_service(None)
    # Then the router cannot even produce default weights and says so
    reply = router.invoke(load_event("router_post"))
    assert reply.status == 500
    assert reply.body == {"message": "The router is misconfigured"}
    assert any("ROUTER_DEFAULT_WEIGHTS" in json.dumps(line) for line in router.logs())


def test_the_api_gateway_request_id_is_not_needed_for_a_local_event(router: RouterHarness) -> None:
    # Events without a requestContext.requestId (local tools) still route.
    event: dict[str, Any] = post_event({"query": "sunset"})
    del event["requestContext"]["requestId"]
    assert router.invoke(event).status == 200


def test_both_operations_go_through_the_validating_fake(router: RouterHarness) -> None:
    # The fake validates every request against botocore's model; this proves both operations were exercised.
    seen: list[ConverseRequest] = []

    def record(request: ConverseRequest) -> str:
        seen.append(request)
        return VALID_ANSWER

    router.bedrock.responder = record
    router.route("one", include_reasoning=True)
    router.route("two", include_reasoning=False)
    assert [r.operation for r in seen] == ["ConverseStream", "ConverseStream"]
    assert all(r.target_kind == "inference-profile" and r.model_id == PRIMARY for r in seen)


# --- the function's own HTTP layer and init (no REST resolver; benchmarks/cold_start.py) ------------------------
def test_a_configured_browser_origin_gets_the_cors_header_and_no_other_does(router: RouterHarness) -> None:
    router.configure(cors_origins=["https://search.example.com"])
    event = load_event("router_post")
    event["headers"]["Origin"] = "https://search.example.com"
    reply = router.invoke(event)
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "https://search.example.com"
    assert reply.headers["Content-Type"] == "application/json"
    event["headers"]["Origin"] = "https://elsewhere.example.com"
    assert "Access-Control-Allow-Origin" not in router.invoke(event).headers


def test_another_method_on_the_route_is_a_404(router: RouterHarness) -> None:
    event = load_event("router_post")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = "GET"
    reply = router.invoke(event)
    assert reply.status == 404
    assert router.model_calls() == 0


def test_the_init_builds_the_service_in_lambda_only(router: RouterHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Lambda's managed runtime, whose snapshot_restore_py registers SnapStart hooks
    registered: list[Any] = []
    hooks = types.ModuleType("snapshot_restore_py")
    hooks.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", hooks)
    handler.use_service(None)
    # Outside Lambda nothing is built at import (tests install their own service)
    assert handler.initialize_container(dict(os.environ)) is None
    assert registered == []
    # In Lambda the service is built and installed, and one after-restore hook reseeds random
    service = handler.initialize_container({**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "router"})
    assert service is not None and handler.get_service() is service
    (hook,) = registered
    random.seed(1)
    seeded = random.random()
    random.seed(1)
    hook()
    assert random.random() != seeded
    # and the service answers the first request
    assert router.route("sunset").body["source"] == "model"


def test_invalid_settings_at_init_are_left_to_the_first_request(
    router: RouterHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_DEFAULT_WEIGHTS", '{"visual": 1.5}')
    handler.use_service(None)
    assert handler.initialize_container({**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "router"}) is None
    reply = router.invoke(load_event("router_post"))
    assert reply.status == 500
    assert reply.body == {"message": "The router is misconfigured"}


WEIGHTS_ONLY_ANSWER = '{"visual":0.6,"audio":0.2,"transcription":0.1,"metadata":0.1}'


def _student_answers(request: ConverseRequest) -> str:
    """A distilled model trained on both student prompts: the weights only unless the prompt asks for reasoning."""
    if request.system_text == student_prompt(DEFAULT_CHANNELS, reasoning=False):
        return WEIGHTS_ONLY_ANSWER
    if request.system_text == student_prompt(DEFAULT_CHANNELS):
        return VALID_ANSWER
    return FALLBACK_ANSWER  # not a student prompt: the test fails on the weights


@pytest.mark.parametrize(
    ("include_reasoning", "operation", "weights", "reasoning"),
    [
        (False, "ConverseStream", {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}, None),
        (
            True,
            "ConverseStream",
            {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1},
            "Mostly what is seen.",
        ),
    ],
    ids=["weights-only", "with-reasoning"],
)
def test_a_promoted_student_gets_the_prompt_that_include_reasoning_picks(
    router: RouterHarness,
    include_reasoning: bool,
    operation: str,
    weights: dict[str, float],
    reasoning: str | None,
) -> None:
    # Given a promoted student model
    router.set_parameter(promotion("us.amazon.nova-lite-v1:0", "student"))
    router.bedrock.responder = _student_answers
    router.configure()

    # When a query is routed with or without reasoning
    reply = router.route("sunset", include_reasoning=include_reasoning)

    # Then the model got the matching student prompt, and the answer has the same shape either way
    (call,) = router.calls(operation)
    assert call["system"] == [{"text": student_prompt(DEFAULT_CHANNELS, reasoning=include_reasoning)}]
    assert reply.status == 200
    assert set(reply.body) == {"weights", "reasoning", "model", "source", "latency_ms"}
    assert reply.body["weights"] == weights
    assert reply.body["reasoning"] == reasoning
    assert reply.body["source"] == "model"


def test_the_teacher_prompt_is_the_same_with_or_without_reasoning(router: RouterHarness) -> None:
    router.route("one", include_reasoning=True)
    router.route("two", include_reasoning=False)

    with_reasoning, weights_only = router.calls("ConverseStream")
    assert with_reasoning["system"] == weights_only["system"] == [{"text": teacher_prompt(DEFAULT_CHANNELS)}]


def test_the_two_student_prompts_are_cached_apart(router: RouterHarness) -> None:
    router.set_parameter(promotion("us.amazon.nova-lite-v1:0", "student"))
    router.bedrock.responder = _student_answers
    router.configure()

    weights_only = router.route("sunset", include_reasoning=False)
    with_reasoning = router.route("sunset", include_reasoning=True)
    again = router.route("sunset", include_reasoning=False)

    assert (weights_only.body["source"], with_reasoning.body["source"], again.body["source"]) == (
        "model",
        "model",
        "cache",
    )
    assert with_reasoning.body["reasoning"] == "Mostly what is seen."
    assert again.body["reasoning"] is None and again.body["weights"] == weights_only.body["weights"]


def test_with_reasoning_the_answer_is_streamed_and_the_stream_left_at_the_closing_brace(
    router: RouterHarness,
) -> None:
    # Given a model that keeps talking after its answer, streamed in small chunks
    router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER + "\n" + "Let me know if you need more. " * 30})
    router.bedrock.stream_chunk_chars = 5

    # When reasoning is requested
    reply = router.route("sunset", include_reasoning=True)

    # Then the weights and the reasoning come from ConverseStream, read only up to the answer's end
    assert reply.body["weights"] == {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
    assert reply.body["reasoning"] == "Mostly what is seen."
    assert router.calls("Converse") == []
    stream = router.bedrock.last_stream
    assert stream.closed
    assert stream.events_read <= len(VALID_ANSWER) // 5 + 3  # messageStart, the answer's chunks, one more at most
    assert stream.events_read < stream.total_events / 4


def test_with_reasoning_an_answer_inside_an_array_is_read_whole_and_refused_like_the_parser(
    router: RouterHarness,
) -> None:
    router.bedrock.responder = by_model({PRIMARY: f"[{VALID_ANSWER}]", FALLBACK: FALLBACK_ANSWER})

    reply = router.route("sunset", include_reasoning=True)

    assert reply.body["source"] == "fallback_model"
    assert router.metric("ParseFailure", reason="not_an_object") == 1
    assert router.bedrock.streams[0].fully_read
