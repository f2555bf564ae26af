"""Capture of routed queries (``capture_queries``): records reach Firehose redacted and without caller identity,
off the request's path; a Firehose failure or a full buffer is a metric, never a different response.

Firehose is moto's (requests serialized and validated by botocore, records delivered to moto's S3) or, for the
failures, a botocore ``Stubber`` on a client made from the router's trimmed model (``Stubber`` validates each
expected request against that model)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from search_router.adapters.clients import CLIENTS
from search_router.adapters.firehose import CAPTURE_CLIENT_CONFIG
from search_router.adapters.service_models import create_trimmed_client
from search_router.handlers import router_api
from search_router.router.capture import REDACTED, QueryCapture
from tests.handlers.router_harness import PRIMARY, RouterHarness, load_event

STREAM = "router-capture"
BUCKET = "capture-bucket"
REDACT = ["[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}", "\\d(?:[ -]?\\d){4,}"]
RECORD_FIELDS = {"query", "weights", "source", "model", "latency_ms", "timestamp"}


@pytest.fixture
def firehose_stream(router: RouterHarness) -> str:
    """A moto Firehose stream delivering to an S3 bucket (what the stack's stream does, uncompressed)."""
    del router
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    boto3.client("firehose", region_name="us-east-1").create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": "captured/raw/",
        },
    )
    return STREAM


@pytest.fixture
def stubbed_firehose() -> Iterator[Stubber]:
    """The router's Firehose client (its trimmed model) answering what a test queues."""
    client = create_trimmed_client("firehose", config=CAPTURE_CLIENT_CONFIG, region_name="us-east-1")
    stubber = Stubber(client)
    CLIENTS.override("firehose", client)
    with stubber:
        yield stubber


@pytest.fixture(autouse=True)
def _sender_finished(router: RouterHarness) -> Iterator[None]:
    """No test leaves its sender thread sending into the next test's moto."""
    yield
    capture = router_api.capture_for(router_api.get_service())
    if capture is not None:
        capture.wait_idle(5.0)


def _capture() -> QueryCapture:
    capture = router_api.capture_for(router_api.get_service())
    assert capture is not None
    return capture


def _settle() -> None:
    assert _capture().wait_idle(5.0), "the capture thread did not finish sending"


def _delivered() -> list[dict[str, Any]]:
    s3 = boto3.client("s3", region_name="us-east-1")
    records = []
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode("utf-8")
        records += [json.loads(line) for line in body.splitlines()]
    return records


def test_capture_off_by_default_sends_nothing_and_builds_no_capture(router: RouterHarness) -> None:
    reply = router.route("sunset over snowy mountains")
    assert reply.status == 200
    assert router_api.capture_for(router_api.get_service()) is None
    assert router.metric("CaptureFailed") == 0 and router.metric("CaptureDropped") == 0


def test_capture_on_writes_one_record_per_routed_query_redacted_and_without_identity(
    router: RouterHarness, firehose_stream: str
) -> None:
    # Given capture on, with the default redaction patterns
    router.configure(capture_stream=firehose_stream, capture_redact_patterns=REDACT)
    event = load_event("router_post")
    event["body"] = json.dumps({"query": "  call   me at 555 123 4567 or ann.lee@example.com  "})
    event.setdefault("headers", {})["X-Caller"] = "caller-secret-header"
    event.setdefault("requestContext", {})["identity"] = {"sourceIp": "203.0.113.9", "userArn": "arn:aws:iam::1:user/x"}
    # When two queries are routed
    first = router.invoke(event)
    second = router.route("sunset over snowy mountains")
    _settle()
    # Then each is delivered once, with what was served, the query normalized and redacted
    records = {r["query"]: r for r in _delivered()}  # one object per batch: in no particular order
    redacted = f"call me at {REDACTED} or {REDACTED}"
    assert sorted(records) == sorted([redacted, "sunset over snowy mountains"])
    for query, reply in ((redacted, first), ("sunset over snowy mountains", second)):
        record = records[query]
        assert set(record) == RECORD_FIELDS
        assert record["weights"] == reply.body["weights"]
        assert (record["source"], record["model"]) == (reply.body["source"], reply.body["model"])
        assert record["model"] == PRIMARY
        assert record["timestamp"].endswith("Z")
    # And nothing of the caller, the headers or the unredacted text is in the captured data
    raw = json.dumps(list(records.values()))
    for secret in ("caller-secret-header", "203.0.113.9", "arn:aws:iam::1:user/x", "ann.lee", "4567"):
        assert secret not in raw
    assert router.metric("CaptureFailed") == 0


def test_capture_on_leaves_the_response_identical_to_capture_off(router: RouterHarness, firehose_stream: str) -> None:
    off = router.route("thunder and heavy rain").body
    router.configure(capture_stream=firehose_stream, capture_redact_patterns=REDACT)
    on = router.route("thunder and heavy rain").body
    assert {k: v for k, v in on.items() if k != "latency_ms"} == {k: v for k, v in off.items() if k != "latency_ms"}


