"""Pipeline: the Step Functions state machine (``stepfunctions/pipeline.asl.json``) and its task Lambdas.

Each function gets exactly the permissions its step uses; every wildcard (run-scoped S3 prefixes,
run-time Bedrock resource ids) is acknowledged for cdk-nag right where it is granted, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.bedrock_arns import (
    foundation_model_arns,
    foundation_model_id,
    inference_profile_arn,
    invoke_resource_arns,
    request_tagged_for,
    tagged_by,
)
from infra.bedrock_roles import BedrockServiceRole
from infra.config import DISTILLED_CANDIDATE_MODEL, AppConfig, pipeline_defaults
from infra.lambda_factory import FunctionSpec, LambdaFactory
from infra.nag import acknowledge_resources, acknowledge_wildcards
from infra.notifications import Notifications
from infra.routing_api import grant_models_in_service
from infra.state_machines import ended_badly_alarm, task_state_machine
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.layout import DRIFT_LATEST, INPUTS, RunLayout

DEFINITION_FILE = Path(__file__).resolve().parent.parent / "stepfunctions" / "pipeline.asl.json"
LABEL_SHARDS_MAP = "LabelShards"  # the Distributed Map's Label (its child executions are <machine>/LabelShards:<id>)
# The definition's TimeoutSeconds (8 days) covers the longest allowed distillation (168 h) plus a day for
# labeling, deployment, evaluation and the judge; the run's own max_distillation_hours stops jobs sooner.


@dataclass(frozen=True)
class Step:
    """One task function: its ASL substitution name, handler and sizing."""

    substitution: str
    handler: str
    description: str
    timeout_seconds: int
    memory_mb: int


STEPS = (
    Step(
        "PreflightFunctionArn",
        "search_router.handlers.preflight.handler",
        "Validates run input and model access",
        120,
        256,
    ),
    Step(
        "PlanQueriesFunctionArn",
        "search_router.handlers.plan_queries.handler",
        "Plans and shards the queries",
        300,
        1024,
    ),
    Step(
        "LabelShardFunctionArn",
        "search_router.handlers.label_shard.handler",
        "Labels one shard with the teacher",
        900,
        1024,
    ),
    Step(
        "StartBatchLabelingFunctionArn",
        "search_router.handlers.batch_labeling.start",
        "Starts the batch labeling job",
        300,
        1024,
    ),
    Step(
        "CheckBatchLabelingFunctionArn",
        "search_router.handlers.batch_labeling.check",
        "Polls the batch labeling job",
        60,
        256,
    ),
    Step(
        "CollectBatchLabelsFunctionArn",
        "search_router.handlers.batch_labeling.collect",
        "Reads the batch labels into the shards",
        600,
        2048,
    ),
    Step(
        "PrepareDatasetFunctionArn",
        "search_router.handlers.prepare_dataset.handler",
        "Builds the training set",
        600,
        2048,
    ),
    Step(
        "TrainMicroRouterFunctionArn",
        "search_router.handlers.train_micro_router.handler",
        "Trains the micro-router",
        600,
        2048,
    ),
    Step(
        "StartDistillationFunctionArn",
        "search_router.handlers.distillation.start",
        "Starts the distillation job",
        60,
        256,
    ),
    Step(
        "CheckDistillationFunctionArn",
        "search_router.handlers.distillation.check",
        "Polls the distillation job",
        60,
        256,
    ),
    Step(
        "StartDeploymentFunctionArn", "search_router.handlers.deployment.start", "Deploys the distilled model", 60, 256
    ),
    Step(
        "CheckDeploymentFunctionArn", "search_router.handlers.deployment.check", "Polls the model deployment", 60, 256
    ),
    Step(
        "RecordOutputsFunctionArn", "search_router.handlers.record_outputs.handler", "Records the run outputs", 60, 256
    ),
    Step(
        "EvaluateCandidateFunctionArn",
        "search_router.handlers.evaluate.handler",
        "Evaluates one candidate router",
        900,
        512,
    ),
    Step(
        "ShadowReplayFunctionArn",
        "search_router.handlers.shadow.handler",
        "Replays production queries against the model in service",
        900,
        512,
    ),
    Step("StartJudgeFunctionArn", "search_router.handlers.judge.start", "Starts the LLM-as-judge jobs", 60, 256),
    Step("CheckJudgeFunctionArn", "search_router.handlers.judge.check", "Polls the LLM-as-judge jobs", 120, 256),
    Step(
        "ReportFunctionArn",
        "search_router.handlers.report.handler",
        "Writes the report, charts and gate decision",
        300,
        1536,
    ),
    Step("PromoteFunctionArn", "search_router.handlers.promote.promote", "Promotes the distilled model", 30, 256),
    Step("RejectFunctionArn", "search_router.handlers.promote.reject", "Rejects the distilled model", 60, 256),
    Step("NotifyFunctionArn", "search_router.handlers.notify.handler", "Publishes the run outcome", 60, 256),
)


class Pipeline(Construct):
    """Task functions with per-step grants, the state machine, and its failure alarm."""

    def __init__(  # noqa: PLR0915 - one linear wiring of every step, easier to audit than split up
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: LambdaFactory,
        data_bucket: s3.IBucket,
        bedrock_role: BedrockServiceRole,
        notifications: Notifications,
        model_parameter: ssm.IStringParameter,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._bucket = data_bucket
        environment = pipeline_environment(
            config,
            data_bucket=data_bucket.bucket_name,
            stack_name=stack.stack_name,
            bedrock_role_arn=bedrock_role.role.role_arn,
            topic_arn=notifications.topic.topic_arn,
            model_parameter=model_parameter.parameter_name,
        ).to_environment()
        self.functions: dict[str, lambda_.Function] = {}
        for step in STEPS:
            self.functions[step.substitution] = functions.create(
                self,
                step.substitution.removesuffix("FunctionArn"),
                FunctionSpec(
                    handler=step.handler,
                    description=step.description,
                    timeout_seconds=step.timeout_seconds,
                    memory_mb=step.memory_mb,
                    environment=environment,
                ),
            )
        fn = self.functions
        region, account, partition = Aws.REGION, Aws.ACCOUNT_ID, Aws.PARTITION
        bedrock_arn = f"arn:{partition}:bedrock:{region}:{account}"
        # IAM itself keeps every run-time Bedrock action to this stack's resources: creates must tag what they
        # create stack=<this stack>, and what stops, deletes or invokes them needs that tag on the resource.
        ours = tagged_by(stack.stack_name)
        tags_ours = request_tagged_for(stack.stack_name)

        # --- S3: each step reads and writes only its own part of the run layout -------------------------
        inputs_reason = "Users upload their own query files under inputs/ with names of their choosing."
        run_reason = "Run ids are created at run time; the grant is limited to this part of each run's folder."
        every = RunLayout.any()  # the run layout's keys with run id "*": the patterns below
        inputs, plan, labeled = (
            f"{INPUTS}*",
            every.pattern(every.plan_shards_prefix),
            every.pattern(every.labeled_prefix),
        )
        dataset, evaluation = every.pattern(every.dataset_prefix), every.pattern(every.evaluation_prefix)
        judge_output = every.pattern(every.judge_output_prefix)
        self._objects(fn["PreflightFunctionArn"], ["s3:GetObject"], [inputs], inputs_reason)
        self._list(fn["PreflightFunctionArn"], [inputs])  # so a missing file is a 404, not a 403
        self._objects(fn["PlanQueriesFunctionArn"], ["s3:GetObject"], [inputs], inputs_reason)
        self._objects(fn["PlanQueriesFunctionArn"], ["s3:PutObject"], [plan, dataset], run_reason)
        # A re-invoked shard (retried after running out of time, or redriven) resumes from its checkpoint parts.
        self._objects(fn["LabelShardFunctionArn"], ["s3:GetObject"], [plan, labeled], run_reason)
        self._list(fn["LabelShardFunctionArn"], [labeled])
        self._objects(fn["LabelShardFunctionArn"], ["s3:PutObject"], [labeled], run_reason)
        # Batch labeling (labeling_mode: batch): the records in, Bedrock's output back into the shards' files.
        batch_input, batch_output = every.batch_labeling_input, every.pattern(every.batch_labeling_output_prefix)
        self._objects(fn["StartBatchLabelingFunctionArn"], ["s3:GetObject"], [plan], run_reason)
        self._objects(fn["StartBatchLabelingFunctionArn"], ["s3:PutObject"], [batch_input], run_reason)
        self._objects(fn["CollectBatchLabelsFunctionArn"], ["s3:GetObject"], [plan, batch_output], run_reason)
        self._list(fn["CollectBatchLabelsFunctionArn"], [batch_output])
        self._objects(fn["CollectBatchLabelsFunctionArn"], ["s3:PutObject"], [labeled], run_reason)
        self._objects(fn["PrepareDatasetFunctionArn"], ["s3:GetObject"], [labeled, dataset], run_reason)
        self._objects(fn["PrepareDatasetFunctionArn"], ["s3:PutObject"], [dataset], run_reason)
        self._list(fn["PrepareDatasetFunctionArn"], [every.pattern(every.tmp_prefix)])
        micro_router = every.pattern(every.micro_router_prefix)
        self._objects(fn["TrainMicroRouterFunctionArn"], ["s3:GetObject"], [dataset], run_reason)
        self._objects(fn["TrainMicroRouterFunctionArn"], ["s3:PutObject"], [micro_router], run_reason)
        self._objects(fn["RecordOutputsFunctionArn"], ["s3:PutObject"], [every.pattern(every.outputs)], run_reason)
        self._objects(fn["EvaluateCandidateFunctionArn"], ["s3:GetObject"], [dataset], run_reason)
        self._objects(fn["EvaluateCandidateFunctionArn"], ["s3:PutObject"], [evaluation], run_reason)
        self._objects(fn["ShadowReplayFunctionArn"], ["s3:GetObject"], [every.heldout], run_reason)
        self._objects(fn["ShadowReplayFunctionArn"], ["s3:PutObject"], [every.pattern(every.shadow_prefix)], run_reason)
        self._objects(fn["CheckJudgeFunctionArn"], ["s3:GetObject"], [judge_output], run_reason)
        self._list(fn["CheckJudgeFunctionArn"], [judge_output])
        self._objects(fn["ReportFunctionArn"], ["s3:GetObject"], [evaluation, dataset, micro_router], run_reason)
        # the user's score samples of the fusion metric (fusion_scores_s3_uri, under inputs/; Preflight parses them)
        self._objects(fn["ReportFunctionArn"], ["s3:GetObject"], [inputs], inputs_reason)
        # the latest production drift summary (written by the drift check when capture is on); listing it lets a
        # missing one be a 404 rather than a 403
        self._objects(fn["ReportFunctionArn"], ["s3:GetObject"], [DRIFT_LATEST], "The drift check's summary.")
        self._list(fn["ReportFunctionArn"], [DRIFT_LATEST])
        self._objects(fn["ReportFunctionArn"], ["s3:PutObject"], [every.pattern(every.report_prefix)], run_reason)
        # Promote copies an enabled cascade's micro-router out of the run folder, under its content's digest.
        self._objects(fn["PromoteFunctionArn"], ["s3:GetObject"], [every.micro_router_artifact], run_reason)
        self._objects(
            fn["PromoteFunctionArn"], ["s3:PutObject"], [every.pattern(every.promoted_micro_router_prefix)], run_reason
        )

        # --- Bedrock ------------------------------------------------------------------------------------
        models = config.models
        catalog_models = {
            *config.teacher_preference,
            models.student_job,
            models.student,
            models.baseline,
            models.judge,
            *(m.model_id for m in config.router.models if not m.model_id.startswith("arn:")),
            *(c.model for c in config.eval_candidates if c.model != DISTILLED_CANDIDATE_MODEL),
        }
        self._bedrock(
            fn["PreflightFunctionArn"],
            ["bedrock:GetFoundationModel"],
            sorted(
                {f"arn:{partition}:bedrock:{region}::foundation-model/{foundation_model_id(m)}" for m in catalog_models}
            ),
            "Describes only the configured models.",
        )
        self._bedrock(
            fn["PreflightFunctionArn"],
            ["bedrock:GetInferenceProfile"],
            sorted({arn for m in catalog_models if (arn := inference_profile_arn(m))}),
            "Describes only the configured models' inference profiles.",
        )
        # Model access and the Region's distillation catalog: the Service Authorization Reference lists no
        # resource type for these two actions, so they can only be granted on "*".
        fn["PreflightFunctionArn"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["bedrock:GetFoundationModelAvailability", "bedrock:ListFoundationModels"], resources=["*"]
            )
        )
        acknowledge_wildcards(
            fn["PreflightFunctionArn"].role,  # type: ignore[arg-type]
            ["Resource::*"],
            "X-Ray PutTraceSegments/PutTelemetryRecords and Bedrock GetFoundationModelAvailability/"
            "ListFoundationModels (read-only catalog and model-access status) support no resource-level "
            "permissions; tests allow '*' only for actions the Service Authorization Reference lists without one.",
        )
        teacher_arns = sorted({arn for m in config.teacher_preference for arn in invoke_resource_arns(m)})
        self._bedrock(
            fn["LabelShardFunctionArn"],
            ["bedrock:InvokeModel"],
            teacher_arns,
            "A cross-Region inference profile may route to the teacher's foundation model in any of its Regions.",
        )
        job_arn = f"{bedrock_arn}:model-customization-job/*"
        invocation_job_arn = f"{bedrock_arn}:model-invocation-job/*"
        # CreateModelInvocationJob is authorized on the job and the foundation models it runs (Service
        # Authorization Reference: model-invocation-job, foundation-model, custom-model).
        self._bedrock(
            fn["StartBatchLabelingFunctionArn"],
            ["bedrock:CreateModelInvocationJob"],
            sorted({invocation_job_arn, *(arn for m in config.teacher_preference for arn in foundation_model_arns(m))}),
            "Batch labeling jobs are created by each run; their ids are not known at deploy.",
            conditions=tags_ours,
        )
        self._bedrock(
            fn["StartBatchLabelingFunctionArn"],
            ["bedrock:TagResource"],
            [invocation_job_arn],
            "Batch labeling jobs are created by each run; their ids are not known at deploy.",
            conditions=tags_ours,
        )
        bedrock_role.grant_pass_role(fn["StartBatchLabelingFunctionArn"])
        self._bedrock(
            fn["CheckBatchLabelingFunctionArn"],
            ["bedrock:GetModelInvocationJob"],
            [invocation_job_arn],
            "Batch labeling jobs are created by each run; their ids are not known at deploy.",
        )
        custom_model_arn = f"{bedrock_arn}:custom-model/*"
        deployment_arn = f"{bedrock_arn}:custom-model-deployment/*"
        created_at_run_time = "Jobs, custom models and deployments are created by each run; ids are unknown at deploy."
        # CreateModelCustomizationJob is authorized on the custom model it creates and the foundation models it
        # uses (Service Authorization Reference): the student's customization id and the teachers it may distil from.
        self._bedrock(
            fn["StartDistillationFunctionArn"],
            ["bedrock:CreateModelCustomizationJob"],
            sorted(
                {
                    custom_model_arn,
                    f"arn:{partition}:bedrock:{region}::foundation-model/{config.models.student_job}",
                    *(arn for m in config.teacher_preference for arn in foundation_model_arns(m)),
                }
            ),
            created_at_run_time,
            conditions=tags_ours,
        )
        self._bedrock(
            fn["StartDistillationFunctionArn"],
            ["bedrock:TagResource"],
            [job_arn, custom_model_arn],
            created_at_run_time,
            conditions=tags_ours,
        )
        bedrock_role.grant_pass_role(fn["StartDistillationFunctionArn"])
        self._bedrock(
            fn["CheckDistillationFunctionArn"], ["bedrock:GetModelCustomizationJob"], [job_arn], created_at_run_time
        )
        self._bedrock(
            fn["CheckDistillationFunctionArn"],
            ["bedrock:StopModelCustomizationJob"],
            [job_arn],
            created_at_run_time,
            conditions=ours,
        )
        # A completed job's model can stay "Creating" for a while; the check waits for it to be Active.
        self._bedrock(
            fn["CheckDistillationFunctionArn"], ["bedrock:GetCustomModel"], [custom_model_arn], created_at_run_time
        )
        self._bedrock(
            fn["StartDeploymentFunctionArn"],
            ["bedrock:CreateCustomModelDeployment"],
            [custom_model_arn],
            created_at_run_time,
            conditions=tags_ours,
        )
        self._bedrock(
            fn["StartDeploymentFunctionArn"],
            ["bedrock:TagResource"],
            [deployment_arn],
            created_at_run_time,
            conditions=tags_ours,
        )
        self._bedrock(
            fn["CheckDeploymentFunctionArn"],
            ["bedrock:GetCustomModelDeployment"],
            [deployment_arn],
            created_at_run_time,
        )
        candidate_arns = sorted(
            {
                arn
                for c in config.eval_candidates
                if c.model != DISTILLED_CANDIDATE_MODEL
                for arn in invoke_resource_arns(c.model)
            }
        )
        self._bedrock(
            fn["EvaluateCandidateFunctionArn"],
            ["bedrock:InvokeModel"],
            candidate_arns,
            "A cross-Region inference profile may route to the candidates' foundation models in any of their Regions.",
        )
        self._bedrock(
            fn["EvaluateCandidateFunctionArn"],
            ["bedrock:InvokeModel"],
            [deployment_arn],
            "The run's own deployment (id created at run time), only when it carries this stack's tag.",
            conditions=ours,
        )
        # The shadow replay asks the model in service (the promotion parameter's) what the router would: the
        # router's own grant, with Converse's action, and a read of the parameter.
        grant_models_in_service(fn["ShadowReplayFunctionArn"], config, ["bedrock:InvokeModel"])
        fn["ShadowReplayFunctionArn"].add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[model_parameter.parameter_arn])
        )
        evaluation_job_arn = f"{bedrock_arn}:evaluation-job/*"
        # CreateEvaluationJob is authorized on the models the job uses (Service Authorization Reference:
        # custom-model, foundation-model, prompt routers), never on evaluation-job: with precomputed answers
        # that is the judge's foundation model.
        self._bedrock(
            fn["StartJudgeFunctionArn"],
            ["bedrock:CreateEvaluationJob"],
            foundation_model_arns(config.models.judge),
            "A cross-Region inference profile may route to the judge's foundation model in any of its Regions.",
            conditions=tags_ours,
        )
        self._bedrock(
            fn["StartJudgeFunctionArn"],
            ["bedrock:TagResource"],
            [evaluation_job_arn],
            "Evaluation jobs are created by each run; their ids are not known at deploy.",
            conditions=tags_ours,
        )
        # A create that is re-entered (a retry after a timeout, a redrive) finds what an earlier attempt created by
        # its name instead of failing on the name: List actions have no resource-level permissions.
        for task, listing in (
            ("StartDistillationFunctionArn", "bedrock:ListModelCustomizationJobs"),
            ("StartDeploymentFunctionArn", "bedrock:ListCustomModelDeployments"),
            ("StartJudgeFunctionArn", "bedrock:ListEvaluationJobs"),
            ("StartBatchLabelingFunctionArn", "bedrock:ListModelInvocationJobs"),
        ):
            fn[task].add_to_role_policy(iam.PolicyStatement(actions=[listing], resources=["*"]))
            acknowledge_wildcards(
                fn[task].role,  # type: ignore[arg-type]
                ["Resource::*"],
                f"X-Ray PutTraceSegments/PutTelemetryRecords and {listing} support no resource-level permissions; "
                "tests allow '*' only for actions the Service Authorization Reference lists without one.",
            )
        bedrock_role.grant_pass_role(fn["StartJudgeFunctionArn"])
        self._bedrock(
            fn["CheckJudgeFunctionArn"],
            ["bedrock:GetEvaluationJob"],
            [evaluation_job_arn],
            "Evaluation jobs are created by each run; their ids are not known at deploy.",
        )
        self._bedrock(
            fn["CheckJudgeFunctionArn"],
            ["bedrock:StopEvaluationJob"],
            [evaluation_job_arn],
            "Evaluation jobs are created by each run; their ids are not known at deploy.",
            conditions=ours,
        )
        self._bedrock(
            fn["ReportFunctionArn"],
            ["bedrock:StopEvaluationJob"],
            [evaluation_job_arn],
            "Stops this run's unfinished judge jobs; their ids are not known at deploy.",
            conditions=ours,
        )
        self._bedrock(
            fn["RejectFunctionArn"],
            ["bedrock:DeleteCustomModelDeployment"],
            [deployment_arn],
            created_at_run_time,
            conditions=ours,
        )
        # GetParameter: a re-entered promote sees its own promotion in place and does not write it again.
        fn["PromoteFunctionArn"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter", "ssm:PutParameter"], resources=[model_parameter.parameter_arn]
            )
        )
        fn["ReportFunctionArn"].add_layers(functions.charts_layer)
        fn["TrainMicroRouterFunctionArn"].add_layers(functions.charts_layer)  # numpy
        notifications.grant_publish(fn["NotifyFunctionArn"])

        # --- State machine --------------------------------------------------------------------------------
        self.state_machine, self.log_group = task_state_machine(
            self,
            "StateMachine",
            definition_file=DEFINITION_FILE,
            tasks=fn,
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-pipeline",
            comment="Distils the search-intent router: data, distillation, deployment (see stepfunctions/)",
        )
        self._grant_distributed_map()
        self.failure_alarm = ended_badly_alarm(
            self,
            "ExecutionsFailed",
            self.state_machine,
            "A distillation pipeline execution failed, timed out or was aborted",
        )
        self.failure_alarm.add_alarm_action(cloudwatch_actions.SnsAction(notifications.topic))

    def _grant_distributed_map(self) -> None:
        """What the Distributed Map (LabelShards) needs: start its child executions of this state machine, watch
        and stop them, and redrive them when the parent is redriven. A separate policy: it names the state
        machine, which depends on its role (the same shape CDK's DistributedMap generates)."""
        machine = self.state_machine
        stack = Stack.of(self)
        name = machine.state_machine_name

        def executions(resource_name: str) -> str:
            return stack.format_arn(
                service="states",
                resource="execution",
                resource_name=resource_name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )

        # Child executions are named <machine>/<map label>:<id>; CDK grants <machine>:* as well.
        children = [executions(f"{name}:*"), executions(f"{name}/*")]
        policy = iam.Policy(
            self,
            "DistributedMapPolicy",
            statements=[
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine.state_machine_arn]),
                iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=children),
                iam.PolicyStatement(
                    actions=["states:RedriveExecution"], resources=[executions(f"{name}/{LABEL_SHARDS_MAP}:*")]
                ),
            ],
        )
        machine.role.attach_inline_policy(policy)
        acknowledge_resources(
            policy,
            [*children, executions(f"{name}/{LABEL_SHARDS_MAP}:*")],
            "The Distributed Map's child executions get ids at run time; the grant covers only executions of this "
            "state machine.",
        )

    # --- grant helpers ---------------------------------------------------------------------------------------
    def _objects(self, function: lambda_.Function, actions: list[str], key_patterns: list[str], reason: str) -> None:
        resources = [self._bucket.arn_for_objects(pattern) for pattern in key_patterns]
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))
        acknowledge_resources(function.role, resources, reason)  # type: ignore[arg-type]

    def _list(self, function: lambda_.Function, prefixes: list[str]) -> None:
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self._bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": prefixes}},
            )
        )

    @staticmethod
    def _bedrock(
        function: lambda_.Function,
        actions: list[str],
        resources: list[str],
        reason: str,
        *,
        conditions: dict[str, dict[str, str]] | None = None,
    ) -> None:
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))
        if conditions:
            keys = ", ".join(f"{key} = this stack's name" for entries in conditions.values() for key in entries)
            reason = f"{reason} IAM enforces {keys}."
        acknowledge_resources(function.role, resources, reason)  # type: ignore[arg-type]


