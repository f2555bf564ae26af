"""The one stack: composes the capability constructs and adds cross-cutting concerns (tags, outputs)."""

from __future__ import annotations

import json

from aws_cdk import Annotations, CfnOutput, Stack, Tags
from constructs import Construct

from infra.bedrock_roles import BedrockServiceRole
from infra.capture import QueryCapture
from infra.cleanup import RuntimeResourceCleanup
from infra.compensation import Compensation
from infra.config import DOCUMENTED_DISTILLATION_REGIONS, AppConfig, pipeline_defaults
from infra.drift import DriftCheck
from infra.lambda_factory import LambdaFactory
from infra.monitoring import Monitoring
from infra.notifications import Notifications
from infra.pipeline import Pipeline
from infra.retrain import ScheduledRetraining
from infra.routing_api import RoutingApi
from infra.storage import Storage

PROJECT_TAG = "search-router-distillation"


class RouterDistillationStack(Stack):
    """Storage + Bedrock service role + Lambda factory; the pipeline, routing API, cleanup and monitoring
    constructs plug in here, each receiving what it needs as constructor arguments."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        Tags.of(self).add("project", PROJECT_TAG)
        if config.region not in DOCUMENTED_DISTILLATION_REGIONS:
            Annotations.of(self).add_warning_v2(
                "project:distillation-region",
                f"region {config.region}: the Bedrock user guide lists distillation of "
                f"{config.models.student_job} in {', '.join(DOCUMENTED_DISTILLATION_REGIONS)} only. The router and "
                "deployments work here; every pipeline run checks the Region's DISTILLATION catalog in Preflight "
                "and fails there, before any money is spent, if the student is not offered (python -m cli doctor "
                "checks it now).",
            )

        self.storage = Storage(
            self, "Storage", retain_data=config.retain_data, data_retention_days=config.data_retention_days
        )
        self.bedrock_role = BedrockServiceRole(
            self,
            "BedrockServiceRole",
            data_bucket=self.storage.data_bucket,
            teacher_model_ids=config.teacher_preference,
            judge_model_id=config.models.judge,
        )
        self.functions = LambdaFactory(self, "Functions", config=config)
        self.notifications = Notifications(self, "Notifications", email=config.notification_email)
        self.routing_api = RoutingApi(
            self, "RoutingApi", config=config, functions=self.functions, data_bucket=self.storage.data_bucket
        )
        self.capture: QueryCapture | None = None
        self.drift: DriftCheck | None = None
        if config.capture.enabled:
            self.capture = QueryCapture(
                self,
                "QueryCapture",
                config=config,
                functions=self.functions,
                data_bucket=self.storage.data_bucket,
                router_function=self.routing_api.function,
            )
            self.drift = DriftCheck(
                self,
                "DriftCheck",
                config=config,
                functions=self.functions,
                data_bucket=self.storage.data_bucket,
                model_parameter=self.routing_api.model_parameter,
                topic=self.notifications.topic,
            )
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            config=config,
            functions=self.functions,
            data_bucket=self.storage.data_bucket,
            bedrock_role=self.bedrock_role,
            notifications=self.notifications,
            model_parameter=self.routing_api.model_parameter,
        )
        self.retrain: ScheduledRetraining | None = None
        if config.retrain.schedule is not None:
            self.retrain = ScheduledRetraining(
                self,
                "ScheduledRetraining",
                config=config,
                functions=self.functions,
                data_bucket=self.storage.data_bucket,
                state_machine=self.pipeline.state_machine,
                notifications=self.notifications,
            )
        self.compensation = Compensation(
            self,
            "Compensation",
            config=config,
            functions=self.functions,
            pipeline=self.pipeline.state_machine,
            notify_function=self.pipeline.functions["NotifyFunctionArn"],
            data_bucket=self.storage.data_bucket,
            model_parameter=self.routing_api.model_parameter,
            notifications=self.notifications,
        )
        self.cleanup = RuntimeResourceCleanup(
            self,
            "RuntimeResourceCleanup",
            config=config,
            functions=self.functions,
            state_machine=self.pipeline.state_machine,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            routing_api=self.routing_api,
            state_machine=self.pipeline.state_machine,
            topic=self.notifications.topic,
            pipeline_failure_alarm=self.pipeline.failure_alarm,
            pipeline_alarms=self.compensation.alarms,
            compensation_state_machine=self.compensation.state_machine,
        )

        CfnOutput(self, "DataBucketName", value=self.storage.data_bucket.bucket_name)
        CfnOutput(self, "BedrockServiceRoleArn", value=self.bedrock_role.role.role_arn)
        CfnOutput(self, "StateMachineArn", value=self.pipeline.state_machine.state_machine_arn)
        CfnOutput(
            self,
            "CompensationStateMachineArn",
            value=self.compensation.state_machine.state_machine_arn,
            description="Compensates failed, timed-out and aborted runs (stops and deletes what they created)",
        )
        CfnOutput(
            self,
            "PipelineDefaults",
            value=json.dumps(pipeline_defaults(config), separators=(",", ":")),
            description="What an execution started with {} does (the CLI validates overrides against it)",
        )
        CfnOutput(self, "NotificationTopicArn", value=self.notifications.topic.topic_arn)
        CfnOutput(
            self,
            "PreflightFunctionName",
            value=self.pipeline.functions["PreflightFunctionArn"].function_name,
            description="Preflight function (its environment names the deployed models; python -m cli doctor reads it)",
        )
