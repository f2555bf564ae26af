"""The state machine definition, as deployed (from the synthesized template, substitutions applied), passes a
real ASL validator: the npm package ``asl-validator`` (pinned in package.json), because moto's interpreter is
lenient and runs definitions Step Functions would reject.

What the validator checks: the ASL JSON schema (states, fields, ranges, unknown fields) and the graph (every
``Next``/``Default`` target exists, every state reachable). What it does not: the values of Retry fields such
as ``JitterStrategy`` (its schema leaves them open); moto's ASL grammar, which every workflow test runs the
definition through, does check those (shown below).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from simulation.harness import TemplateResolver, state_machine_definition
from simulation.synth import Synthesized

VALIDATOR = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "asl-validator"


def _validate(definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not VALIDATOR.exists():
        pytest.fail(f"{VALIDATOR} is missing: run `make install` (npm ci installs the pinned asl-validator)")
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def deployed_definition(synth: Synthesized, machine: str = "pipeline") -> dict[str, Any]:
    template = synth.template
    construct = getattr(synth.stack, machine).state_machine
    logical_id = synth.stack.get_logical_id(construct.node.default_child)
    props = template["Resources"][logical_id]["Properties"]
    return json.loads(state_machine_definition(synth, TemplateResolver.for_template(template), props))


@pytest.mark.parametrize("machine", ["pipeline", "compensation"])
def test_the_deployed_definition_is_valid_asl(synth: Synthesized, tmp_path: Path, machine: str) -> None:
    definition = deployed_definition(synth, machine)
    result = _validate(definition, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "is valid" in result.stdout


def test_the_validator_rejects_a_broken_definition(synth: Synthesized, tmp_path: Path) -> None:
    # Given the real definition with one transition pointing at a state that does not exist
    broken = copy.deepcopy(deployed_definition(synth))
    broken["States"]["Preflight"]["Next"] = "NoSuchState"
    result = _validate(broken, tmp_path)
    assert result.returncode == 1
    assert "MISSING_TRANSITION_TARGET" in result.stderr


def test_the_validator_rejects_an_out_of_range_field(synth: Synthesized, tmp_path: Path) -> None:
    broken = copy.deepcopy(deployed_definition(synth))
    broken["States"]["Preflight"]["TimeoutSeconds"] = -5
    assert _validate(broken, tmp_path).returncode == 1


def test_moto_parses_retry_fields_the_validator_leaves_open(synth: Synthesized) -> None:
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    broken = copy.deepcopy(deployed_definition(synth))
    broken["States"]["Preflight"]["Retry"][0]["JitterStrategy"] = "SOMETIMES"
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[call-overload]
        client = boto3.client("stepfunctions", region_name="us-east-1")
        role = "arn:aws:iam::123456789012:role/r"
        client.create_state_machine(name="valid", definition=json.dumps(deployed_definition(synth)), roleArn=role)
        with pytest.raises(ClientError, match="SOMETIMES"):
            client.create_state_machine(name="broken", definition=json.dumps(broken), roleArn=role)


def test_the_evaluation_map_runs_as_many_candidates_at_once_as_the_run_allows(synth: Synthesized) -> None:
    evaluate = deployed_definition(synth)["States"]["EvaluateCandidates"]
    # An inline Map (moto starts that many workers; Step Functions runs up to 40 inline iterations at once) whose
    # bound comes from the run; it never runs more iterations than it has items: min(candidates, the setting).
    assert evaluate["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert evaluate["ItemsPath"] == "$.run.candidates"
    assert evaluate["MaxConcurrencyPath"] == "$.run.settings.evaluation_concurrency"
    assert "MaxConcurrency" not in evaluate


def test_the_default_evaluation_concurrency_is_the_most_candidates_a_stack_may_have() -> None:
    from infra.config import ConfigError, parse_config, read_cdk_json_context
    from search_router.contract.run import RunSettings

    field = RunSettings.model_fields["evaluation_concurrency"]
    bounds = {type(m).__name__: m for m in field.metadata}
    context = read_cdk_json_context()
    default = parse_config(context).run_defaults.evaluation_concurrency  # cdk.json's run_defaults
    assert (bounds["Ge"].ge, default, bounds["Le"].le) == (1, 6, 6)
    extra = [{"name": f"extra-{i}", "model": "us.amazon.nova-micro-v1:0", "prompt_kind": "student"} for i in range(4)]
    six = [*context["eval_candidates"], *extra[: 6 - len(context["eval_candidates"])]]
    assert len(parse_config({**context, "eval_candidates": six}).eval_candidates) == default
    with pytest.raises(ConfigError, match=r"list of 1\.\.6 "):
        parse_config({**context, "eval_candidates": [*six, extra[3]]})


def test_the_shadow_replay_runs_between_the_evaluation_and_the_judge_and_its_failure_is_caught(
    synth: Synthesized,
) -> None:
    states = deployed_definition(synth)["States"]
    # After every candidate is evaluated and before the judge (so the report and the gate see its results) ...
    assert states["EvaluateCandidates"]["Next"] == "ShadowReplay"
    replay = states["ShadowReplay"]
    assert replay["Type"] == "Task" and replay["Next"] == "IsJudgeEnabled"
    assert replay["Parameters"] == {"run.$": "$.run", "dataset.$": "$.dataset"}
    assert replay["ResultPath"] == "$.shadow"
    assert ":function:" in replay["Resource"]  # the function's ARN, substituted
    # ... a failure after its retries is recorded in $.shadow, and the run goes on to the judge and the report
    assert replay["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.shadow_error", "Next": "ShadowFailed"}]
    failed = states["ShadowFailed"]
    assert failed == {
        "Type": "Pass",
        "Comment": failed["Comment"],
        "Parameters": {"error.$": "$.shadow_error"},
        "ResultPath": "$.shadow",
        "Next": "IsJudgeEnabled",
    }
    assert states["Report"]["Parameters"]["shadow.$"] == "$.shadow"
