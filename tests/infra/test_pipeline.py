"""The pipeline's state machine definition and the task functions' permissions, as synthesized."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.asl import expand_file
from simulation.synth import Synthesized

ASL = Path(__file__).resolve().parents[2] / "stepfunctions" / "pipeline.asl.json"


def _all_states(states: dict[str, Any]) -> dict[str, Any]:
    found = dict(states)
    for state in states.values():
        if "ItemProcessor" in state:
            found.update(_all_states(state["ItemProcessor"]["States"]))
    return found


def _policy_statements(synth: Synthesized, function_handler: str) -> list[dict[str, Any]]:
    (logical_id,) = [
        k
        for k, v in synth.resources("AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == function_handler
    ]
    role = synth.template["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_a_failed_task_stays_the_failed_step_so_a_redrive_continues_from_it() -> None:
    definition = expand_file(ASL)
    states = _all_states(definition["States"])
    tasks = {name: s for name, s in states.items() if s["Type"] in ("Task", "Map")}
    assert len(tasks) >= 15
    for name, state in tasks.items():
        if state["Type"] == "Task":
            retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "TransientError"} <= retried, name
            # a function timeout (Lambda.Unknown; Sandbox.Timedout on newer runtimes) is retried: tasks re-enter safely
            assert {"Lambda.Unknown", "Sandbox.Timedout"} <= retried, name
    # No catch-all and no Fail state: the task that failed is the execution's failed step. The only Catches are
    # the judge's, which degrades into the report (the gate then fails on the missing judge), and the optional
    # micro-router's, for its one deterministic refusal only (the run goes on without a cascade), and the shadow
    # replay's (optional evidence: the report says it failed and why; a gate requiring it then fails).
    catching = {name for name, state in states.items() if state.get("Catch")}
    assert catching == {"StartJudge", "CheckJudge", "TrainMicroRouter", "ShadowReplay"}
    (shadow,) = states["ShadowReplay"]["Catch"]
    assert shadow == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.shadow_error", "Next": "ShadowFailed"}
    assert states["ShadowFailed"]["Type"] == "Pass" and states["ShadowFailed"]["ResultPath"] == "$.shadow"
    assert {c["Next"] for name in ("StartJudge", "CheckJudge") for c in states[name]["Catch"]} == {"Report"}
    (micro,) = states["TrainMicroRouter"]["Catch"]
    assert micro["ErrorEquals"] == ["MicroRouterNotTrainable"] and micro["Next"] == "MicroRouterFailed"
    assert not [name for name, state in states.items() if state["Type"] == "Fail"]


def test_labeling_shards_may_fail_up_to_the_runs_tolerance() -> None:
    states = expand_file(ASL)["States"]
    label = states["LabelShards"]
    # Failure thresholds exist only for a Distributed Map; each shard is a child execution a redrive can re-run.
    assert label["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert label["ToleratedFailurePercentagePath"] == "$.run.settings.max_failed_shards_percent"
    assert label["Label"] == "LabelShards"
    assert "Catch" not in label


def test_the_state_machine_may_run_redrive_and_stop_its_own_shard_executions(synth: Synthesized) -> None:
    machine = synth.stack.get_logical_id(synth.stack.pipeline.state_machine.node.default_child)
    role = synth.template["Resources"][machine]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action = {a: s for s in statements for a in _actions([s])}
    assert by_action["states:StartExecution"]["Resource"] == {"Ref": machine}
    for action in ("states:DescribeExecution", "states:StopExecution", "states:RedriveExecution"):
        assert machine in json.dumps(by_action[action]["Resource"]), action  # only this machine's executions
    assert "LabelShards" in json.dumps(by_action["states:RedriveExecution"]["Resource"])


def test_waits_come_from_the_status_checks_and_concurrency_from_the_input() -> None:
    states = _all_states(expand_file(ASL)["States"])
    waits = {name: s for name, s in states.items() if s["Type"] == "Wait"}
    assert waits["WaitForDistillation"]["SecondsPath"] == "$.distillation_status.next_wait_seconds"
    assert waits["WaitForDeployment"]["SecondsPath"] == "$.deployment_status.next_wait_seconds"
    assert waits["WaitForJudge"]["SecondsPath"] == "$.judge.next_wait_seconds"
    # every job is checked right after it starts, then waits: no loop begins with a blind wait
    assert states["StartDistillation"]["Next"] == "CheckDistillation"
    assert states["StartDeployment"]["Next"] == "CheckDeployment"
    assert states["LabelShards"]["MaxConcurrencyPath"] == "$.run.settings.concurrency"


def test_state_machine_logs_traces_and_times_out(synth: Synthesized) -> None:
    # The pipeline's (the cleanup's Provider framework adds a waiter state machine of its own)
    pipeline_machine = synth.stack.get_logical_id(synth.stack.pipeline.state_machine.node.default_child)
    machine = synth.template["Resources"][pipeline_machine]
    props = machine["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    (log_group,) = [
        g
        for g in synth.resources("AWS::Logs::LogGroup").values()
        if "-pipeline" in json.dumps(g["Properties"].get("LogGroupName"))
    ]
    assert log_group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")
    assert set(props["DefinitionSubstitutions"]) >= {"PreflightFunctionArn", "ReportFunctionArn", "NotifyFunctionArn"}
    assert expand_file(ASL)["TimeoutSeconds"] >= (168 + 24) * 3600
    alarms = [
        a
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if "pipeline" in a["Properties"].get("AlarmDescription", "")
    ]
    assert alarms and alarms[0]["Properties"]["AlarmActions"]


def test_the_teacher_labeling_function_may_invoke_only_the_allowed_teachers(synth: Synthesized) -> None:
    statements = _policy_statements(synth, "search_router.handlers.label_shard.handler")
    invoke = [s for s in statements if "bedrock:InvokeModel" in _actions([s])]
    resources = json.dumps([s["Resource"] for s in invoke])
    assert "nova-premier" in resources and "nova-pro" in resources
    assert "claude" not in resources and "custom-model-deployment" not in resources
    assert _actions(statements) - {"bedrock:InvokeModel"} <= {
        "s3:GetObject", "s3:PutObject", "s3:ListBucket", "logs:CreateLogStream", "logs:PutLogEvents",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    }  # fmt: skip


def test_starting_a_job_may_pass_the_bedrock_role_to_bedrock_only(synth: Synthesized) -> None:
    statements = _policy_statements(synth, "search_router.handlers.distillation.start")
    (pass_role,) = [s for s in statements if "iam:PassRole" in _actions([s])]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    assert "bedrock:CreateModelCustomizationJob" in _actions(statements)
    assert "bedrock:DeleteCustomModel" not in _actions(statements)


def test_only_the_promote_step_can_change_the_routers_model(synth: Synthesized) -> None:
    writers = [
        v["Properties"]["Handler"]
        for k, v in synth.resources("AWS::Lambda::Function").items()
        if "Handler" in v["Properties"]
        and "ssm:PutParameter" in _actions(_policy_statements(synth, v["Properties"]["Handler"]))
    ]
    assert writers == ["search_router.handlers.promote.promote"]


def test_preflight_and_the_doctor_check_the_same_models(synth: Synthesized, monkeypatch: Any) -> None:
    # One module, two callers: the plan Preflight builds from its deployed environment is the doctor's from cdk.json
    from cli.doctor import model_plan as doctor_plan
    from infra.config import load_config, pipeline_defaults
    from search_router.contract.run import settings_from_input
    from search_router.handlers.preflight import model_plan as preflight_plan
    from simulation.harness import TemplateResolver

    (function,) = [
        v for v in synth.resources("AWS::Lambda::Function").values()
        if v["Properties"].get("Handler") == "search_router.handlers.preflight.handler"
    ]  # fmt: skip
    environment = TemplateResolver.for_template(synth.template).resolve(
        function["Properties"]["Environment"]["Variables"]
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    config = load_config()
    settings = settings_from_input(pipeline_defaults(config), {})
    assert preflight_plan(settings) == doctor_plan(config, settings)
    assert preflight_plan(settings).teacher == "auto"


def test_the_shadow_replay_may_invoke_only_what_can_be_in_service_and_read_the_promotion(synth: Synthesized) -> None:
    statements = _policy_statements(synth, "search_router.handlers.shadow.handler")
    invoke = [s for s in statements if "bedrock:InvokeModel" in _actions([s])]
    # Converse (bedrock:InvokeModel) on the router's models and on this stack's deployments: what the router's own
    # grant names (with ConverseStream's action), so a model in service is never one the replay may not call
    router = next(
        v["Properties"]["Handler"]
        for v in synth.resources("AWS::Lambda::Function").values()
        if v["Properties"].get("Handler", "").endswith("router_api.lambda_handler")
    )
    routers = [s for s in _policy_statements(synth, router) if "bedrock:InvokeModelWithResponseStream" in _actions([s])]
    assert sorted(json.dumps([s["Resource"], s.get("Condition")]) for s in invoke) == sorted(
        json.dumps([s["Resource"], s.get("Condition")]) for s in routers
    )
    (deployments,) = [s for s in invoke if "custom-model-deployment" in json.dumps(s["Resource"])]
    assert list(deployments["Condition"]["StringEquals"]) == ["aws:ResourceTag/stack"]
    granted = json.dumps([s["Resource"] for s in invoke])
    assert "claude-sonnet" not in granted and "nova-pro" not in granted  # the judge and the teachers never serve
    (read,) = [s for s in statements if "ssm:GetParameter" in _actions([s])]
    parameter = next(k for k in synth.resources("AWS::SSM::Parameter"))
    assert _actions([read]) == {"ssm:GetParameter"} and {"Ref": parameter} in read["Resource"]["Fn::Join"][1]
    assert _actions(statements) - {"bedrock:InvokeModel", "ssm:GetParameter"} <= {
        "s3:GetObject", "s3:PutObject", "logs:CreateLogStream", "logs:PutLogEvents",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    }  # fmt: skip
    objects = json.dumps([s["Resource"] for s in statements if _actions([s]) & {"s3:GetObject", "s3:PutObject"}])
    assert "runs/*/dataset/heldout.jsonl" in objects and "runs/*/evaluation/shadow/*" in objects
