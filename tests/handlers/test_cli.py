"""The CLI (``python -m cli``) against moto (CloudFormation outputs, S3, SSM, API Gateway, Step Functions), a
botocore-validating Step Functions history fake, and a loopback HTTP server that checks SigV4 signatures.

Every command runs through :func:`cli.main.main`, exactly as from the shell, with an injected terminal (output
buffers, clock, ``sleep``, confirmation answers).
"""

from __future__ import annotations

import copy
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.model import OperationModel
from botocore.validate import ParamValidator, validate_parameters

from cli.app import App, Terminal
from cli.errors import EXIT_AUTH, EXIT_INTERRUPTED, EXIT_NOT_FOUND, EXIT_RUN_FAILED, EXIT_USAGE
from cli.main import main
from cli.status import wait_for
from infra.config import load_config
from search_router.pipeline.metrics import Price, QueryResult, compute_metrics
from search_router.pipeline.report import build_report, render_markdown
from search_router.pipeline.report_html import render_html
from search_router.shared.channels import DEFAULT_CHANNELS
from tests.unit.test_run_naming import DEFAULTS

REGION = "us-east-1"
ACCOUNT = "123456789012"
CONFIG = load_config()
STACK = CONFIG.stack_name
PARAMETER = f"/{STACK}/router/promoted-model"
BUCKET = "cli-test-data-bucket"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Pipeline"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:Notifications"
T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
DEPLOYMENT_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abc123"


# ---------------------------------------------------------------------------------------------------------
# Running the CLI
# ---------------------------------------------------------------------------------------------------------
class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    """``now``/``sleep`` for the terminal: sleeping advances time and runs the registered callbacks."""

    def __init__(self, start: datetime) -> None:
        self.time = start
        self.sleeps: list[float] = []
        self.on_sleep: list[Callable[[], None]] = []

    def now(self) -> datetime:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += timedelta(seconds=seconds)
        for callback in self.on_sleep:
            callback()


@pytest.fixture(autouse=True)
def terminal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich reads these to force or refuse colour and to size a terminal: each test sets what it needs."""
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES", "TERM"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class CliRun:
    code: int
    out: str
    err: str
    prompts: list[str] = field(default_factory=list)


def run_cli(
    *argv: str,
    clock: FakeClock | None = None,
    clients: dict[str, Any] | None = None,
    answers: tuple[str, ...] = (),
    interactive: bool = False,
    out: io.StringIO | None = None,
) -> CliRun:
    clock = clock or FakeClock(T0 + timedelta(hours=1))
    stdout, stderr = out or io.StringIO(), io.StringIO()
    pending = list(answers)
    prompts: list[str] = []

    def read_line(prompt: str) -> str:
        prompts.append(prompt)
        return pending.pop(0)

    terminal = Terminal(
        out=stdout, err=stderr, read_line=read_line, interactive=lambda: interactive, now=clock.now, sleep=clock.sleep
    )
    code = main(list(argv), terminal=terminal, clients=clients or {})
    return CliRun(code, stdout.getvalue(), stderr.getvalue(), prompts)


# ---------------------------------------------------------------------------------------------------------
# The deployed stack, as moto resources named by CloudFormation outputs
# ---------------------------------------------------------------------------------------------------------
def initial_parameter_value() -> str:
    return json.dumps(
        {
            **CONFIG.router.default_model.to_dict(),
            "channels": list(CONFIG.channels.names),
            "run_id": None,
            "promoted_at": None,
            "metrics": {},
        },
        separators=(",", ":"),
    )


def promoted_value(run_id: str) -> str:
    return json.dumps(
        {
            "model_id": DEPLOYMENT_ARN,
            "prompt_kind": "student",
            "channels": list(CONFIG.channels.names),
            "run_id": run_id,
            "promoted_at": "2026-03-01T18:00:00+00:00",
            "metrics": {"mae_overall": 0.04},
        },
        separators=(",", ":"),
    )


def deploy_stack(extra_outputs: dict[str, str] | None = None, route_url: str | None = None) -> None:
    """A CloudFormation stack in moto that owns the bucket and the parameter and exports the stack's outputs."""
    outputs: dict[str, Any] = {
        "DataBucketName": {"Value": {"Ref": "DataBucket"}},
        "RouterModelParameterName": {"Value": {"Ref": "ModelParameter"}},
        "StateMachineArn": {"Value": STATE_MACHINE_ARN},
        "NotificationTopicArn": {"Value": TOPIC_ARN},
        "RouteUrl": {"Value": route_url or f"https://abc123.execute-api.{REGION}.amazonaws.com/v1/route"},
    }
    outputs.update({key: {"Value": value} for key, value in (extra_outputs or {}).items()})
    template = {
        "Resources": {
            "DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}},
            "ModelParameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": PARAMETER, "Type": "String", "Value": initial_parameter_value()},
            },
        },
        "Outputs": outputs,
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=STACK, TemplateBody=json.dumps(template))


def put_json(key: str, value: Any) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=json.dumps(value).encode())


@pytest.fixture
def stack(aws: None) -> None:
    deploy_stack()


@pytest.fixture
def sfn_moto(aws: None) -> str:
    """A real (moto) state machine whose ARN the stack's StateMachineArn output names."""
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="Pipeline", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/StatesRole"
    )["stateMachineArn"]
    assert arn == STATE_MACHINE_ARN
    return arn


# ---------------------------------------------------------------------------------------------------------
# A Step Functions fake with scripted execution histories, behind a real boto3 client
# ---------------------------------------------------------------------------------------------------------
@dataclass
class FakeExecution:
    name: str
    start: datetime
    status: str = "RUNNING"
    events: list[dict[str, Any]] = field(default_factory=list)
    stop: datetime | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Pipeline:{self.name}"


