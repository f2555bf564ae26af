"""Where the Report's fusion metric takes its score lists from (handlers/report.py fusion_source), against moto S3:
the user's samples when they can still be read, drawn lists and a reason when they cannot."""

from __future__ import annotations

import json

import boto3
import pytest

from infra.config import read_cdk_json_context
from search_router.contract.run import RunSettings, settings_from_input
from search_router.handlers.report import fusion_source
from search_router.shared.channels import DEFAULT_CHANNELS

BUCKET = "data-bucket"
URI = f"s3://{BUCKET}/inputs/scores.jsonl"


def settings(**overrides: object) -> RunSettings:
    return settings_from_input(read_cdk_json_context()["run_defaults"], overrides)


@pytest.fixture
def bucket(aws: None) -> object:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_the_user_s_samples_are_used_when_they_can_be_read(bucket: object) -> None:
    sample = {name: {"a": 1.0, "b": 2.0} for name in DEFAULT_CHANNELS.names}
    bucket.put_object(Bucket=BUCKET, Key="inputs/scores.jsonl", Body=json.dumps(sample).encode())  # type: ignore[attr-defined]
    source, described = fusion_source(settings(fusion_scores_s3_uri=URI), DEFAULT_CHANNELS)
    assert described == {"kind": "samples", "uri": URI, "samples": 1}
    assert source("any query") == sample


@pytest.mark.parametrize("body", [None, b'{"visual": {"a": 1}}'])
def test_samples_gone_or_changed_since_preflight_fall_back_to_drawn_lists_with_the_reason(
    bucket: object, body: bytes | None
) -> None:
    if body is not None:
        bucket.put_object(Bucket=BUCKET, Key="inputs/scores.jsonl", Body=body)  # type: ignore[attr-defined]
    source, described = fusion_source(settings(fusion_scores_s3_uri=URI), DEFAULT_CHANNELS)
    assert described["kind"] == "drawn" and described["shape"]["list_length"] == 50
    assert described["samples_unusable"].startswith(f"{URI} could no longer be used (")
    assert set(source("a query")) == set(DEFAULT_CHANNELS.names)  # drawn lists, one per channel
