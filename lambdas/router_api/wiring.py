"""Builds the router service from its settings: AWS clients (once per container), model source, invoker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config

from router_api.invoker import BedrockInvoker
from router_api.model_source import PromotedModelSource
from router_api.service import RouterService
from router_api.settings import RouterSettings
from routing.aws import CLIENTS

CLIENT_PROFILE = "router"
INVOKER_THREADS = 8
MAX_CONNECT_TIMEOUT_SECONDS = 1.0


def router_client_config(settings: RouterSettings) -> Config:
    """Short timeouts, no botocore retries (``total_max_attempts=1``: the service retries within its budget),
    kept-alive connections, one pooled connection per invoker thread."""
    call_seconds = settings.call_timeout_ms / 1000
    return Config(
        connect_timeout=min(MAX_CONNECT_TIMEOUT_SECONDS, call_seconds),
        read_timeout=call_seconds,
        retries={"total_max_attempts": 1, "mode": "standard"},
        tcp_keepalive=True,
        max_pool_connections=INVOKER_THREADS,
    )


def build_service(settings: RouterSettings, *, clock: Callable[[], float] = time.monotonic) -> RouterService:
    config = router_client_config(settings)

    def runtime() -> Any:
        return CLIENTS.get("bedrock-runtime", profile=CLIENT_PROFILE, config=config)

    def ssm() -> Any:
        return CLIENTS.get("ssm", profile=CLIENT_PROFILE, config=config)

    return RouterService(
        settings,
        invoker=BedrockInvoker(channels=settings.channels, runtime=runtime, max_workers=INVOKER_THREADS),
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
