"""What IAM must allow for one recorded AWS call: the action, the concrete resource(s), the condition context.

Sources of truth, not beliefs: an operation's IAM action is ``<signing name>:<operation>`` (the botocore service
model's signing name is the IAM prefix), except the few operations AWS documents under another action
(:data:`ACTION_OF`); resources are built from the call's own parameters in the ARN formats of the Service
Authorization Reference. Calls that act for someone else imply more: passing a role (``iam:PassRole``, with
``iam:PassedToService``), tagging on create (``bedrock:TagResource``), publishing to an encrypted topic (the key).
:func:`service_role_needs` lists what Bedrock does with the service role while it runs a job the call created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simulation.harness import ACCOUNT, REGION
from tests.policy.evaluate import Context
from tests.policy.recorder import Call

# Operations authorized by an action of another name (with the documentation that says so).
ACTION_OF: dict[tuple[str, str], str] = {
    # Bedrock API reference, Converse / ConverseStream: "requires permission for the bedrock:InvokeModel /
    # bedrock:InvokeModelWithResponseStream action".
    ("bedrock-runtime", "Converse"): "bedrock:InvokeModel",
    ("bedrock-runtime", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
    # SAR, s3:ListBucket: "Grants permission to list some or all of the objects in an Amazon S3 bucket".
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    # S3 API reference, HeadObject: "you must have the s3:GetObject permission".
    ("s3", "HeadObject"): "s3:GetObject",
    # S3 API reference, CopyObject: "You must have READ access to the source object and WRITE access to the
    # destination bucket" — s3:GetObject on the source (needs_of adds it), s3:PutObject on the destination.
    ("s3", "CopyObject"): "s3:PutObject",
}
BEDROCK = f"arn:aws:bedrock:{REGION}:{ACCOUNT}"
GEO_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au.", "global.")


@dataclass(frozen=True)
class Need:
    """One thing IAM must allow: ``action`` on ``resource`` (with ``context``), because of ``why``."""

    action: str
    resource: str
    why: str
    context: Mapping[str, Any] = field(default_factory=dict)


def action_of(call: Call) -> str:
    return ACTION_OF.get((call.service, call.operation), f"{call.signing_name}:{call.operation}")


def _s3_object(uri: str, suffix: str = "") -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return f"arn:aws:s3:::{bucket}/{key}{suffix}"


def _s3_bucket(uri: str) -> str:
    return f"arn:aws:s3:::{uri.removeprefix('s3://').split('/', 1)[0]}"


def model_resources(model_id: str) -> list[str]:
    """What invoking ``model_id`` is authorized on: a cross-Region profile and its foundation model (here), a
    foundation model, or the ARN itself (a deployment, a profile ARN)."""
    if model_id.startswith("arn:"):
        return [model_id]
    if model_id.startswith(GEO_PREFIXES):
        return [f"{BEDROCK}:inference-profile/{model_id}", foundation_model(model_id.split(".", 1)[1])]
    return [foundation_model(model_id)]


def foundation_model(model_id: str) -> str:
    return model_id if model_id.startswith("arn:") else f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}"


def _bedrock_resources(call: Call) -> list[str] | None:  # noqa: PLR0911 - one case per operation
    p, op = call.params, call.operation
    if op in ("Converse", "ConverseStream"):
        return model_resources(p["modelId"])
    if op == "GetFoundationModel":
        return [foundation_model(p["modelIdentifier"])]
    if op == "GetInferenceProfile":
        identifier = p["inferenceProfileIdentifier"]
        return [identifier if identifier.startswith("arn:") else f"{BEDROCK}:inference-profile/{identifier}"]
    if op == "CreateModelCustomizationJob":
        return [foundation_model(p["baseModelIdentifier"]), f"{BEDROCK}:custom-model/{p['baseModelIdentifier']}/new"]
    if op == "CreateModelInvocationJob":  # SAR: model-invocation-job, foundation-model (custom-model)
        models = [r for r in model_resources(p["modelId"]) if ":foundation-model/" in r]
        return [f"{BEDROCK}:model-invocation-job/new", *models]
    if op == "CreateCustomModelDeployment":
        return [p["modelArn"]]
    if op == "CreateEvaluationJob":
        evaluators = p["evaluationConfig"]["automated"]["evaluatorModelConfig"]["bedrockEvaluatorModels"]
        return [r for m in evaluators for r in model_resources(m["modelIdentifier"]) if ":foundation-model/" in r]
    for key in ("jobIdentifier", "modelIdentifier", "customModelDeploymentIdentifier", "resourceARN"):
        if key in p:
            return [p[key]]
    if op.startswith("List") or op == "GetFoundationModelAvailability":
        return ["*"]
    return None


# The tags a create call puts on what it creates (the request's aws:RequestTag/* and aws:TagKeys).
TAGGED_ON_CREATE: dict[str, list[tuple[str, str]]] = {
    "CreateModelCustomizationJob": [
        ("jobTags", f"{BEDROCK}:model-customization-job/new"),
        ("customModelTags", f"{BEDROCK}:custom-model/new"),
    ],
    "CreateCustomModelDeployment": [("tags", f"{BEDROCK}:custom-model-deployment/new")],
    "CreateEvaluationJob": [("jobTags", f"{BEDROCK}:evaluation-job/new")],
    "CreateModelInvocationJob": [("tags", f"{BEDROCK}:model-invocation-job/new")],
}


def _tag_context(tags: list[dict[str, str]]) -> dict[str, Any]:
    context: dict[str, Any] = {f"aws:RequestTag/{t['key']}": t["value"] for t in tags}
    if tags:
        context["aws:TagKeys"] = [t["key"] for t in tags]
    return context


def request_tag_context(call: Call) -> dict[str, Any]:
    """``aws:RequestTag/<key>`` for every tag a create request carries (a job's and its model's tags alike)."""
    tags = [t for member, _ in TAGGED_ON_CREATE.get(call.operation, []) for t in call.params.get(member) or []]
    return _tag_context(tags)


def resource_tag_context(tags: Mapping[str, str]) -> dict[str, Any]:
    """``aws:ResourceTag/<key>`` for a resource's tags (captured when the call was made)."""
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


