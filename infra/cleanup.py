"""Cleanup on destroy: a custom resource that removes the run-time Bedrock resources of this stack.

There is no CloudFormation resource for custom models, customization jobs, evaluation jobs or custom model
deployments, so ``cdk destroy`` would leave them (and a deployment keeps billing). This construct adds a
Provider-framework custom resource (``lambdas/search_router/handlers/cleanup.py``) whose Delete stops the pipeline's
executions and jobs and deletes the deployments, then the models, that carry ``stack=<stack name>``.

**Deletion order.** The custom resource depends on the state machine (which depends on every task
function), so CloudFormation deletes it *first*: nothing can start a new job while the cleanup runs, and the
cleanup's own functions, roles and the Provider (which the resource references) are deleted only after it.

**Time limits.** ``is_complete`` is polled every :data:`QUERY_INTERVAL`; it gives up at its own deadline
(:data:`HANDLER_DEADLINE`), before the Provider's total timeout and CloudFormation's custom-resource timeout,
with a DELETE_FAILED reason that lists the ARNs left and how to remove them. A retried ``cdk destroy``
continues the cleanup; nothing blocks forever.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.config import AppConfig
from infra.lambda_factory import FunctionSpec, LambdaFactory
from infra.nag import acknowledge, acknowledge_resources, acknowledge_wildcards
from infra.pipeline import STEPS
from infra.state_machines import runtime_resource_arns, runtime_resource_statements

QUERY_INTERVAL = Duration.seconds(30)
HANDLER_DEADLINE = Duration.minutes(45)  # is_complete fails with the list of leftovers at this point ...
TOTAL_TIMEOUT = Duration.minutes(50)  # ... before the Provider gives up with a bare "Operation timed out" ...
SERVICE_TIMEOUT = Duration.minutes(55)  # ... and before CloudFormation stops waiting (at most one hour).
IS_COMPLETE_TIMEOUT_SECONDS = 300

# Pipeline tasks that create Bedrock resources. After an execution is stopped, such a task may still be running;
# the cleanup waits out its timeout (plus a margin) before it trusts that nothing new will appear.
RESOURCE_CREATING_HANDLERS = (
    "search_router.handlers.distillation.start",
    "search_router.handlers.deployment.start",
    "search_router.handlers.judge.start",
)
SETTLE_MARGIN_SECONDS = 30


def settle_seconds() -> int:
    """How long after the last stopped execution a new resource may still appear."""
    timeouts = {step.handler: step.timeout_seconds for step in STEPS}
    missing = [h for h in RESOURCE_CREATING_HANDLERS if h not in timeouts]
    if missing:
        raise ValueError(f"cleanup expects pipeline steps {missing}; update RESOURCE_CREATING_HANDLERS")
    return max(timeouts[h] for h in RESOURCE_CREATING_HANDLERS) + SETTLE_MARGIN_SECONDS


class RuntimeResourceCleanup(Construct):
    """The cleanup custom resource, its two functions and the Provider framework that drives them.

    Attributes: ``resource`` (the custom resource), ``on_event_function``, ``is_complete_function``, ``provider``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: LambdaFactory,
        state_machine: sfn.StateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.on_event_function = functions.create(
            self,
            "OnEvent",
            FunctionSpec(
                handler="search_router.handlers.cleanup.on_event",
                description="Cleanup custom resource: starts the removal of run-time resources on stack delete",
                timeout_seconds=30,
            ),
        )
        self.is_complete_function = functions.create(
            self,
            "IsComplete",
            FunctionSpec(
                handler="search_router.handlers.cleanup.is_complete",
                description="Cleanup custom resource: stops and deletes this stack's run-time Bedrock resources",
                timeout_seconds=IS_COMPLETE_TIMEOUT_SECONDS,
            ),
        )
        self._grant(self.is_complete_function, state_machine)

        self.provider = self._provider(config)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::RuntimeResourceCleanup",
            properties={
                "StackName": stack.stack_name,  # the value of the `stack` tag the pipeline puts on what it creates
                "StateMachineArn": state_machine.state_machine_arn,
                "SettleSeconds": settle_seconds(),
                "DeadlineSeconds": int(HANDLER_DEADLINE.to_seconds()),
            },
            service_timeout=SERVICE_TIMEOUT,
        )
        # Deleted before the state machine (and, through it, before every task function).
        self.resource.node.add_dependency(state_machine)

    # ------------------------------------------------------------------------------------------------------
    def _grant(self, function: lambda_.Function, state_machine: sfn.StateMachine) -> None:
        role = function.role
        assert role is not None
        arns = runtime_resource_arns()
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        statements = [
            *runtime_resource_statements(self),
            iam.PolicyStatement(
                sid="ListExecutions", actions=["states:ListExecutions"], resources=[state_machine.state_machine_arn]
            ),
            iam.PolicyStatement(sid="StopExecutions", actions=["states:StopExecution"], resources=[executions]),
            iam.PolicyStatement(
                sid="ReadStackStatus", actions=["cloudformation:DescribeStacks"], resources=[Stack.of(self).stack_id]
            ),
        ]
        for statement in statements:
            function.add_to_role_policy(statement)
        acknowledge_resources(
            role,
            [*arns.values(), executions],
            "The pipeline creates these jobs, models, deployments and executions at run time, so their ids are "
            "unknown at deploy; stopping and deleting them needs aws:ResourceTag/stack = this stack's name (IAM "
            "enforces it), and the function also checks the tag itself before acting.",
        )
        # Replaces the factory's X-Ray reason for this role: its '*' also carries the Bedrock List actions.
        acknowledge_wildcards(
            role,
            ["Resource::*"],
            "X-Ray PutTraceSegments/PutTelemetryRecords and the Bedrock List actions (ListCustomModels, "
            "ListCustomModelDeployments, ListModelCustomizationJobs, ListEvaluationJobs, ListModelInvocationJobs) "
            "support no resource-level "
            "permissions; tests allow '*' only for these actions.",
        )

    def _provider(self, config: AppConfig) -> cr.Provider:
        framework_logs = logs.LogGroup(self, "ProviderLogs", removal_policy=RemovalPolicy.DESTROY)
        resource = framework_logs.node.default_child
        assert isinstance(resource, logs.CfnLogGroup)
        resource.retention_in_days = config.log_retention_days

        def framework_role(role_id: str, description: str) -> iam.Role:
            # Own roles (no AWSLambdaBasicExecutionRole managed policy): logs only to the Provider's log group.
            role = iam.Role(
                self, role_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[framework_logs.log_group_arn]
                )
            )
            return role

        on_event_role = framework_role("FrameworkOnEventRole", "Cleanup provider framework: onEvent")
        waiter_role = framework_role("FrameworkWaiterRole", "Cleanup provider framework: isComplete and onTimeout")
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.on_event_function,
            is_complete_handler=self.is_complete_function,
            query_interval=QUERY_INTERVAL,
            total_timeout=TOTAL_TIMEOUT,
            log_group=framework_logs,
            framework_on_event_role=on_event_role,
            framework_complete_and_timeout_role=waiter_role,
            # Logging the waiter would grant logs:CreateLogStream/PutLogEvents on "*" (the Provider's policy).
            disable_waiter_state_machine_logging=True,
        )
        self._acknowledge_provider(provider, on_event_role, waiter_role)
        return provider

    def _acknowledge_provider(self, provider: cr.Provider, *framework_roles: iam.Role) -> None:
        """The Provider framework's own findings, acknowledged on each construct that raises them."""
        versions = (
            "The Provider framework invokes the cleanup functions by ARN and grants every version/alias "
            "(<function ARN>:*) of exactly those functions; no other function is invocable."
        )
        for role in framework_roles:
            acknowledge_resources(
                role,
                [f"{self.on_event_function.function_arn}:*", f"{self.is_complete_function.function_arn}:*"],
                versions,
            )
        waiter = provider.node.find_child("waiter-state-machine")
        framework = [provider.node.find_child(f"framework-{name}") for name in ("isComplete", "onTimeout")]
        acknowledge_resources(
            waiter.node.find_child("Role"),
            [f"{function.function_arn}:*" for function in framework if isinstance(function, lambda_.Function)],
            versions,
        )
        acknowledge(
            waiter,
            "AwsSolutions-SF1",
            "The Provider's waiter only retries the isComplete function until it answers; every poll is logged by "
            "the cleanup functions (JSON logs, retention) and the framework functions. Its own logging would "
            "grant logs:CreateLogStream/PutLogEvents on '*'.",
        )
        acknowledge(
            waiter,
            "AwsSolutions-SF2",
            "The Provider framework does not expose X-Ray for its waiter state machine; the cleanup functions it "
            "invokes are traced with X-Ray.",
        )
