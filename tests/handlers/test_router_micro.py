"""The router's cascade: the promoted micro-router answers when its confidence is at least τ, the model otherwise;
a missing or broken artifact means the model path and a metric, never a 5xx. The real handler, the artifact in
S3 (moto), Bedrock through the botocore-validating fake; the S3 adapter against botocore's Stubber."""

from __future__ import annotations

import io
import json
import math
from array import array

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from search_router.adapters.s3_artifacts import artifact_reader
from search_router.router.micro_source import ArtifactNotFound, ArtifactUnavailable
from search_router.shared.micro_router import Calibration, FeatureSettings, MicroRouter, features
from tests.handlers.router_harness import CHANNEL_NAMES, PRIMARY, RouterHarness, promotion

BUCKET = "router-artifacts"
SETTINGS = FeatureSettings(buckets=1 << 12)
KNOWN = "sunset over snowy mountains at dawn"
"""The words whose features the test micro-router knows: its confidence grows with a query's share of them."""


def micro_router(
    *, bias: tuple[float, ...] = (2.0, 0.0, 0.0, 0.0), channels: tuple[str, ...] = CHANNEL_NAMES
) -> MicroRouter:
    """A micro-router whose confidence is ``sigmoid(-4 + 8 · coverage)``: low for unknown words, high for
    :data:`KNOWN` ones; its weights are ``softmax(bias)`` (the known features carry no weight)."""
    rows = sorted(features(KNOWN, SETTINGS))
    return MicroRouter(
        channels=channels,
        settings=SETTINGS,
        rows=array("I", rows),
        weights=array("f", [0.0] * (len(rows) * len(channels))),
        bias=bias[: len(channels)],
        calibration=Calibration(coef=(-4.0, 0.0, 0.0, 8.0), tolerance=0.1),
    )


def put_artifact(key: str, data: bytes) -> str:
    s3 = boto3.client("s3", region_name="us-east-1")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def promote(router: RouterHarness, uri: str, tau: float) -> None:
    router.set_parameter(promotion(PRIMARY, "teacher", micro_router={"artifact_uri": uri, "tau": tau}))


QUERIES = (
    KNOWN,
    "sunset over snowy mountains",
    "sunset over the sea",
    "snowy street at dawn with a dog",
    "a man says hello",
    "taylor swift interview 2023",
    "mountains",
    "dawn chorus birdsong",
)


def test_the_micro_router_answers_at_or_above_tau_and_the_model_below(router: RouterHarness) -> None:
    # Given a promoted micro-router and τ = 0.5
    model = micro_router()
    promote(router, put_artifact("runs/r1/micro-router.bin", model.to_bytes()), 0.5)
    router.configure()
    # When queries of every confidence are routed (reasoning not asked for)
    for query in QUERIES:
        confidence = model.predict(query).confidence
        calls_before = router.model_calls()
        reply = router.route(query, include_reasoning=False)
        # Then the micro-router answers exactly those whose confidence is at least τ, without a model call
        if confidence >= 0.5:
            assert reply.body["source"] == "micro" and reply.body["model"] == "micro-router"
            assert router.model_calls() == calls_before
            expected = model.predict(query).weights
            assert all(math.isclose(reply.body["weights"][n], expected[n], abs_tol=1e-4) for n in CHANNEL_NAMES)
        else:
            assert reply.body["source"] == "model" and router.model_calls() == calls_before + 1
    answered = sum(model.predict(q).confidence >= 0.5 for q in QUERIES)
    assert 0 < answered < len(QUERIES)  # the test covers both sides of τ
    assert router.metric("MicroRouterAnswered") == answered
    assert router.metric("MicroRouterUnavailable") == 0


@pytest.mark.parametrize("tau", [0.0, 0.2, 0.6, 0.95, 1.0])
def test_never_answers_from_the_micro_router_below_tau(router: RouterHarness, tau: float) -> None:
    model = micro_router()
    promote(router, put_artifact(f"runs/r1/micro-{tau}.bin", model.to_bytes()), tau)
    router.configure()
    for index, query in enumerate(QUERIES):
        reply = router.route(f"{query} {index}" if index % 2 else query, include_reasoning=False)
        confidence = model.predict(f"{query} {index}" if index % 2 else query).confidence
        assert (reply.body["source"] == "micro") == (confidence >= tau), (query, confidence, tau)


def test_reasoning_asked_for_goes_to_the_model(router: RouterHarness) -> None:
    promote(router, put_artifact("runs/r1/micro-router.bin", micro_router().to_bytes()), 0.0)
    router.configure()
    reply = router.route(KNOWN, include_reasoning=True)
    assert reply.body["source"] == "model" and reply.body["reasoning"]


