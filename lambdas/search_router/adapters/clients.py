"""AWS clients, created once per container with explicit timeouts and retries, and replaceable in tests.

Handlers never call ``boto3.client`` themselves: they ask :data:`CLIENTS`, so a test can install a client
wired to a fake (see ``simulation/bedrock_fake.py``) with :meth:`AwsClients.override`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

# Control-plane and data calls made by pipeline tasks: patient, with adaptive retries.
PIPELINE_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"max_attempts": 5, "mode": "adaptive"},
    max_pool_connections=64,
)


class AwsClients:
    """A per-process cache of boto3 clients keyed by (service, profile name)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], Any] = {}
        self._overrides: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, *, profile: str = "default", config: Config | None = None) -> Any:
        if service in self._overrides:
            return self._overrides[service]
        key = (service, profile)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = boto3.client(
                        service,
                        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                        config=config or PIPELINE_CONFIG,
                    )
                    self._clients[key] = client
        return client

    def override(self, service: str, client: Any) -> None:
        """Use ``client`` for every later ``get(service)`` (tests)."""
        self._overrides[service] = client

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()
            self._overrides.clear()


CLIENTS = AwsClients()
