"""What the project's state machines share: an ASL file with ``${...}`` substitutions for the Lambda tasks and
named retry policies (expanded at synth by :mod:`infra.asl`, so the deployed definition is complete ASL), logs
to a ``/aws/vendedlogs/states/`` group, X-Ray tracing, invoke rights on exactly their tasks, and an alarm on
executions that ended badly; and the IAM statements that find, stop and delete the pipeline's run-time Bedrock
resources (the stack-delete cleanup and the compensation of failed runs)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import asl
from infra.bedrock_arns import tagged_by
from infra.nag import acknowledge_resources

ALARM_PERIOD = Duration.minutes(5)
# Bedrock List actions have no resource-level permissions (Service Authorization Reference: no resource type).
BEDROCK_LIST_ACTIONS = [
    "bedrock:ListModelCustomizationJobs",
    "bedrock:ListEvaluationJobs",
    "bedrock:ListModelInvocationJobs",
    "bedrock:ListCustomModelDeployments",
    "bedrock:ListCustomModels",
]
DESTRUCTIVE_ACTIONS = [
    "bedrock:StopModelCustomizationJob",
    "bedrock:StopEvaluationJob",
    "bedrock:StopModelInvocationJob",
    "bedrock:DeleteCustomModelDeployment",
    "bedrock:DeleteCustomModel",
]


def task_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    definition_file: Path,
    tasks: Mapping[str, lambda_.IFunction],
    log_group_name: str,
    comment: str,
    state_machine_name: str | None = None,
) -> tuple[sfn.StateMachine, logs.LogGroup]:
    """The state machine of ``definition_file`` whose ``${<name>}`` placeholders are the ARNs of ``tasks``.

    The definition is deployed inline, with its retry policies expanded: the template carries exactly what
    ``python -m infra.asl <definition_file>`` prints, and Step Functions (and its console) the complete ASL."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        log_group_name=log_group_name,
        retention=logs.RetentionDays.SIX_MONTHS,
        removal_policy=RemovalPolicy.DESTROY,
    )
    machine = sfn.StateMachine(
        scope,
        construct_id,
        state_machine_name=state_machine_name,
        comment=comment,
        definition_body=sfn.DefinitionBody.from_string(asl.render(asl.expand_file(definition_file))),
        definition_substitutions={name: function.function_arn for name, function in tasks.items()},
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
    )
    machine.add_to_role_policy(
        iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=sorted({f.function_arn for f in tasks.values()})
        )
    )
    acknowledge_resources(
        machine.role,
        ["*"],
        "CloudWatch Logs delivery and X-Ray APIs used by the state machine support no resource-level "
        "permissions; tests allow '*' only for those actions.",
    )
    return machine, log_group


def ended_badly_alarm(
    scope: Construct, construct_id: str, machine: sfn.StateMachine, description: str
) -> cloudwatch.Alarm:
    """An alarm when any execution of ``machine`` failed, timed out or was aborted within five minutes."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=cloudwatch.MathExpression(
            expression="failed + timedout + aborted",
            using_metrics={
                "failed": machine.metric_failed(period=ALARM_PERIOD),
                "timedout": machine.metric_timed_out(period=ALARM_PERIOD),
                "aborted": machine.metric_aborted(period=ALARM_PERIOD),
            },
            period=ALARM_PERIOD,
        ),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


def runtime_resource_arns() -> dict[str, str]:
    """The run-time Bedrock resource types of this account and Region (ids are created at run time)."""
    bedrock = f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}"
    return {
        "jobs": f"{bedrock}:model-customization-job/*",
        "evaluations": f"{bedrock}:evaluation-job/*",
        "batch_jobs": f"{bedrock}:model-invocation-job/*",
        "deployments": f"{bedrock}:custom-model-deployment/*",
        "models": f"{bedrock}:custom-model/*",
    }


def runtime_resource_statements(scope: Construct) -> list[iam.PolicyStatement]:
    """Find the stack's run-time Bedrock resources by their tags, read their status, stop and delete them: the
    destructive actions only on what carries ``stack=<this stack>`` (IAM enforces it)."""
    arns = runtime_resource_arns()
    every = [arns["jobs"], arns["evaluations"], arns["batch_jobs"], arns["deployments"], arns["models"]]
    return [
        iam.PolicyStatement(sid="ListRuntimeResources", actions=BEDROCK_LIST_ACTIONS, resources=["*"]),
        iam.PolicyStatement(sid="ReadRuntimeTags", actions=["bedrock:ListTagsForResource"], resources=every),
        iam.PolicyStatement(
            sid="ReadJobs",
            actions=["bedrock:GetModelCustomizationJob", "bedrock:GetEvaluationJob", "bedrock:GetModelInvocationJob"],
            resources=[arns["jobs"], arns["evaluations"], arns["batch_jobs"]],
        ),
        iam.PolicyStatement(
            sid="StopAndDeleteTheStacksOwn",
            actions=DESTRUCTIVE_ACTIONS,
            resources=every,
            conditions=tagged_by(Stack.of(scope).stack_name),
        ),
    ]