class StepFunctionsFake:
    """Answers ``DescribeExecution``, ``GetExecutionHistory`` and ``ListExecutions`` of a real boto3 client.

    botocore serializes (and so validates) every request; every response is validated against the operation's
    output shape, so a history event with a wrong field name fails the test.
    """

    PAGE = 3  # small pages, so the CLI's pagination is exercised

    def __init__(self) -> None:
        self.client = boto3.client("stepfunctions", region_name=REGION)
        self.executions: list[FakeExecution] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._validator = ParamValidator()
        self.client.meta.events.register("before-parameter-build.sfn.*", self._capture)
        self.client.meta.events.register_first("before-call.sfn.*", self._answer)

    def add(self, execution: FakeExecution) -> FakeExecution:
        self.executions.append(execution)
        return execution

    def _capture(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["sfn_fake_params"] = params

    def _answer(self, model: OperationModel, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = copy.deepcopy(context["sfn_fake_params"])
        validate_parameters(params, model.input_shape)
        self.calls.append((model.name, params))
        try:
            result = getattr(self, f"_{model.name}")(params)
        except LookupError as exc:
            message = str(exc.args[0])
            parsed = {"Error": {"Code": "ExecutionDoesNotExist", "Message": message}, "ResponseMetadata": {}}
            return AWSResponse(None, 400, {"x-amzn-errortype": "ExecutionDoesNotExist"}, None), parsed
        report = self._validator.validate(result, model.output_shape)
        assert not report.has_errors(), report.generate_report()
        result["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0}
        return AWSResponse(None, 200, {}, None), result

    def _find(self, arn: str) -> FakeExecution:
        for execution in self.executions:
            if execution.arn == arn:
                return execution
        raise LookupError(f"Execution Does Not Exist: '{arn}'")

    def _DescribeExecution(self, params: dict[str, Any]) -> dict[str, Any]:
        execution = self._find(params["executionArn"])
        result: dict[str, Any] = {
            "executionArn": execution.arn,
            "stateMachineArn": STATE_MACHINE_ARN,
            "name": execution.name,
            "status": execution.status,
            "startDate": execution.start,
            "input": "{}",
        }
        if execution.stop:
            result["stopDate"] = execution.stop
        if execution.error:
            result["error"] = execution.error
        if execution.cause:
            result["cause"] = execution.cause
        return result

    def _GetExecutionHistory(self, params: dict[str, Any]) -> dict[str, Any]:
        events = self._find(params["executionArn"]).events
        start = int(params.get("nextToken", "0"))
        result: dict[str, Any] = {"events": copy.deepcopy(events[start : start + self.PAGE])}
        if start + self.PAGE < len(events):
            result["nextToken"] = str(start + self.PAGE)
        return result

    def _ListExecutions(self, params: dict[str, Any]) -> dict[str, Any]:
        newest_first = sorted(self.executions, key=lambda e: e.start, reverse=True)
        start = int(params.get("nextToken", "0"))
        size = params.get("maxResults") or 100
        page = newest_first[start : start + size]
        result: dict[str, Any] = {
            "executions": [
                {
                    "executionArn": e.arn,
                    "stateMachineArn": STATE_MACHINE_ARN,
                    "name": e.name,
                    "status": e.status,
                    "startDate": e.start,
                }
                for e in page
            ]
        }
        if start + size < len(newest_first):
            result["nextToken"] = str(start + size)
        return result


class History:
    """Builds an execution history the way Step Functions records the pipeline (Lambda-ARN tasks, inline Maps)."""

    def __init__(self, start: datetime, execution_input: dict[str, Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.time = start
        self.state: dict[str, Any] = {"input": execution_input or {}}
        self._add("ExecutionStarted", 0, executionStartedEventDetails={"input": json.dumps(execution_input or {})})

    def _add(self, kind: str, seconds: float, **details: Any) -> None:
        self.time += timedelta(seconds=seconds)
        event = {"timestamp": self.time, "type": kind, "id": len(self.events) + 1, "previousEventId": len(self.events)}
        self.events.append({**event, **details})

    def enter(self, name: str, kind: str = "Task", seconds: float = 1) -> History:
        self._add(
            f"{kind}StateEntered", seconds, stateEnteredEventDetails={"name": name, "input": json.dumps(self.state)}
        )
        return self

    def exit(self, name: str, kind: str = "Task", seconds: float = 1) -> History:
        self._add(
            f"{kind}StateExited", seconds, stateExitedEventDetails={"name": name, "output": json.dumps(self.state)}
        )
        return self

    def task(self, name: str, result: Any, result_path: str | None, seconds: float = 5) -> History:
        self.enter(name)
        resource = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self._add("LambdaFunctionScheduled", 0, lambdaFunctionScheduledEventDetails={"resource": resource})
        self._add("LambdaFunctionStarted", 0)
        self._add(
            "LambdaFunctionSucceeded", seconds, lambdaFunctionSucceededEventDetails={"output": json.dumps(result)}
        )
        if result_path is None:
            self.state = dict(result)
        else:
            self.state[result_path] = result
        return self.exit(name, seconds=0)

    def failing_task(self, name: str, error: str, message: str, seconds: float = 5) -> History:
        self.enter(name)
        resource = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self._add("LambdaFunctionScheduled", 0, lambdaFunctionScheduledEventDetails={"resource": resource})
        self._add("LambdaFunctionStarted", 0)
        cause = json.dumps({"errorMessage": message, "errorType": error, "stackTrace": []})
        self._add("LambdaFunctionFailed", seconds, lambdaFunctionFailedEventDetails={"error": error, "cause": cause})
        self.state["error"] = {"Error": error, "Cause": cause}
        return self.exit(name, seconds=0)

    def pass_through(self, name: str, kind: str = "Wait", seconds: float = 0) -> History:
        return self.enter(name, kind).exit(name, kind, seconds=seconds)

    def distributed_map_state(self, name: str, *, finished: bool, seconds: float = 120) -> History:
        """A Distributed Map: its iterations are child executions, absent from the parent's history."""
        self.enter(name, "Map")
        run = f"arn:aws:states:us-east-1:123456789012:mapRun:pipeline/{name}:r1"
        self._add("MapRunStarted", 0, mapRunStartedEventDetails={"mapRunArn": run})
        if finished:
            self._add("MapRunSucceeded", seconds)
            self.exit(name, "Map", seconds=0)
        return self

    def map_state(self, name: str, inner: str, total: int, done: int, seconds_each: float = 30) -> History:
        self.enter(name, "Map")
        self._add("MapStateStarted", 0, mapStateStartedEventDetails={"length": total})
        for index in range(done):
            self._add("MapIterationStarted", 0, mapIterationStartedEventDetails={"name": name, "index": index})
            self._add("TaskStateEntered", 0, stateEnteredEventDetails={"name": inner, "input": "{}"})
            self._add("TaskStateExited", seconds_each, stateExitedEventDetails={"name": inner, "output": "{}"})
            self._add("MapIterationSucceeded", 0, mapIterationSucceededEventDetails={"name": name, "index": index})
        if done == total:
            self._add("MapStateSucceeded", 0)
            self.exit(name, "Map", seconds=0)
        return self

    def succeed(self) -> History:
        self._add("ExecutionSucceeded", 1, executionSucceededEventDetails={"output": json.dumps(self.state)})
        return self

    def fail(self, error: str, cause: str) -> History:
        self._add("ExecutionFailed", 1, executionFailedEventDetails={"error": error, "cause": cause})
        return self


RUN_SETTINGS = DEFAULTS  # the deployed defaults, as in the pipeline tests


def run_state(name: str) -> dict[str, Any]:
    return {
        "run_id": name,
        "execution_arn": FakeExecution(name, T0).arn,
        "started_at": T0.isoformat(),
        "settings": {**RUN_SETTINGS, "teacher_model_id": "auto", "queries_s3_uri": None, "mix_user_queries": True},
        "candidates": [c.to_dict() for c in CONFIG.eval_candidates],
        "teacher": {
            "model_id": "us.amazon.nova-pro-v1:0",
            "requested": "auto",
            "refused": [{"model_id": "us.amazon.nova-premier-v1:0", "reason": "it is LEGACY in us-east-1"}],
        },
    }


def until_labeling(name: str, shards: int, done: int) -> History:
    history = History(T0).pass_through("ReadInput", "Pass")
    history.task("Preflight", {"run": run_state(name), "preflight": {"models": []}}, None, seconds=10)
    shard_list = [{"index": i, "key": f"tmp/{name}/plan/shard-{i:05d}.json", "count": 250} for i in range(shards)]
    history.task("PlanQueries", {"shards": shard_list, "planned": 250 * shards, "shard_size": 250}, "plan")
    return history.distributed_map_state("LabelShards", finished=done == shards)


def until_distillation(name: str, checks: int) -> History:
    history = until_labeling(name, shards=4, done=4)
    dataset = {"train_records": 980, "heldout_records": 20, "invalid": 3, "duplicates": 1, "labeled": 1004}
    history.task("PrepareDataset", dataset, "dataset", seconds=20)
    history.task("StartDistillation", {"job_arn": "arn:job", "job_name": "job"}, "distillation")
    for check in range(checks):
        history.pass_through("WaitForDistillation", "Wait", seconds=300)
        status = {
            "status": "InProgress",
            "sub_status": {"validation": "Completed", "data_processing": "Completed", "training": "InProgress"},
            "elapsed_minutes": 5.0 * (check + 1),
        }
        history.task("CheckDistillation", status, "distillation_status")
        history.pass_through("IsDistillationDone", "Choice")
    return history.enter("WaitForDistillation", "Wait")


def to_the_end(name: str, *, promoted: bool, judge_jobs: list[dict[str, Any]] | None = None) -> History:
    history = until_distillation(name, checks=1)
    history.exit("WaitForDistillation", "Wait", seconds=300)
    done = {"status": "Completed", "sub_status": {}, "elapsed_minutes": 10.0, "output_model_arn": "arn:model"}
    history.task("CheckDistillation", done, "distillation_status").pass_through("IsDistillationDone", "Choice")
    history.task("StartDeployment", {"deployment_arn": DEPLOYMENT_ARN}, "deployment")
    history.pass_through("WaitForDeployment", "Wait", seconds=60)
    history.task("CheckDeployment", {"status": "Active"}, "deployment_status")
    history.pass_through("IsDeploymentActive", "Choice")
    history.task("RecordOutputs", {"outputs_uri": "s3://x/y"}, "outputs")
    history.map_state("EvaluateCandidates", "EvaluateCandidate", 3, 3)
    history.pass_through("IsJudgeEnabled", "Choice")
    jobs = judge_jobs or [{"candidate": c.name, "status": "ok", "score": 4.0} for c in CONFIG.eval_candidates]
    history.task("StartJudge", {"done": True, "jobs": jobs}, "judge").pass_through("IsJudgeDone", "Choice")
    failures = [] if promoted else ["MAE 0.12 > 0.08"]
    history.task("Report", {"gate_passed": promoted, "failures": failures, "headline": "h"}, "report")
    history.pass_through("QualityGate", "Choice")
    if promoted:
        history.task("Promote", {"outcome": "promoted", "version": 2, "model_id": DEPLOYMENT_ARN}, "decision")
    else:
        history.task("Reject", {"outcome": "rejected", "failures": failures}, "decision")
    history.task("NotifySuccess", {}, "notified")
    return history.pass_through("RunSucceeded", "Succeed").succeed()


@pytest.fixture
def sfn(stack: None) -> StepFunctionsFake:
    return StepFunctionsFake()


# ---------------------------------------------------------------------------------------------------------
# --help, stack discovery, credentials
# ---------------------------------------------------------------------------------------------------------
def test_help_lists_every_command_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for command in ("start", "status", "route", "report", "estimate", "rollback"):
        assert re.search(rf"^\s+{command}\s+\S", text, re.MULTILINE), command


def test_a_stack_that_is_not_deployed_is_named_with_its_region_and_exit_code_3(aws: None) -> None:
    result = run_cli("status", "--stack-name", "NoSuchStack", "--region", "us-west-2")
    assert result.code == EXIT_NOT_FOUND
    assert "stack NoSuchStack is not deployed in us-west-2" in result.err
    assert "make deploy" in result.err
    assert result.out == ""


def test_missing_credentials_are_reported_with_exit_code_4(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = run_cli("rollback", "--yes")
    assert result.code == EXIT_AUTH
    assert "no usable AWS credentials" in result.err
    assert "--profile" in result.err


def test_an_access_denied_answer_is_a_credentials_problem(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)

    def deny(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "AccessDenied", "Message": "not allowed: cloudformation:DescribeStacks"}}
        return AWSResponse(None, 403, {}, None), {**error, "ResponseMetadata": {}}

    cloudformation.meta.events.register_first("before-call.cloudformation.DescribeStacks", deny)
    result = run_cli("status", clients={"cloudformation": cloudformation})
    assert result.code == EXIT_AUTH
    assert "DescribeStacks failed: AccessDenied: not allowed" in result.err


# ---------------------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------------------
def test_start_validates_and_starts_an_execution_with_only_the_overrides(
    stack: None, sfn_moto: str, tmp_path: Path
) -> None:
    # Given an input file and --set overrides
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps({"num_examples": 500, "judge": True}))

    # When a run is started
    result = run_cli(
        "start",
        "--input-file",
        str(input_file),
        "--set",
        "judge=false",
        "--set",
        "eval_examples=20",
        "--name",
        "my_run.1",
    )

    # Then the execution got exactly the overrides (--set wins), and the output names it and links to it
    assert result.code == 0, result.err
    (execution,) = boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=sfn_moto)[
        "executions"
    ]
    arn = execution["executionArn"]
    assert execution["name"] == "my_run.1"
    described = boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=arn)
    assert json.loads(described["input"]) == {"num_examples": 500, "judge": False, "eval_examples": 20}
    assert arn in result.out
    assert "run id         my-run-1" in result.out
    assert (
        f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}#/v2/executions/details/{arn}"
        in result.out
    )
    assert f"s3/buckets/{BUCKET}?region={REGION}&prefix=runs/my-run-1/" in result.out
    assert "500 training + 20 held-out examples" in result.out and "judge off" in result.out


def test_start_refuses_unknown_keys_and_bad_values_before_calling_aws(stack: None, sfn_moto: str) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)

    unknown = run_cli("start", "--set", "num_example=500")
    assert unknown.code == EXIT_USAGE
    assert "unknown run setting 'num_example'" in unknown.err and "did you mean num_examples?" in unknown.err

    out_of_range = run_cli("start", "--set", "num_examples=20")
    assert out_of_range.code == EXIT_USAGE
    assert "num_examples" in out_of_range.err and "greater than or equal to 100" in out_of_range.err

    not_key_value = run_cli("start", "--set", "judge")
    assert not_key_value.code == EXIT_USAGE and "is not KEY=VALUE" in not_key_value.err

    bad_name = run_cli("start", "--name", "has space")
    assert bad_name.code == EXIT_USAGE and "not a valid execution name" in bad_name.err

    assert sfn.list_executions(stateMachineArn=sfn_moto)["executions"] == []


