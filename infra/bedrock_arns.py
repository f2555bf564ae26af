"""IAM resource ARNs for invoking Bedrock models, derived from model ids.

A system inference profile such as ``us.amazon.nova-micro-v1:0`` needs ``bedrock:InvokeModel`` on the
profile ARN **and** on the foundation model in every Region the profile routes to; a plain foundation
model id needs only its foundation-model ARN in this Region.
"""

from __future__ import annotations

from aws_cdk import Aws

import infra  # noqa: F401  (puts lambdas/ on sys.path)
from routing.model_ids import foundation_model_id, is_inference_profile_id

__all__ = ["foundation_model_arns", "foundation_model_id", "inference_profile_arn", "invoke_resource_arns"]


def foundation_model_arns(model_id: str, region: str | None = None) -> list[str]:
    """The foundation-model ARN(s) behind ``model_id``: every Region for a cross-Region profile, else this one
    (an ARN is returned as it is)."""
    if model_id.startswith("arn:"):
        return [model_id]
    if is_inference_profile_id(model_id):
        return [f"arn:{Aws.PARTITION}:bedrock:*::foundation-model/{foundation_model_id(model_id)}"]
    return [f"arn:{Aws.PARTITION}:bedrock:{region or Aws.REGION}::foundation-model/{model_id}"]


def invoke_resource_arns(model_id: str, region: str | None = None) -> list[str]:
    """The ARNs ``bedrock:InvokeModel*`` must allow for calling ``model_id``."""
    if model_id.startswith("arn:"):
        return [model_id]
    profile = inference_profile_arn(model_id, region)
    return [*([profile] if profile else []), *foundation_model_arns(model_id, region)]


def inference_profile_arn(model_id: str, region: str | None = None) -> str | None:
    if not is_inference_profile_id(model_id):
        return None
    return f"arn:{Aws.PARTITION}:bedrock:{region or Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/{model_id}"
