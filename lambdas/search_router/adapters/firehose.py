"""The router's capture batches to Amazon Data Firehose (``capture_queries``): one ``PutRecordBatch`` per batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from botocore.config import Config

CAPTURE_CLIENT_CONFIG: Final = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"total_max_attempts": 2, "mode": "standard"},
    tcp_keepalive=True,
    max_pool_connections=1,
)
"""Off the request's path, but short: a call that hangs holds back the batches behind it (and one frozen by
Lambda between invocations ends soon after the thaw); one retry for a throttled or dropped call."""


def batch_sender(firehose: Callable[[], Any], stream: str) -> Callable[[Sequence[bytes]], list[int]]:
    """A ``send`` for :class:`~search_router.router.capture.QueryCapture`: the records in one ``PutRecordBatch``
    to ``stream`` through the client ``firehose()`` returns; the indices of the records Firehose did not take
    (those whose ``RequestResponses`` entry has an ``ErrorCode``; every record when ``FailedPutCount`` says some
    failed but the entries do not say which). A failed call raises (botocore's errors): the capture counts the
    whole batch as failed."""

    def send(records: Sequence[bytes]) -> list[int]:
        response = firehose().put_record_batch(
            DeliveryStreamName=stream, Records=[{"Data": record} for record in records]
        )
        failed_count = int(response.get("FailedPutCount", 0))
        if not failed_count:
            return []
        answers = response.get("RequestResponses", [])
        failed = [index for index, answer in enumerate(answers) if answer.get("ErrorCode")]
        return failed if len(failed) == failed_count else list(range(len(records)))

    return send
