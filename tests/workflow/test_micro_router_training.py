"""TrainMicroRouter in the pipeline: the synthesized definition, the real handler, the artifact the router reads, and
the calibration groups it reads from the groups file PrepareDataset writes beside the training file."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest

from search_router.contract.layout import RunLayout
from search_router.pipeline.cascade import CASCADE_CANDIDATE, MICRO_CANDIDATE
from search_router.pipeline.dataset import examples_from_training_jsonl, read_training_groups
from search_router.pipeline.micro_router_training import (
    CALIBRATION_BY_QUERIES,
    CALIBRATION_BY_TEMPLATES,
    TrainingSettings,
    assign_training_groups,
    calibration_slice,
)
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

    # And the confidence was calibrated on whole templates: PrepareDataset wrote the groups file beside the training
    # file, one line per training line with its user text, and TrainMicroRouter grouped the examples by it
    dataset = execution.output["dataset"]
    assert dataset["train_groups_uri"] == f"s3://{pipeline.bucket}/{layout.train_groups}"
    training_text = pipeline.s3_text(layout.train)
    groups = read_training_groups(pipeline.s3_text(layout.train_groups))
    user_texts = [json.loads(line)["messages"][0]["content"][0]["text"] for line in training_text.splitlines()]
    assert [group.query for group in groups] == user_texts and len(groups) == 200
    assert result["training"]["calibration_groups"] == router.training["calibration_groups"] == CALIBRATION_BY_TEMPLATES
    manifest = pipeline.s3_json(layout.manifest)
    assert manifest["files"]["train_groups"] == dataset["train_groups_uri"]
    assert manifest["train_groups"]["lines"] == manifest["train_records"] == 200
    assert manifest["train_groups"]["with_template"] == sum(group.template is not None for group in groups)
    # the slice it held out (the default settings, as the handler trains) has every example of its templates
    examples = assign_training_groups(examples_from_training_jsonl(training_text, DEFAULT_CHANNELS), groups)
    defaults = TrainingSettings()
    held = calibration_slice(examples, defaults.calibration_share, seed=defaults.seed)
    assert len(held) == router.training["calibration_examples"]
    inside = {examples[i].template for i in held}
    assert inside and not inside & {e.template for i, e in enumerate(examples) if i not in held}
    assert router.training["calibration_group_count"] == len(inside)


def _train_micro_router(pipeline: PipelineHarness, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the stack's TrainMicroRouter function with ``event`` (a redrive, or a retry, with that state)."""
    info = pipeline.function_for("search_router.handlers.train_micro_router.handler")
    return dict(json.loads(pipeline.invoke(info.arn, json.dumps(event), {})))


