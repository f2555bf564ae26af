"""AWS clients, created once per container with explicit timeouts and retries, and replaceable in tests.

Handlers never call ``boto3.client`` themselves: they ask :data:`CLIENTS`, so a test can install a client
wired to a fake (``simulation.bedrock_fake``) with :meth:`AwsClients.override`.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import boto3
from botocore.config import Config

from search_router.adapters.service_models import create_trimmed_client

# Control-plane and data calls made by pipeline tasks: patient, with adaptive retries.
PIPELINE_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"max_attempts": 5, "mode": "adaptive"},
    max_pool_connections=64,
)


def config_key(config: Config) -> str:
    """What a client configuration sets, as a hashable value: equal configurations, equal keys."""
    options = {name: getattr(config, name, None) for name in sorted(Config.OPTION_DEFAULTS)}
    return json.dumps(options, sort_keys=True, default=repr)


class AwsClients:
    """A per-process cache of boto3 clients keyed by (service, profile name, client configuration): a client made
    with one configuration (timeouts, retries, pool size) is never handed to a caller that asked for another."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str, str, bool], Any] = {}
        self._overrides: dict[str, Any] = {}
        self._keys: dict[int, tuple[Config, str]] = {}  # id(config) -> (config, its key): computed once per object
        self._lock = threading.Lock()

    def get(
        self, service: str, *, profile: str = "default", config: Config | None = None, trimmed: bool = False
    ) -> Any:
        """The client of ``service`` made with ``config`` (default :data:`PIPELINE_CONFIG`), created on first use;
        ``trimmed``: from the service's trimmed model (``service_models``: only the router's operations)."""
        if service in self._overrides:
            return self._overrides[service]
        config = config or PIPELINE_CONFIG
        key = (service, profile, self._config_key(config), trimmed)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                    if trimmed:
                        client = create_trimmed_client(service, config=config, region_name=region)
                    else:
                        client = boto3.client(service, region_name=region, config=config)
                    self._clients[key] = client
        return client

    def _config_key(self, config: Config) -> str:
        """:func:`config_key`, remembered per configuration object (they are built once and not changed after)."""
        known = self._keys.get(id(config))
        if known is None or known[0] is not config:
            known = (config, config_key(config))  # holding the object keeps its id from being reused
            self._keys[id(config)] = known
        return known[1]

    def override(self, service: str, client: Any) -> None:
        """Use ``client`` for every later ``get(service)`` (tests)."""
        self._overrides[service] = client

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()
            self._overrides.clear()
            self._keys.clear()


CLIENTS = AwsClients()
