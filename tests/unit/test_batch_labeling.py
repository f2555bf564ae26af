"""Batch labeling's input and output (search_router.pipeline.batch_labeling), held to botocore's Converse model."""

from __future__ import annotations

import json
import random
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters

from search_router.pipeline.batch_labeling import (
    MIN_BATCH_RECORDS,
    UNLABELED_NO_OUTPUT,
    BatchTooSmall,
    UnknownRecordId,
    batch_input,
    parse_batch_output,
    record_id,
    record_position,
    shard_labels,
)
from search_router.pipeline.queries.query import Query
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import teacher_prompt

TEACHER = "us.amazon.nova-pro-v1:0"
VALID = '{"visual":0.6,"audio":0.1,"transcription":0.1,"metadata":0.2,"reasoning":"Mostly scenery."}'
CONVERSE = botocore.session.get_session().get_service_model("bedrock-runtime").operation_model("Converse")


def converse_output(text: str, input_tokens: int = 50, output_tokens: int = 20) -> dict[str, Any]:
    """A Converse response body (a Converse batch record's ``modelOutput``), checked against botocore's shape."""
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 300},
    }
    validate_parameters(body, CONVERSE.output_shape)
    return body


def output_line(record: str, **fields: Any) -> str:
    return json.dumps({"recordId": record, "modelInput": {}, **fields})


