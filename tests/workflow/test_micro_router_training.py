"""TrainMicroRouter in the pipeline: the synthesized definition, the real handler, the artifact the router reads."""

from __future__ import annotations

import json

import boto3

from search_router.contract.layout import RunLayout
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.micro_router import MicroRouter
from simulation.bedrock_fake import BedrockFake
from simulation.harness import REGION, PipelineHarness

SMALL = {"num_examples": 200, "eval_examples": 20, "shard_size": 50, "seed": 7}


def test_the_run_trains_the_micro_router_and_predicts_the_heldout_set(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # When a small run is started
    execution = pipeline.run(SMALL, name="micro-train")

    # Then the micro-router is trained between PrepareDataset and StartDistillation
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    states = execution.entered_states()
    assert states.index("PrepareDataset") < states.index("TrainMicroRouter") < states.index("StartDistillation")
    layout = RunLayout("micro-train")
    result = execution.output["micro_router"]
    assert result["artifact_uri"] == f"s3://{pipeline.bucket}/{layout.micro_router_artifact}"
    assert result["train_records"] == execution.output["dataset"]["train_records"] == 200

    # And the artifact is one the router can load, for the run's channels
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=pipeline.bucket, Key=layout.micro_router_artifact)
    router = MicroRouter.from_bytes(body["Body"].read())
    assert router.channels == DEFAULT_CHANNELS.names
    assert result["artifact_bytes"] > 0 and router.training["examples"] + router.training["calibration_examples"] == 200

    # And every held-out query has the loaded artifact's own prediction, with the record's split and reference
    heldout = [json.loads(line) for line in pipeline.s3_text(layout.heldout).splitlines() if line.strip()]
    predictions = [json.loads(line) for line in pipeline.s3_text(layout.micro_router_predictions).splitlines()]
    assert [p["query"] for p in predictions] == [h["query"] for h in heldout]
    assert [p["split"] for p in predictions] == [h["split"] for h in heldout]
    for line, record in zip(predictions, heldout, strict=True):
        expected = router.predict(record["query"])
        assert line["reference"] == record["reference"]
        assert line["micro"] == expected.weights and line["confidence"] == expected.confidence
    assert result["heldout_records"] == len(heldout) == 20


def test_a_run_with_micro_router_off_trains_none(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # When a small run is started with the micro_router setting off
    execution = pipeline.run({**SMALL, "micro_router": False}, name="micro-off")

    # Then it succeeds without training the micro-router, and writes nothing under its prefix
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    states = execution.entered_states()
    assert "TrainMicroRouter" not in states and "MicroRouterSkipped" in states
    assert execution.output["micro_router"] is None
    assert pipeline.s3_keys(RunLayout("micro-off").micro_router_prefix) == []
