"""IAM resource ARNs for invoking Bedrock models, derived from model ids.

A system inference profile such as ``us.amazon.nova-micro-v1:0`` needs ``bedrock:InvokeModel`` on the
profile ARN **and** on the foundation model in every Region the profile routes to; a plain foundation
model id needs only its foundation-model ARN in this Region.
"""

from __future__ import annotations

from aws_cdk import Aws

from infra.config import is_inference_profile_id


def foundation_model_id(model_id: str) -> str:
    """``us.amazon.nova-micro-v1:0`` → ``amazon.nova-micro-v1:0``; foundation ids are returned as they are."""
    if is_inference_profile_id(model_id):
        return model_id.split(".", 1)[1]
    return model_id


def invoke_resource_arns(model_id: str, region: str | None = None) -> list[str]:
    """The ARNs ``bedrock:InvokeModel*`` must allow for calling ``model_id``."""
    if model_id.startswith("arn:"):
        return [model_id]
    region = region or Aws.REGION
    if is_inference_profile_id(model_id):
        return [
            f"arn:{Aws.PARTITION}:bedrock:{region}:{Aws.ACCOUNT_ID}:inference-profile/{model_id}",
            f"arn:{Aws.PARTITION}:bedrock:*::foundation-model/{foundation_model_id(model_id)}",
        ]
    return [f"arn:{Aws.PARTITION}:bedrock:{region}::foundation-model/{model_id}"]


def inference_profile_arn(model_id: str, region: str | None = None) -> str | None:
    if not is_inference_profile_id(model_id):
        return None
    return f"arn:{Aws.PARTITION}:bedrock:{region or Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/{model_id}"
