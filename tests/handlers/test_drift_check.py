"""DriftCheck with moto's S3 and SSM: the window's captured routes against the training file of the run the promotion
parameter names, the summary at drift/<date>.json and drift/latest.json, the figures as EMF metrics, and the
results without traffic or without a promotion."""

from __future__ import annotations

import gzip
import json
from datetime import date
from typing import Any

import boto3
import pytest

from search_router.contract.layout import DRIFT_LATEST, RunLayout, captured_raw_prefix, drift_summary_key
from search_router.contract.promotion import MicroRouterPromotion, PromotionDocument
from search_router.handlers.drift_check import TrainingDataUnreadable, handler, latest_drift_summary
from search_router.pipeline.dataset import LabeledExample, training_jsonl
from search_router.pipeline.drift import drift_section
from search_router.router.capture import capture_record
from search_router.shared.channels import DEFAULT_CHANNELS
from tests.handlers.test_compact_captured import Context  # the same Lambda context

BUCKET = "data-bucket"
PARAMETER = "/search-router/model"
RUN = "run-2026-11-01"
END = date(2026, 11, 30)
VISUAL = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
AUDIO = {"visual": 0.1, "audio": 0.7, "transcription": 0.1, "metadata": 0.1}


@pytest.fixture
def clients(aws: None, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    del aws
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    monkeypatch.setenv("CHANNELS", DEFAULT_CHANNELS.to_json())
    monkeypatch.setenv("MODEL_PARAMETER", PARAMETER)
    monkeypatch.setenv("WINDOW_DAYS", "2")
    monkeypatch.setenv("MIN_RECORDS", "4")
    monkeypatch.setenv("MAX_RECORDS", "1000")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return s3, boto3.client("ssm", region_name="us-east-1")


def _promote(ssm: Any, *, micro: bool = False) -> None:
    document = PromotionDocument(
        model_id="arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc",
        prompt_kind="student",
        channels=list(DEFAULT_CHANNELS.names),
        run_id=RUN,
        micro_router=MicroRouterPromotion(artifact_uri=f"s3://{BUCKET}/promoted/micro-router/{RUN}/model.bin", tau=0.8)
        if micro
        else None,
    )
    ssm.put_parameter(Name=PARAMETER, Value=document.to_parameter(), Type="String", Overwrite=True)


def _train(s3: Any) -> None:
    examples = [
        LabeledExample(query=q, category="", source="user", weights=w, reasoning="because")
        for q, w in (("sunset over mountains", VISUAL), ("jazz piano solo", AUDIO))
    ]
    s3.put_object(Bucket=BUCKET, Key=RunLayout(RUN).train, Body=training_jsonl(examples, DEFAULT_CHANNELS).encode())


def _capture(s3: Any, day: date, routes: list[tuple[str, str]]) -> None:
    body = b"".join(
        capture_record(query=q, weights=VISUAL, source=source, model="m", latency_ms=1.0, timestamp=0)
        for q, source in routes
    )
    s3.put_object(Bucket=BUCKET, Key=f"{captured_raw_prefix(day)}stream-1", Body=gzip.compress(body))


def _metrics(stdout: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_the_window_is_checked_against_the_promoted_runs_training_file(
    clients: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two days of traffic in the window, one day before it, a promoted run with a micro-router
    s3, ssm = clients
    _promote(ssm, micro=True)
    _train(s3)
    _capture(s3, date(2026, 11, 29), [("sunset", "micro"), ("drone footage", "model")])
    _capture(s3, END, [("jazz", "fallback_model"), ("piano", "default")])
    _capture(s3, date(2026, 11, 28), [("outside the window", "model")])
    # When
    result = handler({"date": END.isoformat()}, Context())
    # Then
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=DRIFT_LATEST)["Body"].read())
    assert summary == json.loads(s3.get_object(Bucket=BUCKET, Key=drift_summary_key(END))["Body"].read())
    assert result["status"] == summary["status"] == "ok"
    assert (summary["run_id"], summary["window_start"], summary["records"]) == (RUN, "2026-11-29", 4)
    assert summary["unseen_vocabulary"]["count"] == 1  # "drone footage"
    assert summary["escalated"]["count"] == 1
    assert summary["fallback"]["count"] == summary["default"]["count"] == 1
    emitted = _metrics(capsys.readouterr().out)
    assert emitted["UnseenVocabularyShare"] == 0.25
    assert emitted["EscalatedShare"] == 0.25
    assert emitted["DominantChannelShift"] == pytest.approx(0.5)  # all visual served, half visual in training
    assert emitted["DriftRecords"] == 4
    assert latest_drift_summary(BUCKET) == summary
    assert "| escalated by the cascade | 25.0% (1 of 4) |" in drift_section(latest_drift_summary(BUCKET))


def test_too_little_traffic_publishes_no_figure(clients: tuple[Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    s3, ssm = clients
    _promote(ssm)
    _train(s3)
    _capture(s3, END, [("sunset", "model")])
    result = handler({"date": END.isoformat()}, Context())
    assert (result["status"], result["records"], result["figures"]) == ("insufficient_traffic", 1, {})
    emitted = _metrics(capsys.readouterr().out)
    assert "DominantChannelShift" not in emitted
    assert emitted["DriftRecords"] == 1


def test_before_any_promotion_the_result_says_there_is_no_training_data(clients: tuple[Any, Any]) -> None:
    s3, _ = clients
    _capture(s3, END, [("sunset", "model")] * 5)
    result = handler({"date": END.isoformat()}, Context())
    assert result["status"] == "no_training_data"
    assert latest_drift_summary(BUCKET) is not None


def test_a_promoted_run_whose_training_file_is_gone_is_a_named_error(clients: tuple[Any, Any]) -> None:
    s3, ssm = clients
    _promote(ssm)
    _capture(s3, END, [("sunset", "model")] * 5)
    with pytest.raises(TrainingDataUnreadable, match=RUN):
        handler({"date": END.isoformat()}, Context())
