"""Scheduled retraining (``retrain_schedule``, off by default; needs ``capture_queries``): EventBridge Scheduler
invokes the ScheduledRetraining function at the configured ``cron(...)`` or ``rate(...)`` expression (UTC) with
the scheduled time, and the function starts the pipeline on the captured queries with a production held-out sample,
or publishes to the notification topic why it did not (``lambdas/search_router/handlers/retrain.py``).

Least privilege: list ``inputs/captured/`` and ``retrain/`` only; read the compacted day files and the retraining
state; write the run's query files under ``inputs/retrain/`` and the decisions under ``retrain/``;
``states:StartExecution`` and ``states:ListExecutions`` on this stack's pipeline only; ``sns:Publish`` on the
notification topic only.
"""

from __future__ import annotations

import json

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.capture import schedule
from infra.config import AppConfig
from infra.lambda_factory import FunctionSpec, LambdaFactory
from infra.nag import acknowledge_resources
from infra.notifications import Notifications
from search_router.contract.environment import RetrainEnvironment
from search_router.contract.layout import CAPTURED_INPUTS, RETRAIN, RETRAIN_INPUTS, RETRAIN_STATE

HANDLER = "search_router.handlers.retrain.handler"
TIMEOUT_SECONDS = 300
MEMORY_MB = 1024
PAYLOAD = json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"})
"""The schedule's input: Scheduler puts in the time it invoked for, which names the execution."""


class ScheduledRetraining(Construct):
    """Attributes: ``function``, ``schedule``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: LambdaFactory,
        data_bucket: s3.IBucket,
        state_machine: sfn.IStateMachine,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        expression = config.retrain.schedule
        if expression is None:
            raise ValueError("ScheduledRetraining needs retrain_schedule")
        defaults = config.run_defaults
        self.function = functions.create(
            self,
            "ScheduledRetraining",
            FunctionSpec(
                handler=HANDLER,
                description="Starts the pipeline on the captured queries, or says why not (retrain_schedule)",
                timeout_seconds=TIMEOUT_SECONDS,
                memory_mb=MEMORY_MB,
                environment=RetrainEnvironment(
                    channels=config.channels.to_json(),
                    data_bucket=data_bucket.bucket_name,
                    stack_name=config.stack_name,
                    state_machine_arn=state_machine.state_machine_arn,
                    topic_arn=notifications.topic.topic_arn,
                    min_new_queries=config.retrain.min_new_queries,
                    heldout_queries=config.retrain.heldout_queries,
                    max_training_queries=defaults.total_queries,
                ).to_environment(),
            ),
        )
        self._grant(data_bucket, state_machine)
        notifications.grant_publish(self.function)
        self.schedule = self._schedule(expression)

    def _grant(self, bucket: s3.IBucket, state_machine: sfn.IStateMachine) -> None:
        function = self.function
        read = [bucket.arn_for_objects(f"{CAPTURED_INPUTS}*"), bucket.arn_for_objects(RETRAIN_STATE)]
        written = [bucket.arn_for_objects(f"{RETRAIN_INPUTS}*"), bucket.arn_for_objects(f"{RETRAIN}*")]
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CAPTURED_INPUTS}*", f"{RETRAIN}*"]}},
            )
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=read))
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=written))
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution", "states:ListExecutions"],
                resources=[state_machine.state_machine_arn],
            )
        )
        assert function.role is not None
        acknowledge_resources(
            function.role,
            [*read, *written],
            "The scheduled retraining reads the compacted day files under inputs/captured/ and its state, and "
            "writes the run's query files under inputs/retrain/ and its decisions under retrain/ of this stack's "
            "data bucket; nothing else.",
        )

    def _schedule(self, expression: str) -> scheduler.CfnSchedule:
        return schedule(
            self,
            "Schedule",
            self.function,
            expression=expression,
            description="Scheduled retraining on captured queries (retrain_schedule)",
            role_description="EventBridge Scheduler: invokes the scheduled retraining",
            payload=PAYLOAD,
        )