def test_start_rejects_an_unknown_key_without_any_aws_call() -> None:
    # No moto here: an AWS call would hit the blocked network and fail differently
    result = run_cli("start", "--set", "teacher=us.amazon.nova-pro-v1:0")
    assert result.code == EXIT_USAGE
    assert "unknown run setting 'teacher'" in result.err and "teacher_model_id" in result.err


def test_start_checks_overrides_against_the_deployed_defaults(aws: None, sfn_moto: str) -> None:
    # Given a stack deployed with small sizes (its PipelineDefaults output)
    deployed = {**RUN_SETTINGS, "num_examples": 200, "eval_examples": 20}
    deploy_stack({"PipelineDefaults": json.dumps(deployed)})

    # When eval_examples is set above the deployed num_examples, the run is refused locally
    result = run_cli("start", "--set", "eval_examples=300")
    assert result.code == EXIT_USAGE
    assert "eval_examples must be smaller than num_examples" in result.err

    # And a run with the defaults starts with input {}
    started = run_cli("start", "--name", "defaults")
    assert started.code == 0, started.err
    assert "200 training + 20 held-out examples" in started.out
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Pipeline:defaults"
    assert boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=arn)["input"] == "{}"


def test_start_refuses_a_run_id_whose_folder_already_exists(stack: None, sfn_moto: str) -> None:
    put_json("runs/nightly-1/dataset/plan.json", {"shards": 1})
    result = run_cli("start", "--name", "nightly_1")
    assert result.code == EXIT_USAGE
    assert "run id 'nightly-1'" in result.err and "choose another --name" in result.err


