"""Compensation: a failed, timed-out or aborted pipeline execution leaves nothing billing, and is announced.

The pipeline has no catch-all (a redrive continues from the failed step), so its failures are handled here:

- an EventBridge rule on the pipeline's ``Step Functions Execution Status Change`` events (FAILED, TIMED_OUT,
  ABORTED) starts the **compensation state machine** (``stepfunctions/compensation.asl.json``), with a dead-letter
  queue for events it could not deliver;
- its Sweep task (``lambdas/search_router/handlers/compensate.py``) stops and deletes what the run created (tags
  ``stack`` and ``run-id``) unless the run set ``keep_failed_artifacts``, never the deployment the router serves, and
  polls until nothing is left; its Notify task (the pipeline's notify function) publishes the cause, what next, and
  what was removed, kept or left;
- a scheduled **reconcile** (hourly) starts the compensation of any recent failure no compensation claimed:
  EventBridge delivers Step Functions events on a best-effort basis.

Alarms (to the notification topic): a compensation that failed or left resources, and an event in the DLQ.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.cleanup import settle_seconds
from infra.config import AppConfig, pipeline_defaults
from infra.lambda_factory import FunctionSpec, LambdaFactory
from infra.nag import acknowledge, acknowledge_resources, acknowledge_wildcards
from infra.notifications import Notifications
from infra.state_machines import (
    ended_badly_alarm,
    runtime_resource_arns,
    runtime_resource_statements,
    task_state_machine,
)
from search_router.contract.environment import CompensationEnvironment
from search_router.contract.layout import RUNS, RunLayout

DEFINITION_FILE = Path(__file__).resolve().parent.parent / "stepfunctions" / "compensation.asl.json"
ENDED_BADLY = ["FAILED", "TIMED_OUT", "ABORTED"]
DETAIL_TYPE = "Step Functions Execution Status Change"
# The sweep gives up (and reports what is left) after this; the state machine's TimeoutSeconds is 4 h.
DEADLINE = Duration.hours(2)
RECONCILE_EVERY = Duration.hours(1)
EVENT_MAX_AGE = Duration.hours(24)
SWEEP_TIMEOUT_SECONDS = 120


def execution_status_pattern(state_machine_arn: str) -> events.EventPattern:
    """The pipeline's executions that ended badly (Step Functions sends these events to the default bus)."""
    return events.EventPattern(
        source=["aws.states"],
        detail_type=[DETAIL_TYPE],
        detail={"status": ENDED_BADLY, "stateMachineArn": [state_machine_arn]},
    )


