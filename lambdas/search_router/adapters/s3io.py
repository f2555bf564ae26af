"""Small, typed S3 helpers over the shared clients (JSON, JSONL, text), and ``s3://`` URI parsing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlparse

from search_router.adapters.clients import CLIENTS


def s3() -> Any:
    return CLIENTS.get("s3")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key). Raises ValueError naming the problem."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"{uri!r} is not an S3 object URI of the form s3://bucket/key")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def put_text(bucket: str, key: str, text: str, content_type: str = "text/plain; charset=utf-8") -> str:
    s3().put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)
    return s3_uri(bucket, key)


def put_bytes(bucket: str, key: str, body: bytes, content_type: str) -> str:
    s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return s3_uri(bucket, key)


def put_json(bucket: str, key: str, value: Any) -> str:
    return put_text(bucket, key, json.dumps(value, indent=2, ensure_ascii=False), "application/json")


def put_jsonl(bucket: str, key: str, rows: Iterable[Any]) -> str:
    body = "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
    return put_text(bucket, key, body, "application/x-ndjson")


def get_bytes(bucket: str, key: str) -> bytes:
    return s3().get_object(Bucket=bucket, Key=key)["Body"].read()


def get_text(bucket: str, key: str) -> str:
    return get_bytes(bucket, key).decode("utf-8")


def get_json(bucket: str, key: str) -> Any:
    return json.loads(get_text(bucket, key))


def list_keys(bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def get_json_object(bucket: str, key: str) -> dict[str, Any] | None:
    """The JSON object at ``key``; None when there is none (no object, or not a JSON object). Needs ``s3:GetObject``
    and ``s3:ListBucket`` on the key (see :func:`head`)."""
    if head(bucket, key) is None:
        return None
    value = get_json(bucket, key)
    return value if isinstance(value, dict) else None


def head(bucket: str, key: str) -> dict[str, Any] | None:
    """Object metadata, or None when the object does not exist.

    Without ``s3:ListBucket`` S3 answers a missing key with 403 instead of 404; callers that hold ListBucket
    (as Preflight does for ``inputs/``) get a reliable None, others get the 403 as an error.
    """
    try:
        return s3().head_object(Bucket=bucket, Key=key)
    except s3().exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
