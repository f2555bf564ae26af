"""The router's model calls: one Bedrock call with a hard deadline, ConverseStream with early exit, and the
router's Bedrock client configuration.

botocore's own timeouts bound a single socket read, not a call, and its retries are switched off (the
service retries within its own time budget). So each call runs on a small per-container thread pool and the
caller waits at most ``timeout_s``; a call that overruns is abandoned (its stream closed) and reported as
``Timeout``. The answer is read only until every channel's weight is known (or, with
``reasoning``, until the answer's JSON object closes), then the stream is closed: without reasoning the reasoning
is never waited for, with it nothing after the answer is.

An abandoned call keeps its thread until botocore gives up, which the client configuration bounds
(:func:`router_client_config`: connect and read timeouts from ``call_timeout_ms``), and the pool is sized
for the abandoned calls a burst of slow requests can leave behind (``sizing.invoker_threads``). Should it
still be full, a call fails at once with ``PoolExhausted`` rather than queueing behind the stuck ones.

Every failure is raised as :class:`~search_router.shared.model_calls.ModelCallError`, retryable exactly for
:data:`~search_router.adapters.aws_errors.ROUTER_RETRY_CODES` (the service retries those once on the same model).
Error details: :attr:`ModelCallError.private` marks a detail that may hold request or response text (a
service message, a botocore error that quotes a parameter): the handler logs it only with
``router_log_queries`` on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from search_router.adapters.aws_errors import CONNECTION_ERROR, ROUTER_RETRY_CODES, error_code
from search_router.router.service import POOL_EXHAUSTED_CODE, TIMEOUT_CODE
from search_router.router.settings import ModelSpec, RouterSettings
from search_router.router.sizing import invoker_threads
from search_router.shared.answer.decision import ParseResult, ParseSuccess
from search_router.shared.answer.streaming import StreamingWeightsReader
from search_router.shared.channels import ChannelSet
from search_router.shared.model_calls import ModelCallError
from search_router.shared.prompts import PromptKind, prompt_for

MAX_TOKENS: Final = 300
TEMPERATURE: Final = 0.0
MAX_CONNECT_TIMEOUT_SECONDS: Final = 1.0


def router_client_config(settings: RouterSettings) -> Config:
    """Short timeouts that bound an abandoned call (connect at most 1 s, read the call timeout), no botocore
    retries (``total_max_attempts=1``: the service retries within its budget), kept-alive connections, one
    pooled connection per invoker thread."""
    call_seconds = settings.call_timeout_ms / 1000
    return Config(
        connect_timeout=min(MAX_CONNECT_TIMEOUT_SECONDS, call_seconds),
        read_timeout=call_seconds,
        retries={"total_max_attempts": 1, "mode": "standard"},
        tcp_keepalive=True,
        max_pool_connections=invoker_threads(settings),
    )


def call_error(code: str, detail: str, *, private: bool = True) -> ModelCallError:
    """A failed router call: retryable exactly when ``code`` is one of :data:`ROUTER_RETRY_CODES`."""
    return ModelCallError(code, detail, retryable=code in ROUTER_RETRY_CODES, private=private)


class _Cancelled(Exception):
    """The caller stopped waiting; the worker drops what it was reading."""


class BedrockInvoker:
    """Calls a router model and parses its answer with the shared parser. Thread pool created lazily; at most
    ``max_workers`` calls (abandoned ones included) in flight."""

    def __init__(self, *, channels: ChannelSet, runtime: Callable[[], Any], max_workers: int = 8) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self._channels = channels
        self._runtime = runtime
        self._max_workers = max_workers
        self._prompts = {
            (kind, reasoning): prompt_for(kind, channels, reasoning=reasoning)
            for kind in PromptKind
            for reasoning in (True, False)
        }
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def in_flight(self) -> int:
        """Calls running on the pool now, the abandoned ones included."""
        with self._in_flight_lock:
            return self._in_flight

    def ask(self, model: ModelSpec, query: str, *, timeout_s: float, reasoning: bool = True) -> ParseResult:
        """The parsed answer of ``model`` for ``query``; :class:`ModelCallError` if the call fails or overruns.

        ``reasoning`` picks the prompt: a student model gets its weights-only prompt when it is False (the
        teacher prompt has one form)."""
        request = self._request(model, query, reasoning)
        cancel = threading.Event()
        streams: list[Any] = []
        future = self._submit(self._stream_answer, request, cancel, streams, reasoning)
        try:
            return future.result(timeout=max(timeout_s, 0.0))
        except FutureTimeout:
            cancel.set()
            for open_stream in streams:
                _close_quietly(open_stream)
            raise call_error(TIMEOUT_CODE, f"no answer within {timeout_s * 1000:.0f} ms", private=False) from None
        except ModelCallError:
            raise
        except ClientError as error:
            raise call_error(error_code(error), str(error)) from None
        # botocore's connection errors name the endpoint URL only; other botocore errors may quote parameters
        # (ParamValidationError does), service messages may quote the request: those details are private.
        except (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError) as error:
            raise call_error(CONNECTION_ERROR, str(error), private=False) from None
        except ReadTimeoutError as error:
            raise call_error(TIMEOUT_CODE, str(error), private=False) from None
        except BotoCoreError as error:
            raise call_error(type(error).__name__, str(error)) from None
        except Exception as error:  # whatever else broke in this call, the next model may still answer
            raise call_error(type(error).__name__, str(error)) from error

    def _submit(self, work: Callable[..., ParseResult], *args: Any) -> Future[ParseResult]:
        """Run ``work`` on a free thread, or fail at once: never queue behind calls that were abandoned."""
        with self._in_flight_lock:
            if self._in_flight >= self._max_workers:
                raise call_error(
                    POOL_EXHAUSTED_CODE,
                    f"all {self._max_workers} call threads are busy (calls abandoned after their deadline)",
                    private=False,
                )
            self._in_flight += 1
        try:
            future = self._pool().submit(work, *args)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future[ParseResult] | None) -> None:
        del future
        with self._in_flight_lock:
            self._in_flight -= 1

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="bedrock")
        return self._executor

    def _request(self, model: ModelSpec, query: str, reasoning: bool) -> dict[str, Any]:
        return {
            "modelId": model.model_id,
            "system": [{"text": self._prompts[model.prompt_kind, reasoning]}],
            "messages": [{"role": "user", "content": [{"text": query}]}],
            "inferenceConfig": {"maxTokens": MAX_TOKENS, "temperature": TEMPERATURE},
        }

    def _stream_answer(
        self, request: dict[str, Any], cancel: threading.Event, streams: list[Any], reasoning: bool
    ) -> ParseResult:
        """Read the stream until the weights are complete (or, with ``reasoning``, until the answer's JSON object
        has closed), then close it: the rest of the generation is never waited for. With ``reasoning``, an answer
        that does not open with that object (prose, an array around it) is read to its end and parsed whole, exactly
        as Converse's would be."""
        response = self._runtime().converse_stream(**request)
        event_stream = response["stream"]
        streams.append(event_stream)
        reader = StreamingWeightsReader(self._channels, whole_object=reasoning)
        try:
            for event in event_stream:
                if cancel.is_set():
                    raise _Cancelled
                delta = event.get("contentBlockDelta")
                if delta is None:
                    continue
                decision = reader.feed(delta.get("delta", {}).get("text") or "")
                if decision is not None and (not reasoning or reader.leads):
                    return ParseSuccess(decision)
            # The stream ended without complete weights up front: parse the whole text like Converse would.
            return reader.finish()
        finally:
            _close_quietly(event_stream)


def _close_quietly(event_stream: Any) -> None:
    with contextlib.suppress(Exception):  # closing an abandoned stream is best effort
        event_stream.close()
