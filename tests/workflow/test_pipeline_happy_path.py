"""From an execution input to an Active deployment: the synthesized definition, the real handlers."""

from __future__ import annotations

import json
from collections import Counter

from search_router.pipeline.dataset import validate_training_jsonl
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.prompts import student_prompt
from simulation.bedrock_fake import BedrockFake
from simulation.harness import PipelineHarness

SMALL = {"num_examples": 200, "eval_examples": 20, "shard_size": 50, "seed": 7}


def test_small_run_reaches_an_active_deployment(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # When a small run is started
    execution = pipeline.run(SMALL, name="happy-path")

    # Then it succeeds through every stage
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    states = execution.entered_states()
    for state in (
        "Preflight",
        "PlanQueries",
        "LabelShards",
        "PrepareDataset",
        "StartDistillation",
        "CheckDistillation",
        "StartDeployment",
        "CheckDeployment",
        "RecordOutputs",
        "NotifySuccess",
    ):
        assert state in states
    run_id = "happy-path"

    # And the training file holds one valid bedrock-conversation-2024 record per training example
    training = pipeline.s3_text(f"runs/{run_id}/dataset/train.jsonl")
    report = validate_training_jsonl(training, DEFAULT_CHANNELS)
    assert report.ok, report.errors[:3]
    records = [json.loads(line) for line in training.splitlines()]
    manifest = pipeline.s3_json(f"runs/{run_id}/dataset/manifest.json")
    assert len(records) == manifest["train_records"] == 200
    # each with one of the two student prompts (issue 12: one model serves both), half of them (reasoning_share
    # 0.5) with the weights-and-reasoning one
    prompts = Counter(r["system"][0]["text"] for r in records)
    assert prompts == {student_prompt(DEFAULT_CHANNELS): 100, student_prompt(DEFAULT_CHANNELS, reasoning=False): 100}
    assert manifest["training_prompts"] == {"reasoning_share": 0.5, "with_reasoning": 100, "weights_only": 100}
    assert manifest["requested"] == 220 and manifest["labeled"] == 220 and manifest["invalid"]["total"] == 0

    # And the held-out set is disjoint from training and carries reference weights
    heldout = [json.loads(line) for line in pipeline.s3_text(f"runs/{run_id}/dataset/heldout.jsonl").splitlines()]
    assert len(heldout) == 20
    train_queries = {r["messages"][0]["content"][0]["text"] for r in records}
    assert not train_queries & {h["query"] for h in heldout}
    assert all(set(h["reference"]) == set(DEFAULT_CHANNELS.names) for h in heldout)

    # And the distillation request is exactly what Bedrock needs
    (job,) = bedrock.calls_to("CreateModelCustomizationJob")
    stack = pipeline.synthesized.stack.stack_name
    tags = [
        {"key": "project", "value": "search-router-distillation"},
        {"key": "run-id", "value": run_id},
        {"key": "stack", "value": stack},
    ]
    role_arn = pipeline.function_for("search_router.handlers.distillation.start").environment["BEDROCK_ROLE_ARN"]
    assert role_arn.startswith("arn:aws:iam::") and ":role/" in role_arn
    assert job == {
        "jobName": f"{stack}-{run_id}",
        "customModelName": f"{stack}-{run_id}-router",
        "roleArn": role_arn,
        "clientRequestToken": job["clientRequestToken"],
        "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
        "customizationType": "DISTILLATION",
        "trainingDataConfig": {"s3Uri": f"s3://{pipeline.bucket}/runs/{run_id}/dataset/train.jsonl"},
        "outputDataConfig": {"s3Uri": f"s3://{pipeline.bucket}/runs/{run_id}/distillation/"},
        "customizationConfig": {
            "distillationConfig": {
                "teacherModelConfig": {
                    "teacherModelIdentifier": "us.amazon.nova-pro-v1:0",
                    "maxResponseLengthForInference": 1000,
                }
            }
        },
        "jobTags": tags,
        "customModelTags": tags,
    }
    assert job["clientRequestToken"].startswith("distill-") and len(job["clientRequestToken"]) == 48

    # And the deployment was made from the job's output model and is Active
    (deployment_request,) = bedrock.calls_to("CreateCustomModelDeployment")
    job_arn = bedrock.calls_to("GetModelCustomizationJob")[0]["jobIdentifier"]
    assert deployment_request["modelArn"] == bedrock.job(job_arn)["outputModelArn"]
    outputs = pipeline.s3_json(f"runs/{run_id}/outputs.json")
    assert bedrock.deployment(outputs["deployment"]["deployment_arn"])["status"] == "Active"
    assert outputs["distillation"]["output_model_arn"] == deployment_request["modelArn"]

    # And every teacher call used the teacher prompt through Converse
    teacher_calls = [c for c in bedrock.calls_to("Converse") if c["modelId"] == "us.amazon.nova-pro-v1:0"]
    assert len(teacher_calls) == 220
    assert all("visual" in c["system"][0]["text"] and len(c["system"][0]["text"]) > 500 for c in teacher_calls)

    # And the manifest records which teacher "auto" chose, and why the preferred one was refused
    assert manifest["models"]["teacher"] == "us.amazon.nova-pro-v1:0"
    assert manifest["teacher"]["requested"] == "auto"
    (refused,) = manifest["teacher"]["refused"]
    assert refused["model_id"] == "us.amazon.nova-premier-v1:0" and "LEGACY" in refused["reason"]


def test_a_completed_job_whose_model_is_still_creating_is_deployed_once_it_is_active(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a job that completes while its custom model stays Creating for three more looks
    bedrock.model_polls_to_active = 3
    execution = pipeline.run(SMALL, name="model-lag")
    # Then the run waits for the model instead of failing the deployment after hours of training
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    statuses = [e for e in execution.entered_states() if e in ("CheckDistillation", "StartDeployment")]
    assert statuses.count("StartDeployment") == 1
    assert statuses.count("CheckDistillation") >= 1 + 3
    (request,) = bedrock.calls_to("CreateCustomModelDeployment")
    assert bedrock.calls_to("GetCustomModel")[-1] == {"modelIdentifier": request["modelArn"]}
