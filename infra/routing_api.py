"""The routing API: ``POST /route`` on an authenticated, throttled, logged and traced REST API, the router
Lambda behind it, and the SSM parameter that names the promoted model.

- **Auth**: IAM (SigV4) by default; ``api_auth=api_key`` switches to an API key with a usage plan (the key's
  value never appears in the template or outputs: fetch it with ``aws apigateway get-api-key --include-value``).
- **Guards at the edge**: a JSON-schema request model with a body validator (400 naming the problem before the
  Lambda runs), stage throttling, optional WAF (``api_waf``), CORS only for configured origins.
- **Observability**: JSON access logs to a log group with retention, X-Ray tracing; execution logs only when
  ``api_execution_log_level`` is not OFF. Any stage logging (access logs included) needs the account-level API
  Gateway CloudWatch Logs role (``AWS::ApiGateway::Account``, one per account and Region): with
  ``api_gateway_cloudwatch_role=create`` (the default, so that a fresh account deploys) this construct creates
  that role and the account setting, both retained on destroy because every REST API of the account and Region
  logs through them; ``existing`` relies on the role the account already has (``python -m cli doctor`` tells).
- **Model switch without redeploy**: the router reads :attr:`RoutingApi.model_parameter` (JSON, see
  ``lambdas/search_router/router/model_source.py``); the pipeline's Promote step writes it. Its initial value names the
  configured default router model, so the endpoint answers right after ``cdk deploy``. Note: CloudFormation
  rewrites that initial value only when it changes (e.g. a new ``router_default_model_id``), which also
  replaces a promotion made since.
- **Least privilege**: the function may invoke only the configured router models (their inference profiles
  and foundation models) and this account's custom model deployments, and read only that parameter.
- **Cold start**: ``router_memory_mb`` (sized from ``benchmarks/cold_start.py``) and, optionally,
  ``router_snapstart``: SnapStart on published versions, the API calling the ``live`` alias of the current one.
- **Cost guard**: the function's settings carry the circuit breaker and the fallback cap (``router_breaker_*``,
  ``router_fallback_*``), the stack's partition, Region and account (a promoted ARN elsewhere is refused), and
  an optional reserved concurrency (``router_reserved_concurrency``), which both guarantees and caps it.
"""

from __future__ import annotations

import json
import math

from aws_cdk import Annotations, Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.bedrock_arns import invoke_resource_arns, tagged_by
from infra.config import AppConfig
from infra.lambda_factory import FunctionSpec, LambdaFactory
from infra.nag import acknowledge, acknowledge_resources, acknowledge_wildcards
from search_router.contract.layout import RunLayout
from search_router.contract.names import CORS_ALLOW_HEADERS
from search_router.contract.promotion import PromotionDocument
from search_router.router.settings import to_environment
from search_router.shared.prompts import PromptKind

STAGE_NAME = "v1"
LIVE_ALIAS = "live"  # with router_snapstart: the alias of the current published version, which the API calls
# Lambda timeout = the router's time budget + room for the SSM read and the response, in whole seconds.
ROUTER_TIMEOUT_HEADROOM_SECONDS = 3
# The gateway's length check is a coarse guard against huge bodies (it may count UTF-16 units); the exact
# limit (router_max_query_chars, in characters after trimming) is enforced by the function.
GATEWAY_QUERY_LENGTH_FACTOR = 4
WAF_RATE_WINDOW_SECONDS = 300
WAF_MIN_RATE_LIMIT = 100


