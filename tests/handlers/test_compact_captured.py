"""CompactCaptured with moto's S3: a day's gzip JSON-line objects into ``inputs/captured/<date>.jsonl``, deduplicated
with counts, malformed lines counted by reason, the same file on a re-run, and a file the pipeline's user-query
reader accepts."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from search_router.contract.layout import captured_queries, captured_raw_prefix
from search_router.handlers.compact_captured import handler
from search_router.pipeline.queries.user_files import parse_user_queries
from search_router.shared.channels import DEFAULT_CHANNELS

BUCKET = "data-bucket"
DAY = date(2026, 11, 30)
WEIGHTS = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}


class Context:
    function_name = "compact_captured"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:compact_captured"
    aws_request_id = "req"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 600_000


@pytest.fixture
def s3(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    del aws
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    monkeypatch.setenv("CHANNELS", DEFAULT_CHANNELS.to_json())
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def _record(query: str) -> str:
    return json.dumps({"query": query, "weights": WEIGHTS, "source": "model", "model": "m", "latency_ms": 1.0})


def _put(s3: Any, day: date, name: str, lines: list[str], *, gzipped: bool = True) -> None:
    body = "".join(f"{line}\n" for line in lines).encode("utf-8")
    s3.put_object(Bucket=BUCKET, Key=f"{captured_raw_prefix(day)}{name}", Body=gzip.compress(body) if gzipped else body)


def _output(s3: Any, day: date) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=captured_queries(day))["Body"].read().decode("utf-8")
    return [json.loads(line) for line in body.splitlines()]


def test_a_day_is_deduplicated_by_normalized_query_with_counts_most_frequent_first(s3: Any) -> None:
    # Given two Firehose objects of the day (and one of the next day, which is not read)
    _put(s3, DAY, "stream-1-2026-11-30-08-00-00-a.gz", [_record("Sunset over mountains"), _record("jazz saxophone")])
    _put(
        s3, DAY, "stream-1-2026-11-30-09-00-00-b.gz", [_record("sunset over mountains?"), _record("  Jazz  saxophone ")]
    )
    _put(
        s3, DAY, "stream-1-2026-11-30-10-00-00-c.gz", [_record("SUNSET OVER MOUNTAINS"), _record("rain on a tin roof")]
    )
    _put(s3, DAY + timedelta(days=1), "stream-1-2026-12-01-00-10-00-d.gz", [_record("tomorrow's query")])
    # When the day is compacted
    result = handler({"date": DAY.isoformat()}, Context())
    # Then each query appears once with its count, the first text seen kept, the most frequent first
    assert _output(s3, DAY) == [
        {"query": "Sunset over mountains", "count": 3},
        {"query": "jazz saxophone", "count": 2},
        {"query": "rain on a tin roof", "count": 1},
    ]
    assert result["output_uri"] == f"s3://{BUCKET}/{captured_queries(DAY)}"
    assert (result["objects"], result["lines"], result["records"], result["queries"]) == (3, 6, 6, 3)
    assert result["malformed"] == {}


def test_malformed_lines_and_objects_are_counted_by_reason_with_where_they_were(s3: Any) -> None:
    _put(
        s3,
        DAY,
        "a.gz",
        [_record("good query"), "{not json", "[1, 2]", json.dumps({"weights": WEIGHTS}), _record(" ?! "), ""],
    )
    _put(s3, DAY, "b.gz", [_record("plain text object")], gzipped=False)
    result = handler({"date": DAY.isoformat()}, Context())
    assert result["malformed"] == {
        "empty_query": 1,
        "missing_query": 1,
        "not_an_object": 1,
        "not_gzip": 1,
        "not_json": 1,
    }
    assert result["records"] == 1 and result["lines"] == 5  # the blank line is no record and no error
    assert f"{captured_raw_prefix(DAY)}a.gz line 2: not_json" in result["malformed_samples"]
    assert f"{captured_raw_prefix(DAY)}b.gz: not_gzip" in result["malformed_samples"]
    assert _output(s3, DAY) == [{"query": "good query", "count": 1}]


def test_a_re_run_writes_the_same_file(s3: Any) -> None:
    _put(s3, DAY, "a.gz", [_record("q one"), _record("q two"), _record("Q One")])
    first = handler({"date": DAY.isoformat()}, Context())
    before = s3.get_object(Bucket=BUCKET, Key=captured_queries(DAY))["Body"].read()
    second = handler({"date": DAY.isoformat()}, Context())
    after = s3.get_object(Bucket=BUCKET, Key=captured_queries(DAY))["Body"].read()
    assert before == after and first == second


def test_the_schedules_empty_input_compacts_yesterday_and_an_empty_day_writes_nothing(s3: Any) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    result = handler({}, Context())
    assert result["date"] == yesterday.isoformat()
    assert result["output_uri"] is None and result["records"] == 0
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="inputs/").get("KeyCount", 0) == 0


def test_the_compacted_file_is_a_user_query_file_the_pipeline_reads_count_included(s3: Any) -> None:
    _put(s3, DAY, "a.gz", [_record("aerial shot of a city"), _record("Aerial shot of a city."), _record("thunder")])
    handler({"date": DAY.isoformat()}, Context())
    body = s3.get_object(Bucket=BUCKET, Key=captured_queries(DAY))["Body"].read()
    queries = parse_user_queries(body, key=captured_queries(DAY))
    assert [q.text for q in queries.queries] == ["aerial shot of a city", "thunder"]
    assert (queries.invalid, queries.duplicates, queries.total_lines) == (0, 0, 2)


def test_a_bad_date_is_a_named_error(s3: Any) -> None:
    del s3
    with pytest.raises(ValueError, match="date"):
        handler({"date": "yesterday"}, Context())