# ---------------------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------------------
def test_status_of_the_latest_run_shows_the_labeling_progress_from_s3(sfn: StepFunctionsFake) -> None:
    # Given an older finished run and a newer one labeling shards (12 of 40 written to S3)
    sfn.add(
        FakeExecution("older", T0 - timedelta(days=1), "SUCCEEDED", to_the_end("older", promoted=True).events, stop=T0)
    )
    name = "run-20260301-080000"
    sfn.add(FakeExecution(name, T0, events=until_labeling(name, shards=40, done=0).events))
    put_json(f"runs/{name}/dataset/plan.json", {"shards": 40, "planned": 10100})
    for index in range(12):
        put_json(f"tmp/{name}/labeled/shard-{index:05d}.stats.json", {"shard": index})
        put_json(f"tmp/{name}/labeled/shard-{index:05d}.jsonl", {})

    # When status is asked without a run
    result = run_cli("status", clients={"stepfunctions": sfn.client})

    # Then it shows the newest run, its current step, the shards as a progress bar and the elapsed time
    assert result.code == 0, result.err
    assert result.out.startswith(f"Run {name}  RUNNING  elapsed 1h 00m")
    assert "now in    LabelShards" in result.out
    label_line = next(line for line in result.out.splitlines() if "Label with the teacher" in line)
    assert label_line.lstrip().startswith("[>]")
    assert "12/40 shards  30%" in label_line and "ETA" in label_line
    assert re.search(r"\[x\] Plan queries\s+\S+\s+10000 queries in 40 shards of 250", result.out)
    # and the teacher Preflight chose for "auto"
    assert re.search(
        r"\[x\] Preflight\s+\S+\s+.*held-out examples, teacher us\.amazon\.nova-pro-v1:0 \(auto\)", result.out
    )
    assert "[ ] Distillation" in result.out
    # And the history was read in full, page by page
    histories = [params for op, params in sfn.calls if op == "GetExecutionHistory"]
    assert len(histories) > 1 and all(p["includeExecutionData"] for p in histories)


def test_status_shows_the_distillation_sub_status_of_the_latest_check(sfn: StepFunctionsFake) -> None:
    # Given a run waiting (poll_seconds 300) for its third distillation check, 100 s into the wait
    history = until_distillation("distilling", checks=2)
    sfn.add(FakeExecution("distilling", T0, events=history.events))
    clock = FakeClock(history.time + timedelta(seconds=100))
    result = run_cli("status", "distilling", clock=clock, clients={"stepfunctions": sfn.client})
    assert result.code == 0, result.err
    line = next(line for line in result.out.splitlines() if "] Distillation" in line)
    assert line.lstrip().startswith("[>]")
    assert "InProgress (validation Completed, data processing Completed, training InProgress)" in line
    assert "job running 10m 00s" in line
    assert "next check in 3m 20s" in line
    assert re.search(r"\[x\] Label with the teacher\s+\S+.*4/4 shards", result.out)
    assert "980 training / 20 held-out records (3 invalid, 1 duplicates dropped)" in result.out


def test_status_of_a_failed_run_shows_where_and_why_with_exit_code_5(sfn: StepFunctionsFake) -> None:
    # Given a run whose dataset step failed (and stays the failed step: no failure path in the workflow)
    history = until_labeling("broken", shards=2, done=2)
    message = "only 42 valid examples; Bedrock needs at least 100"
    history.failing_task("PrepareDataset", "DatasetTooSmall", message)
    cause = json.dumps({"errorMessage": message, "errorType": "DatasetTooSmall"})
    history.fail("DatasetTooSmall", cause)
    stop = history.time
    sfn.add(FakeExecution("broken", T0, "FAILED", history.events, stop=stop, error="DatasetTooSmall", cause=cause))

    # When its status is shown
    result = run_cli("status", "broken", clients={"stepfunctions": sfn.client})

    # Then the failed phase, the error and the Lambda's message are shown, and the exit code says it failed
    assert result.code == EXIT_RUN_FAILED
    assert re.search(r"\[!\] Prepare dataset", result.out)
    assert "[ ] Distillation" in result.out
    assert "FAILED after" in result.out and "in Prepare dataset" in result.out
    assert "error: DatasetTooSmall" in result.out
    assert f"cause: DatasetTooSmall: {message}" in result.out


def test_status_of_an_unknown_run_lists_recent_ones(sfn: StepFunctionsFake) -> None:
    sfn.add(FakeExecution("run-a", T0, events=until_labeling("run-a", 2, 1).events))
    result = run_cli("status", "nope", clients={"stepfunctions": sfn.client})
    assert result.code == EXIT_NOT_FOUND
    assert "no run 'nope'" in result.err and "recent runs: run-a" in result.err


