"""Records every AWS API call a Lambda handler makes, attributed to the function it ran as.

Installed around :class:`simulation.harness.PipelineHarness` (its ``on_invoke`` hook names the function for the
duration of each invocation). Calls go through botocore's ``BaseClient._make_api_call`` whatever answers them
(moto, the Bedrock fake), so what is recorded is what the code really sends. Worker threads a handler starts
(``ThreadPoolExecutor``) inherit the attribution.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient

_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("recording_function", default=None)


@dataclass(frozen=True)
class Call:
    function: str  # logical id of the Lambda function
    service: str  # botocore service name ("bedrock-runtime", "s3" ...)
    signing_name: str  # the IAM prefix source ("bedrock" for bedrock-runtime)
    operation: str  # e.g. "Converse"
    params: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)  # IAM condition context seen at call time (resource tags)


ContextOf = Callable[[str, str, dict[str, Any]], dict[str, Any]]


class CallRecorder:
    """``context_of(service, operation, params)``, when given, captures the condition context of a call *before*
    it runs (e.g. the tags of the resource it acts on, which a delete removes)."""

    def __init__(self, context_of: ContextOf | None = None) -> None:
        self.calls: list[Call] = []
        self.invoked: set[str] = set()  # functions run while recording (some make no AWS call)
        self._context_of = context_of

    @contextlib.contextmanager
    def invoking(self, function_logical_id: str) -> Iterator[None]:
        self.invoked.add(function_logical_id)
        token = _CURRENT.set(function_logical_id)
        try:
            yield
        finally:
            _CURRENT.reset(token)

    @staticmethod
    def unattributed(callback: Callable[..., Any]) -> Callable[..., Any]:
        """``callback`` run as nobody's call: for what a simulated *service* does (e.g. the Bedrock fake writing
        an evaluation job's results), which is not the function's doing."""

        def run(*args: Any, **kwargs: Any) -> Any:
            token = _CURRENT.set(None)
            try:
                return callback(*args, **kwargs)
            finally:
                _CURRENT.reset(token)

        return run

    @contextlib.contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[CallRecorder]:
        recorder = self
        original_call = BaseClient._make_api_call
        original_submit = ThreadPoolExecutor.submit

        def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            function = _CURRENT.get()
            if function is not None:
                model = client.meta.service_model
                params = copy.deepcopy(api_params)
                context = (
                    recorder._context_of(model.service_name, operation_name, params) if recorder._context_of else {}
                )
                recorder.calls.append(
                    Call(
                        function=function,
                        service=model.service_name,
                        signing_name=model.signing_name or model.endpoint_prefix,
                        operation=operation_name,
                        params=params,
                        context=context,
                    )
                )
            return original_call(client, operation_name, api_params)

        def submit(executor: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            context = contextvars.copy_context()
            return original_submit(executor, context.run, fn, *args, **kwargs)

        monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
        monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
        yield self

    def by_function(self) -> dict[str, list[Call]]:
        grouped: dict[str, list[Call]] = {}
        for call in self.calls:
            grouped.setdefault(call.function, []).append(call)
        return grouped