def resources_of(call: Call) -> tuple[list[str], dict[str, Any]]:  # noqa: PLR0911 - one rule per service
    """The concrete resources a call is authorized on, and its condition context."""
    p, service, op = call.params, call.service, call.operation
    if service == "s3":
        if op in ("ListObjectsV2", "ListObjects"):
            return [f"arn:aws:s3:::{p['Bucket']}"], ({"s3:prefix": p["Prefix"]} if "Prefix" in p else {})
        return [f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"], {}
    if service == "ssm":
        return [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{p['Name']}"], {}
    if service == "sns":
        return [p["TopicArn"]], {}
    if service == "stepfunctions":
        return [p.get("executionArn") or p["stateMachineArn"]], {}
    if service == "cloudformation":
        return [p["StackName"]], {}
    if service == "firehose":
        return [f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{p['DeliveryStreamName']}"], {}
    if service in ("bedrock", "bedrock-runtime"):
        found = _bedrock_resources(call)
        if found is None:
            raise NotImplementedError(f"tests/policy/requirements.py has no resource rule for {service}.{op}")
        return found, {**call.context, **request_tag_context(call)}
    raise NotImplementedError(f"tests/policy/requirements.py has no resource rule for {service}.{op}")


def needs_of(call: Call, *, topic_keys: Mapping[str, str]) -> list[Need]:
    """Everything IAM must allow the calling function for ``call`` (``topic_keys``: topic ARN → key ARN)."""
    resources, context = resources_of(call)
    action = action_of(call)
    why = f"{call.service}.{call.operation}"
    needs = [Need(action, r, why, context) for r in resources]
    p = call.params
    if call.service == "s3" and call.operation == "CopyObject":
        source = p["CopySource"]
        bucket, key = (source["Bucket"], source["Key"]) if isinstance(source, Mapping) else source.split("/", 1)
        needs.append(Need("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", f"{why} reads the source object"))
    if "roleArn" in p and call.operation in ("CreateModelCustomizationJob", "CreateEvaluationJob"):
        passed = {"iam:PassedToService": "bedrock.amazonaws.com"}
        needs.append(Need("iam:PassRole", p["roleArn"], f"{why} passes its service role", passed))
    for member, arn in TAGGED_ON_CREATE.get(call.operation, []):
        if p.get(member):
            tags = _tag_context(p[member])
            needs.append(Need("bedrock:TagResource", arn, f"{why} tags what it creates ({member})", tags))
    if call.service == "sns" and call.operation == "Publish" and p["TopicArn"] in topic_keys:
        key = topic_keys[p["TopicArn"]]
        needs += [
            Need("kms:GenerateDataKey", key, f"{why} to a KMS-encrypted topic"),
            Need("kms:Decrypt", key, f"{why} to a KMS-encrypted topic"),
        ]
    return needs


def service_role_needs(call: Call) -> list[Need]:
    """What Amazon Bedrock does with the job's service role (``roleArn``) for a job ``call`` created (Bedrock
    user guide, service roles for model customization and for model evaluation)."""
    p = call.params
    if call.operation == "CreateModelCustomizationJob":
        train = p["trainingDataConfig"]["s3Uri"]
        output = p["outputDataConfig"]["s3Uri"]
        teacher = p["customizationConfig"]["distillationConfig"]["teacherModelConfig"]["teacherModelIdentifier"]
        return [
            Need("s3:GetObject", _s3_object(train), "reads the training data"),
            Need("s3:ListBucket", _s3_bucket(train), "lists the training data"),
            Need("s3:PutObject", _s3_object(output, "model/output.json"), "writes the job's output"),
            *(Need("bedrock:InvokeModel", r, "invokes the teacher") for r in model_resources(teacher)),
        ]
    if call.operation == "CreateModelInvocationJob":  # batch inference (batch labeling)
        records = p["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
        output = p["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
        return [
            Need("s3:GetObject", _s3_object(records), "reads the records"),
            Need("s3:ListBucket", _s3_bucket(records), "lists the records"),
            Need("s3:PutObject", _s3_object(output, "job/queries.jsonl.out"), "writes <input file name>.out"),
            *(Need("bedrock:InvokeModel", r, "invokes the teacher") for r in model_resources(p["modelId"])),
        ]
    if call.operation == "CreateEvaluationJob":
        config = p["evaluationConfig"]["automated"]
        output = p["outputDataConfig"]["s3Uri"]
        needs = []
        for dataset in config["datasetMetricConfigs"]:
            uri = dataset["dataset"]["datasetLocation"]["s3Uri"]
            needs += [
                Need("s3:GetObject", _s3_object(uri), "reads the judge dataset"),
                Need("s3:ListBucket", _s3_bucket(uri), "lists the judge dataset"),
            ]
        needs += [
            Need("s3:PutObject", _s3_object(output, "job/results_output.jsonl"), "writes the results"),
            Need("s3:AbortMultipartUpload", _s3_object(output, "job/results_output.jsonl"), "uploads in parts"),
            Need("s3:ListBucketMultipartUploads", _s3_bucket(output), "uploads in parts"),
        ]
        for model in config["evaluatorModelConfig"]["bedrockEvaluatorModels"]:
            needs += [
                Need("bedrock:InvokeModel", r, "invokes the judge") for r in model_resources(model["modelIdentifier"])
            ]
        return needs
    return []


def trust_context(call: Call) -> Context:
    """The request context of Bedrock assuming the service role for the job ``call`` created."""
    kind = {
        "CreateModelCustomizationJob": "model-customization-job",
        "CreateModelInvocationJob": "model-invocation-job",
    }.get(call.operation, "evaluation-job")
    return {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"{BEDROCK}:{kind}/abc123"}
