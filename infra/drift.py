"""The daily drift check (``capture_queries`` only; settings ``drift_*``): EventBridge Scheduler runs the DriftCheck
function at :data:`DRIFT_CRON` (UTC, after the compaction), which compares the last ``drift_window_days`` days of
captured routes with the promoted run's training file (``lambdas/search_router/pipeline/drift.py``), publishes the
figures as Powertools metrics (EMF through the function's logs: no ``cloudwatch:PutMetricData`` grant) and writes
``drift/<date>.json`` and ``drift/latest.json``. One alarm per figure, to the notification topic, when the day's
value is above its ``drift_max_*`` bound; no data (too little traffic, no promotion) is no breach.

Least privilege: list and read ``captured/raw/`` only, read any run's ``dataset/train.jsonl`` (the promoted run is
known only at run time, from the parameter), write ``drift/`` only, ``ssm:GetParameter`` on the promotion
parameter only.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.capture import schedule
from infra.config import AppConfig, DriftConfig
from infra.lambda_factory import FunctionSpec, LambdaFactory, service_name
from infra.nag import acknowledge_resources
from search_router.contract.environment import DriftCheckEnvironment
from search_router.contract.layout import CAPTURED_RAW, DRIFT, RunLayout

HANDLER = "search_router.handlers.drift_check.handler"
DRIFT_CRON = "cron(30 1 * * ? *)"  # 01:30 UTC: after the compaction (01:00) and the last delivery of yesterday
TIMEOUT_SECONDS = 600
MEMORY_MB = 1024


def bounds(config: DriftConfig) -> dict[str, tuple[float, str]]:
    """Metric (``pipeline/drift.py`` FIGURES) → (its bound, what crossing it means)."""
    return {
        "UnseenVocabularyShare": (config.max_unseen_share, "queries with words the training queries never had"),
        "DominantChannelShift": (config.max_channel_shift, "shift of the served dominant channels (total variation)"),
        "FallbackRate": (config.max_fallback_rate, "routes answered by a fallback model"),
        "DefaultRate": (config.max_default_rate, "routes answered with the default weights"),
        "EscalatedShare": (config.max_escalated_share, "routes the cascade sent on to the model"),
    }


class DriftCheck(Construct):
    """Attributes: ``function``, ``schedule``, ``alarms`` (metric name → alarm)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: LambdaFactory,
        data_bucket: s3.IBucket,
        model_parameter: ssm.IStringParameter,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = functions.create(
            self,
            "DriftCheck",
            FunctionSpec(
                handler=HANDLER,
                description="Daily drift of captured traffic against the promoted run's training data",
                timeout_seconds=TIMEOUT_SECONDS,
                memory_mb=MEMORY_MB,
                environment=DriftCheckEnvironment(
                    channels=config.channels.to_json(),
                    data_bucket=data_bucket.bucket_name,
                    model_parameter=model_parameter.parameter_name,
                    window_days=config.drift.window_days,
                    min_records=config.drift.min_records,
                    max_records=config.drift.max_records,
                ).to_environment(),
            ),
        )
        self._grant(data_bucket, model_parameter)
        self.schedule = self._schedule()
        self.alarms = self._alarms(config.drift, topic)

    def _grant(self, bucket: s3.IBucket, parameter: ssm.IStringParameter) -> None:
        function = self.function
        raw = [bucket.arn_for_objects(f"{CAPTURED_RAW}*")]
        training = [bucket.arn_for_objects(RunLayout.pattern(RunLayout.any().train))]
        written = [bucket.arn_for_objects(f"{DRIFT}*")]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CAPTURED_RAW}*"]}},
            )
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[*raw, *training]))
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=written))
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[parameter.parameter_arn])
        )
        assert function.role is not None
        acknowledge_resources(
            function.role,
            [*raw, *training, *written],
            "The drift check reads the objects Firehose named under captured/raw/, the training file of the run the "
            "promotion parameter names (known at run time only: runs/*/dataset/train.jsonl) and writes under drift/ "
            "of this stack's data bucket; nothing else.",
        )

    def _schedule(self) -> scheduler.CfnSchedule:
        return schedule(
            self,
            "Schedule",
            self.function,
            expression=DRIFT_CRON,
            description="Daily drift check of captured traffic (window ending yesterday, UTC)",
            role_description="EventBridge Scheduler: invokes the daily drift check",
        )

    def _alarms(self, config: DriftConfig, topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
        alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (bound, meaning) in bounds(config).items():
            alarm = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                alarm_description=f"Drift: {meaning} above {bound:g} over the last {config.window_days} days "
                f"(drift_max_*; see drift/latest.json)",
                metric=cloudwatch.Metric(
                    namespace=Stack.of(self).stack_name,
                    metric_name=name,
                    dimensions_map={"service": service_name(HANDLER)},
                    statistic="Maximum",
                    period=Duration.days(1),
                ),
                threshold=bound,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
            alarms[name] = alarm
        return alarms