def pipeline_environment(
    config: AppConfig, *, data_bucket: str, stack_name: str, bedrock_role_arn: str, topic_arn: str, model_parameter: str
) -> PipelineEnvironment:
    """The pipeline tasks' environment for ``config`` (the names of deployed resources given; tokens at synth)."""
    models = {
        "student_job": config.models.student_job,
        "student": config.models.student,
        "baseline": config.models.baseline,
        "judge": config.models.judge,
        # Preflight also checks the router's models (a refused one degrades the router, not the run).
        "router": [m.model_id for m in config.router.models],
    }
    return PipelineEnvironment(
        channels=config.channels.to_json(),
        data_bucket=data_bucket,
        stack_name=stack_name,
        models=models,
        teacher_preference=list(config.teacher_preference),
        distillation_pairs={teacher: list(students) for teacher, students in config.distillation_pairs.items()},
        pipeline_defaults=pipeline_defaults(config),
        bedrock_role_arn=bedrock_role_arn,
        topic_arn=topic_arn,
        candidates=[c.to_dict() for c in config.eval_candidates],
        baseline_candidate=config.eval_baseline_candidate,
        eval_threads=config.eval_threads,
        prices={k: {"input": v.input, "output": v.output} for k, v in config.prices.items()},
        gate={
            "min_valid_json_rate": config.gate.min_valid_json_rate,
            "noninferiority_metric": config.gate.noninferiority_metric,
            "noninferiority_margin": config.gate.noninferiority_margin,
            "max_overall_mae": config.gate.max_overall_mae,
            "min_judge_score": config.gate.min_judge_score,
            "require_judge": config.gate.require_judge,
            "min_production_rubric": config.gate.min_production_rubric,
        },
        model_parameter=model_parameter,
        delete_rejected_deployments=config.delete_rejected_deployments,
    )
