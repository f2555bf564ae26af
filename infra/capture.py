"""Capture of routed queries (``capture_queries``, off by default): an Amazon Data Firehose stream the router
writes to, delivering to ``captured/raw/<yyyy-MM-dd>/`` of the data bucket.

- **The stream**: Direct PUT, server-side encrypted (an AWS-owned key), GZIP, buffered up to
  :data:`BUFFER_MB` MB or :data:`BUFFER_SECONDS` s (whichever comes first: at 1M routes a day an object every
  15 minutes, ~96 PUTs a day), partitioned by arrival day with the prefix expression ``!{timestamp:yyyy-MM-dd}``
  (UTC); what it cannot deliver goes to ``captured/errors/`` and its delivery errors to a log group.
- **Least privilege**: the stream's role may write objects under ``captured/`` only (plus the bucket-level
  calls an S3 delivery makes) and its own log stream; the router's role gets ``firehose:PutRecordBatch`` on this
  stream only.
- **Retention**: ``data_retention_days`` expires ``captured/`` (``infra/storage.py``).
- **Compaction**: EventBridge Scheduler runs the CompactCaptured function daily at :data:`COMPACTION_CRON` (UTC):
  yesterday's ``captured/raw/<date>/`` into ``inputs/captured/<date>.jsonl`` (an hour after midnight: the last
  object of a day is delivered at most one buffer interval, 15 minutes, after it). It reads ``captured/raw/``
  and writes ``inputs/captured/`` only.

What a record holds and how the router buffers it: ``lambdas/search_router/router/capture.py``.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra.config import CAPTURE_BUFFER_MB, CAPTURE_BUFFER_SECONDS, AppConfig
from infra.lambda_factory import FunctionSpec, LambdaFactory
from infra.nag import acknowledge_resources
from search_router.contract.environment import CaptureCompactionEnvironment
from search_router.contract.layout import (
    CAPTURED,
    CAPTURED_INPUTS,
    CAPTURED_RAW,
    FIREHOSE_ERROR_PREFIX,
    FIREHOSE_RAW_PREFIX,
)
from search_router.router.settings import capture_environment

BUFFER_MB = CAPTURE_BUFFER_MB
BUFFER_SECONDS = CAPTURE_BUFFER_SECONDS
DELIVERY_LOG_STREAM = "S3Delivery"
COMPACTION_CRON = "cron(0 1 * * ? *)"  # 01:00 UTC every day
COMPACTION_TIMEOUT_SECONDS = 600
COMPACTION_MEMORY_MB = 1024


class QueryCapture(Construct):
    """The capture stream and the router's permission to write to it.

    Attributes: ``stream`` (the ``AWS::KinesisFirehose::DeliveryStream``), ``role`` (its delivery role),
    ``stream_arn``, ``compaction_function`` and ``schedule`` (the daily compaction).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: LambdaFactory,
        data_bucket: s3.IBucket,
        router_function: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._data_bucket = data_bucket
        self.log_group = logs.LogGroup(
            self,
            "DeliveryLogs",
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_group_resource = self.log_group.node.default_child
        assert isinstance(log_group_resource, logs.CfnLogGroup)
        log_group_resource.retention_in_days = config.log_retention_days
        log_stream = logs.LogStream(
            self,
            "DeliveryLogStream",
            log_group=self.log_group,
            log_stream_name=DELIVERY_LOG_STREAM,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = self._delivery_role(log_stream)
        self.stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=data_bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=FIREHOSE_RAW_PREFIX,
                error_output_prefix=FIREHOSE_ERROR_PREFIX,
                compression_format="GZIP",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=BUFFER_SECONDS, size_in_m_bs=BUFFER_MB
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
            ),
        )
        # The role's policy must exist before Firehose checks it can write (CloudFormation creates in order).
        self.stream.node.add_dependency(self.role)
        self.stream_arn = self.stream.attr_arn
        self._grant_router(router_function)
        self.compaction_function = self._compaction(functions)
        self.schedule = self._schedule(self.compaction_function)

    def _delivery_role(self, log_stream: logs.LogStream) -> iam.Role:
        """The role Firehose assumes to deliver: this account's Firehose only, objects under ``captured/`` only."""
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="Amazon Data Firehose delivery of captured queries to captured/ of the data bucket",
        )
        objects = [self._data_bucket.arn_for_objects(f"{CAPTURED}*")]
        # The S3 destination's documented permissions (Firehose developer guide, "Grant Firehose access to an
        # Amazon S3 destination"), the object ones on captured/ only.
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"], resources=objects)
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self._data_bucket.bucket_arn],
            )
        )
        log_stream_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(iam.PolicyStatement(actions=["logs:PutLogEvents"], resources=[log_stream_arn]))
        acknowledge_resources(
            role,
            objects,
            "Firehose names each object at delivery (day prefix, stream name, timestamp, random suffix); the grant "
            "is limited to captured/ of this stack's data bucket.",
        )
        return role

    def _grant_router(self, function: lambda_.Function) -> None:
        """The router writes its capture batches to this stream, and nowhere else."""
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["firehose:PutRecordBatch"], resources=[self.stream.attr_arn])
        )
        for name, value in capture_environment(self.stream.ref, self._config.capture.redact_patterns).items():
            function.add_environment(name, value)

    def _compaction(self, functions: LambdaFactory) -> lambda_.Function:
        function = functions.create(
            self,
            "CompactCaptured",
            FunctionSpec(
                handler="search_router.handlers.compact_captured.handler",
                description="Compacts yesterday's captured queries into inputs/captured/<date>.jsonl (daily)",
                timeout_seconds=COMPACTION_TIMEOUT_SECONDS,
                memory_mb=COMPACTION_MEMORY_MB,
                environment=CaptureCompactionEnvironment(
                    channels=self._config.channels.to_json(), data_bucket=self._data_bucket.bucket_name
                ).to_environment(),
            ),
        )
        raw = [self._data_bucket.arn_for_objects(f"{CAPTURED_RAW}*")]
        compacted = [self._data_bucket.arn_for_objects(f"{CAPTURED_INPUTS}*")]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self._data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CAPTURED_RAW}*"]}},
            )
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=raw))
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=compacted))
        assert function.role is not None
        acknowledge_resources(
            function.role,
            [*raw, *compacted],
            "The compaction reads the objects Firehose named under captured/raw/ and writes one file per day under "
            "inputs/captured/ of this stack's data bucket; nothing else.",
        )
        return function

    def _schedule(self, function: lambda_.Function) -> scheduler.CfnSchedule:
        """EventBridge Scheduler, daily, invoking the compaction with ``{}`` (yesterday) through its own role."""
        return schedule(
            self,
            "CompactionSchedule",
            function,
            expression=COMPACTION_CRON,
            description="Daily compaction of captured queries (yesterday, UTC)",
            role_description="EventBridge Scheduler: invokes the daily compaction of captured queries",
        )


def schedule(
    scope: Construct,
    construct_id: str,
    function: lambda_.Function,
    *,
    expression: str,
    description: str,
    role_description: str,
    payload: str = "{}",
) -> scheduler.CfnSchedule:
    """An EventBridge Scheduler schedule (a ``cron(...)`` or ``rate(...)`` ``expression``, UTC) invoking
    ``function`` with ``payload`` (``{}``; it may hold Scheduler's context attributes such as
    ``<aws.scheduler.scheduled-time>``) through its own role (``ScheduleRole`` in ``scope``: this account's
    Scheduler only, ``lambda:InvokeFunction`` on that function only), three retries within an hour."""
    role = iam.Role(
        scope,
        "ScheduleRole",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
        ),
        description=role_description,
    )
    role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn]))
    return scheduler.CfnSchedule(
        scope,
        construct_id,
        description=description,
        schedule_expression=expression,
        schedule_expression_timezone="UTC",
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        target=scheduler.CfnSchedule.TargetProperty(
            arn=function.function_arn,
            role_arn=role.role_arn,
            input=payload,
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
            ),
        ),
    )
