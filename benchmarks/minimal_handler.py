"""The yardstick of the cold-start benchmark: the least a routing Lambda can do, i.e. the published reference's work.

One boto3 ``bedrock-runtime`` client created at import, one Converse call per request, the answer's text parsed
as JSON and returned. No validation, logging, metrics, tracing, fallback or cache: what the real router
(``search_router.handlers.router_api``) costs beyond this is what ``benchmarks.cold_start`` measures.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

SYSTEM_PROMPT = (
    "Return a JSON object with weights for the channels visual, audio, transcription and metadata, summing to 1, "
    "and a short reasoning."
)
RUNTIME = boto3.client("bedrock-runtime", region_name=os.environ["AWS_REGION"])


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    del context
    query = json.loads(event["body"])["query"]
    response = RUNTIME.converse(
        modelId=os.environ["MINIMAL_MODEL_ID"],
        system=[{"text": SYSTEM_PROMPT}],
        messages=[{"role": "user", "content": [{"text": query}]}],
        inferenceConfig={"maxTokens": 300, "temperature": 0.0},
    )
    weights = json.loads(response["output"]["message"]["content"][0]["text"])
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(weights)}