class Compensation(Construct):
    """Attributes: ``state_machine``, ``sweep_function``, ``reconcile_function``, ``rule``, ``dead_letter_queue``,
    ``alarms``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: LambdaFactory,
        pipeline: sfn.StateMachine,
        notify_function: lambda_.IFunction,
        data_bucket: s3.IBucket,
        model_parameter: ssm.IStringParameter,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # A fixed name: the reconcile function starts this machine, and its ARN in that function's environment
        # must not depend on the machine (which depends on the functions it calls).
        machine_name = f"{stack.stack_name}-compensation"
        machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        environment = CompensationEnvironment(
            stack_name=stack.stack_name,
            state_machine_arn=pipeline.state_machine_arn,
            data_bucket=data_bucket.bucket_name,
            model_parameter=model_parameter.parameter_name,
            settle_seconds=settle_seconds(),
            deadline_seconds=int(DEADLINE.to_seconds()),
            pipeline_defaults=pipeline_defaults(config),
            compensation_state_machine_arn=machine_arn,
        ).to_environment()
        self.sweep_function = functions.create(
            self,
            "Sweep",
            FunctionSpec(
                handler="search_router.handlers.compensate.sweep",
                description="Stops and deletes what a failed, timed-out or aborted run created",
                timeout_seconds=SWEEP_TIMEOUT_SECONDS,
                environment=environment,
            ),
        )
        self.reconcile_function = functions.create(
            self,
            "Reconcile",
            FunctionSpec(
                handler="search_router.handlers.compensate.reconcile",
                description="Starts the compensation of recent failed runs whose status event was lost",
                timeout_seconds=120,
                environment=environment,
            ),
        )
        self._grant(pipeline, data_bucket, model_parameter, machine_arn)

        self.state_machine, _ = task_state_machine(
            self,
            "StateMachine",
            definition_file=DEFINITION_FILE,
            tasks={"SweepFunctionArn": self.sweep_function, "NotifyFunctionArn": notify_function},
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-compensation",
            comment="Compensates failed, timed-out and aborted pipeline runs (see stepfunctions/)",
            state_machine_name=machine_name,
        )

        # --- triggers --------------------------------------------------------------------------------------
        self.dead_letter_queue = sqs.Queue(
            self,
            "EventsDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the compensation rule's target (EventBridge keeps events it "
            "could not deliver here); a DLQ of its own would have nothing to receive.",
        )
        self.rule = events.Rule(
            self,
            "RunEndedBadly",
            description="A pipeline execution FAILED, TIMED_OUT or was ABORTED: compensate it",
            event_pattern=execution_status_pattern(pipeline.state_machine_arn),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    dead_letter_queue=self.dead_letter_queue,
                    max_event_age=EVENT_MAX_AGE,
                    retry_attempts=185,
                )
            ],
        )
        self.schedule = events.Rule(
            self,
            "ReconcileSchedule",
            description="Hourly: compensate recent failed runs whose status event was not delivered",
            schedule=events.Schedule.rate(RECONCILE_EVERY),
            targets=[targets.LambdaFunction(self.reconcile_function, retry_attempts=2)],
        )

        # --- alarms ---------------------------------------------------------------------------------------
        self.alarms = [
            ended_badly_alarm(
                self,
                "CompensationFailed",
                self.state_machine,
                "A failed pipeline run's compensation could not remove everything it created "
                "(the notification lists what is left and how to remove it)",
            ),
            cloudwatch.Alarm(
                self,
                "CompensationEventsUndelivered",
                alarm_description="EventBridge could not start the compensation of a failed run; the event is in "
                "the dead-letter queue (the hourly reconcile retries the compensation)",
                metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum"
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(notifications.alarm_action)

    def _grant(
        self,
        pipeline: sfn.StateMachine,
        data_bucket: s3.IBucket,
        model_parameter: ssm.IStringParameter,
        machine_arn: str,
    ) -> None:
        stack = Stack.of(self)
        arns = runtime_resource_arns()
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{pipeline.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        every = RunLayout.any()
        claims = data_bucket.arn_for_objects(every.pattern(every.compensation_prefix))
        sweep = self.sweep_function
        for statement in (
            *runtime_resource_statements(self),
            iam.PolicyStatement(
                sid="ReadTheRoutersDeployment",
                actions=["bedrock:GetCustomModelDeployment"],
                resources=[arns["deployments"]],
            ),
            iam.PolicyStatement(
                sid="ReadTheExecution",
                actions=["states:DescribeExecution", "states:GetExecutionHistory"],
                resources=[executions],
            ),
            iam.PolicyStatement(
                sid="ReadTheRoutersModel", actions=["ssm:GetParameter"], resources=[model_parameter.parameter_arn]
            ),
            iam.PolicyStatement(sid="ClaimTheFailure", actions=["s3:PutObject"], resources=[claims]),
        ):
            sweep.add_to_role_policy(statement)
        reconcile = self.reconcile_function
        for statement in (
            iam.PolicyStatement(
                sid="ListFailedRuns", actions=["states:ListExecutions"], resources=[pipeline.state_machine_arn]
            ),
            iam.PolicyStatement(sid="StartCompensation", actions=["states:StartExecution"], resources=[machine_arn]),
            # HeadObject needs s3:GetObject; s3:ListBucket makes a missing claim a 404 instead of a 403.
            iam.PolicyStatement(sid="ReadClaims", actions=["s3:GetObject"], resources=[claims]),
            iam.PolicyStatement(
                sid="ListClaims",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{RUNS}*"]}},
            ),
        ):
            reconcile.add_to_role_policy(statement)
        runtime = (
            "The pipeline creates these jobs, models and deployments at run time, so their ids are unknown at "
            "deploy; stopping and deleting them needs aws:ResourceTag/stack = this stack's name (IAM enforces it), "
            "and the function selects one run by its run-id tag."
        )
        acknowledge_resources(sweep.role, [*arns.values(), executions], runtime)  # type: ignore[arg-type]
        acknowledge_resources(
            sweep.role,  # type: ignore[arg-type]
            [claims],
            "Run ids are created at run time; the function writes only the compensation claim of a run.",
        )
        acknowledge_wildcards(
            sweep.role,  # type: ignore[arg-type]
            ["Resource::*"],
            "X-Ray PutTraceSegments/PutTelemetryRecords and the Bedrock List actions support no resource-level "
            "permissions; tests allow '*' only for these actions.",
        )
        acknowledge_resources(
            reconcile.role,  # type: ignore[arg-type]
            [claims],
            "Run ids are created at run time; the function reads only the compensation claims of runs.",
        )
