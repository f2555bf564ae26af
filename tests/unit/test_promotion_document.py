"""The promotion document (search_router.contract.promotion): what its writers produce, its readers accept."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from search_router.contract.promotion import SUMMARY_FIELDS, PromotionDocument, model_id_of
from search_router.router.model_source import PromotionError, PromotionProblem, parse_promotion
from search_router.router.settings import AccountScope
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import PromptKind

SCOPE = AccountScope(partition="aws", region="us-east-1", account_id="123456789012")
DEPLOYMENT = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123"


def promoted() -> PromotionDocument:
    return PromotionDocument(
        model_id=DEPLOYMENT,
        prompt_kind=PromptKind.STUDENT,
        channels=list(DEFAULT_CHANNELS.names),
        run_id="run-1",
        promoted_at="2026-12-01T12:00:00+00:00",
        metrics={"mae_overall": 0.08, "judge_score": None},
        report_uri="s3://bucket/runs/run-1/report/report.md",
    )


def test_what_promote_writes_the_router_reads_back() -> None:
    promotion = parse_promotion(promoted().to_parameter(), DEFAULT_CHANNELS, SCOPE)
    assert (promotion.model.model_id, promotion.model.prompt_kind) == (DEPLOYMENT, PromptKind.STUDENT)
    assert (promotion.run_id, promotion.promoted_at) == ("run-1", "2026-12-01T12:00:00+00:00")


def test_the_initial_document_is_the_default_model_with_nothing_promoted() -> None:
    initial = PromotionDocument(
        model_id="us.amazon.nova-micro-v1:0", prompt_kind=PromptKind.TEACHER, channels=list(DEFAULT_CHANNELS.names)
    )
    value = json.loads(initial.to_parameter())
    assert value == {
        "model_id": "us.amazon.nova-micro-v1:0",
        "prompt_kind": "teacher",
        "channels": ["visual", "audio", "transcription", "metadata"],
        "run_id": None,
        "promoted_at": None,
        "metrics": {},
        "report_uri": None,
    }
    promotion = parse_promotion(initial.to_parameter(), DEFAULT_CHANNELS, SCOPE)
    assert promotion.model.model_id == "us.amazon.nova-micro-v1:0" and promotion.run_id is None


def test_a_document_for_other_channels_is_refused_by_the_router() -> None:
    other = promoted().model_copy(update={"channels": ["visual", "audio"]})
    with pytest.raises(PromotionError) as raised:
        parse_promotion(other.to_parameter(), DEFAULT_CHANNELS, SCOPE)
    assert raised.value.problem is PromotionProblem.CHANNEL_MISMATCH


def test_the_document_refuses_an_unknown_field_and_an_unknown_prompt_kind() -> None:
    with pytest.raises(ValidationError, match="modelid"):
        PromotionDocument.model_validate({**promoted().model_dump(), "modelid": "x"})
    with pytest.raises(ValidationError, match="prompt_kind"):
        PromotionDocument.model_validate({**promoted().model_dump(), "prompt_kind": "tutor"})


def test_readers_take_the_model_id_and_the_summary_fields_from_the_document() -> None:
    assert model_id_of(promoted().to_parameter()) == DEPLOYMENT
    assert model_id_of("not json") is None
    assert model_id_of('["a list"]') is None
    assert set(SUMMARY_FIELDS) <= set(PromotionDocument.model_fields)
