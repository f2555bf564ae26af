"""The service role Amazon Bedrock assumes for this stack's distillation, evaluation and batch labeling jobs."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.bedrock_arns import invoke_resource_arns
from infra.nag import acknowledge_resources
from search_router.contract.layout import RunLayout

# Where Bedrock reads and writes inside a run folder (runs/<run-id>/...). The pipeline writes to these
# exact sub-folders; the role can touch nothing else in the bucket.
_EVERY_RUN = RunLayout.any()
BEDROCK_READS = (_EVERY_RUN.dataset_prefix, _EVERY_RUN.judge_input_prefix, _EVERY_RUN.batch_labeling_input)
BEDROCK_WRITES = (
    _EVERY_RUN.distillation_prefix,
    _EVERY_RUN.judge_output_prefix,
    _EVERY_RUN.batch_labeling_output_prefix,
)


class BedrockServiceRole(Construct):
    """``bedrock.amazonaws.com`` may assume this role only for this account's customization, evaluation and
    batch inference (labeling) jobs (confused-deputy protection through ``aws:SourceAccount`` and ``aws:SourceArn``).

    Permissions: read the run's training/evaluation inputs, write the run's job outputs (multipart uploads
    included), invoke the teachers of ``teacher_preference`` (distillation, batch labeling) and the judge
    (evaluation). Callers need ``iam:PassRole`` on :attr:`role`, granted with :meth:`grant_pass_role`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        teacher_model_ids: tuple[str, ...],
        judge_model_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        job_arns = [
            f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:model-customization-job/*",
            f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:evaluation-job/*",
            # batch labeling (labeling_mode: batch)
            f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:model-invocation-job/*",
        ]
        self.role = iam.Role(
            self,
            "Role",
            description="Assumed by Amazon Bedrock for this stack's model distillation and evaluation jobs",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnEquals": {"aws:SourceArn": job_arns},
                },
            ),
        )

        read_objects = [data_bucket.arn_for_objects(RunLayout.pattern(p)) for p in BEDROCK_READS]
        write_objects = [data_bucket.arn_for_objects(RunLayout.pattern(p)) for p in BEDROCK_WRITES]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadJobInputs",
                actions=["s3:GetObject"],
                resources=read_objects + write_objects,
            )
        )
        # Evaluation jobs upload their results in parts: they must be able to list and abort their own uploads.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteJobOutputs",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=write_objects,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListRunFolders",
                actions=["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
                resources=[data_bucket.bucket_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeTeacher",
                actions=["bedrock:InvokeModel", "bedrock:GetInferenceProfile"],
                resources=sorted({arn for model in teacher_model_ids for arn in invoke_resource_arns(model)}),
            )
        )
        # LLM-as-judge evaluation jobs invoke the evaluator through batch inference.
        invocation_jobs = f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:model-invocation-job/*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeJudge",
                actions=[
                    "bedrock:InvokeModel",
                    "bedrock:GetInferenceProfile",
                    "bedrock:CreateModelInvocationJob",
                    "bedrock:StopModelInvocationJob",
                ],
                resources=[
                    *invoke_resource_arns(judge_model_id),
                    invocation_jobs,
                ],
            )
        )

        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge_resources(
            policy,
            read_objects + write_objects,
            "Bedrock reads/writes only these sub-folders of each pipeline run; run ids are created at run time.",
        )
        acknowledge_resources(
            policy,
            sorted({arn for model in {*teacher_model_ids, judge_model_id} for arn in invoke_resource_arns(model)}),
            "A cross-Region inference profile may route to this one foundation model in any of its Regions.",
        )
        acknowledge_resources(
            policy,
            [invocation_jobs],
            "LLM-as-judge evaluation runs the judge as batch-inference jobs whose ids Bedrock assigns at run time.",
        )

    def grant_pass_role(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` hand this role to Bedrock (and to nothing else)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iam:PassRole"],
            resource_arns=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
        )
