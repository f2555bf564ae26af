"""One place for Lambda defaults: runtime, architecture, JSON logging, tracing, log retention, Powertools.

Packaging is Docker-free: every function ships the same plain asset, the ``lambdas/`` folder (the
one package ``search_router``: handlers, domain, adapters). Powertools for AWS Lambda (Python) v3, with its
pydantic and X-Ray extras, comes from the AWS-managed public layer pinned in configuration; the exact boto3 and
botocore the tests validate against come from the SDK layer (``infra/layers.py``), on every function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import LAMBDAS_DIR
from infra.config import LOG_RETENTION_DAYS, AppConfig, ConfigError
from infra.layers import charts_layer_dir, sdk_layer_dir
from infra.nag import acknowledge, acknowledge_wildcards
from search_router.contract.environment import CommonEnvironment

ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache", "**/.ruff_cache"]
# Lambda rejects functions whose environment variables exceed 4 KB in total.
MAX_ENVIRONMENT_BYTES = 4096

_RUNTIMES = {"python3.12": lambda_.Runtime.PYTHON_3_12, "python3.13": lambda_.Runtime.PYTHON_3_13}
# CloudWatch Logs' allowed retention periods, in the order aws_logs.RetentionDays lists them.
_RETENTION = dict(zip(LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True))
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


HANDLERS_PACKAGE = "search_router.handlers"


def service_name(handler: str) -> str:
    """The Powertools service name of a function: its handler module's name (``preflight`` for
    ``search_router.handlers.preflight.handler``)."""
    module, _, _ = handler.rpartition(".")
    package, _, name = module.rpartition(".")
    if package != HANDLERS_PACKAGE or not name:
        raise ValueError(f"handler {handler!r} is not a function of {HANDLERS_PACKAGE}")
    return name


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between functions. ``handler`` is ``search_router.handlers.<module>.<function>``."""

    handler: str
    description: str
    timeout_seconds: int = 30
    memory_mb: int = 256
    environment: Mapping[str, str] | None = None
    reserved_concurrency: int | None = None
    snap_start: bool = False  # SnapStart on published versions (Lambda snapshots the init of each version)


class LambdaFactory(Construct):
    """Creates functions with the project's defaults. Construct it once per stack and share it."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.code = lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ASSET_EXCLUDES)
        self.powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "PowertoolsLayer", config.powertools_layer_arn
        )
        self.runtime = _RUNTIMES[config.python_runtime]
        self.architecture = _ARCHITECTURES[config.lambda_architecture]
        self._charts_layer: lambda_.ILayerVersion | None = None
        self.sdk_layer = lambda_.LayerVersion(
            self,
            "SdkLayer",
            code=lambda_.Code.from_asset(
                str(sdk_layer_dir(config.python_runtime, config.lambda_architecture)), exclude=[".requirements"]
            ),
            compatible_runtimes=[self.runtime],
            compatible_architectures=[self.architecture],
            description="The pinned boto3 and botocore the functions are tested with (pip --platform, no Docker)",
        )

    @property
    def charts_layer(self) -> lambda_.ILayerVersion:
        """matplotlib for the report function, installed for the Lambda platform with pip (no Docker)."""
        if self._charts_layer is None:
            path = charts_layer_dir(self._config.python_runtime, self._config.lambda_architecture)
            self._charts_layer = lambda_.LayerVersion(
                self,
                "ChartsLayer",
                code=lambda_.Code.from_asset(str(path), exclude=[".requirements"]),
                compatible_runtimes=[self.runtime],
                compatible_architectures=[self.architecture],
                description="matplotlib for report charts (pip --platform, no Docker)",
            )
        return self._charts_layer

    def base_environment(self, service: str) -> dict[str, str]:
        return {
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": Stack.of(self).stack_name,
            **CommonEnvironment(channels=self._config.channels.to_json()).to_environment(),
        }

    def create(self, scope: Construct, construct_id: str, spec: FunctionSpec) -> lambda_.Function:
        service = service_name(spec.handler)
        environment = {**self.base_environment(service), **(spec.environment or {})}
        _check_environment_size(environment)
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=_RETENTION[self._config.log_retention_days],
            removal_policy=RemovalPolicy.DESTROY,
        )
        # A role per function, with log permissions for its own log group only (no managed policies).
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{spec.description} (function role)",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        function = lambda_.Function(
            scope,
            construct_id,
            role=role,
            description=spec.description,
            runtime=self.runtime,
            architecture=self.architecture,
            code=self.code,
            handler=spec.handler,
            layers=[self.powertools_layer, self.sdk_layer],
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            reserved_concurrent_executions=spec.reserved_concurrency,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if spec.snap_start else None,
        )
        acknowledge_wildcards(
            role,
            ["Resource::*"],
            "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions; "
            "tests allow '*' only for these actions.",
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            f"Runtime pinned by configuration (python_runtime={self._config.python_runtime}) to match the pinned "
            "Powertools public layer, which is published per Python version; raise both together.",
        )
        return function


def _check_environment_size(environment: Mapping[str, str]) -> None:
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in environment.items() if not _is_token(v))
    if size > MAX_ENVIRONMENT_BYTES:
        raise ConfigError(
            "channels",
            f"the Lambda environment would be {size} bytes (limit {MAX_ENVIRONMENT_BYTES}); shorten channel "
            "descriptions or examples",
        )


def _is_token(value: object) -> bool:
    return isinstance(value, str) and "${Token[" in value