def router_environment(
    config: AppConfig,
    model_parameter_name: str,
    *,
    partition: str = Aws.PARTITION,
    region: str = Aws.REGION,
    account_id: str = Aws.ACCOUNT_ID,
) -> dict[str, str]:
    """The router Lambda's settings as environment variables (validated again once per cold start).

    The partition, Region and account default to the stack's (tokens resolved at deploy): the router checks a
    promoted model ARN against them, and Lambda's environment does not name the account."""
    router = config.router
    return to_environment(
        model_parameter=model_parameter_name,
        default_model=router.default_model.to_dict(),
        fallback_models=[m.to_dict() for m in router.fallback_models],
        default_weights=router.default_weights,
        timeout_ms=router.timeout_ms,
        call_timeout_ms=router.call_timeout_ms,
        cache_size=router.cache_size,
        cache_ttl_seconds=router.cache_ttl_seconds,
        model_ttl_seconds=router.model_ttl_seconds,
        max_query_chars=router.max_query_chars,
        log_queries=router.log_queries,
        breaker_failures=router.breaker_failures,
        breaker_open_seconds=router.breaker_open_seconds,
        fallback_max_share=router.fallback_max_share,
        fallback_window_seconds=router.fallback_window_seconds,
        fallback_min_requests=router.fallback_min_requests,
        partition=partition,
        region=region,
        account_id=account_id,
        cors_origins=router.cors_origins,
    )


