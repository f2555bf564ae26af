"""How a failed model call reaches the domain: plain data, classified by the adapter that made the call.

The router (:mod:`search_router.router.service`) and the pipeline (:mod:`search_router.pipeline.labeling`, the
evaluation) decide *whether* to try again from :attr:`ModelCallError.retryable` and, for labeling's limiter,
:attr:`ModelCallError.overload`; *which* errors those are is the adapters' call
(:mod:`search_router.adapters.aws_errors`), so no domain module reads a botocore exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ModelCallError(Exception):
    """A model call failed. ``code`` is the service's error code (``ThrottlingException`` ...), a botocore error
    name, or a code of the caller's own (``Timeout``); ``detail`` says what happened (the service's message, or the
    error's text). ``retryable``: another call may succeed; ``overload``: the service said "too many requests";
    ``private``: the detail may quote the request or the answer (log it only where queries may be logged)."""

    def __init__(
        self, code: str, detail: str, *, retryable: bool = False, overload: bool = False, private: bool = True
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.overload = overload
        self.private = private


def converse_request(*, system: str, user: str, max_tokens: int, temperature: float) -> dict[str, Any]:
    """The body of a Converse request with a system prompt and one user turn, without ``modelId``: what
    ``bedrock-runtime`` Converse takes (with ``modelId``) and what a batch job of ``modelInvocationType="Converse"``
    takes as a record's ``modelInput``. An empty ``system`` is not sent (the service rejects empty text)."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": user}]}],
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
    }
    if system:
        body["system"] = [{"text": system}]
    return body


def converse_response_text(response: Mapping[str, Any]) -> str:
    """The text of a Converse response (or a Converse batch record's ``modelOutput``): ``output.message.content``
    is a *list* of blocks and its text blocks are joined (a model may put a reasoning block before the text)."""
    output = response.get("output")
    message = output.get("message") if isinstance(output, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list):
        return ""
    return "".join(
        block["text"] for block in content if isinstance(block, Mapping) and isinstance(block.get("text"), str)
    )
