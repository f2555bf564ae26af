"""With ``capture_queries`` on, every call the real DriftCheck handler makes (moto S3 and SSM, the environment the
template gives it) is allowed by the synthesized IAM, checked against the Service Authorization Reference
(:mod:`tests.policy`); a grant on the wrong key (the training file) is shown to be caught."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import date
from typing import Any

import boto3
import pytest

from search_router.contract.layout import RunLayout, captured_raw_prefix
from search_router.contract.promotion import PromotionDocument
from search_router.handlers.drift_check import handler as drift_handler
from search_router.pipeline.dataset import LabeledExample, training_jsonl
from search_router.router.capture import capture_record
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.harness import REGION, TemplateResolver
from simulation.synth import Synthesized
from tests.handlers.test_drift_check import Context
from tests.policy.checks import call_findings
from tests.policy.recorder import CallRecorder
from tests.policy.template import function_roles

WEIGHTS = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}


@pytest.fixture(scope="module")
def captured(loop_stack: Synthesized) -> Synthesized:
    return loop_stack  # capture_queries on (tests.conftest.LOOP_SETTINGS)


def _drift_id(synth: Synthesized) -> str:
    assert synth.stack.drift is not None
    return str(synth.stack.get_logical_id(synth.stack.drift.function.node.default_child))


def _record_drift_calls(synth: Synthesized, monkeypatch: pytest.MonkeyPatch) -> tuple[TemplateResolver, Any]:
    resolver = TemplateResolver.for_template(synth.template)
    function_id = _drift_id(synth)
    variables = synth.template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
    for name, value in variables.items():
        monkeypatch.setenv(name, str(resolver.resolve(value)))
    bucket, parameter = resolver.resolve(variables["DATA_BUCKET"]), resolver.resolve(variables["MODEL_PARAMETER"])
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    run = "run-1"
    example = LabeledExample(query="sunset", category="", source="user", weights=WEIGHTS, reasoning="r")
    s3.put_object(Bucket=bucket, Key=RunLayout(run).train, Body=training_jsonl([example], DEFAULT_CHANNELS).encode())
    document = PromotionDocument(model_id="m", prompt_kind="student", channels=list(DEFAULT_CHANNELS.names), run_id=run)
    boto3.client("ssm", region_name=REGION).put_parameter(Name=parameter, Value=document.to_parameter(), Type="String")
    day = date(2026, 11, 30)
    record = capture_record(query="sunset", weights=WEIGHTS, source="model", model="m", latency_ms=1.0, timestamp=0)
    s3.put_object(Bucket=bucket, Key=f"{captured_raw_prefix(day)}a.gz", Body=gzip.compress(record))
    recorder = CallRecorder()
    with recorder.installed(monkeypatch), recorder.invoking(function_id):
        assert drift_handler({"date": day.isoformat()}, Context())["records"] == 1
    operations = {(c.service, c.operation) for c in recorder.calls}
    assert {("s3", "ListObjectsV2"), ("s3", "GetObject"), ("s3", "PutObject"), ("ssm", "GetParameter")} <= operations
    return resolver, recorder


def test_every_drift_check_call_is_allowed_by_the_synthesized_iam(
    aws: None, captured: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    del aws
    resolver, recorder = _record_drift_calls(captured, monkeypatch)
    assert call_findings(captured.template, resolver, recorder.calls) == []


def test_a_grant_on_the_wrong_training_key_is_caught(
    aws: None, captured: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    del aws
    resolver, recorder = _record_drift_calls(captured, monkeypatch)
    broken = copy.deepcopy(captured.template)
    role = function_roles(broken)[_drift_id(captured)]
    changed = 0
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if json.dumps(statement).count("dataset/train.jsonl"):
                    statement["Resource"] = json.loads(
                        json.dumps(statement["Resource"]).replace("dataset/train.jsonl", "dataset/heldout.jsonl")
                    )
                    changed += 1
    assert changed
    findings = call_findings(broken, resolver, recorder.calls)
    assert findings and all("s3:GetObject" in f for f in findings), json.dumps(findings)
