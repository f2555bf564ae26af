"""Pipeline scenarios: throttling, invalid teacher answers, too little data, failed jobs and deployments,
bring-your-own queries, preflight rejections, idempotent job creation."""

from __future__ import annotations

import hashlib
import json
import unicodedata

import boto3
import pytest

from search_router.pipeline.queries.query import normalize_query
from simulation.bedrock.values import ConverseRequest, default_responder
from simulation.bedrock_fake import BedrockFake
from simulation.harness import REGION, PipelineHarness

SMALL = {"num_examples": 200, "eval_examples": 20, "shard_size": 50, "seed": 11}


def _bucket_of(text: str, modulo: int) -> int:
    return int(hashlib.sha256(normalize_query(text).encode()).hexdigest(), 16) % modulo


def test_teacher_throttling_on_30_percent_of_calls_still_labels_every_example(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a teacher that throttles 30% of calls (and short backoff steps, to keep the test fast)
    bedrock.error_rate("ThrottlingException", 0.3, seed=3)
    pipeline.function_for("search_router.handlers.label_shard.handler").environment["TEACHER_BACKOFF_BASE_S"] = "0.01"
    # When a run labels 220 queries
    execution = pipeline.run(SMALL, name="throttled")
    # Then nothing is lost: every planned query became an example
    assert execution.status == "SUCCEEDED", execution.cause
    manifest = pipeline.s3_json("runs/throttled/dataset/manifest.json")
    assert manifest["labeled"] == 220
    assert manifest["train_records"] == 200 and manifest["heldout_records"] == 20
    assert manifest["labeling"]["throttled"] > 30
    assert manifest["labeling"]["retries"] >= manifest["labeling"]["throttled"]


def test_a_teacher_throttled_throughout_fails_the_run_fast_saying_so_with_the_counts(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a teacher whose quota is exhausted for the whole run (every call throttled)
    bedrock.script_errors("Converse", "ThrottlingException", times=None, model_id="us.amazon.nova-pro-v1:0")
    pipeline.function_for("search_router.handlers.label_shard.handler").environment["TEACHER_BACKOFF_BASE_S"] = "0.01"
    # When a run starts with a short throttle budget (seconds without any answer)
    execution = pipeline.run({**SMALL, "throttle_budget_seconds": 1}, name="quota-exhausted", timeout_s=120)
    # Then each shard gives up after its budget and the run fails with throttling named as the cause
    assert execution.status == "FAILED" and execution.error == "DatasetTooSmall"
    cause = json.loads(execution.cause)["errorMessage"]
    assert "only 0 valid training examples" in cause
    assert "The teacher's throttling was the reason" in cause
    assert "were left unlabeled because the teacher answered nothing for the whole throttle budget" in cause
    assert "quota" in cause and "concurrency" in cause
    # And the plan and the manifest say what happened to every query: left unlabeled (the shard gave up) or,
    # for a query whose every retry was throttled first, an error
    plan = pipeline.s3_json("runs/quota-exhausted/dataset/plan.json")
    assert plan["planned"] == 220
    manifest = pipeline.s3_json("runs/quota-exhausted/dataset/manifest.json")
    assert manifest["trainable"] is False and manifest["files"] == {}
    retries_ran_out = manifest["errors"]["by"].get("ThrottlingException", 0)
    assert manifest["unlabeled"] + retries_ran_out == 220 and manifest["unlabeled"] > 0
    assert manifest["labeling"]["unlabeled_by_reason"] == {"throttled": manifest["unlabeled"]}
    assert manifest["labeling"]["throttle_stopped_shards"] == plan["shards"]
    assert manifest["labeling"]["throttled"] > 0
    assert not bedrock.calls_to("CreateModelCustomizationJob")


def test_control_characters_in_a_query_file_never_reach_the_teacher(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a query file with a line of control characters, one with an escape sequence and one with invisible
    # format characters around real text
    lines = ["sunset over mountains", "\x00\x07\x1b\x7f", "drums \x1b[31mred", "\u200bthunder and rain\ufeff"]
    lines += [f"{word} footage number {i}" for i, word in enumerate(["beach", "city", "forest"] * 40)]
    key = "inputs/controls.txt"
    boto3.client("s3", region_name=REGION).put_object(Bucket=pipeline.bucket, Key=key, Body="\n".join(lines).encode())
    execution = pipeline.run({**SMALL, "queries_s3_uri": f"s3://{pipeline.bucket}/{key}"}, name="controls")
    assert execution.status == "SUCCEEDED", execution.cause
    # Then the two lines with control characters are rejected and counted by reason
    user = pipeline.s3_json("runs/controls/dataset/plan.json")["user_queries"]
    assert user["rejected"] == {"control_characters": 2}
    assert user["format_characters_stripped"] == 1
    assert user["accepted"] == len(lines) - 2
    # And no teacher request, and no training record, carries a control or format character
    texts = [c["messages"][0]["content"][0]["text"] for c in bedrock.calls_to("Converse")]
    assert "thunder and rain" in texts
    bad = [t for t in texts if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in t)]
    assert bad == []
    training = pipeline.s3_text("runs/controls/dataset/train.jsonl")
    assert "\\u001b" not in training and "\\u0000" not in training and "\\u200b" not in training


def test_invalid_teacher_answers_are_retried_once_then_dropped_and_counted(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a teacher that answers prose for about one query in ten (on every attempt)
    def responder(request: ConverseRequest) -> str:
        if _bucket_of(request.user_text, 10) == 0:
            return "This query is mostly about visuals, I would say."
        return default_responder(request)

    bedrock.responder = responder
    # When the run completes
    execution = pipeline.run({**SMALL, "num_examples": 300}, name="invalid-answers")
    assert execution.status == "SUCCEEDED", execution.cause
    manifest = pipeline.s3_json("runs/invalid-answers/dataset/manifest.json")
    # Then each bad query was asked twice, dropped, and counted by reason
    converse_texts = [c["messages"][0]["content"][0]["text"] for c in bedrock.calls_to("Converse")]
    bad_asked = [t for t in converse_texts if _bucket_of(t, 10) == 0]
    assert bad_asked and all(converse_texts.count(t) == 2 for t in set(bad_asked))
    assert manifest["invalid"]["total"] == len(set(bad_asked))
    assert manifest["invalid"]["by"] == {"no_json": len(set(bad_asked))}
    assert manifest["labeled"] == 320 - len(set(bad_asked))
    assert manifest["train_records"] + manifest["heldout_records"] == manifest["labeled"]
    training = pipeline.s3_text("runs/invalid-answers/dataset/train.jsonl").splitlines()
    trained = {json.loads(line)["messages"][0]["content"][0]["text"] for line in training}
    assert not trained & set(bad_asked)


def test_too_few_valid_examples_fails_with_the_numbers_and_notifies(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a teacher whose answers are valid only one time in five
    bedrock.responder = lambda r: default_responder(r) if _bucket_of(r.user_text, 5) == 0 else "no idea"
    # When the run prepares its dataset
    execution = pipeline.run(SMALL, name="too-small")
    # Then it fails before any job is submitted, saying how many examples there were and why
    assert execution.status == "FAILED"
    assert execution.error == "DatasetTooSmall"
    assert "valid training examples (requested 220" in execution.cause
    assert "needs at least 100" in execution.cause
    assert not bedrock.calls_to("CreateModelCustomizationJob")
    (note,) = pipeline.notifications()
    assert "FAILED" in note["subject"] and "DatasetTooSmall" in note["message"]
    assert "needs at least 100" in note["message"]


def test_a_failed_distillation_job_fails_in_its_step_and_is_announced_with_the_service_message(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    bedrock.fail_next_job("Training data has 3 malformed records")
    execution = pipeline.run(SMALL, name="job-fails")
    assert execution.status == "FAILED"
    assert execution.error == "DistillationFailed"
    assert "Training data has 3 malformed records" in execution.cause
    assert not bedrock.calls_to("CreateCustomModelDeployment")
    # The failed task is the execution's last state (no failure path inside the workflow) ...
    assert execution.entered_states()[-1] == "CheckDistillation"
    # ... and the compensation EventBridge starts announces it, saying a redrive would not help
    assert execution.compensation is not None and execution.compensation.status == "SUCCEEDED"
    (note,) = pipeline.notifications()
    assert "job-fails FAILED in CheckDistillation: DistillationFailed" in note["subject"]
    assert "Training data has 3 malformed records" in note["message"]
    assert "start a new run; a redrive would re-run the same step" in note["message"]


def test_a_failed_deployment_fails_the_run_and_removes_what_it_created(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    bedrock.fail_next_deployment("Insufficient capacity for custom model deployment")
    execution = pipeline.run(SMALL, name="deploy-fails")
    assert execution.status == "FAILED"
    assert execution.error == "DeploymentFailed"
    assert "Insufficient capacity" in execution.cause
    assert "RecordOutputs" not in execution.entered_states()
    (note,) = pipeline.notifications()
    assert "Insufficient capacity" in note["message"]
    # The failed deployment and the distilled model are deleted (keep_failed_artifacts is false by default)
    assert "custom model deployment arn:aws:bedrock" in note["message"] and "(deleted)" in note["message"]
    assert not bedrock.control.list_custom_models()["modelSummaries"]
    assert not bedrock.control.list_custom_model_deployments()["modelDeploymentSummaries"]


def test_bring_your_own_queries_from_s3(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # Given a user's search log with duplicates and blank lines in the data bucket
    lines = [f"clips of product demo number {i}" for i in range(180)]
    body = "\n".join([*lines, "", "Clips of product demo number 3", "   "]) + "\n"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=pipeline.bucket, Key="inputs/search-log.txt", Body=body.encode()
    )
    # When a run uses only those queries
    execution = pipeline.run(
        {
            **SMALL,
            "num_examples": 160,
            "queries_s3_uri": f"s3://{pipeline.bucket}/inputs/search-log.txt",
            "mix_user_queries": False,
        },
        name="byo",
    )
    # Then the teacher labeled exactly the user's distinct queries, and the counts say what was skipped
    assert execution.status == "SUCCEEDED", execution.cause
    asked = {c["messages"][0]["content"][0]["text"] for c in bedrock.calls_to("Converse")}
    assert asked == set(lines)
    plan = pipeline.s3_json("runs/byo/dataset/plan.json")
    assert plan["user_queries"]["accepted"] == 180
    assert plan["user_queries"]["duplicates"] == 1
    assert plan["user_queries"]["blank"] == 2
    manifest = pipeline.s3_json("runs/byo/dataset/manifest.json")
    assert manifest["train_records"] == 160 and manifest["heldout_records"] == 20


def test_the_fusion_metric_ranks_with_the_user_s_own_score_samples(pipeline: PipelineHarness) -> None:
    # Given three real searches' per-channel score lists in the data bucket
    channels = ("visual", "audio", "transcription", "metadata")
    samples = [
        {name: {f"{name}-{n}-{d}": float(d * (n + 1)) for d in range(20)} for name in channels} for n in range(3)
    ]
    body = "\n".join(json.dumps(sample) for sample in samples)
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=pipeline.bucket, Key="inputs/scores.jsonl", Body=body.encode())
    # When a run names them
    uri = f"s3://{pipeline.bucket}/inputs/scores.jsonl"
    execution = pipeline.run({**SMALL, "judge": False, "fusion_scores_s3_uri": uri}, name="own-scores")
    # Then Preflight counted them and the report ranked every held-out query with one of them
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["preflight"]["score_samples"]["samples"] == 3
    report = pipeline.s3_json("runs/own-scores/report/report.json")
    assert report["fusion_source"] == {"kind": "samples", "uri": uri, "samples": 3}
    distilled = next(c for c in report["candidates"] if c["name"] == "distilled")
    assert distilled["fusion"]["n"] == distilled["metrics"]["n"]
    markdown = pipeline.s3_text("runs/own-scores/report/report.md")
    assert f"one of your 3 score samples (`{uri}`" in markdown


def test_bad_score_samples_stop_the_run_in_preflight_with_the_line(pipeline: PipelineHarness) -> None:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=pipeline.bucket, Key="inputs/scores.jsonl", Body=b'{"visual": {"a": 1}}\n'
    )
    uri = f"s3://{pipeline.bucket}/inputs/scores.jsonl"
    execution = pipeline.run({**SMALL, "fusion_scores_s3_uri": uri}, name="bad-scores")
    assert execution.status == "FAILED" and execution.error == "InvalidRunInput"
    assert "score samples line 1: no list for channel(s) audio, transcription, metadata" in execution.cause


def test_a_query_file_outside_the_data_bucket_is_rejected_by_preflight(pipeline: PipelineHarness) -> None:
    execution = pipeline.run({**SMALL, "queries_s3_uri": "s3://someone-elses-bucket/q.txt"}, name="foreign")
    assert execution.status == "FAILED"
    assert execution.error == "InvalidRunInput"
    assert "must point into this stack's data bucket" in execution.cause


def test_a_legacy_teacher_asked_for_by_name_is_rejected_before_anything_is_spent(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Nova Premier is LEGACY (past its end of life) in the catalog
    execution = pipeline.run({"teacher_model_id": "us.amazon.nova-premier-v1:0"}, name="legacy")
    assert execution.status == "FAILED"
    assert execution.error == "ModelNotUsable"
    assert "teacher model us.amazon.nova-premier-v1:0 cannot be used in us-east-1: it is LEGACY" in execution.cause
    assert "change 'teacher_model_id'" in execution.cause
    assert not bedrock.calls_to("Converse")


def test_auto_with_no_usable_teacher_lists_every_candidate_and_why(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given Premier LEGACY and no model access to Nova Pro
    bedrock.set_model_access("amazon.nova-pro-v1:0", authorization="NOT_AUTHORIZED")
    execution = pipeline.run({}, name="no-teacher")
    assert execution.status == "FAILED" and execution.error == "ModelNotUsable"
    cause = json.loads(execution.cause)["errorMessage"]
    assert "no usable teacher for teacher_model_id 'auto' in us-east-1" in cause
    assert "us.amazon.nova-premier-v1:0: it is LEGACY in us-east-1" in cause
    assert (
        "us.amazon.nova-pro-v1:0: model access is not granted to this account (authorizationStatus NOT_AUTHORIZED)"
        in cause
    )
    assert "teacher_preference" in cause
    assert not bedrock.calls_to("Converse") and not bedrock.calls_to("CreateModelCustomizationJob")


def test_a_judge_without_model_access_stops_the_run_in_preflight(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    bedrock.set_model_access("us.anthropic.claude-sonnet-4-5-20250929-v1:0", authorization="NOT_AUTHORIZED")
    execution = pipeline.run({}, name="no-judge-access")
    assert execution.status == "FAILED" and execution.error == "ModelNotUsable"
    assert "judge model us.anthropic.claude-sonnet-4-5-20250929-v1:0 cannot be used" in execution.cause
    assert "model access is not granted to this account (authorizationStatus NOT_AUTHORIZED)" in execution.cause
    # Without the judge the same run is fine
    assert pipeline.run({"judge": False, **SMALL}, name="judge-off").status == "SUCCEEDED"


def test_a_student_not_offered_for_distillation_in_the_region_stops_the_run(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a Region whose catalog lists no DISTILLATION variant of Nova Micro (as us-west-2 per the user guide)
    bedrock.add_foundation_model(
        "amazon.nova-micro-v1:0:128k", customizations=("FINE_TUNING",), inference_types=("PROVISIONED",)
    )
    execution = pipeline.run({}, name="no-distillation")
    assert execution.status == "FAILED" and execution.error == "ModelNotUsable"
    assert "amazon.nova-micro-v1:0:128k cannot be used in us-east-1: it is not offered for DISTILLATION" in (
        execution.cause
    )
    assert not bedrock.calls_to("Converse")


def test_a_router_model_without_access_is_reported_but_does_not_stop_the_run(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a router fallback that is no run model (Nova Lite), without model access
    preflight = pipeline.function_for("search_router.handlers.preflight.handler")
    models = json.loads(preflight.environment["MODELS"])
    preflight.environment["MODELS"] = json.dumps({**models, "router": [*models["router"], "us.amazon.nova-lite-v1:0"]})
    bedrock.set_model_access("us.amazon.nova-lite-v1:0", authorization="NOT_AUTHORIZED")
    event = {"input": SMALL, "execution_arn": "arn:x", "execution_name": "router-warning", "started_at": "t"}
    result = json.loads(pipeline.invoke(preflight.arn, json.dumps(event).encode(), {}))
    # Then the run goes on, and the refused router model is in Preflight's result with the reason
    assert result["run"]["teacher"]["model_id"] == "us.amazon.nova-pro-v1:0"
    lite = next(v for v in result["preflight"]["router_models"] if v["model_id"] == "us.amazon.nova-lite-v1:0")
    assert lite["usable"] is False and "model access is not granted" in lite["problems"][0]


@pytest.mark.parametrize(
    ("execution_input", "expected"),
    [
        ({"num_examples": 5}, "num_examples: Input should be greater than or equal to 100"),
        ({"num_exampels": 500}, "unknown input field(s) num_exampels"),
        ({"teacher_model_id": "us.amazon.nova-lite-v1:0"}, "is not one this stack may invoke"),
        ({"teacher_model_id": "Nova Pro"}, "must be 'auto' or a Bedrock model"),
        ({"poll_seconds": "soon"}, "poll_seconds"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_input_fails_in_preflight_naming_the_field(
    pipeline: PipelineHarness, execution_input: object, expected: str
) -> None:
    execution = pipeline.run(execution_input, name="bad-input")
    assert execution.status == "FAILED"
    assert execution.error == "InvalidRunInput"
    assert expected in execution.cause
    (note,) = pipeline.notifications()
    assert expected in note["message"]


def test_empty_input_plans_the_configured_10000_plus_300_queries(pipeline: PipelineHarness) -> None:
    # The plan step alone, with the deployed defaults (no teacher calls are made here)
    preflight = pipeline.function_for("search_router.handlers.preflight.handler")
    plan_fn = pipeline.function_for("search_router.handlers.plan_queries.handler")
    accepted = _invoke(
        pipeline,
        preflight.arn,
        {
            "input": {},
            "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sm:defaults",
            "execution_name": "defaults",
            "started_at": "2026-11-28T00:00:00Z",
        },
    )
    plan = _invoke(pipeline, plan_fn.arn, {"run": accepted["run"]})
    assert accepted["run"]["settings"]["num_examples"] == 10_000
    assert accepted["run"]["settings"]["eval_examples"] == 300
    assert plan["requested"] == plan["planned"] == 10_300
    assert sum(s["count"] for s in plan["shards"]) == 10_300
    texts = set()
    for shard in plan["shards"]:
        texts.update(normalize_query(q["text"]) for q in pipeline.s3_json(shard["key"])["queries"])
    assert len(texts) == 10_300


def _invoke(pipeline: PipelineHarness, arn: str, event: dict) -> dict:
    headers: dict[str, str] = {}
    result = json.loads(pipeline.invoke(arn, json.dumps(event), headers))
    assert "x-amz-function-error" not in headers, result
    return result


def test_a_retried_start_creates_one_job(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # Given the first attempt to start the job is throttled (a transient failure the state machine retries)
    bedrock.script_errors("CreateModelCustomizationJob", "ThrottlingException", times=1)
    execution = pipeline.run(SMALL, name="retried-start")
    assert execution.status == "SUCCEEDED", execution.cause
    starts = bedrock.calls_to("CreateModelCustomizationJob")
    assert len(starts) == 2  # throttled once, retried by the state machine
    assert len({s["clientRequestToken"] for s in starts}) == 1
    assert len({bedrock.job(s["jobName"])["jobArn"] for s in starts}) == 1


def test_the_same_execution_name_never_creates_a_second_job(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # Given a run that finished
    first = pipeline.run(SMALL, name="once")
    assert first.status == "SUCCEEDED", first.cause
    (request,) = bedrock.calls_to("CreateModelCustomizationJob")
    start_event = next(e for h, e in pipeline.invocations if h == "search_router.handlers.distillation.start")
    # When the same execution name is started again, Step Functions refuses it (names are unique per state machine)
    with pytest.raises(pipeline.sfn.exceptions.ExecutionAlreadyExists):
        pipeline.run(SMALL, name="once")
    # And when its StartDistillation step runs again (a redrive re-sends the same state), the same job comes back
    again = _invoke(pipeline, pipeline.function_for("search_router.handlers.distillation.start").arn, start_event)
    assert bedrock.calls_to("CreateModelCustomizationJob")[-1]["clientRequestToken"] == request["clientRequestToken"]
    assert again["job_arn"] == bedrock.job(request["jobName"])["jobArn"]
    assert len({bedrock.job(c["jobName"])["jobArn"] for c in bedrock.calls_to("CreateModelCustomizationJob")}) == 1