def test_status_finds_a_run_by_its_run_id_when_the_execution_name_differs(sfn: StepFunctionsFake) -> None:
    sfn.add(FakeExecution("nightly_run.7", T0, events=until_labeling("nightly-run-7", 2, 1).events))
    result = run_cli("status", "nightly-run-7", clients={"stepfunctions": sfn.client})
    assert result.code == 0, result.err
    assert result.out.startswith("Run nightly-run-7  RUNNING")


def test_status_of_a_promoted_run_says_so(sfn: StepFunctionsFake) -> None:
    history = to_the_end("good", promoted=True)
    sfn.add(FakeExecution("good", T0, "SUCCEEDED", history.events, stop=history.time))
    result = run_cli("status", "good", clients={"stepfunctions": sfn.client})
    assert result.code == 0
    assert "SUCCEEDED in" in result.out and "the distilled model was promoted" in result.out
    assert "promoted (router parameter version 2)" in result.out
    assert "quality gate PASSED" in result.out
    assert "distilled ok 4.00" in result.out
    assert "3/3 candidates evaluated" in result.out
    assert "Report: python -m cli report good" in result.out
    assert "[>]" not in result.out and "[ ]" not in result.out


def test_status_tells_a_candidates_judge_repeats_apart(sfn: StepFunctionsFake) -> None:
    jobs = [
        {"candidate": "distilled", "status": "ok", "score": 4.0},
        {"candidate": "distilled", "status": "ok", "score": 5.0, "repeat": 2},
        {"candidate": "distilled", "status": "missing", "score": None, "repeat": 3, "reason": "quota"},
    ]
    history = to_the_end("twice", promoted=True, judge_jobs=jobs)
    sfn.add(FakeExecution("twice", T0, "SUCCEEDED", history.events, stop=history.time))
    result = run_cli("status", "twice", clients={"stepfunctions": sfn.client})
    assert result.code == 0
    assert "distilled ok 4.00, distilled (repeat 2) ok 5.00, distilled (repeat 3) missing" in result.out


# What rich's live display writes to a terminal: it hides the cursor, then before each new frame goes back to the
# first line of the one on screen, erasing every line on the way; colours, styles and links are not text.
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"
ERASE_FRAME = re.compile(r"\r((?:\x1b\[2K\x1b\[1A)*)\x1b\[2K")
STYLING = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\")


def plain_text_problems(text: str) -> list[str]:
    """What would keep ``text`` from reading as plain text in a pipe or a log (nothing: it does)."""
    problems = []
    if "\x1b" in text:
        problems.append("an escape sequence")
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text):
        problems.append("a control character (carriage return, backspace, ...)")
    if any(line != line.rstrip() for line in text.splitlines()):
        problems.append("blanks at the end of a line")
    return problems


