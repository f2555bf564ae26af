"""Reading the router's micro-router artifact from S3, its failures as the micro-router source's errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from search_router.adapters.aws_errors import error_code
from search_router.adapters.s3io import parse_s3_uri
from search_router.router.micro_source import ArtifactNotFound, ArtifactUnavailable

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})


def artifact_reader(s3: Callable[[], Any]) -> Callable[[str], bytes]:
    """A ``read_artifact`` for :class:`~search_router.router.micro_source.MicroRouterSource`: the bytes of the
    ``s3://bucket/key`` object through the client ``s3()`` returns; :class:`ArtifactNotFound` when it (or its
    bucket) does not exist, :class:`ArtifactUnavailable` (``"<code>: <error>"``) when it cannot be read now or
    is larger than the artifact limit."""

    def read(uri: str) -> bytes:
        from search_router.shared.micro_router import MAX_ARTIFACT_BYTES  # with the artifact, not at import

        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as error:
            raise ArtifactNotFound(str(error)) from None
        try:
            response = s3().get_object(Bucket=bucket, Key=key)
            size = int(response.get("ContentLength") or 0)
            if size > MAX_ARTIFACT_BYTES:
                raise ArtifactUnavailable(f"TooLarge: the artifact has {size} bytes; at most {MAX_ARTIFACT_BYTES}")
            return bytes(response["Body"].read(MAX_ARTIFACT_BYTES + 1))
        except ClientError as error:
            code = error_code(error)
            if code in _NOT_FOUND:
                raise ArtifactNotFound(f"{code}: {uri}") from None
            raise ArtifactUnavailable(f"{code}: {error}") from None
        except BotoCoreError as error:
            raise ArtifactUnavailable(f"{error_code(error)}: {error}") from None

    return read
