"""IAM resource ARNs for invoking Bedrock models, derived from model ids.

A system inference profile such as ``us.amazon.nova-micro-v1:0`` needs ``bedrock:InvokeModel`` on the
profile ARN **and** on the foundation model in every Region the profile routes to; a plain foundation
model id needs only its foundation-model ARN in this Region.
"""

from __future__ import annotations

from aws_cdk import Aws

import infra  # noqa: F401  (puts lambdas/ on sys.path)
from search_router.contract.tags import STACK_TAG
from search_router.shared.model_ids import foundation_model_id, is_inference_profile_id

__all__ = [
    "foundation_model_arns",
    "foundation_model_id",
    "inference_profile_arn",
    "invoke_resource_arns",
    "request_tagged_for",
    "tagged_by",
]


def tagged_by(stack_name: str) -> dict[str, dict[str, str]]:
    """IAM condition: the resource acted on carries ``stack=<stack_name>`` (what this stack's runs created).
    The Service Authorization Reference lists ``aws:ResourceTag/${TagKey}`` for Bedrock's custom-model,
    custom-model-deployment, model-customization-job and evaluation-job resource types."""
    return {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": stack_name}}


def request_tagged_for(stack_name: str) -> dict[str, dict[str, str]]:
    """IAM condition: the create request tags what it creates ``stack=<stack_name>`` (``aws:RequestTag``, which
    the SAR lists for CreateModelCustomizationJob, CreateCustomModelDeployment, CreateEvaluationJob, TagResource)."""
    return {"StringEquals": {f"aws:RequestTag/{STACK_TAG}": stack_name}}


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
