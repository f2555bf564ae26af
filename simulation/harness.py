"""Runs the synthesized state machine in moto's Step Functions interpreter with the real handlers.

What is real: the ASL definition (taken from the synthesized template, with CDK's substitutions resolved),
every Lambda handler (dispatched in-process by function ARN → ``Handler`` of that function in the template,
with that function's environment variables), S3/SNS/SSM (moto) and the Bedrock clients (the botocore-
validating :class:`simulation.bedrock_fake.BedrockFake`). What is not: Lambda's sandbox and IAM.

Used by the workflow tests and by ``make simulate``.
Call it inside ``moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda":
{"use_docker": False}})``, then route Lambda invokes to the handlers with :meth:`PipelineHarness.install`
(pytest's ``monkeypatch``) or the :meth:`PipelineHarness.installed` context manager.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.events.models import EventPattern

from infra.lambda_factory import HANDLERS_PACKAGE
from search_router.contract.environment import CompensationEnvironment
from simulation.synth import Synthesized

__all__ = [
    "ACCOUNT",
    "REGION",
    "Execution",
    "FakeLambdaContext",
    "FunctionInfo",
    "PipelineHarness",
    "TemplateResolver",
    "state_machine_definition",
]

ACCOUNT = "123456789012"
REGION = "us-east-1"
_ENV_LOCK = threading.RLock()

# Fn::GetAtt <resource>.Arn by resource type, from the resource's physical value (its Ref); a topic's and a state
# machine's Ref already is their ARN.
_ARN_OF_NAME: dict[str, Callable[[str], str]] = {
    "AWS::Lambda::Function": lambda name: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
    "AWS::IAM::Role": lambda name: f"arn:aws:iam::{ACCOUNT}:role/{name}",
    "AWS::S3::Bucket": lambda name: f"arn:aws:s3:::{name}",
    "AWS::SSM::Parameter": lambda name: f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name.removeprefix('/')}",
    "AWS::SNS::Topic": lambda name: name,
    "AWS::StepFunctions::StateMachine": lambda name: name,
    "AWS::Logs::LogGroup": lambda name: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
    "AWS::KMS::Key": lambda name: f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}",
    "AWS::SQS::Queue": lambda name: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
    "AWS::KinesisFirehose::DeliveryStream": lambda name: f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}",
}


@dataclass
class FunctionInfo:
    logical_id: str
    arn: str
    handler: str
    timeout_s: int
    environment: dict[str, str]


class FakeLambdaContext:
    """The attributes Powertools and the handlers read from a Lambda context."""

    def __init__(self, info: FunctionInfo) -> None:
        self.function_name = info.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = info.arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{info.logical_id}"
        self.log_stream_name = "test"
        self._deadline = time.monotonic() + info.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class TemplateResolver:
    """Resolves the CloudFormation intrinsics CDK emits (Ref, Fn::GetAtt, Fn::Join) to moto-side names."""

    def __init__(self, template: dict[str, Any], physical: dict[str, str]) -> None:
        self.template = template
        self.physical = physical  # logical id → physical name/ARN (what Ref returns)

    @classmethod
    def for_template(cls, template: dict[str, Any]) -> TemplateResolver:
        """Every resource named the way :class:`PipelineHarness` creates it in moto (what ``Ref`` returns)."""
        physical: dict[str, str] = {}
        for logical_id, resource in template["Resources"].items():
            kind = resource["Type"]
            props = resource.get("Properties", {})
            if kind == "AWS::S3::Bucket":
                physical[logical_id] = f"test-{logical_id.lower()}"[:63]
            elif kind == "AWS::SNS::Topic":
                physical[logical_id] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical_id}"
            elif kind == "AWS::Lambda::LayerVersion":
                physical[logical_id] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{logical_id}:1"
            elif kind == "AWS::StepFunctions::StateMachine":
                physical[logical_id] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical_id}"
            elif kind == "AWS::SSM::Parameter":
                physical[logical_id] = props.get("Name") or f"/test/{logical_id}"
            elif kind == "AWS::Logs::LogGroup" and isinstance(props.get("LogGroupName"), str):
                physical[logical_id] = props["LogGroupName"]
            else:  # functions, roles, keys ...: named after their logical id
                physical[logical_id] = logical_id
        resolver = cls(template, physical)
        for logical_id, resource in template["Resources"].items():  # named ones, once names can be resolved
            name = resource.get("Properties", {}).get("StateMachineName")
            if resource["Type"] == "AWS::StepFunctions::StateMachine" and name is not None:
                physical[logical_id] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{resolver.resolve(name)}"
        return resolver

    STACK_NAME = "test-stack"
    STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/test-stack/00000000-0000-4000-8000-000000000000"

    def ref(self, logical_id: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.STACK_NAME,
            "AWS::StackId": self.STACK_ID,
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id in self.physical:
            return self.physical[logical_id]
        raise KeyError(f"no physical value for Ref {logical_id}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = self.template["Resources"][logical_id]["Type"]
        name = self.ref(logical_id)
        if attribute == "Arn" and resource_type in _ARN_OF_NAME:
            return _ARN_OF_NAME[resource_type](name)
        if attribute == "Name" and resource_type == "AWS::StepFunctions::StateMachine":
            return name.rsplit(":", 1)[-1]
        raise KeyError(f"no value for Fn::GetAtt {logical_id}.{attribute} ({resource_type})")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value:
                return self.ref(value["Ref"])
            if "Fn::GetAtt" in value:
                return self.get_att(*value["Fn::GetAtt"])
            if "Fn::Join" in value:
                separator, parts = value["Fn::Join"]
                return separator.join(str(self.resolve(p)) for p in parts)
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


class PipelineHarness:
    """Creates moto resources named after the template, the state machine, and routes Lambda invokes."""

    def __init__(self, synthesized: Synthesized) -> None:
        self.synthesized = synthesized
        template = synthesized.template
        resources = template["Resources"]
        self.resolver = TemplateResolver.for_template(template)
        physical = self.resolver.physical
        s3 = boto3.client("s3", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::S3::Bucket":
                s3.create_bucket(Bucket=physical[logical_id])
            elif resource["Type"] == "AWS::SNS::Topic":
                arn = sns.create_topic(Name=logical_id)["TopicArn"]
                if arn != physical[logical_id]:
                    raise AssertionError(f"moto named topic {logical_id} {arn}, not {physical[logical_id]}")
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::SSM::Parameter":
                props = self.resolver.resolve(resource["Properties"])
                ssm.put_parameter(Name=physical[logical_id], Value=props["Value"], Type=props.get("Type", "String"))

        self.functions: dict[str, FunctionInfo] = {}
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Lambda::Function" or "Handler" not in resource["Properties"]:
                continue
            props = resource["Properties"]
            if not _is_project_handler(props["Handler"]):
                continue  # CDK's own providers (e.g. bucket auto-delete) run only on stack deletion
            env = self.resolver.resolve(props.get("Environment", {}).get("Variables", {}))
            info = FunctionInfo(
                logical_id=logical_id,
                arn=self.resolver.get_att(logical_id, "Arn"),
                handler=props["Handler"],
                timeout_s=int(props.get("Timeout", 3)),
                environment={k: str(v) for k, v in env.items()},
            )
            self.functions[logical_id] = info
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        # (handler, errorType) of every invocation that failed: a Distributed Map's child executions keep their
        # task failures out of the parent's history.
        self.function_errors: list[tuple[str, str]] = []
        # Called around every handler invocation with the function's logical id (e.g. to attribute AWS calls).
        self.on_invoke: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None
        # Called before every handler invocation with (handler, event): fault injection (stop the execution ...).
        self.before_invoke: list[Callable[[str, dict[str, Any]], None]] = []
        self.bucket = self._physical_of(synthesized.stack.storage.data_bucket)
        self.topic_arn = physical[self._logical_id(synthesized.stack.notifications.topic)]

        # The pipeline's own state machine (the stack may hold others, e.g. a custom-resource provider's waiter).
        sm_id = self._logical_id(synthesized.stack.pipeline.state_machine)
        definition = self._definition(resources[sm_id]["Properties"])
        self.definition: dict[str, Any] = json.loads(definition)
        sqs = boto3.client("sqs", region_name=REGION)
        self._queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.state_machine_arn = self.sfn.create_state_machine(
            name=sm_id, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/StateMachineRole"
        )["stateMachineArn"]
        if self.state_machine_arn != physical[sm_id]:
            raise AssertionError(f"moto named {sm_id} {self.state_machine_arn}, not {physical[sm_id]}")

        # The compensation state machine, and the EventBridge rule that starts it (matched here with moto's
        # implementation of EventBridge patterns, since moto delivers no events to Step Functions).
        compensation = synthesized.stack.compensation
        cm_id = self._logical_id(compensation.state_machine)
        self.compensation_arn = self.sfn.create_state_machine(
            name=physical[cm_id].rsplit(":", 1)[-1],
            definition=self._definition(resources[cm_id]["Properties"]),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/CompensationRole",
        )["stateMachineArn"]
        rule = resources[self._logical_id(compensation.rule)]["Properties"]
        self.compensation_pattern = self.resolver.resolve(rule["EventPattern"])
        # Fast polls for tests: the settle time after an abort and the wait between sweeps, in seconds.
        self.function_for("search_router.handlers.compensate.sweep").environment.update(
            {CompensationEnvironment.variable(name): "1" for name in ("settle_seconds", "poll_seconds")}
        )

    def _definition(self, props: dict[str, Any]) -> str:
        return state_machine_definition(self.synthesized, self.resolver, props)

    # -- template helpers -------------------------------------------------------------------------------
    def _logical_id(self, construct: Any) -> str:
        return self.synthesized.stack.get_logical_id(construct.node.default_child)

    def _physical_of(self, construct: Any) -> str:
        return self.resolver.ref(self._logical_id(construct))

    def function_for(self, handler: str) -> FunctionInfo:
        return next(f for f in self.functions.values() if f.handler == handler)

    # -- Lambda dispatch ---------------------------------------------------------------------------------
    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function_name.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        info = self.functions[name]
        event = json.loads(body) if body else {}
        self.invocations.append((info.handler, event))
        for hook in list(self.before_invoke):
            hook(info.handler, event)
        module_name, function = info.handler.rsplit(".", 1)
        with _ENV_LOCK:
            os.environ.update(info.environment)
        handler = getattr(importlib.import_module(module_name), function)
        scope = self.on_invoke(info.logical_id) if self.on_invoke is not None else contextlib.nullcontext()
        try:
            with scope:
                result = handler(event, FakeLambdaContext(info))
        except Exception as exc:
            self.function_errors.append((info.handler, type(exc).__name__))
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
            ).encode()
        return json.dumps(result).encode()

    def call(self, handler: str, event: dict[str, Any]) -> Any:
        """Invoke the function of ``handler`` with ``event`` as Lambda would (its environment, its context) and
        return its answer; ``RuntimeError`` with the function's error when it fails."""
        headers: dict[str, str] = {}
        result = json.loads(self.invoke(self.function_for(handler).arn, json.dumps(event).encode(), headers))
        if headers.get("x-amz-function-error"):
            raise RuntimeError(f"{handler} failed: {result.get('errorType')}: {result.get('errorMessage')}")
        return result

    def _backend_invoke(self) -> Callable[..., bytes]:
        harness = self

        def invoke(  # noqa: PLR0917 (moto's signature)
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return harness.invoke(function_name, body, response_headers)

        return invoke

    def install(self, monkeypatch: Any) -> None:
        """Route moto's Lambda invokes to the handlers until pytest's ``monkeypatch`` is undone."""
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", self._backend_invoke())

    @contextlib.contextmanager
    def installed(self) -> Iterator[PipelineHarness]:
        """Route moto's Lambda invokes to the handlers inside the ``with`` block (outside pytest)."""
        original = LambdaSimpleBackend.__dict__["invoke"]
        LambdaSimpleBackend.invoke = self._backend_invoke()  # type: ignore[method-assign]
        try:
            yield self
        finally:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]

    # -- executions ----------------------------------------------------------------------------------------
    def start(self, execution_input: Any, *, name: str | None = None) -> str:
        """Start an execution (moto runs it in a background thread); returns its ARN."""
        return str(
            self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name or f"run-{uuid.uuid4().hex[:12]}",
                input=json.dumps(execution_input),
            )["executionArn"]
        )

    def wait(
        self,
        arn: str,
        *,
        timeout_s: float = 120.0,
        poll_s: float = 0.05,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> Execution:
        """Poll until the execution leaves RUNNING (``on_poll`` sees each ``DescribeExecution``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            description = self.sfn.describe_execution(executionArn=arn)
            if on_poll is not None:
                on_poll(description)
            if description["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still RUNNING after {timeout_s} s")
            time.sleep(poll_s)
        return Execution(arn=arn, description=description, history=self.history(arn))

    def history(self, arn: str) -> list[dict[str, Any]]:
        """Every history event of the execution so far, oldest first."""
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def run(
        self, execution_input: Any, *, name: str | None = None, timeout_s: float = 120.0, compensate: bool = True
    ) -> Execution:
        """Start, wait, and (as the stack's EventBridge rule would) compensate an execution that ended badly."""
        execution = self.wait(self.start(execution_input, name=name), timeout_s=timeout_s)
        if compensate:
            execution.compensation = self.compensate(execution)
        return execution

    def status_change_event(self, description: dict[str, Any]) -> dict[str, Any]:
        """The ``Step Functions Execution Status Change`` event Step Functions sends for an execution (the shape
        of the examples in the Step Functions developer guide: dates in epoch milliseconds)."""

        def millis(value: Any) -> int | None:
            return int(value.timestamp() * 1000) if hasattr(value, "timestamp") else None

        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": REGION,
            "resources": [description["executionArn"]],
            "detail": {
                "executionArn": description["executionArn"],
                "stateMachineArn": description["stateMachineArn"],
                "name": description["name"],
                "status": description["status"],
                "startDate": millis(description.get("startDate")),
                "stopDate": millis(description.get("stopDate")),
                "input": description.get("input"),
                "output": description.get("output"),
                "inputDetails": {"included": True},
                "outputDetails": {"included": True},
                "error": description.get("error"),
                "cause": description.get("cause"),
            },
        }

    def compensate(self, execution: Execution, *, timeout_s: float = 60.0) -> Execution | None:
        """What EventBridge does with the stack's rule: an event matching the rule's pattern starts the
        compensation state machine with the event as its input. None when the event does not match."""
        event = self.status_change_event(execution.description)
        if not EventPattern.load(json.dumps(self.compensation_pattern)).matches_event(event):  # type: ignore[arg-type]
            return None
        return self.deliver(event, timeout_s=timeout_s)

    def deliver(self, event: dict[str, Any], *, timeout_s: float = 60.0) -> Execution:
        """Start the compensation state machine with ``event`` and wait for it."""
        arn = self.sfn.start_execution(
            stateMachineArn=self.compensation_arn, name=f"comp-{uuid.uuid4().hex[:12]}", input=json.dumps(event)
        )["executionArn"]
        return self.wait(arn, timeout_s=timeout_s)

    def notifications(self) -> list[dict[str, str]]:
        """Every message published to the stack's topic so far: ``{"subject", "message"}``."""
        sqs = boto3.client("sqs", region_name=REGION)
        received: list[dict[str, str]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for item in batch:
                body = json.loads(item["Body"])
                received.append({"subject": body.get("Subject", ""), "message": body["Message"]})
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=item["ReceiptHandle"])

    # -- S3 helpers ------------------------------------------------------------------------------------------
    def s3_text(self, key: str) -> str:
        return boto3.client("s3", region_name=REGION).get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()

    def s3_json(self, key: str) -> Any:
        return json.loads(self.s3_text(key))

    def s3_keys(self, prefix: str) -> list[str]:
        pages = (
            boto3.client("s3", region_name=REGION)
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@dataclass
class Execution:
    arn: str
    description: dict[str, Any]
    history: list[dict[str, Any]]
    compensation: Execution | None = None  # the compensation EventBridge started for it (PipelineHarness.run)

    @property
    def status(self) -> str:
        return str(self.description["status"])

    @property
    def output(self) -> Any:
        return json.loads(self.description.get("output") or "null")

    @property
    def error(self) -> str | None:
        return self.description.get("error")

    @property
    def cause(self) -> str | None:
        return self.description.get("cause")

    def entered_states(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]


def state_machine_definition(synthesized: Synthesized, resolver: TemplateResolver, props: dict[str, Any]) -> str:
    """The definition CloudFormation would hand to Step Functions: the uploaded ASL file with
    ``DefinitionSubstitutions`` applied (or an inline ``DefinitionString``)."""
    if "DefinitionString" in props:
        text = str(resolver.resolve(props["DefinitionString"]))
    else:
        key = props["DefinitionS3Location"]["Key"]
        manifest = json.loads(
            (synthesized.template_path.parent / f"{synthesized.stack.artifact_id}.assets.json").read_text()
        )
        (asset,) = [
            a for a in manifest["files"].values() if any(d["objectKey"] == key for d in a["destinations"].values())
        ]
        text = (synthesized.outdir / asset["source"]["path"]).read_text()
    substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", str(value))
    if "${" in text:
        raise AssertionError("unresolved substitution left in the definition")
    return text


def _is_project_handler(handler: str) -> bool:
    return handler.startswith(HANDLERS_PACKAGE + ".")
