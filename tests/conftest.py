"""Shared test harness: every test runs offline with dummy AWS credentials and fresh AWS clients.

Fixtures:

- ``_isolated`` (autouse): blocks non-loopback connections and DNS look-ups, sets ``us-east-1`` and dummy credentials,
  hides the developer's AWS config files and profile, sets the Powertools variables, and resets
  ``search_router.adapters.clients.CLIENTS`` before and after the test. Tests marked ``e2e`` (everything under
  ``tests/e2e``) are left alone: they talk to a real stack.
- ``aws``: a ``moto.mock_aws()`` context for the test (S3, SSM, SNS ... through
  ``search_router.adapters.clients.CLIENTS.get`` or ``boto3``).
- ``bedrock``: a :class:`simulation.bedrock_fake.BedrockFake` with the default model catalog, installed into
  ``search_router.adapters.clients.CLIENTS``; works with or without ``aws`` (it answers before moto would see the
  request).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

# Powertools' Metrics reads its namespace when the handlers' observability module is first imported, which a test
# module may do while pytest collects it, before any fixture runs: the namespace must be there from the start.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Test")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "test")

# moto must be imported before any botocore session is created: it adds its hook to botocore's BUILTIN_HANDLERS,
# which every new session copies.
from moto import mock_aws

from search_router.adapters.clients import CLIENTS
from simulation.bedrock_fake import BedrockFake
from simulation.synth import Synthesized


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-loopback address."""


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: resolving it is already network access
        return False


def _is_ip_literal(host: Any) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
    except ValueError:
        return False
    return True


def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def refuse(address: Any) -> None:
        raise NetworkBlockedError(
            f"network access is blocked in tests (connect to {address!r}); use moto, a fake, or loopback"
        )

    def connect(sock: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            refuse(address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            refuse(address)
        return real_connect_ex(sock, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if not _is_loopback(address):
            refuse(address)
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback((host,)) and not _is_ip_literal(host):
            refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)


_TEST_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Test",
    "POWERTOOLS_SERVICE_NAME": "test",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
_UNSET_ENVIRONMENT = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "POWERTOOLS_DEV")


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Offline, dummy-credential environment and fresh ``search_router.adapters.clients.CLIENTS`` for every non-e2e
    test."""
    if request.node.get_closest_marker("e2e") is None:
        _block_network(monkeypatch)
        for name, value in _TEST_ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        for name in _UNSET_ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)
    CLIENTS.reset()
    yield
    CLIENTS.reset()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-memory AWS for the duration of the test."""
    with mock_aws():
        yield


@pytest.fixture
def bedrock() -> BedrockFake:
    """A Bedrock fake with the default catalog, serving ``CLIENTS.get("bedrock" | "bedrock-runtime")``."""
    return BedrockFake().with_default_catalog().install()


# The stack with every opt-in part of the production loop on (capture, drift bounds, scheduled retraining), small
# runs and no poll waits: one synth shared by the capture, drift and retraining tests of every tier.
FAST_POLLING = {"run_defaults.poll_seconds": 0, "run_defaults.deployment_poll_seconds": 0}
SMALL_STACK = {"run_defaults.num_examples": 200, "run_defaults.eval_examples": 20, "run_defaults.shard_size": 50}
DRIFT_BOUNDS = {"drift_max_unseen_share": "0.25", "drift_max_channel_shift": "0.15", "drift_max_default_rate": "0.01"}
LOOP_SETTINGS = {
    **FAST_POLLING,
    **SMALL_STACK,
    **DRIFT_BOUNDS,
    "run_defaults.judge": False,
    "capture_queries": True,
    "data_retention_days": 30,
    "retrain_schedule": "cron(0 3 ? * SUN *)",
    "retrain_min_new_queries": 60,
    "retrain_heldout_queries": 20,
}


@pytest.fixture(scope="session")
def loop_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack synthesized with :data:`LOOP_SETTINGS`."""
    return Synthesized(tmp_path_factory.mktemp("loop-cdk-out"), LOOP_SETTINGS)
