"""What every command needs from its surroundings, created lazily and injectable for tests.

- :class:`Terminal`: output streams (and the rich console drawing on ``out``), the confirmation prompt, the
  clock and ``sleep`` (so ``status --watch`` can be driven by a test clock).
- :class:`App`: the validated ``cdk.json`` configuration, the boto3 session for the stack's Region, clients
  with explicit timeouts, and the stack's CloudFormation outputs (:class:`StackOutputs`), which is how every
  resource is found: nothing is looked up by a hard-coded name.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from rich.console import Console, RenderableType

import infra  # noqa: F401  (puts lambdas/ on sys.path: the CLI reuses the shared domain package)
from cli import text as rendering
from cli.errors import NotFoundError, UsageError
from infra.config import AppConfig, ConfigError, load_config

# Interactive tool: fail within seconds rather than minutes, but ride out throttling.
CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 6, "mode": "standard"})
# Per service, on top: S3 pre-signs with SigV4 (`report --link`), not the legacy SigV2 query string.
SERVICE_CONFIG: Mapping[str, Config] = {"s3": Config(signature_version="s3v4")}

# The stack's CloudFormation outputs (infra/stack.py, infra/routing_api.py).
OUTPUT_BUCKET = "DataBucketName"
OUTPUT_STATE_MACHINE = "StateMachineArn"
OUTPUT_TOPIC = "NotificationTopicArn"
OUTPUT_ROUTE_URL = "RouteUrl"
OUTPUT_MODEL_PARAMETER = "RouterModelParameterName"
OUTPUT_API_KEY_ID = "RouteApiKeyId"
# Optional: the defaults the pipeline was deployed with (JSON). Used when present, else cdk.json's.
OUTPUT_PIPELINE_DEFAULTS = "PipelineDefaults"
# The doctor reads the deployed models from this function's environment, and compares the account's API Gateway
# logging role with the one the stack created (only with api_gateway_cloudwatch_role=create).
OUTPUT_PREFLIGHT_FUNCTION = "PreflightFunctionName"
OUTPUT_API_GATEWAY_ROLE = "ApiGatewayCloudWatchRoleArn"

_USABLE_STATUSES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
)
_BUSY_STATUSES = frozenset({"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stdin_is_interactive() -> bool:
    return bool(sys.stdin) and sys.stdin.isatty()


@dataclass
class Terminal:
    """Where output goes, how a confirmation is read, and what time it is."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    read_line: Callable[[str], str] = input
    interactive: Callable[[], bool] = _stdin_is_interactive
    now: Callable[[], datetime] = _utc_now
    sleep: Callable[[float], None] = time.sleep

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    @cached_property
    def console(self) -> Console:
        """rich, drawing on ``out``: colour and redraws on a terminal, plain text anywhere else."""
        return rendering.console(self.out)

    def show(self, *renderables: RenderableType) -> None:
        """Tables, bars and texts, drawn by rich (:func:`cli.text.show`)."""
        rendering.show(self.console, *renderables)

    def supports_unicode(self) -> bool:
        encoding = (getattr(self.out, "encoding", None) or "utf-8").lower().replace("-", "")
        return encoding in ("utf8", "utf16", "utf32")


@dataclass(frozen=True)
class StackOutputs:
    """The deployed stack's outputs, by key."""

    stack_name: str
    region: str
    status: str
    values: Mapping[str, str]

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def require(self, key: str) -> str:
        value = self.values.get(key)
        if not value:
            raise NotFoundError(
                f"stack {self.stack_name} ({self.status}) has no output {key}",
                hint="it was deployed by an older version of this project: run `make deploy` to update it",
            )
        return value

    @property
    def bucket(self) -> str:
        return self.require(OUTPUT_BUCKET)

    @property
    def state_machine_arn(self) -> str:
        return self.require(OUTPUT_STATE_MACHINE)

    @property
    def route_url(self) -> str:
        return self.require(OUTPUT_ROUTE_URL)

    @property
    def model_parameter(self) -> str:
        return self.require(OUTPUT_MODEL_PARAMETER)

    @property
    def api_key_id(self) -> str | None:
        return self.get(OUTPUT_API_KEY_ID)


def describe_stack_outputs(cloudformation: Any, stack_name: str, region: str) -> StackOutputs:
    """``DescribeStacks`` → :class:`StackOutputs`; a missing or unusable stack is a :class:`CliError`."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            raise NotFoundError(
                f"stack {stack_name} is not deployed in {region}",
                hint="deploy it with `make deploy`, or name the deployed one with --stack-name / --region",
            ) from None
        raise
    if not stacks:
        raise NotFoundError(f"stack {stack_name} is not deployed in {region}", hint="deploy it with `make deploy`")
    stack = stacks[0]
    status = stack.get("StackStatus", "UNKNOWN")
    if status not in _USABLE_STATUSES and status not in _BUSY_STATUSES:
        raise NotFoundError(
            f"stack {stack_name} in {region} is {status}, so its resources are not usable",
            hint="wait for it to finish, or fix and redeploy it with `make deploy`",
        )
    values = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    return StackOutputs(stack_name=stack_name, region=region, status=status, values=values)


class App:
    """Configuration, AWS session and stack outputs for one CLI invocation (all created on first use)."""

    def __init__(
        self,
        *,
        stack_name: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        terminal: Terminal | None = None,
        session: boto3.Session | None = None,
        clients: Mapping[str, Any] | None = None,
        config: AppConfig | None = None,
    ) -> None:
        self._stack_name = stack_name
        self._region = region
        self._profile = profile
        self.terminal = terminal or Terminal()
        self._session = session
        self._clients: dict[str, Any] = dict(clients or {})
        if config is not None:
            self.__dict__["config"] = config

    @cached_property
    def config(self) -> AppConfig:
        try:
            return load_config()
        except ConfigError as exc:
            raise UsageError(str(exc), hint="fix the value in cdk.json") from None

    @property
    def stack_name(self) -> str:
        return self._stack_name or self.config.stack_name

    @property
    def region(self) -> str:
        return self._region or self.config.region

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session(profile_name=self._profile, region_name=self.region)
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            config = CLIENT_CONFIG.merge(SERVICE_CONFIG[service]) if service in SERVICE_CONFIG else CLIENT_CONFIG
            self._clients[service] = self.session.client(service, region_name=self.region, config=config)
        return self._clients[service]

    @cached_property
    def outputs(self) -> StackOutputs:
        return describe_stack_outputs(self.client("cloudformation"), self.stack_name, self.region)


def jsii_quiet() -> None:
    """Keep Node.js's end-of-life banner out of the CLI's output when aws_cdk is imported."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
