"""The router's clients on trimmed service models (``adapters/service_models.py``), held to botocore's own:

- each shipped model is botocore's installed model of the service cut to the router's operations, shape for
  shape (a botocore upgrade fails here until ``make service-models`` writes them again);
- a trimmed client sends the same request as a client of the full model (method, URL, headers but the
  signature's time and the invocation id, body) and parses the same answer, success and error alike;
- every other client of the process keeps the full model.

Requests stop at ``before-send`` (a handler there answers in place of the network, as botocore allows)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import ServiceModel

from benchmarks.cold_start import _event_message
from search_router.adapters.service_models import (
    MODELS_DIR,
    ROUTER_OPERATIONS,
    TrimmedModelMissing,
    create_trimmed_client,
    load_trimmed,
    model_path,
    trim,
)

CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"})
VOLATILE_HEADERS = {"authorization", "x-amz-date", "amz-sdk-invocation-id"}


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Test credentials in a default session of the test's own (the previous one is put back after it)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "token",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    previous = boto3.DEFAULT_SESSION
    boto3.setup_default_session()
    # Resolved now, not by the first client made: that client's user agent would carry the credentials' feature
    # id (``g``, from the environment) and the next one's would not, whichever model they are made from.
    assert boto3.DEFAULT_SESSION is not None and boto3.DEFAULT_SESSION.get_credentials() is not None
    yield
    boto3.DEFAULT_SESSION = previous


def botocore_model(service: str) -> tuple[str, dict[str, Any]]:
    loader = botocore.session.get_session().get_component("data_loader")
    version = loader.determine_latest_version(service, "service-2")
    return version, loader.load_service_model(service, "service-2", api_version=version)


@pytest.mark.parametrize("service", sorted(ROUTER_OPERATIONS))
def test_each_shipped_model_is_botocores_own_cut_to_the_router_operations(service: str) -> None:
    version, full = botocore_model(service)
    shipped = load_trimmed(service, version)
    assert shipped == trim(full, ROUTER_OPERATIONS[service])
    assert set(shipped["operations"]) == set(ROUTER_OPERATIONS[service])
    assert shipped["metadata"] == full["metadata"]
    # every shape kept is botocore's, unchanged, and every shape an operation reaches is kept
    assert all(shipped["shapes"][name] == full["shapes"][name] for name in shipped["shapes"])
    model = ServiceModel(shipped, service_name=service)
    for name in shipped["operations"]:
        operation = model.operation_model(name)
        for shape in (operation.input_shape, operation.output_shape, *operation.error_shapes):
            _walk(shape)


def _walk(shape: Any, seen: set[str] | None = None) -> None:
    """Resolve every member of ``shape``, recursively (a missing shape raises)."""
    seen = set() if seen is None else seen
    if shape is None or shape.name in seen:
        return
    seen.add(shape.name)
    for child in (getattr(shape, "members", {}) or {}).values():
        _walk(child, seen)
    for attribute in ("member", "key", "value"):
        if hasattr(shape, attribute):
            _walk(getattr(shape, attribute), seen)


def test_the_files_shipped_are_the_router_services_and_nothing_else() -> None:
    expected = {model_path(service, botocore_model(service)[0]).name for service in ROUTER_OPERATIONS}
    assert {path.name for path in Path(MODELS_DIR).glob("*.json")} == expected


# --------------------------------------------------------------------------------------------------------------
# The same request, the same parse
# --------------------------------------------------------------------------------------------------------------
def _response(status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    raw = io.BytesIO(body)
    response = AWSResponse("https://example.invalid", status, headers, _Raw(raw))
    return response


class _Raw:
    """What ``AWSResponse`` reads a body from (urllib3's response, in botocore)."""

    def __init__(self, stream: io.BytesIO) -> None:
        self._stream = stream

    def stream(self, amt: int = 1024, decode_content: bool = False) -> Iterator[bytes]:
        del decode_content
        while chunk := self._stream.read(amt):
            yield chunk

    def read(self, amt: int | None = None, decode_content: bool = False) -> bytes:
        del decode_content
        return self._stream.read(amt)

    def close(self) -> None:
        self._stream.close()


@contextmanager
def answered(client: Any, answer: Callable[[], AWSResponse], sent: list[dict[str, Any]]) -> Iterator[None]:
    def before_send(request: Any, **_: Any) -> AWSResponse:
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        body = request.body
        if "user-agent" in headers:
            headers["user-agent"] = _features_sorted(headers["user-agent"])
        sent.append(
            {
                "method": request.method,
                "url": request.url,
                "headers": {k: v for k, v in headers.items() if k not in VOLATILE_HEADERS},
                "body": body if isinstance(body, bytes | str | None) else body.read(),
            }
        )
        return answer()

    client.meta.events.register_first("before-send", before_send, unique_id="trimmed-model-test")
    try:
        yield
    finally:
        client.meta.events.unregister("before-send", unique_id="trimmed-model-test")


def _features_sorted(user_agent: str) -> str:
    """The user agent with its feature ids (``m/E,b,Z``: a set, in no fixed order) sorted."""
    parts = user_agent.split(" ")
    return " ".join("m/" + ",".join(sorted(p[2:].split(","))) if p.startswith("m/") else p for p in parts)


def _both(service: str) -> tuple[Any, Any]:
    return boto3.client(service, config=CONFIG), create_trimmed_client(service, config=CONFIG, region_name="us-east-1")


def _outcome(call: Callable[[], Any], read: Callable[[Any], Any]) -> Any:
    try:
        return read(call())
    except ClientError as error:
        return {"error": error.response["Error"], "status": error.response["ResponseMetadata"]["HTTPStatusCode"]}


def _compare(
    service: str,
    operation: str,
    params: dict[str, Any],
    answers: list[Callable[[], AWSResponse]],
    read: Callable[[Any], Any],
) -> list[Any]:
    """What each answer parses to, the same through both clients (and the same requests sent)."""
    full, trimmed = _both(service)
    outcomes = []
    for make_answer in answers:
        sent_full: list[dict[str, Any]] = []
        sent_trimmed: list[dict[str, Any]] = []
        with answered(full, make_answer, sent_full):
            expected = _outcome(lambda: getattr(full, operation)(**params), read)
        with answered(trimmed, make_answer, sent_trimmed):
            got = _outcome(lambda: getattr(trimmed, operation)(**params), read)
        # the same requests (a throttled call is retried by both: CONFIG allows one retry)
        assert sent_trimmed == sent_full and sent_full
        assert got == expected
        outcomes.append(got)
    return outcomes


def _metadata_free(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def test_ssm_get_parameter_is_sent_and_parsed_as_with_the_full_model() -> None:
    value = {"Parameter": {"Name": "/p", "Type": "String", "Value": '{"a":1}', "Version": 3, "LastModifiedDate": 1.7e9}}
    json_type = {"Content-Type": "application/x-amz-json-1.1"}
    not_found = {"__type": "ParameterNotFound", "message": "no such parameter"}
    throttled = {"__type": "ThrottlingException", "message": "Rate exceeded"}
    outcomes = _compare(
        "ssm",
        "get_parameter",
        {"Name": "/stack/router/promoted-model"},
        [
            lambda: _response(200, json_type, json.dumps(value).encode()),
            lambda: _response(400, json_type, json.dumps(not_found).encode()),
            lambda: _response(400, json_type, json.dumps(throttled).encode()),
        ],
        _metadata_free,
    )
    assert outcomes[0]["Parameter"]["Value"] == '{"a":1}' and outcomes[0]["Parameter"]["Version"] == 3
    assert [o["error"]["Code"] for o in outcomes[1:]] == ["ParameterNotFound", "ThrottlingException"]


def test_s3_get_object_is_sent_and_parsed_as_with_the_full_model() -> None:
    def read(response: dict[str, Any]) -> dict[str, Any]:
        return {**_metadata_free(response), "Body": response["Body"].read()}

    headers = {"Content-Length": "5", "ETag": '"abc"', "Content-Type": "application/octet-stream"}
    missing = b"<Error><Code>NoSuchKey</Code><Message>The key does not exist</Message></Error>"
    outcomes = _compare(
        "s3",
        "get_object",
        {"Bucket": "router-artifacts", "Key": "runs/r1/micro-router.bin"},
        [
            lambda: _response(200, headers, b"hello"),
            lambda: _response(404, {"Content-Type": "application/xml"}, missing),
        ],
        read,
    )
    assert outcomes[0]["Body"] == b"hello" and outcomes[0]["ETag"] == '"abc"'
    assert outcomes[1]["error"]["Code"] == "NoSuchKey"


def test_bedrock_converse_stream_is_sent_and_parsed_as_with_the_full_model() -> None:
    def read(response: dict[str, Any]) -> list[Any]:
        return list(response["stream"])

    events = [
        _event_message("messageStart", {"role": "assistant"}),
        _event_message("contentBlockDelta", {"delta": {"text": '{"visual":1'}, "contentBlockIndex": 0}),
        _event_message("messageStop", {"stopReason": "end_turn"}),
        _event_message(
            "metadata", {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 9}}
        ),
    ]
    stream_type = {"Content-Type": "application/vnd.amazon.eventstream"}
    invalid = {"message": "The provided model identifier is invalid."}
    outcomes = _compare(
        "bedrock-runtime",
        "converse_stream",
        {
            "modelId": "us.amazon.nova-micro-v1:0",
            "system": [{"text": "Return the weights."}],
            "messages": [{"role": "user", "content": [{"text": "sunset over the sea"}]}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.0},
        },
        [
            lambda: _response(200, stream_type, b"".join(events)),
            lambda: _response(400, {"x-amzn-ErrorType": "ValidationException"}, json.dumps(invalid).encode()),
        ],
        read,
    )
    assert [next(iter(event)) for event in outcomes[0]] == [
        "messageStart",
        "contentBlockDelta",
        "messageStop",
        "metadata",
    ]
    assert outcomes[0][1]["contentBlockDelta"]["delta"]["text"] == '{"visual":1'
    assert outcomes[1]["error"]["Code"] == "ValidationException"


# --------------------------------------------------------------------------------------------------------------
# Scope
# --------------------------------------------------------------------------------------------------------------
def test_a_trimmed_client_has_the_router_operations_only_and_other_clients_keep_the_full_model() -> None:
    trimmed = create_trimmed_client("ssm", config=CONFIG, region_name="us-east-1")
    assert trimmed.meta.service_model.operation_names == ["GetParameter"]
    assert not hasattr(trimmed, "put_parameter")
    # the default session's loader is botocore's again: a client made after it has every operation
    full = boto3.client("ssm", config=CONFIG)
    assert "PutParameter" in full.meta.service_model.operation_names
    assert boto3.DEFAULT_SESSION is not None
    assert type(boto3.DEFAULT_SESSION._session.get_component("data_loader")).__name__ == "Loader"


def test_a_service_without_a_trimmed_model_is_refused_by_name() -> None:
    with pytest.raises(TrimmedModelMissing, match="no trimmed model for sns"):
        create_trimmed_client("sns", config=CONFIG)


def test_a_missing_model_file_names_the_make_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from search_router.adapters import service_models

    monkeypatch.setattr(service_models, "MODELS_DIR", tmp_path)
    with pytest.raises(TrimmedModelMissing, match="make service-models"):
        create_trimmed_client("ssm", config=CONFIG)