def test_every_record_is_a_converse_request_for_its_query_with_the_teacher_prompt() -> None:
    # Given
    queries = synthesize_queries(DEFAULT_CHANNELS, 120, seed=3)
    # When
    lines = batch_input(queries, channels=DEFAULT_CHANNELS, max_tokens=300, temperature=0.3).splitlines()
    # Then
    assert len(lines) == len(queries)
    records = [json.loads(line) for line in lines]
    assert len({record["recordId"] for record in records}) == len(queries)
    for query, record in zip(queries, records, strict=True):
        assert set(record) == {"recordId", "modelInput"}
        assert len(record["recordId"]) == 11 and record["recordId"].isalnum()
        # the job supplies modelId; with it, the record must be a valid Converse request
        validate_parameters({"modelId": TEACHER, **record["modelInput"]}, CONVERSE.input_shape)
        assert record["modelInput"]["system"] == [{"text": teacher_prompt(DEFAULT_CHANNELS)}]
        assert record["modelInput"]["messages"] == [{"role": "user", "content": [{"text": query.text}]}]
        assert record["modelInput"]["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.3}


def test_a_plan_below_the_batch_minimum_is_refused_with_the_numbers_and_the_way_out() -> None:
    queries = synthesize_queries(DEFAULT_CHANNELS, MIN_BATCH_RECORDS - 1, seed=3)
    with pytest.raises(BatchTooSmall) as raised:
        batch_input(queries, channels=DEFAULT_CHANNELS)
    message = str(raised.value)
    assert f"at least {MIN_BATCH_RECORDS} records" in message
    assert f"{MIN_BATCH_RECORDS - 1} queries" in message
    assert "labeling_mode: on_demand" in message
    assert batch_input(queries, channels=DEFAULT_CHANNELS, min_records=10).count("\n") == len(queries)


def test_record_ids_name_positions_and_nothing_else() -> None:
    assert [record_position(record_id(p)) for p in (0, 7, 123_456)] == [0, 7, 123_456]
    for bad in ("", "Q", "Q123", "X0000000001", "Q00000000012", "Q00000000a1", "Q０００００００００1"):
        with pytest.raises(UnknownRecordId):
            record_position(bad)
    with pytest.raises(ValueError, match="position"):
        record_id(-1)


def mixed_output() -> tuple[list[Query], list[str]]:
    """110 queries and an output in shuffled order holding: 100 valid answers, an answer that is not JSON, one
    whose weights do not sum to 1, two record errors, one record missing, an unreadable line, a record id that
    names no query and (last) a repeated record."""
    queries = synthesize_queries(DEFAULT_CHANNELS, 110, seed=5)
    lines = [output_line(record_id(p), modelOutput=converse_output(VALID)) for p in range(100)]
    lines.append(output_line(record_id(100), modelOutput=converse_output("I cannot decide.")))
    bad_sum = '{"visual":0.6,"audio":0.6,"transcription":0.1,"metadata":0.2,"reasoning":"x"}'
    lines.append(output_line(record_id(101), modelOutput=converse_output(bad_sum)))
    error = {"errorCode": 400, "errorMessage": "Malformed input request"}
    lines += [output_line(record_id(p), error=error) for p in (102, 103)]
    lines += [output_line(record_id(p), modelOutput=converse_output(VALID)) for p in range(104, 109)]
    lines.append('{"recordId": "Q0000000109", "modelOutput": {"output": ')  # cut off: query 109 has no output
    lines.append(output_line("Q0000009999", modelOutput=converse_output(VALID)))
    random.Random(1).shuffle(lines)
    lines.append(output_line(record_id(0), modelOutput=converse_output(bad_sum)))  # a repeat: the first one counts
    return queries, lines


def test_every_query_and_every_output_line_ends_counted() -> None:
    # Given
    queries, lines = mixed_output()
    # When
    result = parse_batch_output(lines, queries, channels=DEFAULT_CHANNELS)
    # Then
    stats = result.to_stats()
    labeled_positions = [*range(100), *range(104, 109)]
    assert [e.query for e in result.labeling.examples] == [queries[p].text for p in labeled_positions]
    assert stats["invalid"] == {"no_json": 1, "bad_sum": 1}
    assert stats["errors"] == {"400": 2}
    assert stats["error_messages"] == {"400": "Malformed input request"}
    assert stats["unlabeled_by_reason"] == {UNLABELED_NO_OUTPUT: 1}
    assert result.labeling.unlabeled == [queries[109]]
    assert stats["batch"]["unreadable"] == 1 and stats["batch"]["unreadable_samples"][0]["detail"].startswith(
        "not JSON"
    )
    assert stats["batch"]["unknown_records"] == 1
    assert stats["batch"]["duplicate_records"] == 1
    counted = stats["labeled"] + stats["invalid_total"] + stats["errors_total"] + stats["unlabeled"]
    assert counted == len(queries)
    # tokens of every answered record (errors carry none), the repeated record not counted twice
    assert stats["input_tokens"] == 50 * (len(labeled_positions) + 2)
    assert stats["output_tokens"] == 20 * (len(labeled_positions) + 2)
    assert {s["reason"] for s in stats["invalid_samples"]} == {"no_json", "bad_sum"}


def test_an_output_without_text_is_invalid_as_empty_not_dropped() -> None:
    queries = synthesize_queries(DEFAULT_CHANNELS, 2, seed=5)
    lines = [
        output_line(record_id(0), modelOutput={"output": {"message": {"role": "assistant", "content": []}}}),
        output_line(record_id(1)),
    ]
    result = parse_batch_output(lines, queries, channels=DEFAULT_CHANNELS)
    assert dict(result.labeling.invalid) == {"empty": 1}
    assert dict(result.labeling.errors) == {"BatchRecordError": 1}


def test_the_output_splits_back_into_the_plan_shards_with_the_label_shard_field_names() -> None:
    # Given the mixed output over two shards of 100 and 10 queries
    queries, lines = mixed_output()
    output = parse_batch_output(lines, queries, channels=DEFAULT_CHANNELS)
    # When
    first, second = shard_labels(output, [100, 10])
    # Then each shard has its own queries' outcomes, and together they add up to the whole
    assert [e.query for e in first.examples] == [q.text for q in queries[:100]]
    assert [e.query for e in second.examples] == [q.text for q in queries[104:109]]
    assert (first.stats["labeled"], first.stats["invalid"], first.stats["unlabeled"]) == (100, {}, 0)
    assert second.stats["invalid"] == {"no_json": 1, "bad_sum": 1} and second.stats["errors"] == {"400": 2}
    assert second.stats["unlabeled_by_reason"] == {UNLABELED_NO_OUTPUT: 1}
    whole = output.to_stats()
    for key in ("labeled", "invalid_total", "errors_total", "unlabeled", "input_tokens", "output_tokens", "calls"):
        assert first.stats[key] + second.stats[key] == whole[key], key
    assert first.stats["batch"] == whole["batch"] and "batch" not in second.stats
    # the fields LabelShard writes and PrepareDataset reads
    for stats in (first.stats, second.stats):
        assert {"shard", "queries", "invalid_samples", "error_messages", "throttle_stopped", "invocations"} <= set(
            stats
        )
    with pytest.raises(ValueError, match="different plan"):
        shard_labels(output, [100, 11])
