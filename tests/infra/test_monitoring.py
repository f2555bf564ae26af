"""Monitoring in the synthesized template: router alarms (metrics, thresholds from config, actions), the
dashboard's router and pipeline metrics, and the e-mail subscription of the notification topic."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, load_config
from simulation.synth import Synthesized

OVERRIDES = {"alarm_fallback_rate": "0.2", "alarm_p99_latency_ms": "1500", "notification_email": "ops@example.com"}


@pytest.fixture(scope="module")
def variant(synth_with: Callable[[dict[str, Any]], Synthesized]) -> Synthesized:
    return synth_with(OVERRIDES)


def _logical_id(synth: Synthesized, construct: Any) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


def _alarm(synth: Synthesized, construct: Any) -> dict[str, Any]:
    return synth.template["Resources"][_logical_id(synth, construct)]["Properties"]


def _router_metric_identity(synth: Synthesized) -> tuple[str, str]:
    """(namespace, service) the router function publishes its Powertools metrics under."""
    router = synth.template["Resources"][_logical_id(synth, synth.stack.routing_api.function)]
    variables = router["Properties"]["Environment"]["Variables"]
    return variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]


def _stage_dimensions(synth: Synthesized) -> list[dict[str, Any]]:
    api = synth.template["Resources"][_logical_id(synth, synth.stack.routing_api.api)]["Properties"]
    stage = _logical_id(synth, synth.stack.routing_api.api.deployment_stage)
    return [{"Name": "ApiName", "Value": api["Name"]}, {"Name": "Stage", "Value": {"Ref": stage}}]


def _topic(synth: Synthesized) -> dict[str, str]:
    return {"Ref": _logical_id(synth, synth.stack.notifications.topic)}


def _dashboard_body(synth: Synthesized) -> str:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)


def test_router_5xx_alarm_watches_the_stage_and_notifies_the_topic(synth: Synthesized) -> None:
    alarm = _alarm(synth, synth.stack.monitoring.router_5xx_alarm)
    (metric,) = alarm["Metrics"]
    stat = metric["MetricStat"]
    assert stat["Metric"] == {
        "Namespace": "AWS/ApiGateway",
        "MetricName": "5XXError",
        "Dimensions": _stage_dimensions(synth),
    }
    assert stat["Stat"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [_topic(synth)]
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(("which", "expected"), [("synth", 0.05), ("variant", 0.2)])
def test_fallback_rate_alarm_divides_the_routers_fallback_answers_by_routed_requests(
    which: str, expected: float, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    alarm = _alarm(synth, synth.stack.monitoring.fallback_rate_alarm)
    namespace, service = _router_metric_identity(synth)
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    assert "(FILL(fallback, 0) + FILL(defaults, 0)) / routed" in expression["Expression"]
    for metric_id, name, statistic in [
        ("routed", "RouteLatency", "SampleCount"),
        ("fallback", "FallbackModelUsed", "Sum"),
        ("defaults", "DefaultWeightsUsed", "Sum"),
    ]:
        stat = metrics[metric_id]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": "service", "Value": service}],
        }
        assert stat["Stat"] == statistic
    # The threshold is the configured share (alarm_fallback_rate)
    assert alarm["Threshold"] == expected
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [_topic(synth)]


@pytest.mark.parametrize(("which", "expected"), [("synth", 3000), ("variant", 1500)])
def test_latency_alarm_uses_the_stage_p99_and_the_configured_threshold(
    which: str, expected: int, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    alarm = _alarm(synth, synth.stack.monitoring.latency_alarm)
    (metric,) = alarm["Metrics"]
    assert metric["MetricStat"]["Metric"]["MetricName"] == "Latency"
    assert metric["MetricStat"]["Metric"]["Dimensions"] == _stage_dimensions(synth)
    assert metric["MetricStat"]["Stat"] == "p99"
    assert alarm["Threshold"] == expected
    assert alarm["AlarmActions"] == [_topic(synth)]


def test_the_pipeline_failure_alarm_is_reused_not_duplicated(synth: Synthesized) -> None:
    pipeline = {"Ref": _logical_id(synth, synth.stack.pipeline.state_machine)}
    failure_alarms = [
        logical_id
        for logical_id, alarm in synth.resources("AWS::CloudWatch::Alarm").items()
        if "ExecutionsFailed" in json.dumps(alarm["Properties"]) and json.dumps(pipeline) in json.dumps(alarm)
    ]
    assert failure_alarms == [_logical_id(synth, synth.stack.pipeline.failure_alarm)]
    assert synth.stack.pipeline.failure_alarm in synth.stack.monitoring.alarms
    assert json.dumps({"Fn::GetAtt": [failure_alarms[0], "Arn"]}) in _dashboard_body(synth)


def test_the_dashboard_shows_the_router_and_the_pipeline(synth: Synthesized) -> None:
    body = _dashboard_body(synth)
    namespace, service = _router_metric_identity(synth)
    # Router: API Gateway stage metrics
    for metric in ('"Count"', '"Latency"', '"4XXError"', '"5XXError"', '"p50"', '"p99"'):
        assert metric in body, metric
    # Router: its own metrics, under the namespace and service it publishes them with
    assert f'"{namespace}","RouteLatency","service","{service}"' in body
    for metric in ("FallbackModelUsed", "DefaultWeightsUsed", "CacheHit", "ModelError", "ParseFailure"):
        assert metric in body, metric
    # the cost and fault guards (issue 10): each new metric is on the dashboard, under the router's identity
    assert f'"{namespace}","FallbackCapped","service","{service}"' in body
    for name, dimension in (("CircuitOpen", "model"), ("CircuitOpened", "model"), ("ModelParameterInvalid", "problem")):
        search = f'SEARCH(\'{{{namespace},service,{dimension}}} MetricName=\\"{name}\\" service=\\"{service}\\"\''
        assert search in body, name
    assert "Fallback rate" in body
    assert "Cache hit rate" in body
    # Latency by model: the router's own log lines, and Bedrock's per-model metric
    log_group = synth.stack.routing_api.function.log_group
    assert json.dumps({"Ref": _logical_id(synth, log_group)}) in body
    assert "by model, source" in body
    assert "InvocationLatency" in body
    # Pipeline: executions started / succeeded / failed and their duration, from the state machine
    state_machine = json.dumps({"Ref": _logical_id(synth, synth.stack.pipeline.state_machine)})
    assert state_machine in body
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionTime"):
        assert metric in body, metric


def test_an_email_subscription_exists_only_when_configured(synth: Synthesized, variant: Synthesized) -> None:
    assert synth.resources("AWS::SNS::Subscription") == {}
    (subscription,) = variant.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["TopicArn"] == _topic(variant)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("alarm_fallback_rate", "1.5"),
        ("alarm_fallback_rate", "-0.1"),
        ("alarm_fallback_rate", "often"),
        ("alarm_p99_latency_ms", "50"),
        ("alarm_p99_latency_ms", "60000"),
    ],
)
def test_alarm_thresholds_are_validated(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config({key: value})
    assert error.value.key == key


def test_a_router_model_preflight_refused_raises_an_alarm(synth: Synthesized) -> None:
    # Preflight counts RouterModelsNotUsable (lambdas/search_router/handlers/preflight.py) under its own service name
    alarm = _alarm(synth, synth.stack.monitoring.router_models_alarm)
    assert alarm["Namespace"] == synth.stack.stack_name
    assert alarm["MetricName"] == "RouterModelsNotUsable"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "preflight"}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [_topic(synth)]
    function = next(
        v for v in synth.resources("AWS::Lambda::Function").values()
        if v["Properties"].get("Handler") == "search_router.handlers.preflight.handler"
    )  # fmt: skip
    assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "preflight"


# Each fault count on the dashboard's pipeline row: (the function's handler module, the metric it emits)
FAULT_METRICS = [
    ("search_router.handlers.compensate", "RunsFailed"),
    ("search_router.handlers.compensate", "RuntimeResourcesRemoved"),
    ("search_router.handlers.compensate", "RuntimeResourcesLeft"),
    ("search_router.handlers.compensate", "CompensationsReconciled"),
    ("search_router.handlers.prepare_dataset", "LabelingShardsFailed"),
    ("search_router.handlers.label_shard", "ShardsIncomplete"),
    ("search_router.handlers.label_shard", "TeacherThrottled"),
]


@pytest.mark.parametrize(("module", "name"), FAULT_METRICS)
def test_the_dashboard_shows_each_fault_count_under_the_identity_its_function_emits_it_with(
    synth: Synthesized, module: str, name: str
) -> None:
    # The function's service name comes from the template, the metric name from the handler's source: a
    # renamed metric or a moved handler breaks this test instead of leaving an empty graph.
    services = {
        v["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for v in synth.resources("AWS::Lambda::Function").values()
        if str(v["Properties"].get("Handler", "")).startswith(module + ".")
    }
    (service,) = services
    source = (Path(__file__).parents[2] / "lambdas" / module.replace(".", "/")).with_suffix(".py").read_text()
    assert f'add_metric(name="{name}"' in source
    assert f'"{synth.stack.stack_name}","{name}","service","{service}"' in _dashboard_body(synth)


def test_the_dashboard_shows_the_compensation_executions(synth: Synthesized) -> None:
    body = _dashboard_body(synth)
    compensation = json.dumps({"Ref": _logical_id(synth, synth.stack.compensation.state_machine)})
    assert compensation in body
    # the compensation machine's metrics are next to its reference, not only the pipeline's
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"):
        assert f'"AWS/States","{metric}","StateMachineArn","{compensation}"' in body, metric
