"""Classifying AWS errors: the one set of transient codes and the message of a ``ClientError``.

Free of Powertools (the CLI imports it too): importing Powertools' ``Metrics`` fixes its namespace from the
environment of that moment.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from search_router.contract.errors import TransientError
from search_router.pipeline.labeling import error_code

__all__ = ["TRANSIENT_CODES", "error_code", "error_message", "reraise_transient"]

TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalServerException", "TooManyRequestsException"}
)


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", str(exc)))


def reraise_transient(exc: ClientError) -> None:
    """Turn throttling and 5xx answers into :class:`TransientError`, which the state machine retries."""
    if error_code(exc) in TRANSIENT_CODES:
        raise TransientError(f"{error_code(exc)}: {error_message(exc)}") from exc
