"""Security properties of the synthesized template: buckets, the Bedrock service role, IAM scope."""

from __future__ import annotations

from typing import Any

from simulation.synth import Synthesized


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    statements = doc.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_bucket_is_encrypted_private_and_tls_only(synth: Synthesized) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    policies = synth.resources("AWS::S3::BucketPolicy")
    assert len(buckets) >= 2
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        # Given a bucket, Then it is encrypted at rest
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules and all("ServerSideEncryptionByDefault" in r for r in rules), logical_id
        # And every kind of public access is blocked
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        # And its policy denies any request not made over TLS
        policy = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": logical_id})
        denies = [
            s
            for s in _statements(policy["Properties"]["PolicyDocument"])
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert denies, f"{logical_id} has no TLS-only statement"


def test_data_bucket_is_versioned_logged_and_expires_temporary_shards(synth: Synthesized) -> None:
    data = synth.template["Resources"][synth.stack.get_logical_id(synth.stack.storage.data_bucket.node.default_child)]
    props = data["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "LoggingConfiguration" in props
    tmp_rules = [r for r in props["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == "tmp/"]
    assert tmp_rules and tmp_rules[0]["ExpirationInDays"] > 0 and tmp_rules[0]["Status"] == "Enabled"


def test_buckets_are_emptied_and_removed_on_destroy_by_default(synth: Synthesized) -> None:
    for logical_id, bucket in synth.resources("AWS::S3::Bucket").items():
        assert bucket["DeletionPolicy"] == "Delete", logical_id
    assert synth.resources("Custom::S3AutoDeleteObjects"), "buckets would not be emptied before deletion"


def test_retain_data_keeps_buckets_and_their_objects(synth_with: Any) -> None:
    retained = synth_with({"retain_data": "true"})
    for logical_id, bucket in retained.resources("AWS::S3::Bucket").items():
        assert bucket["DeletionPolicy"] == "Retain", logical_id
    assert not retained.resources("Custom::S3AutoDeleteObjects")


def test_bedrock_role_trust_is_limited_to_this_accounts_jobs(synth: Synthesized) -> None:
    role_id = synth.stack.get_logical_id(synth.stack.bedrock_role.role.node.default_child)
    trust = synth.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = _statements(trust)
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    condition = statement["Condition"]
    assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    source_arns = [str(a) for a in _as_list(condition["ArnEquals"]["aws:SourceArn"])]
    assert any(":model-customization-job/*" in a for a in source_arns)
    assert any(":evaluation-job/*" in a for a in source_arns)


def test_bedrock_role_can_invoke_only_the_teacher_and_the_judge(synth: Synthesized) -> None:
    policy = next(
        p
        for p in synth.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"]
        == [{"Ref": synth.stack.get_logical_id(synth.stack.bedrock_role.role.node.default_child)}]
    )
    invoke_resources = [
        str(resource)
        for s in _statements(policy["Properties"]["PolicyDocument"])
        if "bedrock:InvokeModel" in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    ]
    text = " ".join(invoke_resources)
    assert "inference-profile/us.amazon.nova-premier-v1:0" in text
    assert "foundation-model/amazon.nova-premier-v1:0" in text
    assert "inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0" in text
    assert "foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0" in text
    assert "foundation-model/*" not in text  # never every model
