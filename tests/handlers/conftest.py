"""Handler-tier fixtures shared by the pipeline-task and cleanup tests."""

from __future__ import annotations

import json

import pytest

STACK = "TestStack"
ACCOUNT_ID = "123456789012"
PIPELINE_MODELS = {
    "student_job": "amazon.nova-micro-v1:0:128k",
    "student": "us.amazon.nova-micro-v1:0",
    "baseline": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "judge": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
}


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment the stack gives pipeline functions (stack name, bucket, Bedrock role, models)."""
    monkeypatch.setenv("STACK_NAME", STACK)
    monkeypatch.setenv("DATA_BUCKET", "data-bucket")
    monkeypatch.setenv("BEDROCK_ROLE_ARN", f"arn:aws:iam::{ACCOUNT_ID}:role/bedrock")
    monkeypatch.setenv("MODELS", json.dumps(PIPELINE_MODELS))
    return monkeypatch