def test_status_watch_redraws_until_the_run_ends(sfn: StepFunctionsFake, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a run that labels, then distils, then finishes, one stage per poll
    name = "watched"
    stages = [
        ("RUNNING", until_labeling(name, shards=4, done=1)),
        ("RUNNING", until_distillation(name, checks=1)),
        ("SUCCEEDED", to_the_end(name, promoted=False)),
    ]
    execution = sfn.add(FakeExecution(name, T0, *(stages[0][0], stages[0][1].events)))
    put_json(f"runs/{name}/dataset/plan.json", {"shards": 4})
    put_json(f"tmp/{name}/labeled/shard-00000.stats.json", {})
    clock = FakeClock(T0 + timedelta(minutes=5))

    def next_stage() -> None:
        stage = min(len(clock.sleeps), len(stages) - 1)
        execution.status, history = stages[stage][0], stages[stage][1]
        execution.events = history.events
        execution.stop = history.time if execution.status != "RUNNING" else None

    clock.on_sleep.append(next_stage)

    # When status --watch runs (output to a terminal of 200 x 60)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LINES", "60")
    screen = TtyBuffer()
    result = run_cli(
        "status", "--watch", "--interval", "60", clock=clock, clients={"stepfunctions": sfn.client}, out=screen
    )

    # Then it drew three frames in place, each erasing the one before, slept the interval between them, and stopped
    assert result.code == 0, result.err
    assert result.out.startswith(HIDE_CURSOR) and result.out.endswith(SHOW_CURSOR)
    painted = ERASE_FRAME.split(STYLING.sub("", result.out.removeprefix(HIDE_CURSOR).removesuffix(SHOW_CURSOR)))
    frames, erased = painted[0::2], painted[1::2]
    # (rich paints the last frame once more as the live display stops, and leaves it on the screen)
    assert len(frames) == 4 and frames[3].rstrip("\n") == frames[2]
    frames = frames[:3]
    for before, moved_up in zip(frames, erased, strict=False):
        assert moved_up.count("\x1b[1A") == before.count("\n"), "each redraw goes back over the whole frame"
    assert clock.sleeps == [60.0, 60.0]
    assert "1/4" in frames[0] and "now in    LabelShards" in frames[0]
    assert "now in    WaitForDistillation" in frames[1] and "training InProgress" in frames[1]
    assert "SUCCEEDED in" in frames[2] and "the distilled model was rejected" in frames[2]
    assert "quality gate FAILED: MAE 0.12 > 0.08" in frames[2]


def test_status_watch_to_a_pipe_prints_timestamped_frames(sfn: StepFunctionsFake) -> None:
    history = to_the_end("piped", promoted=True)
    sfn.add(FakeExecution("piped", T0, "SUCCEEDED", history.events, stop=history.time))
    clock = FakeClock(T0 + timedelta(hours=3))
    result = run_cli("status", "piped", "--watch", clock=clock, clients={"stepfunctions": sfn.client})
    assert result.code == 0
    assert "\x1b[" not in result.out
    assert result.out.startswith(f"--- {clock.time:%Y-%m-%d %H:%M:%S} UTC ---")
    assert clock.sleeps == []


def test_status_watch_to_a_pipe_prints_a_plain_snapshot_per_poll(sfn: StepFunctionsFake) -> None:
    # Given a run that labels, then distils, then finishes, one stage per poll
    name = "logged"
    stages = [until_labeling(name, shards=4, done=1), until_distillation(name, checks=1)]
    finished = to_the_end(name, promoted=True)
    execution = sfn.add(FakeExecution(name, T0, events=stages[0].events))
    put_json(f"runs/{name}/dataset/plan.json", {"shards": 4})
    put_json(f"tmp/{name}/labeled/shard-00000.stats.json", {})
    clock = FakeClock(T0 + timedelta(minutes=5))

    def next_stage() -> None:
        if len(clock.sleeps) < len(stages):
            execution.events = stages[len(clock.sleeps)].events
        else:
            execution.status, execution.events, execution.stop = "SUCCEEDED", finished.events, finished.time

    clock.on_sleep.append(next_stage)

    # When status --watch prints to a pipe (CI's log, `| tee`)
    result = run_cli("status", "--watch", "--interval", "60", clock=clock, clients={"stepfunctions": sfn.client})

    # Then there is no live redraw: each poll appends one complete, timestamped snapshot in plain text
    assert result.code == 0, result.err
    assert plain_text_problems(result.out) == []
    stamps = re.findall(r"^--- (.+) UTC ---$", result.out, re.MULTILINE)
    start = T0 + timedelta(minutes=5)
    assert stamps == [f"{start + timedelta(seconds=60 * i):%Y-%m-%d %H:%M:%S}" for i in range(3)]
    snapshots = re.split(r"^--- .+ UTC ---\n", result.out, flags=re.MULTILINE)[1:]
    assert all(snap.startswith(f"Run {name}  ") for snap in snapshots)
    assert "1/4 shards  25%" in snapshots[0] and "now in    LabelShards" in snapshots[0]
    assert "now in    WaitForDistillation" in snapshots[1]
    assert "SUCCEEDED in" in snapshots[2] and "the distilled model was promoted" in snapshots[2]
    assert clock.sleeps == [60.0, 60.0]


def test_wait_for_polls_quietly_until_the_run_ends_or_the_deadline(sfn: StepFunctionsFake) -> None:
    execution = sfn.add(FakeExecution("slow", T0, events=until_distillation("slow", checks=1).events))
    clock = FakeClock(T0)
    out = io.StringIO()
    app = App(terminal=Terminal(out=out, now=clock.now, sleep=clock.sleep), clients={"stepfunctions": sfn.client})

    # A run that does not end in time: the last snapshot comes back, still running, after the deadline
    snap = wait_for(app, execution.arn, timeout_s=300, interval=120)
    assert not snap.finished and snap.current_state == "WaitForDistillation"
    assert clock.sleeps == [120, 120, 120]

    # A run that ends: the final snapshot comes back at once
    history = to_the_end("slow", promoted=True)
    execution.status, execution.events, execution.stop = "SUCCEEDED", history.events, history.time
    snap = wait_for(app, execution.arn, timeout_s=300, interval=120)
    assert snap.status == "SUCCEEDED" and snap.outcome == "promoted" and snap.run_id == "slow"
    assert out.getvalue() == ""


def test_status_refuses_a_too_short_interval(sfn: StepFunctionsFake) -> None:
    result = run_cli("status", "--watch", "--interval", "1", clients={"stepfunctions": sfn.client})
    assert result.code == EXIT_USAGE and "--interval" in result.err


# ---------------------------------------------------------------------------------------------------------
# route
# ---------------------------------------------------------------------------------------------------------
SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 "
    r"Credential=(?P<key>[A-Za-z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/execute-api/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    signature_ok: bool | None


class RouteServer:
    """``POST /v1/route`` on 127.0.0.1: records requests and recomputes each SigV4 signature."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.reply: dict[str, Any] = {
            "weights": {"visual": 0.8, "audio": 0.0, "transcription": 0.0, "metadata": 0.2},
            "reasoning": "Scenery is seen; no names.",
            "model": DEPLOYMENT_ARN,
            "source": "model",
            "latency_ms": 412.5,
        }
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                url = f"http://{headers['host']}{self.path}"
                server.requests.append(
                    Received(self.path, headers, json.loads(raw), server.check_signature(url, headers, raw))
                )
                body = json.dumps(server.reply).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1/route"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def check_signature(url: str, headers: dict[str, str], body: bytes) -> bool | None:
        match = SIGV4.match(headers.get("authorization", ""))
        if match is None:
            return None
        signed = match["signed"].split(";")
        request = AWSRequest(method="POST", url=url, data=body, headers={h: headers[h] for h in signed})
        request.context["timestamp"] = headers["x-amz-date"]
        signer = SigV4Auth(ReadOnlyCredentials("testing", "testing", "testing"), "execute-api", match["region"])
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return expected == match["signature"]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def route_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RouteServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = RouteServer()
    yield server
    server.close()


def test_route_signs_the_request_with_sigv4_and_draws_the_weights(route_server: RouteServer) -> None:
    # When a query is routed through the URL given on the command line
    result = run_cli("route", "sunset over mountains", "--url", route_server.url)

    # Then one SigV4-signed POST was sent, for execute-api in the stack's Region, with a valid signature
    assert result.code == 0, result.err
    (request,) = route_server.requests
    assert request.path == "/v1/route"
    assert request.body == {"query": "sunset over mountains", "include_reasoning": True}
    match = SIGV4.match(request.headers["authorization"])
    assert match is not None, request.headers["authorization"]
    assert match["key"] == "testing" and match["region"] == REGION
    assert {"host", "x-amz-date", "x-amz-security-token", "content-type"} <= set(match["signed"].split(";"))
    assert request.signature_ok is True
    assert "x-api-key" not in request.headers

    # And the weights are drawn as bars, with the model, source and latency
    lines = result.out.splitlines()
    visual = next(line for line in lines if line.strip().startswith("visual"))
    metadata = next(line for line in lines if line.strip().startswith("metadata"))
    assert visual.rstrip().endswith("0.80") and visual.count("█") == 24
    assert metadata.rstrip().endswith("0.20") and metadata.count("█") == 6
    assert f"model    {DEPLOYMENT_ARN}" in result.out
    assert "source   model" in result.out
    assert "412 ms in the router" in result.out and "(sigv4)" in result.out
    assert "reason   Scenery is seen; no names." in result.out


def test_route_without_reasoning_and_as_json(route_server: RouteServer) -> None:
    route_server.reply = {**route_server.reply, "reasoning": None, "source": "fallback_model"}
    result = run_cli("route", "jazz saxophone", "--no-reasoning", "--json", "--url", route_server.url)
    assert result.code == 0, result.err
    assert route_server.requests[0].body == {"query": "jazz saxophone", "include_reasoning": False}
    assert json.loads(result.out)["source"] == "fallback_model"


def test_route_uses_the_stacks_api_key_in_api_key_mode(aws: None, route_server: RouteServer) -> None:
    # Given a stack deployed with api_auth=api_key: its RouteApiKeyId output names the key
    key = boto3.client("apigateway", region_name=REGION).create_api_key(name="route", enabled=True)
    deploy_stack({"RouteApiKeyId": key["id"]}, route_url=route_server.url)

    # When a query is routed (URL from the stack's RouteUrl output)
    result = run_cli("route", "Taylor Swift interview")

    # Then the key's value is sent as x-api-key, and nothing is signed
    assert result.code == 0, result.err
    (request,) = route_server.requests
    assert request.headers["x-api-key"] == key["value"]
    assert "authorization" not in request.headers
    assert "(api_key)" in result.out


def test_route_reports_a_denied_request_with_exit_code_4(route_server: RouteServer) -> None:
    route_server.status = 403
    route_server.reply = {"message": "User: arn:aws:iam::123456789012:user/x is not authorized"}
    result = run_cli("route", "q", "--url", route_server.url)
    assert result.code == EXIT_AUTH
    assert "answered 403: User: arn:aws:iam::123456789012:user/x is not authorized" in result.err
    assert "execute-api:Invoke" in result.err


def test_route_reports_a_bad_request_with_the_apis_message(route_server: RouteServer) -> None:
    route_server.status = 400
    route_server.reply = {"message": "Invalid request: query must not be empty or blank"}
    result = run_cli("route", "x", "--url", route_server.url, "--api-key", "k")
    assert result.code == EXIT_USAGE
    assert "query must not be empty or blank" in result.err
    assert route_server.requests[0].headers["x-api-key"] == "k"


def test_what_rich_draws_is_plain_text_in_a_pipe_and_styled_on_a_terminal(
    sfn: StepFunctionsFake, route_server: RouteServer
) -> None:
    # Given a run labeling shards (status draws a progress bar), the router (route draws a bar chart) and the
    # estimate (two tables)
    name = "drawn"
    sfn.add(FakeExecution(name, T0, events=until_labeling(name, shards=4, done=0).events))
    put_json(f"runs/{name}/dataset/plan.json", {"shards": 4})
    put_json(f"tmp/{name}/labeled/shard-00000.stats.json", {})
    readable = {
        "status": r"^  \[>\] Label with the teacher +\d+m \d\ds  [━╸]+ +1/4 shards  25%  ETA \dh \d\dm$",
        "route": r"^  visual +█{24} +0\.80$",
        "estimate": r"^Total +\$\d+\.\d\d$",
    }
    commands = {
        "status": ("status", name),
        "route": ("route", "sunset over mountains", "--url", route_server.url),
        "estimate": ("estimate",),
    }
    for command, argv in commands.items():
        # When the command prints to a pipe (a buffer that is no terminal)
        piped = run_cli(*argv, clients={"stepfunctions": sfn.client})

        # Then it is plain text, lines whole and readable: no escape sequence, no control character, no padding
        assert piped.code == 0, piped.err
        assert plain_text_problems(piped.out) == [], (command, piped.out)
        assert re.search(readable[command], piped.out, re.MULTILINE), (command, piped.out)

        # And to a terminal rich draws the same thing with colours and styles (the plain text is rich degrading)
        styled = run_cli(*argv, clients={"stepfunctions": sfn.client}, out=TtyBuffer())
        assert styled.code == 0, styled.err
        assert re.search(r"\x1b\[[0-9;]+m", styled.out), command


def test_the_cli_writes_plain_text_to_a_captured_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    # The default terminal writes to sys.stdout: captured here, as by a pipe or a file
    assert main(["estimate", "--examples", "1000", "--eval", "50"]) == 0
    out = capsys.readouterr().out
    assert plain_text_problems(out) == []
    assert re.search(r"^step +model +calls +input tokens +output tokens +USD$", out, re.MULTILINE)
    assert re.search(r"^─+$", out, re.MULTILINE)  # the header's rule, whole
    assert re.search(r"^Teacher labeling +us\.amazon\.nova-premier-v1:0 +1,050 ", out, re.MULTILINE)


# ---------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------
def sample_report(run_id: str) -> dict[str, Any]:
    reference = {"visual": 0.8, "audio": 0.0, "transcription": 0.0, "metadata": 0.2}
    close = {"visual": 0.75, "audio": 0.05, "transcription": 0.0, "metadata": 0.2}
    candidates = []
    for name, model, latency in (
        ("distilled", DEPLOYMENT_ARN, 420.0),
        ("base-student", "us.amazon.nova-micro-v1:0", 400.0),
        ("baseline", "us.anthropic.claude-haiku-4-5-20251001-v1:0", 1700.0),
    ):
        results = [
            QueryResult(query=f"q{i}", category="visual", reference=reference, weights=close, latency_ms=latency,
                        input_tokens=50, output_tokens=60)
            for i in range(3)
        ]  # fmt: skip
        metrics = compute_metrics(results, DEFAULT_CHANNELS, price=Price(0.000035, 0.00014))
        candidates.append({"name": name, "model_id": model, "prompt_kind": "student", "metrics": metrics})
    gate = {"passed": True, "checks": [], "failures": [], "candidate": "distilled"}
    prices = {"distilled": {"input": 0.000035, "output": 0.00014}}
    return build_report(
        run_id=run_id, channels=DEFAULT_CHANNELS, candidates=candidates, gate=gate, dataset=None, prices=prices
    )


def put_report(run_id: str) -> dict[str, Any]:
    report = sample_report(run_id)
    s3 = boto3.client("s3", region_name=REGION)
    prefix = f"runs/{run_id}/report/"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}report.json", Body=json.dumps(report).encode())
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}report.md", Body=render_markdown(report).encode())
    for chart in ("latency.png", "mae_per_channel.png", "rubric_distribution.png"):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}{chart}", Body=b"\x89PNG\r\n\x1a\n" + chart.encode())
    return report


def test_report_downloads_the_files_and_prints_the_candidates_table(stack: None, tmp_path: Path) -> None:
    put_report("night-1")
    result = run_cli("report", "night-1", "--out", str(tmp_path))
    assert result.code == 0, result.err
    folder = tmp_path / "night-1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "latency.png",
        "mae_per_channel.png",
        "report.json",
        "report.md",
        "rubric_distribution.png",
    ]
    assert (folder / "latency.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((folder / "report.json").read_text())["run_id"] == "night-1"
    assert f"report saved to {folder}/" in result.out
    assert "Quality gate: PASSED" in result.out
    table_lines = [line for line in result.out.splitlines() if line.startswith("|")]
    assert table_lines[0].startswith("| candidate | model |")
    assert [line.split("|")[1].strip() for line in table_lines[2:]] == [
        "**distilled**",
        "**base-student**",
        "**baseline**",
    ]


def test_report_without_a_run_takes_the_newest_run_that_has_one(
    stack: None, sfn: StepFunctionsFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfn.add(FakeExecution("old", T0 - timedelta(days=2), "SUCCEEDED", stop=T0))
    sfn.add(FakeExecution("middle", T0 - timedelta(days=1), "SUCCEEDED", stop=T0))
    sfn.add(FakeExecution("running", T0, "RUNNING"))
    put_report("old")
    put_report("middle")
    monkeypatch.chdir(tmp_path)
    result = run_cli("report", clients={"stepfunctions": sfn.client})
    assert result.code == 0, result.err
    assert (tmp_path / "out" / "middle" / "report.md").exists()
    assert not (tmp_path / "out" / "old").exists()


def test_report_of_a_run_without_one_is_not_found(stack: None, tmp_path: Path) -> None:
    result = run_cli("report", "nope", "--out", str(tmp_path))
    assert result.code == EXIT_NOT_FOUND
    assert f"run nope has no report at s3://{BUCKET}/runs/nope/report/report.json" in result.err
    assert not (tmp_path / "nope").exists()


def put_report_html(run_id: str, report: dict[str, Any]) -> bytes:
    body = render_html(report, {}).encode("utf-8")
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=f"runs/{run_id}/report/report.html", Body=body, ContentType="text/html; charset=utf-8"
    )
    return body


def test_report_downloads_report_html_and_prints_where_it_is(stack: None, tmp_path: Path) -> None:
    body = put_report_html("night-2", put_report("night-2"))

    result = run_cli("report", "night-2", "--out", str(tmp_path))

    assert result.code == 0, result.err
    page = tmp_path / "night-2" / "report.html"
    assert page.read_bytes() == body
    assert f"Open {page} in a browser (`python -m cli report night-2 --link` to share it)." in result.out


def test_report_of_a_run_from_before_report_html_says_there_is_none(stack: None, tmp_path: Path) -> None:
    put_report("night-3")
    result = run_cli("report", "night-3", "--out", str(tmp_path))
    assert result.code == 0, result.err
    assert "This run's report has no report.html (it predates the page): read report.md." in result.out


def test_report_link_prints_a_presigned_url_of_report_html_and_downloads_nothing(
    stack: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run with report.html, and a frozen signing clock
    body = put_report_html("night-4", put_report("night-4"))
    signed_at = datetime(2026, 3, 1, 9, 30, 0)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: signed_at)
    monkeypatch.chdir(tmp_path)

    # When the link is asked for
    result = run_cli("report", "night-4", "--link")

    # Then one URL is printed: botocore's own pre-signed GET of report.html for one hour, byte for byte
    assert result.code == 0, result.err
    url = result.out.strip().splitlines()[-1]
    presigner = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
    expected = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "runs/night-4/report/report.html"}, ExpiresIn=3600
    )
    assert url == expected
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["3600"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].endswith(f"/20260301/{REGION}/s3/aws4_request")
    assert "valid for 60 minutes" in result.out
    # and it fetches the page (moto answers the pre-signed request); nothing was downloaded
    assert requests.get(url, timeout=5).content == body
    assert not (tmp_path / "out").exists()


def test_report_link_of_a_run_without_report_html_is_not_found(stack: None) -> None:
    put_report("night-5")
    result = run_cli("report", "night-5", "--link")
    assert result.code == EXIT_NOT_FOUND
    assert f"run night-5 has no report.html at s3://{BUCKET}/runs/night-5/report/report.html" in result.err


# ---------------------------------------------------------------------------------------------------------
# estimate
# ---------------------------------------------------------------------------------------------------------
def test_estimate_needs_no_credentials_and_no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = run_cli("estimate", "--examples", "1000", "--eval", "50")
    assert result.code == 0, result.err
    assert "1000 training + 50 held-out examples" in result.out
    assert re.search(r"^Teacher labeling\s+us\.amazon\.nova-premier-v1:0\s+1,050\s", result.out, re.MULTILINE)
    for candidate in CONFIG.eval_candidates:
        assert f"Evaluation: {candidate.name}" in result.out
        assert re.search(
            rf"^{re.escape(candidate.name)}\s+\S+\s+(student|student_weights_only|teacher)\s", result.out, re.MULTILINE
        )
    assert re.search(r"^Total\s+\$\d+\.\d\d$", result.out, re.MULTILINE)
    assert "* unconfirmed" in result.out


def test_estimate_refuses_sizes_the_pipeline_would_refuse() -> None:
    result = run_cli("estimate", "--examples", "50")
    assert result.code == EXIT_USAGE and "num_examples" in result.err


# ---------------------------------------------------------------------------------------------------------
# rollback
# ---------------------------------------------------------------------------------------------------------
def promote(run_id: str) -> int:
    return int(
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=PARAMETER, Value=promoted_value(run_id), Type="String", Overwrite=True
        )["Version"]
    )


def parameter() -> dict[str, Any]:
    return boto3.client("ssm", region_name=REGION).get_parameter(Name=PARAMETER)["Parameter"]


def test_rollback_restores_the_previous_model_as_a_new_version(stack: None) -> None:
    # Given the deployed default (version 1) and a promoted distilled model (version 2)
    assert promote("night-1") == 2

    # When rolled back with --yes
    result = run_cli("rollback", "--yes")

    # Then version 1's value is written as version 3, and the change was shown
    assert result.code == 0, result.err
    current = parameter()
    assert current["Version"] == 3
    assert current["Value"] == initial_parameter_value()
    assert re.search(
        rf"\* model_id\s+{re.escape(DEPLOYMENT_ARN)}  ->  {re.escape(CONFIG.router.default_model.model_id)}", result.out
    )
    assert re.search(r"\* run_id\s+night-1  ->  None", result.out)
    assert "now version 3 (the value of version 1)" in result.out


def test_rollback_asks_first_and_changes_nothing_without_a_yes(stack: None) -> None:
    promote("night-1")

    declined = run_cli("rollback", answers=("n",), interactive=True)
    assert declined.code == EXIT_INTERRUPTED and "nothing changed" in declined.err
    assert declined.prompts == ["Restore version 1 as the router's model? [y/N] "]

    not_interactive = run_cli("rollback")
    assert not_interactive.code == EXIT_INTERRUPTED and "--yes" in not_interactive.err
    assert parameter()["Version"] == 2

    confirmed = run_cli("rollback", answers=("y",), interactive=True)
    assert confirmed.code == 0, confirmed.err
    assert parameter()["Value"] == initial_parameter_value()


def test_rollback_skips_versions_that_name_the_current_model_and_takes_an_explicit_version(stack: None) -> None:
    promote("night-1")  # 2
    promote("night-2")  # 3
    promote("night-2")  # 4: the same value again
    result = run_cli("rollback", "--yes")
    assert result.code == 0, result.err
    assert json.loads(parameter()["Value"])["run_id"] == "night-1"

    explicit = run_cli("rollback", "--to-version", "1", "--yes")
    assert explicit.code == 0, explicit.err
    assert parameter()["Value"] == initial_parameter_value()


def test_rollback_refuses_when_there_is_nothing_earlier(stack: None) -> None:
    only = run_cli("rollback", "--yes")
    assert only.code == EXIT_NOT_FOUND
    assert "no earlier model to roll back to" in only.err
    assert parameter()["Version"] == 1

    missing = run_cli("rollback", "--to-version", "7", "--yes")
    assert missing.code == EXIT_NOT_FOUND and "has no version 7" in missing.err

    current = run_cli("rollback", "--to-version", "1", "--yes")
    assert current.code == EXIT_USAGE and "is the current version" in current.err