class RoutingApi(Construct):
    """API Gateway REST API + router Lambda + promoted-model parameter.

    Attributes: ``api``, ``function``, ``alias`` (``router_snapstart`` only: the ``live`` alias of the current
    version) and ``invoke_target`` (what the API calls: the alias or the function), ``model_parameter`` (give it
    to the pipeline's Promote step),
    ``access_logs``, ``route_url``, ``api_key`` (api_key mode only).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: LambdaFactory,
        data_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self._data_bucket = data_bucket
        router = config.router
        self._config = config

        self.model_parameter = ssm.StringParameter(
            self,
            "ModelParameter",
            parameter_name=f"/{config.stack_name}/router/promoted-model",
            description="Model the routing API calls (JSON); written by the pipeline's Promote step",
            string_value=PromotionDocument(
                model_id=router.default_model.model_id,
                prompt_kind=PromptKind(router.default_model.prompt_kind),
                channels=list(config.channels.names),
            ).to_parameter(),
            tier=ssm.ParameterTier.STANDARD,
        )

        self.function = functions.create(
            self,
            "RouterFunction",
            FunctionSpec(
                handler="search_router.handlers.router_api.lambda_handler",
                description="Routes a search query to channel weights (POST /route)",
                timeout_seconds=math.ceil(router.timeout_ms / 1000) + ROUTER_TIMEOUT_HEADROOM_SECONDS,
                memory_mb=router.memory_mb,
                environment=router_environment(config, self.model_parameter.parameter_name),
                # Optional (router_reserved_concurrency): guarantees the router this many concurrent executions
                # whatever else runs in the account, and is also its maximum (beyond it Lambda throttles).
                reserved_concurrency=router.reserved_concurrency,
                snap_start=router.snapstart,
            ),
        )
        # SnapStart applies to published versions only: the API then calls an alias of the current version (a
        # new version is published whenever the function's code or configuration changes).
        self.alias: lambda_.Alias | None = None
        if router.snapstart:
            self.alias = lambda_.Alias(
                self, "RouterLiveAlias", alias_name=LIVE_ALIAS, version=self.function.current_version
            )
        self.invoke_target: lambda_.IFunction = self.alias or self.function
        self._grant_model_access(self.function)
        self._check_reserved_concurrency()

        self.access_logs = logs.LogGroup(self, "AccessLogs", removal_policy=RemovalPolicy.DESTROY)
        access_logs_resource = self.access_logs.node.default_child
        assert isinstance(access_logs_resource, logs.CfnLogGroup)
        access_logs_resource.retention_in_days = config.log_retention_days

        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.stack_name}-routing",
            description="Search-intent routing: POST /route returns channel weights for a query",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
                logging_level=apigw.MethodLoggingLevel(router.execution_log_level),
                data_trace_enabled=False,  # would log request bodies, i.e. users' queries
            ),
        )
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={"application/json": '{"message": "Invalid request: $context.error.validationErrorString"}'},
        )
        request_model = self.api.add_model(
            "RouteRequestModel",
            content_type="application/json",
            model_name="RouteRequest",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                title="RouteRequest",
                type=apigw.JsonSchemaType.OBJECT,
                required=["query"],
                additional_properties=False,
                properties={
                    "query": apigw.JsonSchema(
                        type=apigw.JsonSchemaType.STRING,
                        min_length=1,
                        max_length=router.max_query_chars * GATEWAY_QUERY_LENGTH_FACTOR,
                    ),
                    "include_reasoning": apigw.JsonSchema(type=apigw.JsonSchemaType.BOOLEAN),
                },
            ),
        )
        body_validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )

        cors = (
            apigw.CorsOptions(
                allow_origins=list(router.cors_origins),
                allow_methods=["POST", "OPTIONS"],
                allow_headers=list(CORS_ALLOW_HEADERS),
            )
            if router.cors_origins
            else None
        )
        resource = self.api.root.add_resource("route", default_cors_preflight_options=cors)
        api_key_mode = config.api_auth == "api_key"
        self.route_method = resource.add_method(
            "POST",
            apigw.LambdaIntegration(self.invoke_target, allow_test_invoke=False),
            authorization_type=apigw.AuthorizationType.NONE if api_key_mode else apigw.AuthorizationType.IAM,
            api_key_required=api_key_mode,
            request_models={"application/json": request_model},
            request_validator=body_validator,
        )
        self.route_url = self.api.url_for_path("/route")
        self.api.node.try_remove_child("Endpoint")  # replaced by the RouteUrl output

        self.cloudwatch_role: iam.Role | None = None
        self.account_setting: apigw.CfnAccount | None = None
        if config.api_gateway_cloudwatch_role == "create":
            self._add_account_logging_role()

        self.api_key: apigw.IApiKey | None = None
        if api_key_mode:
            self._add_api_key()
        if router.waf:
            self._add_web_acl()
        self._acknowledge_findings(api_key_mode, cors_enabled=cors is not None, waf=router.waf)

        self._output("RouteUrl", self.route_url, "POST endpoint of the routing API")
        self._output("RouteApiId", self.api.rest_api_id, "Id of the routing REST API")
        self._output("RouterModelParameterName", self.model_parameter.parameter_name, "Promoted-model parameter")
        if self.api_key is not None:
            self._output("RouteApiKeyId", self.api_key.key_id, "API key id (value: aws apigateway get-api-key)")

    # ------------------------------------------------------------------------------------------------------
    def _check_reserved_concurrency(self) -> None:
        """A reservation below what the stage lets through turns the excess into 5xx: say so at synth."""
        router = self._config.router
        if router.reserved_concurrency is None:
            return
        needed = math.ceil(self._config.api_rate_limit * router.timeout_ms / 1000)
        if router.reserved_concurrency < needed:
            Annotations.of(self).add_warning_v2(
                "project:router-reserved-concurrency",
                f"router_reserved_concurrency={router.reserved_concurrency} is below api_rate_limit x "
                f"router_timeout_ms ({self._config.api_rate_limit:g}/s x {router.timeout_ms / 1000:g} s = {needed}): "
                "when the model is slow, requests beyond the reservation are throttled by Lambda and answered "
                "with a 5xx. Raise it, lower api_rate_limit, or leave it unset (null).",
            )

    def _grant_model_access(self, function: lambda_.Function) -> None:
        role = function.role
        assert role is not None
        # Every model call of the router is ConverseStream (the API reference: it needs
        # bedrock:InvokeModelWithResponseStream); the router never calls Converse, so no bedrock:InvokeModel.
        grant_models_in_service(function, self._config, ["bedrock:InvokeModelWithResponseStream"])
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[self.model_parameter.parameter_arn])
        )
        # The promoted micro-router: Promote's copy under promoted/micro-router/<run>/ (never a run's folder).
        promoted = RunLayout.any()
        micro_routers = [self._data_bucket.arn_for_objects(promoted.pattern(promoted.promoted_micro_router_prefix))]
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=micro_routers))
        acknowledge_resources(
            role,
            micro_routers,
            "Promoted micro-routers are named by run id, created at run time; the grant is read-only and limited to "
            "promoted/micro-router/ of this stack's data bucket.",
        )

    def _add_account_logging_role(self) -> None:
        """The account-level role API Gateway writes CloudWatch Logs with, and the account setting naming it.

        The same permissions as the AWS managed policy ``AmazonAPIGatewayPushToCloudWatchLogs``, but limited to
        this account and Region, in an inline policy so the retained role keeps them after ``cdk destroy`` (other
        REST APIs of the account may log through it by then). The stage is created only after the setting.
        """
        stack = Stack.of(self)
        log_groups = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
        log_streams = f"{log_groups}:log-stream:*"
        self.cloudwatch_role = iam.Role(
            self,
            "ApiGatewayCloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description=f"API Gateway CloudWatch Logs role of this account and Region (created by {stack.stack_name}; "
            "retained on destroy)",
            inline_policies={
                "PushToCloudWatchLogs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["logs:CreateLogGroup", "logs:DescribeLogStreams", "logs:FilterLogEvents"],
                            resources=[log_groups],
                        ),
                        iam.PolicyStatement(
                            actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"],
                            resources=[log_streams],
                        ),
                        iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=["*"]),
                    ]
                )
            },
        )
        self.cloudwatch_role.apply_removal_policy(RemovalPolicy.RETAIN)
        self.account_setting = apigw.CfnAccount(
            self, "AccountLoggingSetting", cloud_watch_role_arn=self.cloudwatch_role.role_arn
        )
        self.account_setting.apply_removal_policy(RemovalPolicy.RETAIN)
        self.api.deployment_stage.node.add_dependency(self.account_setting)
        self._output(
            "ApiGatewayCloudWatchRoleArn",
            self.cloudwatch_role.role_arn,
            "The account-level API Gateway logging role this stack created (retained on destroy)",
        )
        acknowledge_resources(
            self.cloudwatch_role,
            [log_groups, log_streams],
            "The account-level API Gateway logging role writes the execution and access logs of every REST API in "
            "this account and Region, whose log group names are not known here; limited to this account and Region.",
        )
        acknowledge_wildcards(
            self.cloudwatch_role,
            ["Resource::*"],
            "logs:DescribeLogGroups supports no resource-level permissions (Service Authorization Reference).",
        )

    def _add_api_key(self) -> None:
        self.api_key = self.api.add_api_key("ApiKey", description="Key for POST /route (api_auth=api_key)")
        plan = self.api.add_usage_plan(
            "UsagePlan",
            description="Throttles callers of POST /route",
            throttle=apigw.ThrottleSettings(
                rate_limit=self._config.api_rate_limit, burst_limit=self._config.api_burst_limit
            ),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        plan.add_api_key(self.api_key)

    def _add_web_acl(self) -> None:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        def managed(priority: int, name: str) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=visibility(name),
            )

        per_ip_limit = max(WAF_MIN_RATE_LIMIT, math.ceil(self._config.api_rate_limit * WAF_RATE_WINDOW_SECONDS))
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("RoutingApi"),
            rules=[
                managed(0, "AWSManagedRulesCommonRuleSet"),
                managed(1, "AWSManagedRulesKnownBadInputsRuleSet"),
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=2,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=per_ip_limit,
                            evaluation_window_sec=WAF_RATE_WINDOW_SECONDS,
                        )
                    ),
                    visibility_config=visibility("RatePerIp"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _acknowledge_findings(self, api_key_mode: bool, *, cors_enabled: bool, waf: bool) -> None:
        stage = self.api.deployment_stage
        if not waf:
            acknowledge(
                stage,
                "AwsSolutions-APIG3",
                "Every request is authenticated (SigV4 or API key) and throttled by the stage before any "
                "compute runs; a WebACL (set api_waf=true) adds a fixed monthly cost most deployments don't need.",
            )
        if self._config.router.execution_log_level == "OFF":
            acknowledge(
                stage,
                "AwsSolutions-APIG6",
                "JSON access logs (APIG1), X-Ray and the function's structured logs are on; execution logs are "
                "off by default (api_execution_log_level=OFF) because they may record request details; set ERROR "
                "or INFO to turn them on.",
            )
        acknowledge(
            self.route_method,
            "AwsSolutions-COG4",
            "Callers are AWS principals (IAM SigV4) or holders of an API key, not end users of a Cognito user pool.",
        )
        if api_key_mode:
            acknowledge(
                self.route_method,
                "AwsSolutions-APIG4",
                "api_auth=api_key was chosen in configuration: the method requires an API key and a usage "
                "plan throttles it; the default (api_auth=iam) uses IAM authorization.",
            )
        if cors_enabled:
            options = next(m for m in self.api.methods if m.http_method == "OPTIONS")
            for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    options,
                    rule,
                    "CORS preflight (OPTIONS) requests carry no credentials by the Fetch standard; the mock "
                    "integration only returns the allowed origins, methods and headers.",
                )

    def _output(self, name: str, value: str, description: str) -> None:
        output = CfnOutput(self, name, value=value, description=description)
        output.override_logical_id(name)


def grant_models_in_service(function: lambda_.Function, config: AppConfig, actions: list[str]) -> None:
    """``actions`` (an invoke action) on what the router can have in service: its configured models (default and
    fallbacks) and a promoted deployment of this stack. The router's grant, and the shadow replay's (which asks
    the model in service what the router would)."""
    role = function.role
    assert role is not None
    model_resources = sorted({arn for model in config.router.models for arn in invoke_resource_arns(model.model_id)})
    deployments = f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:custom-model-deployment/*"
    function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=model_resources))
    # A promoted deployment: only one this stack's pipeline created (IAM checks its stack tag), so a parameter
    # pointed at someone else's deployment cannot make the router call (and pay for) it.
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=actions, resources=[deployments], conditions=tagged_by(Stack.of(function).stack_name)
        )
    )
    acknowledge_resources(
        role,
        model_resources,
        "A cross-Region inference profile (us.*) routes to its foundation model in several Regions: the "
        "foundation-model ARN needs a Region wildcard; the model id itself is fixed.",
    )
    acknowledge_resources(
        role,
        [deployments],
        "Custom model deployment ids are created at run time by the pipeline and promoted through SSM; only "
        "invoke actions on deployments in this account and Region that carry aws:ResourceTag/stack = this "
        "stack's name (IAM enforces it).",
    )


def _access_log_format() -> apigw.AccessLogFormat:
    """One JSON object per request: who, what, how it ended, how long it took (never the body)."""
    field = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(
        json.dumps(
            {
                "requestId": field.context_request_id(),
                "extendedRequestId": field.context_extended_request_id(),
                "requestTime": field.context_request_time(),
                "ip": field.context_identity_source_ip(),
                "caller": field.context_identity_caller(),
                "user": field.context_identity_user(),
                "userArn": field.context_identity_user_arn(),
                "apiKeyId": field.context_identity_api_key_id(),
                "httpMethod": field.context_http_method(),
                "resourcePath": field.context_resource_path(),
                "protocol": field.context_protocol(),
                "status": field.context_status(),
                "responseLength": field.context_response_length(),
                "responseLatencyMs": field.context_response_latency(),
                "integrationLatencyMs": field.context_integration_latency(),
                "integrationStatus": field.context_integration_status(),
                "errorMessage": field.context_error_message(),
                "validationError": field.context_error_validation_error_string(),
                "xrayTraceId": field.context_xray_trace_id(),
                "userAgent": field.context_identity_user_agent(),
            }
        )
    )
