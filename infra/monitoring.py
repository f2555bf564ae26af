"""Monitoring: one CloudWatch dashboard for the router and the pipeline, and router alarms to the SNS topic.

Router metrics come from two places:

- the API Gateway **stage** (``AWS/ApiGateway``, ``ApiName`` + ``Stage``): requests, latency, 4xx, 5xx;
- the router function's Powertools metrics (namespace = the stack name, dimension ``service=router_api``, see
  ``lambdas/search_router/handlers/router_api.py``): ``RouteLatency`` (one sample per routed request), ``CacheHit``,
  ``FallbackModelUsed``, ``DefaultWeightsUsed``, ``FallbackCapped``, ``BadRequest``, ``InternalError``, and,
  each with its own dimension, ``ModelError`` (``code``, ``PoolExhausted`` included), ``ParseFailure``
  (``reason``), ``CircuitOpen`` / ``CircuitOpened`` (``model``: a configured model id or the promoted ARN, a
  bounded set) and ``ModelParameterInvalid`` (``problem``, ``foreign_arn`` included).

The router emits no per-model latency metric, so "latency by model" is a Logs Insights table over the
router's own ``Routed`` log lines (``model``, ``source``, ``latency_ms``), next to Bedrock's
``AWS/Bedrock InvocationLatency`` by ``ModelId``.

Alarms (all to the notification topic): router 5xx, fallback rate above ``alarm_fallback_rate``, p99 latency
above ``alarm_p99_latency_ms``. The pipeline row adds the fault counts of ``compensate`` (``RunsFailed``,
``RuntimeResourcesRemoved``, ``RuntimeResourcesLeft``, ``CompensationsReconciled``), ``prepare_dataset``
(``LabelingShardsFailed``) and ``label_shard`` (``ShardsIncomplete``, ``TeacherThrottled``), and the
compensation machine's executions. The pipeline's failed-execution alarm belongs to the pipeline construct; the
dashboard shows it rather than duplicating it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import AlarmThresholds, AppConfig
from infra.routing_api import RoutingApi
from search_router.contract.names import RouterMetric

PERIOD = Duration.minutes(5)
EVALUATION_PERIODS = 3
DATAPOINTS_TO_ALARM = 2
# A fallback-rate alarm on a handful of requests would be noise: below this many routed requests in a period
# the rate counts as 0 for the alarm (the dashboard still shows it).
MIN_REQUESTS_FOR_RATE_ALARM = 20
# POWERTOOLS_SERVICE_NAME of the router (its handler module's name, see lambda_factory.service_name)
ROUTER_SERVICE = "router_api"
PREFLIGHT_SERVICE = "preflight"  # ... and of the Preflight function, which counts RouterModelsNotUsable
# ... and of the pipeline functions whose fault counts the dashboard shows
COMPENSATE_SERVICE = "compensate"
PREPARE_DATASET_SERVICE = "prepare_dataset"
LABEL_SHARD_SERVICE = "label_shard"
ROUTER_5XX_THRESHOLD = 1  # the router answers model trouble with 200 + fallback; any 5xx is a defect or outage


@dataclass(frozen=True)
class _RouterMetrics:
    """The router's metrics: the API stage's and the router function's own."""

    requests: cloudwatch.IMetric
    latency_p50: cloudwatch.IMetric
    latency_p99: cloudwatch.IMetric
    integration_p99: cloudwatch.IMetric
    errors_4xx: cloudwatch.IMetric
    errors_5xx: cloudwatch.IMetric
    routed: cloudwatch.Metric
    route_latency_p99: cloudwatch.Metric
    cache_hits: cloudwatch.Metric
    fallback_models: cloudwatch.Metric
    default_weights: cloudwatch.Metric
    bad_requests: cloudwatch.Metric
    internal_errors: cloudwatch.Metric
    answers: dict[str, cloudwatch.IMetric]


