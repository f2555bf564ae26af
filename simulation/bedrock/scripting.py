"""Scripting the fake: errors on the next calls, random error rates, stream errors, failing jobs, old jobs."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from simulation.bedrock.records import ErrorRate, ScriptedError
from simulation.bedrock.state import FakeState
from simulation.bedrock.values import RUNTIME_OPERATIONS, FakeError, FakeServiceError


class Scripting(FakeState):
    """What a test scripts: errors, failures and ages (the scripting knobs themselves are plain attributes)."""

    def script_errors(
        self,
        operation: str,
        code: str,
        *,
        times: int | None = 1,
        model_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``operation`` fail with error ``code`` (``times=None``: every call).

        ``code`` must be an error the operation's service declares (the HTTP status comes from its shape:
        ThrottlingException 429, ModelNotReadyException 429, ServiceUnavailableException 503,
        ModelTimeoutException 408, ModelErrorException 424, ValidationException 400, AccessDeniedException 403,
        ResourceNotFoundException 404, InternalServerException 500). ``model_id`` restricts the script to calls
        whose ``modelId`` equals it (Converse / ConverseStream only). Scripts are consumed in the order added.
        """
        service = self._service_of(operation)
        self._status_for(service, code)  # raises for an unknown code
        if model_id is not None and operation not in RUNTIME_OPERATIONS:
            raise ValueError(f"model_id only applies to {sorted(RUNTIME_OPERATIONS)}, not {operation}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for every call)")
        with self._lock:
            self._scripted.append(
                ScriptedError(
                    operation=operation,
                    code=code,
                    message=message or f"Scripted {code} from BedrockFake",
                    remaining=times,
                    model_id=model_id,
                )
            )

    def error_rate(
        self,
        code: str,
        rate: float,
        *,
        seed: int = 0,
        operations: Sequence[str] = ("Converse", "ConverseStream"),
    ) -> None:
        """Fail a random ``rate`` (0..1) of calls to ``operations`` with ``code``, reproducibly by ``seed``.
        ``rate=0`` switches it off."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        for operation in operations:
            self._status_for(self._service_of(operation), code)
        with self._lock:
            for operation in operations:
                if rate == 0.0:
                    self._error_rates.pop(operation, None)
                else:
                    self._error_rates[operation] = ErrorRate(
                        code,
                        rate,
                        random.Random(f"{seed}:{operation}"),  # noqa: S311 - reproducible, not security
                    )

    @property
    def pending_scripted_errors(self) -> int:
        """Scripted errors not yet consumed (``times=None`` scripts count as one)."""
        with self._lock:
            return len(self._scripted)

    def script_stream_error(self, code: str, *, after_events: int = 1, message: str | None = None) -> None:
        """Make the next ConverseStream's stream raise ``EventStreamError`` after ``after_events`` events.
        ``code`` is an exception of the stream union, in either spelling (``ThrottlingException`` or
        ``throttlingException``); the raised error carries the lower-camel member name, as botocore does."""
        stream_shape = self._runtime.meta.service_model.shape_for("ConverseStreamOutput")
        members = {name for name, shape in stream_shape.members.items() if shape.metadata.get("exception")}
        member = code[:1].lower() + code[1:]
        if member not in members:
            raise ValueError(f"{code} is not a ConverseStream event-stream exception; one of {sorted(members)}")
        with self._lock:
            self._stream_errors.append((FakeError(member, message or f"Scripted {member}"), after_events))

    def fail_next_job(self, message: str, *, after_polls: int | None = None) -> None:
        """The next customization job created ends ``Failed`` with ``failureMessage=message``, on the ``Get``
        where it would have completed (or after ``after_polls`` Gets)."""
        with self._lock:
            self._next_job_failure = (message, after_polls)

    def fail_next_deployment(self, message: str) -> None:
        """The next deployment created ends ``Failed`` with ``failureMessage=message`` instead of ``Active``."""
        with self._lock:
            self._next_deployment_failure = message

    def fail_next_evaluation(self, *messages: str) -> None:
        """The next evaluation job created ends ``Failed`` with ``failureMessages=list(messages)``."""
        with self._lock:
            self._next_evaluation_failure = messages or ("Scripted evaluation failure",)

    def backdate(self, arn: str, *, hours: float) -> None:
        """Make a customization or evaluation job look ``hours`` older (its ``creationTime``), e.g. to exercise
        a run's maximum-duration check."""
        with self._lock:
            job = self._jobs.get(arn) or self._evaluations.get(arn)
            if job is None:
                raise KeyError(f"no customization or evaluation job {arn}")
            job.created -= timedelta(hours=hours)

    def _raise_scripted(self, operation: str, params: dict[str, Any]) -> None:
        with self._lock:
            for script in self._scripted:
                if script.operation != operation:
                    continue
                if script.model_id is not None and params.get("modelId") != script.model_id:
                    continue
                if script.remaining is not None:
                    script.remaining -= 1
                    if script.remaining == 0:
                        self._scripted.remove(script)
                raise FakeServiceError(script.code, script.message)
            rate = self._error_rates.get(operation)
            if rate is not None and rate.rng.random() < rate.rate:
                raise FakeServiceError(rate.code, f"Random {rate.code} from BedrockFake (rate {rate.rate:.0%})")