@pytest.mark.parametrize(
    ("artifact", "problem"),
    [
        (None, "artifact_not_found"),
        (b"not an artifact", "artifact_invalid"),
        (micro_router().to_bytes()[:-8], "artifact_invalid"),
        (micro_router(channels=("visual", "audio", "speech")).to_bytes(), "channel_mismatch"),
    ],
)
def test_a_missing_or_broken_artifact_falls_back_to_the_model_with_a_metric(
    router: RouterHarness, artifact: bytes | None, problem: str
) -> None:
    # Given a promotion naming an artifact that is missing or unusable
    uri = put_artifact("runs/r1/micro-router.bin", artifact) if artifact is not None else f"s3://{BUCKET}/missing.bin"
    if artifact is None:
        put_artifact("runs/r1/other.bin", b"")  # the bucket exists; the key does not
    promote(router, uri, 0.0)
    router.configure()
    # When queries are routed
    replies = [router.route(f"{KNOWN} {i}", include_reasoning=False) for i in range(3)]
    # Then the model answers every one (200, valid weights), the problem is counted once and logged
    assert [r.body["source"] for r in replies] == ["model"] * 3
    assert router.metric("MicroRouterUnavailable") == 1
    logged = [line for line in router.logs() if line.get("message", "").startswith("The micro-router is unusable")]
    assert [line["problem"] for line in logged] == [problem]
    # and the load is tried again after the retry period (the model TTL), counted again
    router.clock.advance(31)
    router.route("after the retry period", include_reasoning=False)
    assert router.metric("MicroRouterUnavailable") == 2


def test_a_malformed_micro_router_block_keeps_the_promoted_model(router: RouterHarness) -> None:
    router.set_parameter(
        promotion(PRIMARY, "teacher", micro_router={"artifact_uri": "https://example.com/a.bin", "tau": 2})
    )
    router.configure()
    reply = router.route(KNOWN, include_reasoning=False)
    assert reply.body["source"] == "model" and reply.body["model"] == PRIMARY
    assert router.metric("MicroRouterUnavailable") == 1
    assert router.metric("ModelParameterInvalid", problem="invalid_value") == 0


def test_a_new_artifact_is_swapped_in_within_the_model_ttl(router: RouterHarness) -> None:
    # Given the router answers from artifact A (visual first)
    first = micro_router(bias=(2.0, 0.0, 0.0, 0.0))
    promote(router, put_artifact("runs/r1/micro-router.bin", first.to_bytes()), 0.5)
    router.configure()
    assert router.route(KNOWN, include_reasoning=False).body["weights"]["visual"] > 0.5
    # When a later run promotes artifact B (audio first)
    second = micro_router(bias=(0.0, 2.0, 0.0, 0.0))
    promote(router, put_artifact("runs/r2/micro-router.bin", second.to_bytes()), 0.5)
    # Then within the TTL A still answers, and after it B does
    router.clock.advance(29)
    assert router.route(f"{KNOWN} again", include_reasoning=False).body["weights"]["visual"] > 0.5
    router.clock.advance(2)
    swapped = router.route(f"{KNOWN} later", include_reasoning=False)
    assert swapped.body["source"] == "micro" and swapped.body["weights"]["audio"] > 0.5


# ---------------------------------------------------------------------------------------------------------
# The S3 adapter, against botocore's service model
# ---------------------------------------------------------------------------------------------------------
def _stubbed() -> tuple[object, Stubber]:
    client = boto3.client("s3", region_name="us-east-1")
    return client, Stubber(client)


def test_the_reader_gets_the_object_the_uri_names() -> None:
    client, stubber = _stubbed()
    data = micro_router().to_bytes()
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)},
        {"Bucket": BUCKET, "Key": "runs/r1/micro-router.bin"},
    )
    with stubber:
        assert artifact_reader(lambda: client)(f"s3://{BUCKET}/runs/r1/micro-router.bin") == data
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "error"),
    [("NoSuchKey", ArtifactNotFound), ("NoSuchBucket", ArtifactNotFound), ("AccessDenied", ArtifactUnavailable)],
)
def test_the_reader_names_what_went_wrong(code: str, error: type[Exception]) -> None:
    client, stubber = _stubbed()
    stubber.add_client_error("get_object", service_error_code=code, expected_params={"Bucket": BUCKET, "Key": "k"})
    with stubber, pytest.raises(error, match=code):
        artifact_reader(lambda: client)(f"s3://{BUCKET}/k")
    with pytest.raises(ArtifactNotFound, match="not an S3 object URI"):
        artifact_reader(lambda: client)("https://example.com/k")


def test_the_reader_refuses_an_oversized_object() -> None:
    client, stubber = _stubbed()
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(b"x"), 1), "ContentLength": 9_000_000},
        {"Bucket": BUCKET, "Key": "k"},
    )
    with stubber, pytest.raises(ArtifactUnavailable, match="TooLarge"):
        artifact_reader(lambda: client)(f"s3://{BUCKET}/k")


def test_the_promotion_document_carries_the_micro_router() -> None:
    from search_router.contract.promotion import PromotionDocument

    document = PromotionDocument.model_validate(
        json.loads(promotion(PRIMARY, "teacher", micro_router={"artifact_uri": f"s3://{BUCKET}/a.bin", "tau": 0.7}))
    )
    assert document.micro_router is not None and document.micro_router.tau == 0.7
    assert json.loads(document.to_parameter())["micro_router"] == {"artifact_uri": f"s3://{BUCKET}/a.bin", "tau": 0.7}