class Monitoring(Construct):
    """Dashboard + router alarms. Attributes: ``dashboard``, ``router_5xx_alarm``, ``fallback_rate_alarm``,
    ``latency_alarm``, ``alarms`` (every alarm the dashboard shows, the pipeline's included)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        routing_api: RoutingApi,
        state_machine: sfn.StateMachine,
        topic: sns.ITopic,
        pipeline_failure_alarm: cloudwatch.IAlarm,
        pipeline_alarms: Sequence[cloudwatch.IAlarm] = (),
        compensation_state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self._namespace = Stack.of(self).stack_name  # POWERTOOLS_METRICS_NAMESPACE (lambda_factory)
        router = self._router_metrics(routing_api.api.deployment_stage)

        router_alarms = self._router_alarms(router, config.alarms)
        for alarm in router_alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
        self.alarms: list[cloudwatch.IAlarm] = [*router_alarms, pipeline_failure_alarm, *pipeline_alarms]

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.stack_name}-operations",
            default_interval=Duration.hours(3),
        )
        self._add_router_rows(router, config)
        self._add_router_guard_rows(router, routing_api.function.log_group.log_group_name)
        self._add_pipeline_rows(state_machine, compensation_state_machine, pipeline_failure_alarm)
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms (notify the SNS topic)", alarms=self.alarms, width=24)
        )

        output = CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards/dashboard/{config.stack_name}-operations",
            description="CloudWatch dashboard of the router and the pipeline",
        )
        output.override_logical_id("DashboardUrl")

    # ------------------------------------------------------------------------------------------- router metrics
    def _router_metrics(self, stage: apigateway.Stage) -> _RouterMetrics:
        """The API stage's metrics and the router function's own (``answers``: what the fallback rate uses)."""
        routed = self._router_metric(RouterMetric.ROUTE_LATENCY, "SampleCount", "Routed requests")
        cache_hits = self._router_metric(RouterMetric.CACHE_HIT, "Sum", "Cache hits")
        fallback_models = self._router_metric(RouterMetric.FALLBACK_MODEL_USED, "Sum", "Fallback model")
        default_weights = self._router_metric(RouterMetric.DEFAULT_WEIGHTS_USED, "Sum", "Default weights")
        return _RouterMetrics(
            requests=stage.metric_count(period=PERIOD, statistic="Sum", label="Requests"),
            latency_p50=stage.metric_latency(period=PERIOD, statistic="p50", label="p50"),
            latency_p99=stage.metric_latency(period=PERIOD, statistic="p99", label="p99"),
            integration_p99=stage.metric_integration_latency(period=PERIOD, statistic="p99", label="integration p99"),
            errors_4xx=stage.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
            errors_5xx=stage.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
            routed=routed,
            route_latency_p99=self._router_metric(RouterMetric.ROUTE_LATENCY, "p99", "router p99 (in function)"),
            cache_hits=cache_hits,
            fallback_models=fallback_models,
            default_weights=default_weights,
            bad_requests=self._router_metric(RouterMetric.BAD_REQUEST, "Sum", "Bad requests"),
            internal_errors=self._router_metric(RouterMetric.INTERNAL_ERROR, "Sum", "Internal errors"),
            answers={"routed": routed, "fallback": fallback_models, "defaults": default_weights, "cache": cache_hits},
        )

    # ---------------------------------------------------------------------------------------------------- alarms
    def _router_alarms(self, router: _RouterMetrics, thresholds: AlarmThresholds) -> list[cloudwatch.Alarm]:
        """5xx, fallback rate, p99 latency, and Preflight's refused router models."""
        self.router_5xx_alarm = cloudwatch.Alarm(
            self,
            "Router5xx",
            alarm_description="The routing API answered with 5xx (the router never turns model trouble into a 5xx: "
            "a misconfiguration, a timeout or an outage)",
            metric=router.errors_5xx,
            threshold=ROUTER_5XX_THRESHOLD,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.fallback_rate_alarm = self._sustained_alarm(
            "RouterFallbackRate",
            f"More than {thresholds.fallback_rate:.0%} of routed requests were answered by a "
            f"fallback model or the default weights (alarm_fallback_rate; ignored below "
            f"{MIN_REQUESTS_FOR_RATE_ALARM} requests per {PERIOD.to_minutes()} min)",
            cloudwatch.MathExpression(
                expression=f"IF(routed >= {MIN_REQUESTS_FOR_RATE_ALARM}, "
                "(FILL(fallback, 0) + FILL(defaults, 0)) / routed, 0)",
                using_metrics=router.answers,
                period=PERIOD,
                label="Fallback rate",
            ),
            thresholds.fallback_rate,
        )
        self.latency_alarm = self._sustained_alarm(
            "RouterLatencyP99",
            f"p99 latency of POST /route above {thresholds.p99_latency_ms} ms (alarm_p99_latency_ms)",
            router.latency_p99,
            thresholds.p99_latency_ms,
        )
        # Preflight checks the router's models on every run; a refused one degrades the router (fallbacks, then the
        # default weights) without failing the run, so it is an alarm rather than a run failure.
        self.router_models_alarm = cloudwatch.Alarm(
            self,
            "RouterModelsNotUsable",
            alarm_description="A pipeline run's Preflight found a router model that cannot be called (Legacy, no "
            "model access, not offered here): the router answers from its fallbacks or the default weights. "
            "python -m cli doctor names it and the fix.",
            metric=cloudwatch.Metric(
                namespace=self._namespace,
                metric_name="RouterModelsNotUsable",
                dimensions_map={"service": PREFLIGHT_SERVICE},
                statistic="Maximum",
                period=PERIOD,
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return [self.router_5xx_alarm, self.fallback_rate_alarm, self.latency_alarm, self.router_models_alarm]

    def _sustained_alarm(
        self, construct_id: str, description: str, metric: cloudwatch.IMetric, threshold: float
    ) -> cloudwatch.Alarm:
        """An alarm when ``metric`` is above ``threshold`` in :data:`DATAPOINTS_TO_ALARM` of the last
        :data:`EVALUATION_PERIODS` periods (no data is no breach)."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=EVALUATION_PERIODS,
            datapoints_to_alarm=DATAPOINTS_TO_ALARM,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    # ------------------------------------------------------------------------------------------------- dashboard
    def _add_router_rows(self, router: _RouterMetrics, config: AppConfig) -> None:
        """The router's header, traffic (requests, latency, errors) and answers (fallback and cache rates, sources,
        model errors and unusable answers)."""
        thresholds = config.alarms
        fallback_rate = cloudwatch.MathExpression(
            expression="100 * (FILL(fallback, 0) + FILL(defaults, 0)) / routed",
            using_metrics=router.answers,
            period=PERIOD,
            label="Fallback rate (%)",
        )
        cache_hit_rate = cloudwatch.MathExpression(
            expression="100 * FILL(cache, 0) / routed",
            using_metrics=router.answers,
            period=PERIOD,
            label="Cache hit rate (%)",
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="## Router (POST /route)\nAPI Gateway stage metrics and the router's own metrics "
                f"(namespace `{config.stack_name}`, service `{ROUTER_SERVICE}`).",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Requests", left=[router.requests, router.routed], width=8),
            cloudwatch.GraphWidget(
                title="Latency (ms)",
                left=[router.latency_p50, router.latency_p99, router.integration_p99, router.route_latency_p99],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=thresholds.p99_latency_ms, label="p99 alarm")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[router.errors_4xx, router.errors_5xx],
                right=[router.bad_requests, router.internal_errors],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Fallback and cache hit rate (%)",
                left=[fallback_rate, cache_hit_rate],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=100 * thresholds.fallback_rate, label="fallback alarm")
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Answers by source",
                left=[router.routed, router.cache_hits, router.fallback_models, router.default_weights],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Model errors and unusable answers",
                left=[
                    self._search(RouterMetric.MODEL_ERROR, "Model error"),
                    self._search(RouterMetric.PARSE_FAILURE, "Parse failure"),
                ],
                width=8,
            ),
        )

    def _add_router_guard_rows(self, router: _RouterMetrics, log_group: str) -> None:
        """The router's guards (circuit breaker, cost guard, refused promoted model) and latency by model."""
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Circuit breaker: calls skipped / circuits opened, by model",
                left=[self._search(RouterMetric.CIRCUIT_OPEN, "Skipped (open)")],
                right=[self._search(RouterMetric.CIRCUIT_OPENED, "Opened")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Cost guard: expensive fallbacks used and capped",
                left=[
                    router.fallback_models,
                    self._router_metric(RouterMetric.FALLBACK_CAPPED, "Sum", "Capped (default weights)"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Promoted-model parameter refused, by problem",
                left=[self._search(RouterMetric.MODEL_PARAMETER_INVALID, "Refused")],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.LogQueryWidget(
                title="Router latency by model (routed requests, cache hits excluded)",
                log_group_names=[log_group],
                query_lines=[
                    "fields @timestamp, model, source, latency_ms",
                    'filter message = "Routed" and source != "cache"',
                    "stats count(*) as requests, avg(latency_ms) as avg_ms, pct(latency_ms, 50) as p50_ms, "
                    "pct(latency_ms, 99) as p99_ms by model, source",
                    "sort requests desc",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Bedrock InvocationLatency p99 by model (ms, this account and Region)",
                left=[
                    cloudwatch.MathExpression(
                        expression="SEARCH('{AWS/Bedrock,ModelId} MetricName=\"InvocationLatency\"', 'p99', 300)",
                        label="",
                        period=PERIOD,
                    )
                ],
                width=12,
            ),
        )

    def _add_pipeline_rows(
        self,
        state_machine: sfn.StateMachine,
        compensation_state_machine: sfn.IStateMachine,
        pipeline_failure_alarm: cloudwatch.IAlarm,
    ) -> None:
        """The pipeline's executions and faults: compensations, runtime resources removed or left, labeling."""
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown="## Distillation pipeline (Step Functions)", width=24, height=1)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    *_execution_counts(state_machine),
                    state_machine.metric_timed_out(period=PERIOD, label="Timed out"),
                    state_machine.metric_aborted(period=PERIOD, label="Aborted"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Execution duration (ms)",
                left=[
                    state_machine.metric_time(period=Duration.hours(1), statistic="Average", label="Average"),
                    state_machine.metric_time(period=Duration.hours(1), statistic="Maximum", label="Maximum"),
                ],
                width=8,
            ),
            cloudwatch.AlarmWidget(title="Pipeline failures", alarm=pipeline_failure_alarm, width=8),
        )
        # Faults (issue 10): what compensation removed or left, and what labeling lost to failed shards.
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Compensations (executions)",
                left=_execution_counts(compensation_state_machine),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Failed runs: runtime resources removed / left",
                left=[
                    self._service_metric(COMPENSATE_SERVICE, "RunsFailed", "Runs failed, timed out or aborted"),
                    self._service_metric(COMPENSATE_SERVICE, "RuntimeResourcesRemoved", "Resources removed"),
                    self._service_metric(COMPENSATE_SERVICE, "CompensationsReconciled", "Reconciled (event lost)"),
                ],
                right=[self._service_metric(COMPENSATE_SERVICE, "RuntimeResourcesLeft", "Resources left")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Labeling: failed shards, incomplete shards, teacher throttling",
                left=[
                    self._service_metric(PREPARE_DATASET_SERVICE, "LabelingShardsFailed", "Shards failed"),
                    self._service_metric(LABEL_SHARD_SERVICE, "ShardsIncomplete", "Shards resumed (out of time)"),
                ],
                right=[self._service_metric(LABEL_SHARD_SERVICE, "TeacherThrottled", "Teacher calls throttled")],
                width=8,
            ),
        )

    # ------------------------------------------------------------------------------------------------- helpers
    def _router_metric(self, name: RouterMetric, statistic: str, label: str) -> cloudwatch.Metric:
        return self._service_metric(ROUTER_SERVICE, name, label, statistic)

    def _service_metric(self, service: str, name: str, label: str, statistic: str = "Sum") -> cloudwatch.Metric:
        """A Powertools metric of one function (``service`` = its POWERTOOLS_SERVICE_NAME)."""
        return cloudwatch.Metric(
            namespace=self._namespace,
            metric_name=name,
            dimensions_map={"service": service},
            statistic=statistic,
            period=PERIOD,
            label=label,
        )

    def _search(self, name: RouterMetric, label: str) -> cloudwatch.MathExpression:
        """Every series of a router count that carries its own dimension (``code``, ``reason``)."""
        dimension = name.own_dimension
        return cloudwatch.MathExpression(
            expression=f'SEARCH(\'{{{self._namespace},service,{dimension}}} MetricName="{name}" '
            f"service=\"{ROUTER_SERVICE}\"', 'Sum', {int(PERIOD.to_seconds())})",
            label=f"{label} ${{PROP('Dim.{dimension}')}}",  # a dynamic label: one series per code / reason
            period=PERIOD,
        )


def _execution_counts(machine: sfn.IStateMachine) -> list[cloudwatch.IMetric]:
    """The started, succeeded and failed executions of ``machine``, per :data:`PERIOD`."""
    return [
        machine.metric_started(period=PERIOD, label="Started"),
        machine.metric_succeeded(period=PERIOD, label="Succeeded"),
        machine.metric_failed(period=PERIOD, label="Failed"),
    ]