def test_a_run_prepared_without_the_groups_file_calibrates_on_queries_and_says_so(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a run's state as PrepareDataset wrote it before the groups file existed (an older run, redriven)
    execution = pipeline.run(SMALL, name="micro-older")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    older = {k: v for k, v in execution.output["dataset"].items() if k != "train_groups_uri"}

    # When TrainMicroRouter runs on it
    result = _train_micro_router(pipeline, {"run": execution.output["run"], "dataset": older})

    # Then it trains as before, each query its own calibration group, and the training figures say so
    assert result["train_records"] == 200
    assert result["training"]["calibration_groups"] == CALIBRATION_BY_QUERIES
    assert result["training"]["calibration_group_count"] == result["training"]["calibration_examples"]
    assert execution.output["micro_router"]["training"]["calibration_groups"] == CALIBRATION_BY_TEMPLATES


def test_a_groups_file_that_does_not_match_the_training_file_fails_the_task_by_name(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # Given a run whose groups file has lost its last line (written by something else than this run's PrepareDataset)
    execution = pipeline.run(SMALL, name="micro-mismatch")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    layout = RunLayout("micro-mismatch")
    lines = pipeline.s3_text(layout.train_groups).splitlines(keepends=True)
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=pipeline.bucket, Key=layout.train_groups, Body="".join(lines[:-1]).encode())

    # When TrainMicroRouter runs again on the run's state
    result = _train_micro_router(pipeline, {"run": execution.output["run"], "dataset": execution.output["dataset"]})

    # Then it fails with the error the state machine sees, naming both files and what disagrees
    assert result["errorType"] == "MicroRouterNotTrainable"
    message = result["errorMessage"]
    assert f"s3://{pipeline.bucket}/{layout.train_groups}" in message and f"{layout.train}" in message
    assert "the groups file has 199 lines for the training file's 200" in message


def test_a_run_with_micro_router_off_trains_none(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # When a small run is started with the micro_router setting off
    execution = pipeline.run({**SMALL, "micro_router": False}, name="micro-off")

    # Then it succeeds without training the micro-router, and writes nothing under its prefix
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    states = execution.entered_states()
    assert "TrainMicroRouter" not in states and "MicroRouterSkipped" in states
    assert execution.output["micro_router"] is None
    assert pipeline.s3_keys(RunLayout("micro-off").micro_router_prefix) == []


def _promotion(pipeline: PipelineHarness) -> dict[str, Any]:
    (name,) = [
        v["Properties"]["Name"]
        for v in pipeline.synthesized.template["Resources"].values()
        if v["Type"] == "AWS::SSM::Parameter"
    ]
    return json.loads(boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]["Value"])


def test_the_report_scores_the_micro_router_and_the_cascade_and_promote_names_it(
    pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    # When a small run passes the gate with the cascade setting on (auto)
    execution = pipeline.run({**SMALL, "judge": False}, name="micro-cascade")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    layout = RunLayout("micro-cascade")
    report = json.loads(pipeline.s3_text(layout.report_json))

    # Then the report has the micro-router and the cascade as candidates, every candidate per held-out split
    names = [c["name"] for c in report["candidates"]]
    assert names[-2:] == [MICRO_CANDIDATE, CASCADE_CANDIDATE]
    heldout = [json.loads(line) for line in pipeline.s3_text(layout.heldout).splitlines() if line.strip()]
    splits = {record["split"] for record in heldout}
    assert splits >= {"seen", "unseen_template"}
    for candidate in report["candidates"]:
        by_split = candidate["metrics_by_split"]
        assert set(by_split) == splits, candidate["name"]
        assert sum(m["n"] for m in by_split.values()) == candidate["metrics"]["n"] == len(heldout)
    micro = report["candidates"][-2]["metrics"]
    assert micro["cost_per_1m_routes"] == 0.0 and micro["tokens"]["output_mean"] == 0.0
    # the τ chart is written beside the others, and the Markdown shows the section
    assert pipeline.s3_keys(layout.report_chart("cascade_tau.png"))
    assert "## Micro-router and cascade" in pipeline.s3_text(layout.report_markdown)

    # And the decision the report took is the one Promote applied
    outcome = execution.output["report"]["micro_router"]
    cascade = report["cascade"]
    assert cascade["outcome"] == outcome and cascade["fallback_candidate"] == "distilled-weights"
    promotion = _promotion(pipeline)
    assert execution.output["decision"]["outcome"] == "promoted"
    # (this fake's default answer is equal weights for every query, teacher and students alike: the micro-router
    # learns them exactly, so the cascade passes and Promote enables it; `make simulate`'s models are harder)
    assert outcome["enabled"], outcome["reason"]
    s3 = boto3.client("s3", region_name=REGION)
    artifact = s3.get_object(Bucket=pipeline.bucket, Key=layout.micro_router_artifact)["Body"].read()
    promoted_key = layout.promoted_micro_router(hashlib.sha256(artifact).hexdigest()[:16])
    assert promotion["micro_router"] == {
        "artifact_uri": f"s3://{pipeline.bucket}/{promoted_key}",
        "tau": outcome["tau"],
    }
    assert outcome["tau"] == cascade["choice"]["tau"]
    # the promoted copy is the run's artifact, outside the run's folder
    # (named by its content: a later run reusing this run id cannot overwrite what this promotion names)
    assert s3.get_object(Bucket=pipeline.bucket, Key=promoted_key)["Body"].read() == artifact
    assert not promoted_key.startswith(layout.run_prefix)


def test_router_cascade_off_promotes_the_model_alone(pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # When a run passes the gate with router_cascade off
    execution = pipeline.run({**SMALL, "judge": False, "router_cascade": "off"}, name="cascade-off")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["decision"]["outcome"] == "promoted"

    # Then the micro-router is still reported, but the promotion names none, and says why
    outcome = execution.output["report"]["micro_router"]
    assert outcome["enabled"] is False and "router_cascade is 'off'" in outcome["reason"]
    assert "micro_router" not in _promotion(pipeline)
    assert pipeline.s3_keys(RunLayout("cascade-off").promoted_micro_router_prefix) == []


def test_a_micro_router_that_cannot_be_trained_costs_the_run_nothing_but_the_cascade(
    pipeline: PipelineHarness, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given training data the micro-router cannot learn from (its trainer refuses it, as for too few records)
    from search_router.handlers import train_micro_router as handler

    def refuse(*args: object, **kwargs: object) -> object:
        raise ValueError("every example has the same words")

    monkeypatch.setattr(handler, "train_micro_router", refuse)
    # When a run is started
    execution = pipeline.run({**SMALL, "judge": False}, name="micro-refused")

    # Then the state machine catches MicroRouterNotTrainable, the run goes on and promotes the model alone,
    # and the report says why there is no cascade
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    states = execution.entered_states()
    assert states.index("TrainMicroRouter") < states.index("MicroRouterFailed") < states.index("StartDistillation")
    assert execution.output["micro_router"]["error"]["Error"] == "MicroRouterNotTrainable"
    outcome = execution.output["report"]["micro_router"]
    assert outcome["enabled"] is False
    assert outcome["reason"].startswith("the micro-router could not be trained: ")
    assert "every example has the same words" in outcome["reason"]
    assert execution.output["decision"]["outcome"] == "promoted" and "micro_router" not in _promotion(pipeline)
