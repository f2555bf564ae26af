"""Every AWS call the functions make is allowed by the synthesized IAM, checked against the Service Authorization
Reference — the check the local fakes cannot make, because they do not evaluate IAM.

The calls are recorded while the real handlers run: a pipeline run from ``{}`` (judge on) through promotion, a
run that fails in Preflight, the rarer paths invoked directly (stopping an overrunning job or judge, deleting a
rejected deployment), the router (Converse and ConverseStream) and the stack-delete cleanup. Each call is then
checked as IAM would check it: the function's role must allow the action on the concrete resource with the
call's condition context (:mod:`tests.policy`); what Bedrock does with the service role for the jobs created is
checked against that role. Breaking a grant (removing it, pointing it at a wrong resource type, misspelling an
action) is shown to be caught.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from search_router.adapters.clients import CLIENTS
from simulation.bedrock_fake import BedrockFake
from simulation.harness import ACCOUNT, REGION, PipelineHarness, TemplateResolver
from simulation.synth import Synthesized
from tests.policy.checks import call_findings, service_role_findings, statement_findings
from tests.policy.recorder import Call, CallRecorder
from tests.policy.requirements import resource_tag_context
from tests.policy.template import function_roles, role_statements
from tests.workflow.test_evaluation_and_promotion import judge_writes_scores

EVENTS = Path(__file__).resolve().parent.parent / "events"
MOTO = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass
class Recording:
    template: dict[str, Any]
    resolver: TemplateResolver
    calls: list[Call]
    functions: dict[str, str]  # project function logical id -> handler
    invoked: set[str]


_RECORDED: dict[str, Recording] = {}


class DeletingStack:
    """DescribeStacks answers DELETE_IN_PROGRESS for the harness's stack (moto cannot hold a stack in that state);
    the request is still serialized and validated by botocore."""

    def __init__(self) -> None:
        self.client = boto3.client("cloudformation", region_name=REGION)
        self.client.meta.events.register_first("before-call.cloudformation.DescribeStacks", self._answer)

    @staticmethod
    def _answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        stack = {
            "StackId": TemplateResolver.STACK_ID,
            "StackName": TemplateResolver.STACK_NAME,
            "CreationTime": datetime.now(UTC),
            "StackStatus": "DELETE_IN_PROGRESS",
        }
        return AWSResponse(None, 200, {}, None), {"Stacks": [stack], "ResponseMetadata": {"HTTPStatusCode": 200}}


def _invoke(
    harness: PipelineHarness, handler: str, event: dict[str, Any], environment: dict[str, str] | None = None
) -> Any:
    info = harness.function_for(handler)
    saved = dict(info.environment)
    info.environment.update(environment or {})
    headers: dict[str, str] = {}
    try:
        body = harness.invoke(info.arn, json.dumps(event).encode(), headers)
    finally:
        info.environment.clear()
        info.environment.update(saved)
    result = json.loads(body)
    if headers.get("x-amz-function-error"):
        raise AssertionError(f"{handler} failed: {result}")
    return result


def _last_event(harness: PipelineHarness, handler: str) -> dict[str, Any]:
    return copy.deepcopy(next(e for h, e in reversed(harness.invocations) if h == handler))


def _exercise(harness: PipelineHarness, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch) -> None:
    # A whole run from {} with the judge, then a run Preflight refuses (the failure notification).
    bedrock.on_evaluation_complete = CallRecorder.unattributed(
        judge_writes_scores({"distilled": 4.5, "distilled-weights": 4.5, "base-student": 1.0, "baseline": 4.0})
    )
    bedrock.model_polls_to_active = 2
    assert harness.run({}).status == "SUCCEEDED"
    # A run given production queries: ShadowReplay reads the promotion parameter and asks the model in service,
    # now the deployment the run above promoted (IAM checks its stack tag), what the router would.
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=harness.bucket, Key="inputs/production.txt", Body=b"drone shot of a lighthouse\njazz piano solo\n"
    )
    production = {"production_heldout_s3_uri": f"s3://{harness.bucket}/inputs/production.txt", "judge": False}
    assert harness.run(production).status == "SUCCEEDED"
    # Batch labeling (labeling_mode: batch): the fake writes the job's output as the service would, as nobody's call.
    monkeypatch.setattr(bedrock, "_finish_batch", CallRecorder.unattributed(bedrock._finish_batch))
    assert harness.run({"labeling_mode": "batch", "judge": False}).status == "SUCCEEDED"
    # The router: the promoted deployment (before anything below deletes it), with and without reasoning
    # (Converse, ConverseStream).
    from search_router.handlers.observability import metrics
    from search_router.handlers.router_api import use_service

    # Powertools fixes a metrics namespace when its module is first imported (maybe by another test, elsewhere)
    router = harness.function_for("search_router.handlers.router_api.lambda_handler")
    monkeypatch.setattr(metrics, "namespace", router.environment["POWERTOOLS_METRICS_NAMESPACE"])
    use_service(None)
    for body in ({"query": "sunset over snowy mountains"}, {"query": "rain", "include_reasoning": False}):
        event = json.loads((EVENTS / "router_post.json").read_text())
        event["body"] = json.dumps(body)
        assert _invoke(harness, "search_router.handlers.router_api.lambda_handler", event)["statusCode"] == 200
    use_service(None)

    # Failures, each compensated as the EventBridge rule would: refused in Preflight (nothing to remove), a failed
    # deployment (the deployment and the model are deleted; the promoted one of the first run is protected),
    # an abort while the job trains (the job is stopped).
    refused = harness.run({"num_examples": 5})
    assert refused.status == "FAILED" and refused.compensation and refused.compensation.status == "SUCCEEDED"
    bedrock.fail_next_deployment("Insufficient capacity")
    failed = harness.run({})
    assert failed.compensation and failed.compensation.status == "SUCCEEDED", failed.compensation
    aborted = _abort_in(harness, "search_router.handlers.distillation.check")
    assert aborted.status == "ABORTED" and aborted.compensation and aborted.compensation.status == "SUCCEEDED"
    # ... and an abort while a batch labeling job is queued (the job is stopped).
    bedrock.batch_polls_to_complete = 10_000
    aborted = _abort_in(harness, "search_router.handlers.batch_labeling.check", {"labeling_mode": "batch"})
    assert aborted.compensation and aborted.compensation.status == "SUCCEEDED"
    assert bedrock.calls_to("StopModelInvocationJob")
    bedrock.batch_polls_to_complete = 2
    # A failure whose event was lost: the scheduled reconcile starts its compensation.
    lost = harness.run({"num_examples": 5}, compensate=False)
    _invoke(
        harness,
        "search_router.handlers.compensate.reconcile",
        {"source": "aws.events"},
        {"RECONCILE_GRACE_SECONDS": "0"},
    )
    assert any(
        e["executionArn"] for e in harness.sfn.list_executions(stateMachineArn=harness.compensation_arn)["executions"]
    )
    del lost

    # A labeling shard re-invoked (a retry after it ran out of time, a redrive): it resumes from its checkpoint.
    shard_event = _last_event(harness, "search_router.handlers.label_shard.handler")
    stats = next(
        k for k in harness.s3_keys(f"tmp/{shard_event['run']['run_id']}/labeled/") if k.endswith(".stats.json")
    )
    boto3.client("s3", region_name=REGION).delete_object(Bucket=harness.bucket, Key=stats)
    _invoke(harness, "search_router.handlers.label_shard.handler", shard_event)

    # The rarer paths, with the events the pipeline really passed (from the run above).
    run = _last_event(harness, "search_router.handlers.report.handler")["run"]
    job_arn = bedrock.control.create_model_customization_job(
        **{**_last_event_request(bedrock, "CreateModelCustomizationJob"), "jobName": "overrunning",
           "customModelName": "overrunning", "clientRequestToken": "overrunning"}
    )["jobArn"]  # fmt: skip
    bedrock.backdate(job_arn, hours=run["settings"]["max_distillation_hours"] + 1)
    distillation = {
        **_last_event(harness, "search_router.handlers.distillation.check")["distillation"],
        "job_arn": job_arn,
    }
    with pytest.raises(AssertionError, match="DistillationTimedOut"):
        _invoke(harness, "search_router.handlers.distillation.check", {"run": run, "distillation": distillation})
    judge_request = _last_event_request(bedrock, "CreateEvaluationJob")
    judge_arn = bedrock.control.create_evaluation_job(
        **{**judge_request, "jobName": "overrunning-judge", "clientRequestToken": "overrunning-judge"}
    )["jobArn"]
    stale = {"jobs": [{"candidate": "distilled", "status": "InProgress", "job_arn": judge_arn, "score": None}],
             "started_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(), "done": False}  # fmt: skip
    _invoke(harness, "search_router.handlers.judge.check", {"run": run, "judge": stale})
    report_event = _last_event(harness, "search_router.handlers.report.handler")
    _invoke(harness, "search_router.handlers.report.handler", {**report_event, "judge": stale})
    reject_event = _last_event(harness, "search_router.handlers.promote.promote")
    _invoke(harness, "search_router.handlers.promote.reject", reject_event, {"DELETE_REJECTED_DEPLOYMENTS": "true"})

    # The stack-delete cleanup, with a distillation job still running.
    bedrock.control.create_model_customization_job(
        **{**_last_event_request(bedrock, "CreateModelCustomizationJob"), "jobName": "in-flight",
           "customModelName": "in-flight", "clientRequestToken": "in-flight"}
    )  # fmt: skip
    CLIENTS.override("cloudformation", DeletingStack().client)
    cleanup = _cleanup_event(harness)
    started = {**cleanup, **_invoke(harness, "search_router.handlers.cleanup.on_event", cleanup)}
    for _ in range(12):
        if _invoke(harness, "search_router.handlers.cleanup.is_complete", started)["IsComplete"]:
            break
    else:
        raise AssertionError("the cleanup did not complete")


def _abort_in(harness: PipelineHarness, handler: str, execution_input: dict[str, Any] | None = None) -> Any:
    """Run from ``execution_input`` (``{}``) and stop the execution (as a user would in the console) when
    ``handler`` is first invoked."""

    def stop(invoked: str, event: dict[str, Any]) -> None:
        if invoked == handler and stop in harness.before_invoke:
            harness.before_invoke.remove(stop)
            harness.sfn.stop_execution(executionArn=event["run"]["execution_arn"], error="Stopped", cause="by a test")

    harness.before_invoke.append(stop)
    execution = harness.wait(harness.start(execution_input or {}))
    execution.compensation = harness.compensate(execution)
    return execution


def _resource_tags(bedrock: BedrockFake) -> Any:
    """The tags of the Bedrock resource a call acts on, as IAM sees them (``aws:ResourceTag/*``) at call time."""

    def context_of(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if service not in ("bedrock", "bedrock-runtime"):
            return {}
        keys = ("jobIdentifier", "modelIdentifier", "customModelDeploymentIdentifier", "resourceARN", "modelId")
        arn = next((params[k] for k in keys if str(params.get(k, "")).startswith("arn:")), None)
        return resource_tag_context(bedrock.resource_tags(arn)) if arn else {}

    return context_of


def _last_event_request(bedrock: BedrockFake, operation: str) -> dict[str, Any]:
    return copy.deepcopy(bedrock.calls_to(operation)[-1])


def _cleanup_event(harness: PipelineHarness) -> dict[str, Any]:
    template = harness.synthesized.template
    (logical_id,) = [k for k, v in template["Resources"].items() if v["Type"] == "Custom::RuntimeResourceCleanup"]
    props = harness.resolver.resolve(template["Resources"][logical_id]["Properties"])
    return {
        "RequestType": "Delete",
        "ServiceToken": props["ServiceToken"],
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "StackId": TemplateResolver.STACK_ID,
        "RequestId": "request-1",
        "LogicalResourceId": logical_id,
        "ResourceType": "Custom::RuntimeResourceCleanup",
        "PhysicalResourceId": f"runtime-resource-cleanup-{props['StackName']}",
        # No settle wait here (the recording's abort just happened; tests/handlers/test_cleanup.py covers it)
        "ResourceProperties": {**{k: str(v) for k, v in props.items()}, "SettleSeconds": "0"},
    }


@contextlib.contextmanager
def recorded_harness(
    synthesized: Synthesized, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PipelineHarness, CallRecorder]]:
    """The harness of ``synthesized`` in moto, every AWS call of its functions recorded (with the Bedrock
    resources' tags as IAM sees them)."""
    with mock_aws(config=MOTO):  # type: ignore[call-overload]
        harness = PipelineHarness(synthesized)
        harness.install(monkeypatch)
        recorder = CallRecorder(_resource_tags(bedrock))
        with recorder.installed(monkeypatch):
            harness.on_invoke = recorder.invoking
            yield harness, recorder


@pytest.fixture
def recording(synthesized_small: Synthesized, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch) -> Recording:
    """The calls of every function (recorded once per test process, then reused: plain data)."""
    if "small" not in _RECORDED:
        with recorded_harness(synthesized_small, bedrock, monkeypatch) as (harness, recorder):
            _exercise(harness, bedrock, monkeypatch)
            _RECORDED["small"] = Recording(
                template=synthesized_small.template,
                resolver=harness.resolver,
                calls=list(recorder.calls),
                functions={k: f.handler for k, f in harness.functions.items()},
                invoked=set(recorder.invoked),
            )
    return _RECORDED["small"]


# ----------------------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------------------


def test_every_call_of_every_function_is_allowed_by_its_role(recording: Recording) -> None:
    findings = call_findings(recording.template, recording.resolver, recording.calls)
    assert findings == []


def test_every_function_of_the_stack_was_run(recording: Recording) -> None:
    # A function the recording never ran would escape the check above.
    silent = {k: handler for k, handler in recording.functions.items() if k not in recording.invoked}
    assert silent == {}


def test_the_bedrock_service_role_allows_what_bedrock_does_for_the_jobs(recording: Recording) -> None:
    jobs = {"CreateModelCustomizationJob", "CreateEvaluationJob", "CreateModelInvocationJob"}
    created = [c for c in recording.calls if c.operation in jobs]
    assert {c.operation for c in created} == jobs
    assert service_role_findings(recording.template, recording.resolver, created) == []


def test_the_recording_covers_the_calls_defects_hid_in(recording: Recording) -> None:
    operations = {(c.service, c.operation) for c in recording.calls}
    expected = {
        ("bedrock", "CreateEvaluationJob"),
        ("bedrock", "GetFoundationModelAvailability"),
        ("bedrock", "ListFoundationModels"),
        ("bedrock", "GetCustomModel"),
        ("bedrock", "StopModelCustomizationJob"),
        ("bedrock", "StopEvaluationJob"),
        ("bedrock", "StopModelInvocationJob"),
        ("bedrock", "CreateModelInvocationJob"),
        ("bedrock", "DeleteCustomModelDeployment"),
        ("bedrock", "DeleteCustomModel"),
        ("bedrock-runtime", "Converse"),
        ("bedrock-runtime", "ConverseStream"),
        ("sns", "Publish"),
        ("ssm", "PutParameter"),
        ("s3", "PutObject"),
        ("stepfunctions", "DescribeExecution"),
        ("stepfunctions", "GetExecutionHistory"),
        ("stepfunctions", "ListExecutions"),
        ("stepfunctions", "StartExecution"),
    }
    assert expected <= operations


# ----------------------------------------------------------------------------------------------------------
# The checks catch the defects they exist for
# ----------------------------------------------------------------------------------------------------------


def _policy_of(template: dict[str, Any], handler: str) -> dict[str, Any]:
    function = next(
        k for k, v in template["Resources"].items()
        if v["Type"] == "AWS::Lambda::Function" and v["Properties"].get("Handler") == handler
    )  # fmt: skip
    role = function_roles(template)[function]
    return next(
        v["Properties"]["PolicyDocument"]
        for v in template["Resources"].values()
        if v["Type"] == "AWS::IAM::Policy" and {"Ref": role} in v["Properties"]["Roles"]
    )


def _statement(document: dict[str, Any], action: str) -> dict[str, Any]:
    return next(
        s for s in document["Statement"] if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )


def test_a_create_evaluation_job_grant_on_evaluation_jobs_is_caught(recording: Recording) -> None:
    # Given the defect this project once had: CreateEvaluationJob granted on evaluation-job/*
    broken = copy.deepcopy(recording.template)
    statement = _statement(_policy_of(broken, "search_router.handlers.judge.start"), "bedrock:CreateEvaluationJob")
    statement["Resource"] = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:", {"Ref": "AWS::Region"},
                                               ":", {"Ref": "AWS::AccountId"}, ":evaluation-job/*"]]}  # fmt: skip
    resolver = TemplateResolver.for_template(broken)
    # Then the SAR check says the grant can never match, and the recorded call is refused
    static = statement_findings(role_statements(broken, resolver))
    assert any("bedrock:CreateEvaluationJob is granted on" in f and "foundation-model" in f for f in static)
    calls = call_findings(broken, resolver, recording.calls)
    assert any("not allowed: bedrock:CreateEvaluationJob" in f for f in calls)


def test_a_removed_grant_is_caught(recording: Recording) -> None:
    broken = copy.deepcopy(recording.template)
    document = _policy_of(broken, "search_router.handlers.report.handler")
    document["Statement"].remove(_statement(document, "s3:PutObject"))
    findings = call_findings(broken, TemplateResolver.for_template(broken), recording.calls)
    assert any("not allowed: s3:PutObject" in f and "/report/report.json" in f for f in findings)


def test_a_grant_on_the_wrong_resource_is_caught(recording: Recording) -> None:
    # The labeling function's teacher grant pointed at the judge instead
    broken = copy.deepcopy(recording.template)
    statement = _statement(_policy_of(broken, "search_router.handlers.label_shard.handler"), "bedrock:InvokeModel")
    statement["Resource"] = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.anthropic.claude-sonnet-4-5-*"
    findings = call_findings(broken, TemplateResolver.for_template(broken), recording.calls)
    assert any("not allowed: bedrock:InvokeModel" in f and "nova-pro" in f for f in findings)


def test_a_misspelled_action_is_caught(recording: Recording) -> None:
    broken = copy.deepcopy(recording.template)
    statement = _statement(
        _policy_of(broken, "search_router.handlers.deployment.start"), "bedrock:CreateCustomModelDeployment"
    )
    statement["Action"] = "bedrock:CreateCustomModelDeploymnet"
    resolver = TemplateResolver.for_template(broken)
    assert any(
        "bedrock:CreateCustomModelDeploymnet is not an IAM action" in f
        for f in statement_findings(role_statements(broken, resolver))
    )
    assert any(
        "not allowed: bedrock:CreateCustomModelDeployment" in f
        for f in call_findings(broken, resolver, recording.calls)
    )


def test_missing_multipart_permissions_of_the_service_role_are_caught(recording: Recording) -> None:
    broken = copy.deepcopy(recording.template)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != "s3:AbortMultipartUpload"] or "s3:GetObject"
    created = [c for c in recording.calls if c.operation == "CreateEvaluationJob"]
    findings = service_role_findings(broken, TemplateResolver.for_template(broken), created)
    assert any("not allowed: s3:AbortMultipartUpload" in f for f in findings)


def test_destructive_and_create_grants_are_limited_to_this_stacks_tag_by_iam(recording: Recording) -> None:
    # Every stop, delete and create of a run-time Bedrock resource carries the stack-tag condition, and the
    # recorded calls pass it (the resources carry the tag; the creates tag what they create).
    conditioned = {
        "bedrock:StopModelCustomizationJob": "aws:ResourceTag/stack",
        "bedrock:StopEvaluationJob": "aws:ResourceTag/stack",
        "bedrock:DeleteCustomModelDeployment": "aws:ResourceTag/stack",
        "bedrock:DeleteCustomModel": "aws:ResourceTag/stack",
        "bedrock:CreateModelCustomizationJob": "aws:RequestTag/stack",
        "bedrock:CreateCustomModelDeployment": "aws:RequestTag/stack",
        "bedrock:CreateEvaluationJob": "aws:RequestTag/stack",
    }
    stack_names = {
        str(v["Properties"]["Environment"]["Variables"]["STACK_NAME"])
        for v in recording.template["Resources"].values()
        if v["Type"] == "AWS::Lambda::Function"
        and "STACK_NAME" in v["Properties"].get("Environment", {}).get("Variables", {})
    }
    (stack_name,) = stack_names  # the value the functions tag with
    statements = role_statements(recording.template, recording.resolver)
    seen = set()
    for role, found in statements.items():
        for statement in found:
            for action, key in conditioned.items():
                if action in statement.actions and statement.effect == "Allow":
                    values = statement.conditions.get("StringEquals", {}).get(key)
                    assert values == stack_name, (role, action, statement.conditions)
                    seen.add(action)
    assert seen == set(conditioned)
    # Invoking a run-time deployment (the router, the evaluation) needs the tag as well
    invokers = set()
    for role, found in statements.items():
        for statement in found:
            if any(a.startswith("bedrock:InvokeModel") for a in statement.actions) and any(
                ":custom-model-deployment/" in r for r in statement.resources
            ):
                assert statement.conditions == {"StringEquals": {"aws:ResourceTag/stack": stack_name}}, role
                invokers.add(role)
    assert len(invokers) == 3  # the router, the evaluation and the shadow replay (the model in service)
    assert {c.operation for c in recording.calls} >= {"DeleteCustomModel", "StopModelCustomizationJob"}


def test_a_delete_of_another_stacks_resource_is_refused_by_the_condition(recording: Recording) -> None:
    # Given the Reject step's delete grant conditioned on another stack's tag
    broken = copy.deepcopy(recording.template)
    statement = _statement(
        _policy_of(broken, "search_router.handlers.promote.reject"), "bedrock:DeleteCustomModelDeployment"
    )
    statement["Condition"] = {"StringEquals": {"aws:ResourceTag/stack": "someone-elses-stack"}}
    findings = call_findings(broken, TemplateResolver.for_template(broken), recording.calls)
    # Then the recorded delete of this stack's deployment is refused, as IAM would refuse it
    assert any("not allowed: bedrock:DeleteCustomModelDeployment" in f for f in findings)


def test_a_condition_key_the_action_does_not_support_is_caught(recording: Recording) -> None:
    # Given a create conditioned on the *resource's* tag (a resource that does not exist yet carries none;
    # the SAR lists no aws:ResourceTag for CreateModelCustomizationJob's foundation-model resource)
    broken = copy.deepcopy(recording.template)
    statement = _statement(
        _policy_of(broken, "search_router.handlers.distillation.start"), "bedrock:CreateModelCustomizationJob"
    )
    statement["Condition"] = {"StringEquals": {"aws:ResourceTag/stack": "SearchRouterDistillation"}}
    resolver = TemplateResolver.for_template(broken)
    static = statement_findings(role_statements(broken, resolver))
    assert any("condition key aws:ResourceTag/stack is not one the SAR lists" in f for f in static)
    assert any(
        "not allowed: bedrock:CreateModelCustomizationJob" in f
        for f in call_findings(broken, resolver, recording.calls)
    )


def test_the_shadow_replay_asked_the_promoted_deployment_under_the_checked_grants(recording: Recording) -> None:
    # The production run's ShadowReplay read the promotion parameter and called the deployment it names: calls
    # the SAR check above allows (InvokeModel on custom-model-deployment, with its stack tag).
    shadow = "search_router.handlers.shadow.handler"
    mine = [c for c in recording.calls if recording.functions.get(c.function) == shadow]
    assert {(c.service, c.operation) for c in mine} >= {("ssm", "GetParameter"), ("bedrock-runtime", "Converse")}
    invoked = {c.params["modelId"] for c in mine if c.operation == "Converse"}
    assert invoked and all(":custom-model-deployment/" in model for model in invoked)


def test_the_promoted_micro_router_is_copied_and_read_under_the_checked_grants(recording: Recording) -> None:
    # The {} run enables the cascade (the fake's answers are learnable): Promote reads the run's micro-router and
    # writes its copy under promoted/micro-router/, and the router reads that copy; all of these calls are among
    # those the SAR check above allows.
    promote = "search_router.handlers.promote.promote"
    writes = [
        c
        for c in recording.calls
        if (c.service, c.operation) == ("s3", "PutObject") and c.params["Key"].startswith("promoted/micro-router/")
    ]
    assert writes and {recording.functions[c.function] for c in writes} == {promote}
    promoted = {c.params["Key"] for c in writes}
    router_reads = [
        c for c in recording.calls if (c.service, c.operation) == ("s3", "GetObject") and c.params["Key"] in promoted
    ]
    assert router_reads, "the router never read the promoted micro-router"
    assert {recording.functions[c.function] for c in router_reads} == {
        "search_router.handlers.router_api.lambda_handler"
    }
