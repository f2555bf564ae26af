"""The cache of AWS clients (search_router.adapters.clients): one client per service, profile and configuration."""

from __future__ import annotations

from botocore.config import Config

from search_router.adapters.clients import CLIENTS, PIPELINE_CONFIG, config_key


def test_equal_configurations_have_equal_keys_and_different_ones_different_keys() -> None:
    assert config_key(Config(read_timeout=2, retries={"mode": "standard"})) == config_key(
        Config(retries={"mode": "standard"}, read_timeout=2)
    )
    assert config_key(Config(read_timeout=2)) != config_key(Config(read_timeout=3))
    assert config_key(Config(retries={"max_attempts": 1})) != config_key(Config(retries={"max_attempts": 2}))


def test_a_client_made_with_one_configuration_is_never_returned_for_another() -> None:
    short = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1, "mode": "standard"})
    long = Config(connect_timeout=1, read_timeout=60, retries={"total_max_attempts": 1, "mode": "standard"})
    first = CLIENTS.get("bedrock-runtime", config=short)
    assert first.meta.config.read_timeout == 2
    other = CLIENTS.get("bedrock-runtime", config=long)
    assert other is not first and other.meta.config.read_timeout == 60
    # the same configuration, or an equal one, is the same client
    assert CLIENTS.get("bedrock-runtime", config=short) is first
    again = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1, "mode": "standard"})
    assert CLIENTS.get("bedrock-runtime", config=again) is first
    # no configuration is the pipeline's, and a profile keeps its clients apart
    default = CLIENTS.get("bedrock-runtime")
    assert default is CLIENTS.get("bedrock-runtime", config=PIPELINE_CONFIG) and default is not first
    assert default.meta.config.retries["mode"] == "adaptive"
    assert CLIENTS.get("bedrock-runtime", profile="router", config=short) is not first


def test_an_override_serves_every_configuration() -> None:
    fake = object()
    CLIENTS.override("s3", fake)
    assert CLIENTS.get("s3") is fake and CLIENTS.get("s3", config=Config(read_timeout=1)) is fake
