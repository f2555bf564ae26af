"""Notifications: the SNS topic for pipeline outcomes and alarms (KMS-encrypted, TLS-only).

A topic policy *replaces* SNS's default one, and ``enforce_ssl`` writes a policy (a TLS-only Deny). From then on
an AWS service may publish only if that policy allows its service principal, and, because the topic is encrypted
with a customer-managed key, only if the key policy lets it use the key. :meth:`Notifications.allow_service`
adds both statements for one publisher; CloudWatch alarms of this account and Region are allowed from the start.
Conditions follow the SNS developer guide: ``aws:SourceAccount`` + ``aws:SourceArn`` for CloudWatch (topic and
key); none for EventBridge, whose publishing the guide says cannot be conditioned (topic policy or key policy).
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
EVENTS_PRINCIPAL = "events.amazonaws.com"
# Services whose publishing to a topic (and use of its key) SNS does not support conditioning.
_UNCONDITIONABLE = frozenset({EVENTS_PRINCIPAL})


class Notifications(Construct):
    """One topic; an e-mail subscription when ``email`` is configured.

    Encrypted with a customer-managed key because CloudWatch alarms cannot publish to a topic encrypted
    with the AWS-managed SNS key. Attributes: ``topic``, ``key``, ``alarm_action`` (for ``Alarm.add_alarm_action``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the pipeline/alarm notification topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Search router distillation",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self._allowed: set[str] = set()
        self.allow_service(
            CLOUDWATCH_PRINCIPAL, f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
        )
        self.alarm_action = cloudwatch_actions.SnsAction(self.topic)

    def allow_service(self, principal: str, source_arn: str | None = None) -> None:
        """Let an AWS service publish to the topic: ``sns:Publish`` in the topic policy and the data-key use
        in the key policy, limited to this account and to ``source_arn`` (an ARN pattern) where SNS supports it."""
        if principal in self._allowed:
            return
        self._allowed.add(principal)
        conditions: dict[str, dict[str, str]] | None = None
        if principal not in _UNCONDITIONABLE:
            if source_arn is None:
                raise ValueError(f"{principal} must be limited to a source ARN pattern")
            conditions = {
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": source_arn},
            }
        name = principal.split(".", 1)[0].capitalize()
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{name}ToPublish",
                principals=[iam.ServicePrincipal(principal)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{name}ToUseTheTopicKey",
                principals=[iam.ServicePrincipal(principal)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions=conditions,
            )
        )

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """sns:Publish on this topic, and the data-key use on its key that publishing requires."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
        )
