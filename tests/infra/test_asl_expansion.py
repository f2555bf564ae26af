"""The ASL sources name their retry policies once (``"Retry": "@lambda-task"``, ``stepfunctions/policies.json``);
:mod:`infra.asl` expands them, and what is deployed is that expansion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import asl
from infra.compensation import DEFINITION_FILE as COMPENSATION_FILE
from infra.pipeline import DEFINITION_FILE as PIPELINE_FILE
from simulation.synth import Synthesized

SOURCES = {"pipeline": PIPELINE_FILE, "compensation": COMPENSATION_FILE}

# What every task retried, state by state, when each definition still spelled its retriers out in full (the
# expansion rendered those files byte for byte before they were removed; see the history of tests/infra/golden).
LAMBDA_SERVICE = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.Unknown",
        "Sandbox.Timedout",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 5,
    "BackoffRate": 2.0,
    "MaxDelaySeconds": 60,
    "JitterStrategy": "FULL",
}


def _transient(interval_seconds: int) -> dict[str, Any]:
    return {
        "ErrorEquals": ["TransientError"],
        "IntervalSeconds": interval_seconds,
        "MaxAttempts": 8,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 300,
        "JitterStrategy": "FULL",
    }


PIPELINE_TASK = [LAMBDA_SERVICE, _transient(3)]
COMPENSATION_TASK = [LAMBDA_SERVICE, _transient(5)]
EXPECTED_RETRY = {
    "pipeline": {
        name: PIPELINE_TASK
        for name in (
            "Preflight",
            "PlanQueries",
            "LabelShards/ItemProcessor/LabelShard",
            "StartBatchLabeling",
            "CheckBatchLabeling",
            "CollectBatchLabels",
            "PrepareDataset",
            "TrainMicroRouter",
            "StartDistillation",
            "CheckDistillation",
            "StartDeployment",
            "CheckDeployment",
            "RecordOutputs",
            "EvaluateCandidates/ItemProcessor/EvaluateCandidate",
            "ShadowReplay",
            "StartJudge",
            "CheckJudge",
            "Report",
            "Promote",
            "Reject",
            "NotifySuccess",
        )
    },
    "compensation": {name: COMPENSATION_TASK for name in ("Sweep", "Notify", "NotifyCleanupFailed")},
}

POLICIES: dict[str, list[dict[str, Any]]] = {
    "task": [{"ErrorEquals": ["Lambda.Unknown"], "MaxAttempts": 2}],
    "other": [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 1}],
}


def _task(retry: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "${Fn}", "Retry": retry, "End": True}


def _states(machine: dict[str, Any], where: str = "") -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in machine["States"].items():
        path = f"{where}/{name}" if where else name
        found[path] = state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(_states(state[key], f"{path}/{key}"))
        for index, branch in enumerate(state.get("Branches", [])):
            found.update(_states(branch, f"{path}/Branches[{index}]"))
    return found


@pytest.mark.parametrize("machine", sorted(SOURCES))
def test_every_task_retries_exactly_what_it_retried_when_the_retriers_were_written_out(machine: str) -> None:
    states = _states(asl.expand_file(SOURCES[machine]))
    retrying = {path: state["Retry"] for path, state in states.items() if "Retry" in state}
    assert retrying == EXPECTED_RETRY[machine]
    assert {path for path, state in states.items() if state["Type"] == "Task"} == set(retrying)


@pytest.mark.parametrize("machine", sorted(SOURCES))
def test_the_sources_name_their_policies_instead_of_copying_them(machine: str) -> None:
    policies = asl.load_policies()
    sources = _states(json.loads(SOURCES[machine].read_text(encoding="utf-8")))
    copies = [path for path, state in sources.items() if state.get("Retry") in policies.values()]
    assert copies == []


@pytest.mark.parametrize("machine", sorted(SOURCES))
def test_the_template_deploys_the_expanded_definition(synth: Synthesized, machine: str) -> None:
    construct = getattr(synth.stack, machine).state_machine
    logical_id = synth.stack.get_logical_id(construct.node.default_child)
    props = synth.template["Resources"][logical_id]["Properties"]
    assert props["DefinitionString"] == asl.render(asl.expand_file(SOURCES[machine]))
    assert '"@' not in props["DefinitionString"]  # no reference is left for Step Functions to reject


def test_the_command_prints_the_expanded_definition(capsys: pytest.CaptureFixture[str]) -> None:
    assert asl.main([str(PIPELINE_FILE)]) == 0
    assert capsys.readouterr().out == asl.render(asl.expand_file(PIPELINE_FILE))


def test_the_command_fails_with_the_error_and_no_definition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "broken.asl.json"
    source.write_text(json.dumps({"StartAt": "A", "States": {"A": _task("@nope")}}))
    assert asl.main([str(source)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "state A: unknown retry policy 'nope'" in captured.err


def test_a_reference_becomes_the_policys_retriers_in_order() -> None:
    policies = {"two": [{"ErrorEquals": ["A"]}, {"ErrorEquals": ["B"]}]}
    expanded = asl.expand({"StartAt": "T", "States": {"T": _task("@two")}}, policies)
    assert expanded["States"]["T"]["Retry"] == [{"ErrorEquals": ["A"]}, {"ErrorEquals": ["B"]}]


def test_an_unknown_policy_names_the_state_and_the_policy() -> None:
    definition = {"StartAt": "Good", "States": {"Good": _task("@task"), "Bad": _task("@lambda-taks")}}
    with pytest.raises(asl.AslError, match=r"state Bad: unknown retry policy 'lambda-taks'.*known: other, task"):
        asl.expand(definition, POLICIES)


def test_an_unknown_policy_inside_a_map_names_the_path_to_the_state() -> None:
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": _task("@missing")}},
                "End": True,
            }
        },
    }
    with pytest.raises(asl.AslError, match=r"state Each/ItemProcessor/Inner: unknown retry policy 'missing'"):
        asl.expand(definition, POLICIES)


def test_a_retry_string_that_is_not_a_reference_is_refused() -> None:
    with pytest.raises(asl.AslError, match=r"state T: Retry 'task' is neither a list of retriers nor"):
        asl.expand({"StartAt": "T", "States": {"T": _task("task")}}, POLICIES)


def test_nested_states_are_expanded_in_map_processors_iterators_and_parallel_branches() -> None:
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Parallel",
                "Retry": "@other",  # a Parallel (and a Map) state may retry as a whole
                "Branches": [
                    {"StartAt": "B0", "States": {"B0": _task("@task")}},
                    {
                        "StartAt": "Inline",
                        "States": {
                            "Inline": {
                                "Type": "Map",
                                "ItemProcessor": {
                                    "ProcessorConfig": {"Mode": "INLINE"},
                                    "StartAt": "M",
                                    "States": {"M": _task("@task")},
                                },
                                "Next": "Legacy",
                            },
                            "Legacy": {
                                "Type": "Map",
                                "Iterator": {"StartAt": "I", "States": {"I": _task("@other")}},
                                "End": True,
                            },
                        },
                    },
                ],
                "End": True,
            }
        },
    }
    expanded = asl.expand(definition, POLICIES)
    fan = expanded["States"]["Fan"]
    assert fan["Retry"] == POLICIES["other"]
    assert fan["Branches"][0]["States"]["B0"]["Retry"] == POLICIES["task"]
    second = fan["Branches"][1]["States"]
    assert second["Inline"]["ItemProcessor"]["States"]["M"]["Retry"] == POLICIES["task"]
    assert second["Inline"]["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert second["Legacy"]["Iterator"]["States"]["I"]["Retry"] == POLICIES["other"]
    assert '"@' not in json.dumps(expanded)


def test_a_states_own_literal_retry_is_kept_as_it_is() -> None:
    own = [{"ErrorEquals": ["Custom.Error"], "IntervalSeconds": 7, "MaxAttempts": 1, "BackoffRate": 1.5}]
    definition = {"StartAt": "Own", "States": {"Own": _task(own), "None": {"Type": "Succeed"}}}
    expanded = asl.expand(definition, POLICIES)
    assert expanded["States"]["Own"]["Retry"] == own
    assert "Retry" not in expanded["States"]["None"]


def test_expansion_leaves_its_input_alone_and_shares_nothing_between_states() -> None:
    definition = {"StartAt": "A", "States": {"A": _task("@task"), "B": _task("@task")}}
    expanded = asl.expand(definition, POLICIES)
    assert definition["States"]["A"]["Retry"] == "@task"
    expanded["States"]["A"]["Retry"][0]["MaxAttempts"] = 99
    assert expanded["States"]["B"]["Retry"][0]["MaxAttempts"] == 2
    assert POLICIES["task"][0]["MaxAttempts"] == 2


def test_the_other_fields_and_their_order_are_kept() -> None:
    state = {"Type": "Task", "Comment": "c", "Resource": "${Fn}", "Retry": "@task", "Catch": [], "Next": "X"}
    expanded = asl.expand({"StartAt": "T", "States": {"T": state, "X": {"Type": "Succeed"}}}, POLICIES)
    assert list(expanded["States"]["T"]) == ["Type", "Comment", "Resource", "Retry", "Catch", "Next"]


def _policy_file(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(document))
    return path


def test_a_policy_file_naming_an_unknown_retrier_is_refused(tmp_path: Path) -> None:
    path = _policy_file(tmp_path, {"Retriers": {"a": {"ErrorEquals": ["A"]}}, "Policies": {"p": ["a", "b"]}})
    with pytest.raises(asl.AslError, match=r"policy 'p' names unknown retrier\(s\) 'b'; known: a"):
        asl.load_policies(path)


def test_a_policy_file_with_a_retrier_no_policy_uses_is_refused(tmp_path: Path) -> None:
    retriers = {"a": {"ErrorEquals": ["A"]}, "spare": {"ErrorEquals": ["B"]}}
    path = _policy_file(tmp_path, {"Retriers": retriers, "Policies": {"p": ["a"]}})
    with pytest.raises(asl.AslError, match=r"retrier\(s\) 'spare' are in no policy"):
        asl.load_policies(path)


def test_the_project_policies_load() -> None:
    policies = asl.load_policies()
    assert set(policies) == {"lambda-task", "compensation-task"}
