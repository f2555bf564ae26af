"""Build-time configuration: cdk.json defaults, ``-c key=value`` strings, and errors that name the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, load_config, parse_config, read_cdk_json_context


def _context(**overrides: Any) -> dict[str, Any]:
    context = read_cdk_json_context()
    context.update(overrides)
    return context


def test_cdk_json_defaults_match_the_documented_defaults() -> None:
    config = load_config()
    assert config.region == "us-east-1"
    assert config.models.teacher == "auto"
    assert config.teacher_preference == ("us.amazon.nova-premier-v1:0", "us.amazon.nova-pro-v1:0")
    assert config.api_gateway_cloudwatch_role == "create"
    assert config.gate.require_judge is True
    assert config.models.student_job == "amazon.nova-micro-v1:0:128k"
    assert config.models.student == "us.amazon.nova-micro-v1:0"
    assert config.models.baseline == "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert config.models.judge == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert config.channels.names == ("visual", "audio", "transcription", "metadata")
    assert (config.run_defaults.num_examples, config.run_defaults.eval_examples) == (10_000, 300)
    assert config.api_auth == "iam"
    assert config.retain_data is False
    assert config.notification_email is None


def test_cli_strings_are_coerced_like_json_values() -> None:
    # Given values as `cdk deploy -c key=value` passes them: always strings
    config = parse_config(
        _context(
            **{"run_defaults.num_examples": "2000", "run_defaults.judge": "false"},
            retain_data="true",
            gate_max_overall_mae="0.1",
            log_retention_days="90",
            channels=json.dumps([{"name": "visual", "description": "pixels"}, {"name": "mood", "description": "tone"}]),
        )
    )
    assert (config.run_defaults.num_examples, config.run_defaults.judge) == (2000, False)
    assert config.retain_data is True
    assert config.gate.max_overall_mae == 0.1
    assert config.log_retention_days == 90
    assert config.channels.names == ("visual", "mood")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("run_defaults.num_examples", "abc", "Input should be a valid integer"),
        ("run_defaults.num_examples", 20_000, "Input should be less than or equal to 15000"),
        ("run_defaults.num_examples", 1.5, "Input should be a valid integer"),
        ("run_defaults.eval_examples", 5, "Input should be greater than or equal to 10"),
        ("run_defaults.concurrency", 41, "Input should be less than or equal to 40"),
        ("run_defaults.judge", "sometimes", "Input should be a valid boolean"),
        ("run_defaults.queries_s3_uri", "queries.txt", "must be an S3 object URI"),
        ("region", "eu-west-1", "must be one of us-east-1, us-west-2"),
        ("api_auth", "none", "must be one of iam, api_key"),
        ("retain_data", "yes", "must be true or false"),
        ("gate_min_valid_json_rate", 1.5, "must be a number in 0.0..1.0"),
        ("gate_max_overall_mae", "nan", "must be a number"),
        ("run_defaults.teacher_model_id", "Nova Premier", "must be 'auto' or a Bedrock model"),
        ("student_job_model_id", "us.amazon.nova-micro-v1:0", "not an inference profile"),
        ("notification_email", "ops-at-example.com", "must be an e-mail address"),
        ("log_retention_days", 10, "must be one of 1, 3, 5, 7"),
        ("lambda_architecture", "arm", "must be one of arm64, x86_64"),
        ("stack_name", "1-bad name", "CloudFormation stack name"),
        ("channels", "not json", "must be JSON"),
        (
            "channels",
            [{"name": "Visual", "description": "x"}, {"name": "audio", "description": "y"}],
            "channels[0].name",
        ),
        ("channels", [{"name": "visual", "description": "x"}], "2..12 entries"),
        ("channels", [{"name": "a", "description": "x"}, {"name": "a", "description": "y"}], "duplicated"),
        ("prices", {"x": {"input": 1}}, "prices.x"),
        ("api_gateway_cloudwatch_role", "manual", "must be one of create, existing"),
        ("gate_require_judge", "sometimes", "must be true or false"),
        ("gate_min_production_rubric", 6, "must be null (off) or a score in 1..5"),
        ("gate_min_production_rubric", "high", "must be null (off) or a score in 1..5"),
        ("run_defaults.shadow_max_queries", 0, "Input should be greater than or equal to 1"),
        (
            "eval_candidates",
            [
                {"name": "distilled", "model": "distilled", "prompt_kind": "student"},
                {"name": "shadow", "model": "us.amazon.nova-micro-v1:0", "prompt_kind": "student"},
            ],
            "candidate name(s) shadow are taken by the run's evaluation folders",
        ),
        ("teacher_preference", [], "must be a non-empty list"),
        ("teacher_preference", ["us.amazon.nova-pro-v1:0", "us.amazon.nova-pro-v1:0"], "lists a model twice"),
        ("distillation_pairs", {"amazon.nova-pro-v1:0": []}, "must be a non-empty list of student model ids"),
        ("student_job_model_id", "amazon.nova-micro-v1:0", "with its context suffix"),
    ],
)
def test_a_bad_value_is_rejected_with_a_message_naming_the_key(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_context(**{key: value}))
    assert error.value.key == key or error.value.key.split(".")[0] == key
    assert f"'{key}" in str(error.value)
    assert expected in str(error.value)


def test_teacher_settings_that_could_never_distil_fail_synth() -> None:
    # an explicit teacher outside the preference list (IAM grants invoke on that list only)
    with pytest.raises(
        ConfigError, match=r"'run_defaults\.teacher_model_id': must be 'auto' or one of teacher_preference"
    ):
        parse_config(_context(**{"run_defaults.teacher_model_id": "us.amazon.nova-lite-v1:0"}))
    # no preferred teacher paired with the student
    with pytest.raises(ConfigError, match="'teacher_preference': no teacher in it is paired with the student"):
        parse_config(_context(distillation_pairs={"amazon.nova-premier-v1:0": ["amazon.nova-lite-v1:0"]}))
    # an explicit teacher that is not paired
    with pytest.raises(ConfigError, match=r"'run_defaults.teacher_model_id': us\.amazon\.nova-pro-v1:0 is not paired"):
        parse_config(
            _context(
                **{"run_defaults.teacher_model_id": "us.amazon.nova-pro-v1:0"},
                distillation_pairs={"amazon.nova-premier-v1:0": ["amazon.nova-micro-v1:0"]},
            )
        )
    # a preferred teacher without a price
    with pytest.raises(ConfigError, match=r"'prices': has no entry for teacher 'us\.amazon\.nova-2-pro-v1:0'"):
        parse_config(_context(teacher_preference=["us.amazon.nova-pro-v1:0", "us.amazon.nova-2-pro-v1:0"]))


def test_teacher_auto_and_an_explicit_preferred_teacher_are_accepted() -> None:
    assert parse_config(_context(**{"run_defaults.teacher_model_id": "AUTO"})).models.teacher == "auto"
    explicit = parse_config(_context(**{"run_defaults.teacher_model_id": "us.amazon.nova-pro-v1:0"}))
    assert explicit.models.teacher == explicit.run_defaults.teacher_model_id == "us.amazon.nova-pro-v1:0"
    pairs = parse_config(_context(distillation_pairs='{"us.amazon.nova-pro-v1:0": ["amazon.nova-micro-v1:0:128k"]}'))
    assert pairs.distillation_pairs == {"amazon.nova-pro-v1:0": ("amazon.nova-micro-v1:0",)}  # model families


def test_a_renamed_key_says_its_new_name() -> None:
    with pytest.raises(ConfigError, match="'allowed_teacher_model_ids': was renamed to 'teacher_preference'"):
        parse_config(_context(allowed_teacher_model_ids=["us.amazon.nova-pro-v1:0"]))


def test_an_unknown_key_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"'retian_data': unknown key; did you mean 'retain_data'\?"):
        parse_config(_context(retian_data=True))
    with pytest.raises(
        ConfigError, match=r"'run_defaults\.num_exampels': is not a run setting; did you mean 'num_examples'\?"
    ):
        parse_config(_context(**{"run_defaults.num_exampels": 500}))


def test_a_key_moved_into_run_defaults_says_where_it_went() -> None:
    with pytest.raises(ConfigError, match="'train_examples': moved into the run_defaults block as 'num_examples'"):
        parse_config(_context(train_examples=500))
    with pytest.raises(
        ConfigError, match="'generation_concurrency': moved into the run_defaults block as 'concurrency'"
    ):
        parse_config(_context(generation_concurrency=4))


def test_run_defaults_must_give_every_run_setting() -> None:
    context = _context()
    context["run_defaults"] = {k: v for k, v in context["run_defaults"].items() if k != "seed"}
    with pytest.raises(ConfigError, match=r"'run_defaults\.seed': is missing"):
        parse_config(context)


def test_cdk_owned_context_keys_are_not_project_settings() -> None:
    config = parse_config(
        _context(**{"@aws-cdk/core:newStyleStackSynthesis": True, "aws:cdk:enable-path-metadata": True})
    )
    assert config.stack_name == "SearchRouterDistillation"


def test_held_out_set_must_be_smaller_than_training_set() -> None:
    with pytest.raises(ConfigError, match="'run_defaults': eval_examples must be smaller than num_examples"):
        parse_config(_context(**{"run_defaults.num_examples": 100, "run_defaults.eval_examples": 100}))


def test_every_priced_role_has_a_price() -> None:
    with pytest.raises(ConfigError, match="'prices': has no entry for baseline_model_id"):
        parse_config(_context(prices={"us.amazon.nova-micro-v1:0": {"input": 0.1, "output": 0.1}}))


def test_powertools_layer_arn_follows_region_runtime_and_architecture() -> None:
    config = parse_config(_context(region="us-west-2", python_runtime="python3.12", lambda_architecture="x86_64"))
    assert config.powertools_layer_arn == (
        "arn:aws:lambda:us-west-2:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:27"
    )


DISTILLED_WITH_REASONING = {"name": "distilled", "model": "distilled", "prompt_kind": "student"}
DISTILLED_WEIGHTS_ONLY = {"name": "distilled-weights", "model": "distilled", "prompt_kind": "student_weights_only"}
BASELINE_CANDIDATE = {
    "name": "baseline",
    "model": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "prompt_kind": "teacher",
}


def test_the_distilled_model_is_evaluated_with_both_student_prompts_by_default() -> None:
    candidates = [c for c in load_config().eval_candidates if c.model == "distilled"]

    assert [(c.name, c.prompt_kind) for c in candidates] == [
        ("distilled", "student"),
        ("distilled-weights", "student_weights_only"),
    ]


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        # the gate judges the distilled candidate with the student prompt: it must be there, once
        ([DISTILLED_WEIGHTS_ONLY, BASELINE_CANDIDATE], 'exactly one candidate with "model": "distilled" and'),
        (
            [DISTILLED_WITH_REASONING, {**DISTILLED_WITH_REASONING, "name": "again"}, BASELINE_CANDIDATE],
            '"prompt_kind": "student" (the gate judges it)',
        ),
        (
            [DISTILLED_WITH_REASONING, DISTILLED_WEIGHTS_ONLY, {**DISTILLED_WEIGHTS_ONLY, "name": "twice"}],
            'at most one more with "prompt_kind": "student_weights_only"',
        ),
        # the distilled model was trained on the student prompts only
        (
            [
                DISTILLED_WITH_REASONING,
                {**DISTILLED_WITH_REASONING, "name": "teacher-prompt", "prompt_kind": "teacher"},
            ],
            "a distilled candidate must use a student prompt it was trained on: student, student_weights_only",
        ),
        (
            [{**BASELINE_CANDIDATE, "prompt_kind": "weights"}],
            "must be one of",
        ),
    ],
)
def test_bad_distilled_candidates_are_rejected(candidates: list[dict[str, str]], expected: str) -> None:
    with pytest.raises(ConfigError, match="eval_candidates") as raised:
        parse_config(_context(eval_candidates=candidates))
    assert expected in str(raised.value)


def test_a_weights_only_candidate_of_another_model_is_accepted() -> None:
    base = {"name": "base-weights", "model": "us.amazon.nova-micro-v1:0", "prompt_kind": "student_weights_only"}

    config = parse_config(_context(eval_candidates=[DISTILLED_WITH_REASONING, base, BASELINE_CANDIDATE]))

    assert [c.prompt_kind for c in config.eval_candidates] == ["student", "student_weights_only", "teacher"]


def test_the_reasoning_share_of_the_training_set_is_a_run_setting_within_0_and_1() -> None:
    assert load_config().run_defaults.reasoning_share == 0.5
    with pytest.raises(ConfigError, match="reasoning_share"):
        parse_config(_context(run_defaults={**read_cdk_json_context()["run_defaults"], "reasoning_share": 1.5}))


def test_the_fusion_shape_is_a_run_setting_validated_by_name() -> None:
    defaults = read_cdk_json_context()["run_defaults"]
    assert load_config().run_defaults.fusion_shape["list_length"] == 50
    with pytest.raises(ConfigError, match=r"fusion_shape.*unknown key.*colour"):
        parse_config(_context(run_defaults={**defaults, "fusion_shape": {**defaults["fusion_shape"], "colour": 1}}))
    with pytest.raises(ConfigError, match=r"list_length .* must not exceed documents"):
        parse_config(
            _context(run_defaults={**defaults, "fusion_shape": {**defaults["fusion_shape"], "list_length": 500}})
        )


def test_a_run_setting_with_a_default_in_the_model_has_the_same_one_in_cdk_json() -> None:
    # Settings added after the first release default in the model too (an older execution's state still
    # validates on redrive); cdk.json's run_defaults stays the one source of what a run does.
    from search_router.contract.run import RunSettings

    run_defaults = read_cdk_json_context()["run_defaults"]
    with_default = {name: field for name, field in RunSettings.model_fields.items() if not field.is_required()}
    assert {"micro_router", "router_cascade", "cascade_margin", "fusion_shape"} <= set(with_default)
    for name, field in with_default.items():
        assert run_defaults[name] == field.get_default(call_default_factory=True), name


def test_capture_is_off_by_default_with_redaction_of_e_mail_addresses_and_digit_runs() -> None:
    import re

    config = load_config()
    assert config.capture.enabled is False
    redacted = "write to ann.lee@example.com or call 555 123 4567 about the 2023 final"
    for pattern in config.capture.redact_patterns:
        redacted = re.sub(pattern, "<redacted>", redacted)
    assert redacted == "write to <redacted> or call <redacted> about the 2023 final"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["(unclosed"], "capture_redact_patterns[0]': is not a valid regular expression"),
        (["\\d+", "a*"], "capture_redact_patterns[1]': matches the empty string"),
        ("not a list", "capture_redact_patterns': must be JSON"),
        ([""], "capture_redact_patterns[0]': must be a non-empty regular expression"),
        ([7], "capture_redact_patterns[0]': must be a non-empty regular expression"),
    ],
)
def test_a_bad_redaction_pattern_fails_synth_naming_it(value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_context(capture_redact_patterns=value))
    assert expected in str(error.value)


def test_capture_settings_from_the_command_line_are_parsed() -> None:
    config = parse_config(_context(capture_queries="true", capture_redact_patterns='["secret-\\\\w+"]'))
    assert config.capture.enabled is True
    assert config.capture.redact_patterns == ("secret-\\w+",)


def test_a_non_inferiority_margin_beyond_its_metric_s_range_is_refused_at_synth() -> None:
    context = read_cdk_json_context()
    with pytest.raises(ConfigError, match=r"gate_noninferiority_margin.*within 0\.\.1 for mae_overall"):
        parse_config(_context(gate_noninferiority_metric="mae_overall", gate_noninferiority_margin=2))
    assert context["gate_noninferiority_margin"] == 0.2


def test_the_production_rubric_gate_is_off_by_default_and_reaches_the_pipeline_as_set() -> None:
    from infra.pipeline import pipeline_environment

    assert parse_config(_context()).gate.min_production_rubric is None
    for value, expected in (("null", None), ("3.5", 3.5), (4, 4.0)):
        config = parse_config(_context(gate_min_production_rubric=value))
        assert config.gate.min_production_rubric == expected
        environment = pipeline_environment(
            config, data_bucket="b", stack_name="s", bedrock_role_arn="r", topic_arn="t", model_parameter="p"
        )
        assert environment.gate["min_production_rubric"] == expected
