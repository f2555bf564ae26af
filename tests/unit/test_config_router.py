"""Routing API configuration (``router_*``, ``api_*`` keys) and its hand-over to the router Lambda's settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, RouterModel, load_config, parse_config, read_cdk_json_context
from infra.routing_api import router_environment
from search_router.router.settings import AccountScope, ModelSpec, SettingsError, load_settings
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import PromptKind


def _context(**overrides: Any) -> dict[str, Any]:
    context = read_cdk_json_context()
    context.update(overrides)
    return context


def test_cdk_json_defaults() -> None:
    router = load_config().router
    assert router.default_model == RouterModel("us.amazon.nova-micro-v1:0", "teacher")
    assert router.fallback_models == (RouterModel("us.anthropic.claude-haiku-4-5-20251001-v1:0", "teacher"),)
    assert router.default_weights == {"visual": 0.4, "audio": 0.2, "transcription": 0.2, "metadata": 0.2}
    assert (router.timeout_ms, router.call_timeout_ms) == (3000, 2000)
    assert (router.cache_size, router.cache_ttl_seconds, router.model_ttl_seconds) == (10_000, 300, 30)
    assert router.max_query_chars == 1000
    assert router.log_queries is False
    assert router.cors_origins == ()
    assert router.execution_log_level == "OFF"
    assert router.waf is False
    assert router.models == (router.default_model, *router.fallback_models)
    # the cost and fault guards (issue 10): on by default, reserved concurrency off
    assert (router.breaker_failures, router.breaker_open_seconds) == (5, 30)
    assert (router.fallback_max_share, router.fallback_window_seconds, router.fallback_min_requests) == (0.1, 60, 20)
    assert router.reserved_concurrency is None


def test_auto_default_weights_follow_reconfigured_channels() -> None:
    channels = [{"name": n, "description": n} for n in ("scene", "speech", "mood")]
    config = parse_config(_context(channels=channels))
    assert config.router.default_weights == {"scene": 0.4, "speech": 0.3, "mood": 0.3}


def test_explicit_default_weights_are_kept_in_channel_order() -> None:
    weights = {"metadata": 0.1, "visual": 0.7, "audio": 0.1, "transcription": 0.1}
    config = parse_config(_context(router_default_weights=json.dumps(weights)))
    assert list(config.router.default_weights.items()) == [
        ("visual", 0.7),
        ("audio", 0.1),
        ("transcription", 0.1),
        ("metadata", 0.1),
    ]


def test_cli_strings_are_coerced() -> None:
    config = parse_config(
        _context(
            router_fallback_models='[{"model_id": "us.amazon.nova-lite-v1:0", "prompt_kind": "Student"}]',
            router_log_queries="true",
            router_timeout_ms="1500",
            router_call_timeout_ms="700",
            api_cors_origins='["https://search.example.com/"]',
            api_execution_log_level="error",
            api_waf="true",
            router_breaker_failures="0",
            router_fallback_max_share="1",
            router_reserved_concurrency="25",
        )
    )
    router = config.router
    assert router.fallback_models == (RouterModel("us.amazon.nova-lite-v1:0", "student"),)
    assert router.log_queries is True
    assert (router.timeout_ms, router.call_timeout_ms) == (1500, 700)
    assert router.cors_origins == ("https://search.example.com",)
    assert router.execution_log_level == "ERROR"
    assert router.waf is True
    assert router.breaker_failures == 0  # 0 switches the breaker off
    assert router.fallback_max_share == 1.0  # 1 switches the cap off
    assert router.reserved_concurrency == 25


@pytest.mark.parametrize("value", [None, "null", "None", ""])
def test_reserved_concurrency_may_be_left_unset(value: Any) -> None:
    assert parse_config(_context(router_reserved_concurrency=value)).router.reserved_concurrency is None


FOUR = ("visual", "audio", "transcription", "metadata")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("router_default_model_id", "Nova Micro", "must be a Bedrock model id"),
        ("router_default_prompt_kind", "expert", "must be one of student, teacher"),
        ("router_fallback_models", {"model_id": "x"}, "must be a list of at most 4"),
        ("router_fallback_models", [{"model_id": "us.amazon.nova-lite-v1:0"}], "router_fallback_models[0]"),
        (
            "router_fallback_models",
            [{"model_id": "us.amazon.nova-lite-v1:0", "prompt_kind": "coach"}],
            "must be one of student, teacher",
        ),
        (
            "router_fallback_models",
            [{"model_id": "us.amazon.nova-lite-v1:0", "prompt_kind": "teacher"}] * 2,
            "repeats model",
        ),
        (
            "router_fallback_models",
            [{"model_id": "us.amazon.nova-micro-v1:0", "prompt_kind": "student"}],
            "repeats the default model",
        ),
        ("router_default_weights", "balanced", "must be JSON"),
        ("router_default_weights", [0.25, 0.25, 0.25, 0.25], 'must be "auto" or an object'),
        ("router_default_weights", {"visual": 0.5, "audio": 0.5}, "no weight for channel(s) transcription, metadata"),
        ("router_default_weights", {**dict.fromkeys(FOUR, 0.25), "mood": 0.0}, "unknown channel(s) mood"),
        ("router_default_weights", {**dict.fromkeys(FOUR, 0.25), "visual": 1.5}, "must be a number in 0.0..1.0"),
        ("router_default_weights", {**dict.fromkeys(FOUR, 0.25), "visual": "x"}, "router_default_weights.visual"),
        ("router_default_weights", dict.fromkeys(FOUR, 0.3), "must sum to 1"),
        ("router_timeout_ms", 50, "must be an integer in 100..25000"),
        ("router_call_timeout_ms", 5000, "must not exceed router_timeout_ms"),
        ("router_cache_size", -1, "must be an integer in 0..100000"),
        ("router_cache_ttl_seconds", "forever", "must be an integer"),
        ("router_model_ttl_seconds", 0, "must be an integer in 1..600"),
        ("router_max_query_chars", 0, "must be an integer in 1..10000"),
        ("router_log_queries", "sometimes", "must be true or false"),
        ("api_cors_origins", "https://a.example.com", "must be JSON"),
        ("api_cors_origins", ["search.example.com"], "is not an origin"),
        ("api_cors_origins", ["*", "https://a.example.com"], "list it alone"),
        ("api_execution_log_level", "DEBUG", "must be one of OFF, ERROR, INFO"),
        ("api_waf", "maybe", "must be true or false"),
        ("router_breaker_failures", -1, "must be an integer in 0..100"),
        ("router_breaker_failures", 2.5, "must be an integer in 0..100"),
        ("router_breaker_open_seconds", 0, "must be an integer in 1..3600"),
        ("router_fallback_max_share", 1.5, "must be a number in 0.0..1.0"),
        ("router_fallback_max_share", "half", "must be a number in 0.0..1.0"),
        ("router_fallback_window_seconds", 5, "must be an integer in 10..3600"),
        ("router_fallback_min_requests", 0, "must be an integer in 1..10000"),
        ("router_reserved_concurrency", 0, "must be null (unreserved) or an integer in 1..10000"),
        ("router_reserved_concurrency", "lots", "must be null (unreserved) or an integer in 1..10000"),
        ("router_reserved_concurrency", True, "must be null (unreserved) or an integer in 1..10000"),
    ],
)
def test_a_bad_router_value_is_rejected_naming_the_key(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_context(**{key: value}))
    assert error.value.key.split(".")[0].split("[")[0] == key
    assert expected in str(error.value)


def test_explicit_weights_must_match_reconfigured_channels() -> None:
    channels = [{"name": "scene", "description": "s"}, {"name": "speech", "description": "t"}]
    weights = {"visual": 0.4, "audio": 0.2, "transcription": 0.2, "metadata": 0.2}
    with pytest.raises(ConfigError, match=r"'router_default_weights': names unknown channel\(s\) visual"):
        parse_config(_context(channels=channels, router_default_weights=weights))


def _router_environment(config: Any) -> dict[str, str]:
    environment = router_environment(
        config,
        "/stack/router/promoted-model",
        partition="aws-us-gov",
        region="us-gov-west-1",
        account_id="123456789012",
    )
    environment["CHANNELS"] = config.channels.to_json()
    return environment


def test_the_lambda_reads_back_exactly_what_the_build_configured() -> None:
    config = load_config()
    settings = load_settings(_router_environment(config))
    router = config.router
    assert settings.channels == DEFAULT_CHANNELS
    assert settings.model_parameter == "/stack/router/promoted-model"
    assert settings.default_model == ModelSpec(router.default_model.model_id, PromptKind.TEACHER)
    assert settings.fallback_models == tuple(
        ModelSpec(m.model_id, PromptKind(m.prompt_kind)) for m in router.fallback_models
    )
    assert settings.default_weights.weights == router.default_weights
    assert settings.default_weights.reasoning is None
    assert (settings.timeout_ms, settings.call_timeout_ms) == (router.timeout_ms, router.call_timeout_ms)
    assert (settings.cache_size, settings.cache_ttl_seconds) == (router.cache_size, router.cache_ttl_seconds)
    assert settings.model_ttl_seconds == router.model_ttl_seconds
    assert settings.max_query_chars == router.max_query_chars
    assert settings.log_queries is router.log_queries
    assert settings.cors_origins == router.cors_origins
    assert (settings.breaker_failures, settings.breaker_open_seconds) == (5, 30)
    assert settings.fallback_max_share == router.fallback_max_share == 0.1
    assert (settings.fallback_window_seconds, settings.fallback_min_requests) == (60, 20)
    assert settings.scope == AccountScope(partition="aws-us-gov", region="us-gov-west-1", account_id="123456789012")


def test_the_guards_reach_the_lambda_as_configured() -> None:
    config = parse_config(
        _context(
            router_breaker_failures=3,
            router_breaker_open_seconds=120,
            router_fallback_max_share=0.25,
            router_fallback_window_seconds=600,
            router_fallback_min_requests=50,
        )
    )
    settings = load_settings(_router_environment(config))
    assert (settings.breaker_failures, settings.breaker_open_seconds) == (3, 120)
    assert (settings.fallback_max_share, settings.fallback_window_seconds, settings.fallback_min_requests) == (
        0.25,
        600,
        50,
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ROUTER_TIMEOUT_MS", "soon", "must be an integer"),
        ("ROUTER_CALL_TIMEOUT_MS", "99999", "must be an integer in 1..3000"),
        ("ROUTER_DEFAULT_MODEL", '{"model_id": "m"}', "prompt_kind must be one of"),
        ("ROUTER_FALLBACK_MODELS", "{}", "must be a JSON list"),
        ("ROUTER_DEFAULT_WEIGHTS", '{"visual": 1}', "exactly the channels"),
        ("ROUTER_DEFAULT_WEIGHTS", '{"visual": 1, "audio": 1, "transcription": 0, "metadata": 0}', "bad_sum"),
        ("ROUTER_MODEL_PARAMETER", " ", "must name the SSM parameter"),
        ("ROUTER_LOG_QUERIES", "yes", "must be true or false"),
        ("CHANNELS", "[]", "2..12 entries"),
        ("ROUTER_BREAKER_FAILURES", "-1", "must be an integer in 0..1000"),
        ("ROUTER_BREAKER_OPEN_SECONDS", "0", "must be an integer in 1..86400"),
        ("ROUTER_FALLBACK_MAX_SHARE", "nan", "must be a number in 0..1"),
        ("ROUTER_FALLBACK_MAX_SHARE", "1.01", "must be a number in 0..1"),
        ("ROUTER_FALLBACK_WINDOW_SECONDS", "", "must be an integer"),
        ("ROUTER_FALLBACK_MIN_REQUESTS", "0", "must be an integer in 1..1000000"),
        ("ROUTER_PARTITION", "${Token[AWS.Partition.3]}", "must be an AWS partition"),
        ("ROUTER_REGION", "US-EAST-1", "must be an AWS Region"),
        ("ROUTER_ACCOUNT_ID", "12345", "must be a 12-digit AWS account id"),
    ],
)
def test_a_bad_lambda_setting_is_rejected_naming_the_variable(variable: str, value: str, expected: str) -> None:
    environment = _router_environment(load_config())
    environment[variable] = value
    with pytest.raises(SettingsError) as error:
        load_settings(environment)
    assert error.value.variable == variable
    assert expected in str(error.value)
