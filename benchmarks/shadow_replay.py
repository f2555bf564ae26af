"""What ShadowReplay costs a run: the wall time of replaying the production held-out queries against the model in
service, and the model's price for them.

The real handler runs in moto (S3, SSM) against the Bedrock fake, whose every answer takes ``--model-ms`` (a sleep
standing in for the model's latency), with the stack's ``eval_threads`` calls in flight. It prints the wall time,
the floor the threads allow (``ceil(queries / threads) × model latency``) and their ratio (the handler's own
overhead: reading, parsing, writing; the ratio holds on a shared machine, the absolute figures do not), and the
replay's price at the in-service model's ``prices`` entry from the tokens the fake counted (about 4 characters a
token; the real prompt's and answer's sizes). Run from the repository root::

    PYTHONPATH=lambdas:. .venv/bin/python -m benchmarks.shadow_replay [--queries 200] [--model-ms 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from typing import Any

import boto3
from moto import mock_aws

from infra.config import load_config
from infra.pipeline import pipeline_environment
from search_router.contract.layout import RunLayout
from search_router.contract.promotion import PromotionDocument
from search_router.contract.run import RunState, settings_from_input
from search_router.pipeline.metrics import Price, QueryResult
from search_router.shared.prompts import PromptKind
from simulation.bedrock_fake import BedrockFake

BUCKET = "bench-bucket"
PARAMETER = "/bench/router/promoted-model"
REFERENCE = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
ANSWER = json.dumps({"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1, "reasoning": "a sunset"})


class _Context:
    function_name = "shadow_replay"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:shadow_replay"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def _arrange(queries: int) -> dict[str, Any]:
    """The bucket, the promotion parameter (the router's default model) and a held-out file of ``queries``
    production records (and as many others); the task's input."""
    config = load_config()
    environment = pipeline_environment(
        config,
        data_bucket=BUCKET,
        stack_name="bench",
        bedrock_role_arn="arn:aws:iam::123456789012:role/bench",
        topic_arn="arn:aws:sns:us-east-1:123456789012:bench",
        model_parameter=PARAMETER,
    )
    os.environ.update({**environment.to_environment(), "AWS_DEFAULT_REGION": "us-east-1"})
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    default = config.router.default_model
    document = PromotionDocument(
        model_id=default.model_id, prompt_kind=PromptKind(default.prompt_kind), channels=list(config.channels.names)
    )
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=PARAMETER, Value=document.to_parameter(), Type="String"
    )
    layout = RunLayout("bench")
    lines = [
        json.dumps({"query": f"{split} query {i} about a sunset", "reference": REFERENCE, "split": split})
        for split in ("production", "seen")
        for i in range(queries)
    ]
    s3.put_object(Bucket=BUCKET, Key=layout.heldout, Body="\n".join(lines).encode())
    run = RunState(
        run_id="bench",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:bench:bench",
        started_at="t",
        settings=settings_from_input(environment.pipeline_defaults, {"shadow_max_queries": queries}),
    )
    uri = f"s3://{BUCKET}/"
    dataset = {
        "train_uri": uri + layout.train, "heldout_uri": uri + layout.heldout, "manifest_uri": uri + layout.manifest,
        "train_records": 0, "heldout_records": len(lines), "labeled": len(lines), "invalid": 0, "duplicates": 0,
        "errors": 0, "unlabeled": 0,
    }  # fmt: skip
    return {"run": run.model_dump(mode="json"), "dataset": dataset}


def measure(queries: int, model_ms: float, rounds: int) -> dict[str, Any]:
    from search_router.handlers.observability import metrics
    from search_router.handlers.shadow import handler

    metrics.namespace = "Benchmark"  # the stack sets POWERTOOLS_METRICS_NAMESPACE
    with mock_aws():
        event = _arrange(queries)
        bedrock = BedrockFake().with_default_catalog().install()
        bedrock.responder = lambda request: ANSWER
        bedrock.delay_s = model_ms / 1000
        walls = []
        for _ in range(rounds):
            started = time.perf_counter()
            output = handler(event, _Context())
            walls.append(time.perf_counter() - started)
            assert output["replayed"] == queries, output
        text = (
            boto3.client("s3", region_name="us-east-1")
            .get_object(Bucket=BUCKET, Key=RunLayout("bench").shadow_results)["Body"]
            .read()
        )
        results = [QueryResult.from_dict(json.loads(line)) for line in text.decode().splitlines()]
        calls = len(bedrock.calls_to("Converse"))
    config = load_config()
    threads = config.eval_threads
    model = config.router.default_model.model_id
    price = Price.from_dict({"input": config.prices[model].input, "output": config.prices[model].output})
    tokens_in = sum(r.input_tokens for r in results)
    tokens_out = sum(r.output_tokens for r in results)
    floor = math.ceil(queries / threads) * model_ms / 1000
    wall = statistics.median(walls)
    return {
        "queries": queries,
        "threads": threads,
        "converse_calls": calls,
        "wall_s": wall,
        "floor_s": floor,
        "ratio": wall / floor if floor else math.nan,
        "model": model,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "usd": price.cost_per_route(tokens_in, tokens_out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model-ms", type=float, default=300.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = measure(args.queries, args.model_ms, args.rounds)
    print(
        f"ShadowReplay of {figures['queries']} production queries, {figures['threads']} in flight, "
        f"{args.model_ms:g} ms a model call ({figures['converse_calls']} Converse calls over {args.rounds} rounds):"
    )
    print(
        f"  wall time {figures['wall_s']:.2f} s (median), floor {figures['floor_s']:.2f} s, "
        f"ratio {figures['ratio']:.2f}"
    )
    print(
        f"  {figures['model']}: {figures['tokens_in']:,} input and {figures['tokens_out']:,} output tokens, "
        f"${figures['usd']:.4f} a replay"
    )


if __name__ == "__main__":
    main()
