"""How a failed model call reaches the domain: plain data, classified by the adapter that made the call.

The router (:mod:`search_router.router.service`) and the pipeline (:mod:`search_router.pipeline.labeling`, the
evaluation) decide *whether* to try again from :attr:`ModelCallError.retryable` and, for labeling's limiter,
:attr:`ModelCallError.overload`; *which* errors those are is the adapters' call
(:mod:`search_router.adapters.aws_errors`), so no domain module reads a botocore exception.
"""

from __future__ import annotations


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