def test_a_firehose_error_leaves_the_response_unchanged_and_counts_every_record_of_the_batch(
    router: RouterHarness, stubbed_firehose: Stubber
) -> None:
    # Given a Firehose that refuses the first batch (throttled) and takes the next
    router.configure(capture_stream=STREAM, capture_redact_patterns=REDACT)
    stubbed_firehose.add_client_error("put_record_batch", "ServiceUnavailableException", http_status_code=503)
    expected = {"DeliveryStreamName": STREAM, "Records": ANY}
    stubbed_firehose.add_response("put_record_batch", {"FailedPutCount": 0, "RequestResponses": [{}]}, expected)
    baseline = router.route("aerial shot of a city at night").body
    _settle()  # the failed batch
    # When the next query is routed
    reply = router.route("aerial shot of a city at night")
    _settle()
    # Then its answer is what it would have been, and the failed record was counted
    assert {k: v for k, v in reply.body.items() if k not in ("latency_ms", "source")} == {
        k: v for k, v in baseline.items() if k not in ("latency_ms", "source")
    }
    assert router.metric("CaptureFailed") == 1
    stubbed_firehose.assert_no_pending_responses()


def _taken_by_the_sender(capture: QueryCapture) -> None:
    """Wait until the sender thread has taken everything buffered (and is now sending it)."""
    deadline = time.monotonic() + 5.0
    while capture.pending() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert capture.pending() == 0


def _hold_sender(capture: QueryCapture) -> threading.Event:
    """The sender waits for the returned event before each call (batches pile up meanwhile); no lingering, so
    that the first record is taken alone at once."""
    release = threading.Event()
    capture._linger = 0.0
    send = capture._send

    def held(records: Any) -> int:
        release.wait(5.0)
        return send(records)

    capture._send = held
    return release


def test_a_partial_batch_counts_its_failed_put_count(router: RouterHarness, stubbed_firehose: Stubber) -> None:
    # Given a Firehose that takes the first call's record, rejects the second's and takes the third's
    router.configure(capture_stream=STREAM, capture_redact_patterns=REDACT)
    capture = _capture()
    release = _hold_sender(capture)
    expected = {"DeliveryStreamName": STREAM, "Records": ANY}
    stubbed_firehose.add_response(
        "put_record_batch", {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "a"}]}, expected
    )
    # (the second call's two short queries travel packed in one Firehose record, which Firehose rejects)
    partial = {
        "FailedPutCount": 1,
        "RequestResponses": [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow"}],
    }
    stubbed_firehose.add_response("put_record_batch", partial, expected)
    stubbed_firehose.add_response(
        "put_record_batch", {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "d"}]}, expected
    )
    # When one query is sent alone, two more in one batch, and a fourth after both batches were answered
    router.route("first query")
    _taken_by_the_sender(capture)
    router.route("second query")
    router.route("third query")
    release.set()
    _settle()
    router.route("fourth query")
    _settle()
    # Then the two queries of the record Firehose did not take are counted, and no response changed
    assert router.metric("CaptureFailed") == 2
    stubbed_firehose.assert_no_pending_responses()


def test_a_full_buffer_drops_the_new_record_and_counts_it(router: RouterHarness, firehose_stream: str) -> None:
    # Given a capture buffer of two records and a sender waiting on Firehose
    router.configure(capture_stream=firehose_stream, capture_redact_patterns=REDACT)
    capture = _capture()
    capture._max_buffered = 2
    release = _hold_sender(capture)
    # When five queries are routed: one taken by the sender, two buffered, two that do not fit
    replies = [router.route("query number 0")]
    _taken_by_the_sender(capture)
    replies += [router.route(f"query number {i}") for i in range(1, 5)]
    # Then every one was answered, and the two that did not fit were dropped and counted
    assert all(r.status == 200 for r in replies)
    assert router.metric("CaptureDropped") == 2
    release.set()
    _settle()
    assert sorted(r["query"] for r in _delivered()) == ["query number 0", "query number 1", "query number 2"]


def test_an_exception_in_the_capture_itself_is_a_metric_not_a_500(router: RouterHarness, firehose_stream: str) -> None:
    router.configure(capture_stream=firehose_stream, capture_redact_patterns=REDACT)
    capture = _capture()

    def broken(**_: Any) -> bool:
        raise RuntimeError("capture bug")

    capture.record = broken  # type: ignore[method-assign]
    reply = router.route("crowd cheering in a stadium")
    assert reply.status == 200 and reply.body["source"] == "model"
    assert router.metric("CaptureFailed") == 1


def test_the_init_builds_the_capture_and_its_client_but_starts_no_thread(
    router: RouterHarness, firehose_stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given capture on in Lambda's init (what a SnapStart snapshot would hold)
    router.configure(capture_stream=firehose_stream, capture_redact_patterns=REDACT)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # no SnapStart hooks here
    router_api.use_service(None)
    threads_before = {t.name for t in threading.enumerate()}
    service = router_api.initialize_container({**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "router"})
    assert service is not None
    capture = router_api.capture_for(service)
    # Then the capture and its Firehose client exist, and no sender thread runs until a query is captured
    assert capture is not None and capture.pending() == 0
    assert router_api.capture_client() is router_api.capture_client()
    assert "query-capture" not in {t.name for t in threading.enumerate()} - threads_before
    router.route("a first query after the init")
    _settle()
    assert [r["query"] for r in _delivered()] == ["a first query after the init"]
