"""The promotion document's ``micro_router`` block: the writers' model (``contract/promotion.MicroRouterPromotion``,
pydantic) and the router's reader (``contract/promotion_rules.read_micro_router``, plain Python) give the same
verdict and the same values on thousands of generated blocks, as JSON decodes them (the router reads the
parameter's text) and as written, and the router's ``parse_promotion`` takes the block as the reader does."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from pydantic import ValidationError

from search_router.contract.promotion import MicroRouterPromotion, PromotionDocument
from search_router.contract.promotion_rules import MicroRouterBlockError, read_micro_router
from search_router.router.model_source import parse_promotion
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import PromptKind

URIS = (
    "s3://bucket/runs/r1/micro-router.bin",
    "s3://a.b-c/k",
    "s3://abc/",
    "s3://ab/k",
    "s3://-bucket/k",
    "s3://bucket-/k",
    "s3://Bucket/k",
    "S3://bucket/k",
    "s3://bucket/k\n",
    "s3://bucket/\nk",
    "s3://bucket/k\nx",
    "s3://bucket/ключ",
    "s3://bucket/k\ud800",
    "https://example.com/a.bin",
    "s3://" + "b" * 63 + "/k",
    "s3://" + "b" * 64 + "/k",
    " s3://bucket/k",
    "",
)
TAUS: tuple[Any, ...] = (
    0, 1, 0.0, 1.0, -0.0, 0.5, 0.7, 1e-300, 5e-324, -1e-12, 1.0000000001, 2, -1, 10**400, 2**53 + 1,
    math.nan, math.inf, -math.inf, True, False, "0.5", "1", None, [], {}, [0.5],
)  # fmt: skip
KEYS = ("artifact_uri", "tau", "extra", "Tau", "")


def pydantic_verdict(block: Any) -> tuple[str, float] | None:
    try:
        promotion = MicroRouterPromotion.model_validate(block)
    except ValidationError:
        return None
    return promotion.artifact_uri, promotion.tau


def plain_verdict(block: Any) -> tuple[str, float] | None:
    try:
        return read_micro_router(block)
    except MicroRouterBlockError:
        return None


def same(a: tuple[str, float] | None, b: tuple[str, float] | None) -> bool:
    """Equal verdicts; equal values, the sign of a zero included."""
    if a is None or b is None:
        return a is b
    return a[0] == b[0] and a[1] == b[1] and math.copysign(1, a[1]) == math.copysign(1, b[1])


def random_block(rng: random.Random) -> Any:
    if rng.random() < 0.04:
        return rng.choice([None, [], "s3://bucket/k", 0.5, True])
    block: dict[str, Any] = {}
    for key in rng.sample(KEYS, rng.randint(0, len(KEYS))):
        if key in ("artifact_uri", "extra", "") and rng.random() < 0.8:
            block[key] = rng.choice(URIS)
        elif key in ("tau", "Tau") and rng.random() < 0.5:
            block[key] = rng.uniform(-0.2, 1.2)
        else:
            block[key] = rng.choice([*TAUS, *URIS[:3]])
    if rng.random() < 0.5:  # the usual shape: both fields, often valid ones, and nothing else
        block = {"artifact_uri": rng.choice(URIS[:2] * 3 + URIS), "tau": rng.choice([rng.random(), *TAUS])}
    return block


def as_json(block: Any) -> Any:
    """The block as the router sees it: written by json.dumps (NaN and Infinity as JSON's extensions), read back."""
    try:
        return json.loads(json.dumps(block))
    except (ValueError, OverflowError):
        return block


def test_the_reader_and_the_model_agree_on_generated_blocks() -> None:
    rng = random.Random(12)
    blocks = [random_block(rng) for _ in range(6000)]
    blocks += [{"artifact_uri": uri, "tau": tau} for uri in URIS for tau in TAUS]
    differences = []
    for block in blocks:
        for form in (block, as_json(block)):
            if not same(plain_verdict(form), pydantic_verdict(form)):
                differences.append((form, plain_verdict(form), pydantic_verdict(form)))
    assert differences == []
    accepted = sum(plain_verdict(b) is not None for b in blocks)
    assert 300 < accepted < len(blocks) - 300  # both verdicts are well represented


def test_the_router_reads_the_block_of_a_written_document_as_the_reader_does() -> None:
    rng = random.Random(7)
    base = PromotionDocument(
        model_id="us.amazon.nova-micro-v1:0", prompt_kind=PromptKind.TEACHER, channels=list(DEFAULT_CHANNELS.names)
    )
    for _ in range(500):
        block = random_block(rng)
        value = json.loads(base.to_parameter())
        value["micro_router"] = block
        try:
            text = json.dumps(value)
        except (ValueError, OverflowError):
            continue
        promotion = parse_promotion(text, DEFAULT_CHANNELS)
        expected = plain_verdict(json.loads(text)["micro_router"])
        if block is None:
            assert promotion.micro is None and promotion.micro_problem is None
        elif expected is None:
            assert promotion.micro is None and promotion.micro_problem
            assert promotion.model.model_id == "us.amazon.nova-micro-v1:0"  # the model is still used
        else:
            assert promotion.micro is not None and (promotion.micro.artifact_uri, promotion.micro.tau) == expected


def test_a_document_written_with_a_micro_router_is_read_back_by_the_router() -> None:
    block = MicroRouterPromotion(artifact_uri="s3://bucket/runs/r1/micro-router.bin", tau=0.62)
    document = PromotionDocument(
        model_id="us.amazon.nova-micro-v1:0",
        prompt_kind=PromptKind.TEACHER,
        channels=list(DEFAULT_CHANNELS.names),
        micro_router=block,
    )
    promotion = parse_promotion(document.to_parameter(), DEFAULT_CHANNELS)
    assert promotion.micro is not None
    assert (promotion.micro.artifact_uri, promotion.micro.tau) == (block.artifact_uri, block.tau)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ({"artifact_uri": "https://example.com/a.bin", "tau": 0.5}, "micro_router.artifact_uri: must be an s3://"),
        ({"artifact_uri": "s3://bucket/k", "tau": 2}, "micro_router.tau: must be in 0..1, got 2.0"),
        ({"artifact_uri": "s3://bucket/k", "tau": "0.5"}, "micro_router.tau: must be a number"),
        ({"artifact_uri": "s3://bucket/k"}, "micro_router.tau: is required"),
        ({"artifact_uri": "s3://bucket/k", "tau": 0.5, "ttl": 3}, "micro_router.ttl: is not a known field"),
        (["s3://bucket/k", 0.5], "micro_router: must be an object"),
    ],
)
def test_a_malformed_block_is_named_field_by_field(block: Any, problem: str) -> None:
    with pytest.raises(MicroRouterBlockError) as raised:
        read_micro_router(block)
    assert problem in str(raised.value)


def test_every_problem_of_a_block_is_reported() -> None:
    with pytest.raises(MicroRouterBlockError) as raised:
        read_micro_router({"artifact_uri": 3, "tau": None, "x": 1})
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "micro_router.artifact_uri",
        "micro_router.tau",
        "micro_router.x",
    ]
