"""Builds the router service from its settings: AWS clients (once per container), model source, invoker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from botocore.config import Config

from search_router.adapters.clients import CLIENTS
from search_router.router.invoker import BedrockInvoker
from search_router.router.model_source import PromotedModelSource
from search_router.router.service import RouterService
from search_router.router.settings import RouterSettings

CLIENT_PROFILE = "router"
MAX_CONNECT_TIMEOUT_SECONDS = 1.0
MIN_INVOKER_THREADS: Final = 8
# Requests whose abandoned calls can still hold a thread while a new request runs (see invoker_threads).
ABANDONING_REQUESTS: Final = 3


def max_chain_length(settings: RouterSettings) -> int:
    """The longest model chain a request can walk: a promoted model, the default model, the fallbacks."""
    return 2 + len(settings.fallback_models)


def invoker_threads(settings: RouterSettings) -> int:
    """Threads enough that calls abandoned after their deadline cannot starve a healthy request.

    A request abandons at most one call per model of its chain (a timeout is not retried on the same model).
    An abandoned call holds its thread until botocore gives up: at most connect_timeout + read_timeout after it
    started (:func:`router_client_config`), that is under 2 x ``call_timeout_ms``. Every request that abandons
    a call has waited at least ``call_timeout_ms`` itself (the first timed-out call of a request has its full
    call timeout, or the request already spent that much of its budget), so while one request runs, calls of
    at most :data:`ABANDONING_REQUESTS` requests (the current one included) can still be alive. Threads are
    started only when needed: a pool this size costs nothing until a burst of slow calls needs it.
    """
    return max(MIN_INVOKER_THREADS, ABANDONING_REQUESTS * max_chain_length(settings) + 1)


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


def build_service(settings: RouterSettings, *, clock: Callable[[], float] = time.monotonic) -> RouterService:
    config = router_client_config(settings)

    def runtime() -> Any:
        return CLIENTS.get("bedrock-runtime", profile=CLIENT_PROFILE, config=config)

    def ssm() -> Any:
        return CLIENTS.get("ssm", profile=CLIENT_PROFILE, config=config)

    return RouterService(
        settings,
        invoker=BedrockInvoker(channels=settings.channels, runtime=runtime, max_workers=invoker_threads(settings)),
        model_source=PromotedModelSource(
            parameter_name=settings.model_parameter,
            channels=settings.channels,
            default_model=settings.default_model,
            ttl_seconds=settings.model_ttl_seconds,
            ssm=ssm,
            clock=clock,
            scope=settings.scope,
        ),
        clock=clock,
    )
