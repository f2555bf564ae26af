"""Model customization (distillation) jobs and the custom models they produce."""

from __future__ import annotations

import copy
from typing import Any

from simulation.bedrock.catalog import foundation_model_id_of
from simulation.bedrock.records import CustomModelRecord, JobRecord
from simulation.bedrock.state import FakeState, after, before, contains, equals, now_after
from simulation.bedrock.values import ACCOUNT_ID, REGION, FakeServiceError


class CustomizationHandlers(FakeState):
    """``CreateModelCustomizationJob``, ``GetModelCustomizationJob``, ``StopModelCustomizationJob``,
    ``ListModelCustomizationJobs``, ``GetCustomModel``, ``ListCustomModels``, ``DeleteCustomModel``."""

    # ------------------------------------------------------------------------------------------------- jobs
    def _create_job(self, params: dict[str, Any]) -> dict[str, Any]:
        operation = "CreateModelCustomizationJob"
        customization_type = params.get("customizationType", "FINE_TUNING")
        with self._lock:
            existing = self._idempotent(operation, params)
            if existing is not None:
                return {"jobArn": existing}
            base = self._find_foundation_model(params["baseModelIdentifier"])
            if base is None:
                raise FakeServiceError(
                    "ValidationException",
                    f"The provided base model identifier {params['baseModelIdentifier']!r} is invalid.",
                )
            if customization_type not in base.customizations:
                raise FakeServiceError(
                    "ValidationException",
                    f"Model {base.model_id} does not support {customization_type} customization "
                    f"(supports {list(base.customizations)}); use the customization id such as "
                    "'amazon.nova-micro-v1:0:128k'.",
                )
            if customization_type == "DISTILLATION":
                distillation = params.get("customizationConfig", {}).get("distillationConfig")
                if distillation is None:
                    raise FakeServiceError(
                        "ValidationException",
                        "customizationConfig.distillationConfig is required for customizationType DISTILLATION",
                    )
                teacher = distillation["teacherModelConfig"]["teacherModelIdentifier"]
                self._resolve_known_model(teacher, "teacher model")
            data = params["trainingDataConfig"]
            if "s3Uri" not in data and "invocationLogsConfig" not in data:
                raise FakeServiceError("ValidationException", "trainingDataConfig needs s3Uri or invocationLogsConfig")
            if any(job.name == params["jobName"] for job in self._jobs.values()):
                raise FakeServiceError(
                    "ConflictException", f"A customization job named {params['jobName']!r} already exists."
                )
            taken = {m.name for m in self._models.values()} | {
                j.params["customModelName"] for j in self._jobs.values() if j.status in ("InProgress", "Stopping")
            }
            if params["customModelName"] in taken:
                raise FakeServiceError(
                    "ConflictException", f"A custom model named {params['customModelName']!r} already exists."
                )
            failure = self._next_job_failure
            self._next_job_failure = None
            polls = max(self.job_polls_to_complete, 1)
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:model-customization-job/{base.model_id}/{self._new_id()}"
            created = now_after(self._latest_creation())
            self._jobs[arn] = JobRecord(
                arn=arn,
                name=params["jobName"],
                params=params,
                base_model_arn=base.arn,
                created=created,
                last_modified=created,
                polls_to_complete=polls,
                fail_message=failure[0] if failure else None,
                fail_after_polls=(failure[1] if failure and failure[1] is not None else polls),
            )
            self._tags[arn] = self._tags_or_empty(params.get("jobTags"))
            self._remember_token(operation, params, arn)
        return {"jobArn": arn}

    def _find_job(self, identifier: str) -> JobRecord:
        job = self._jobs.get(identifier) or next((j for j in self._jobs.values() if j.name == identifier), None)
        if job is None:
            raise FakeServiceError("ResourceNotFoundException", f"Customization job {identifier} not found.")
        return job

    def _advance_job(self, job: JobRecord) -> None:
        now = now_after(job.last_modified)
        if job.status == "Stopping":
            job.status, job.end_time, job.last_modified = "Stopped", now, now
            return
        if job.status != "InProgress":
            return
        job.polls += 1
        job.last_modified = now
        if job.fail_message is not None and job.polls >= job.fail_after_polls:
            job.status, job.end_time = "Failed", now
        elif job.polls >= job.polls_to_complete:
            job.status, job.end_time = "Completed", now
            model_id = foundation_model_id_of(job.base_model_arn)
            model_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:custom-model/{model_id}/{self._new_id()}"
            job.output_model_arn = model_arn
            self._models[model_arn] = CustomModelRecord(
                arn=model_arn,
                name=job.params["customModelName"],
                job=job,
                created=now,
                polls_to_active=self.model_polls_to_active,
                status="Active" if self.model_polls_to_active <= 0 else "Creating",
            )
            self._tags[model_arn] = self._tags_or_empty(job.params.get("customModelTags"))

    def _status_details(self, job: JobRecord) -> dict[str, Any]:
        phases = ("validationDetails", "dataProcessingDetails", "trainingDetails")
        if job.status == "Completed":
            return {phase: {"status": "Completed"} for phase in phases}
        current = min(len(phases) - 1, job.polls * len(phases) // max(job.polls_to_complete, 1))
        details = {}
        for index, phase in enumerate(phases):
            if index < current:
                status = "Completed"
            elif index == current:
                status = job.status
            else:
                status = "NotStarted"
            details[phase] = {"status": status}
        return details

    def _job_view(self, job: JobRecord) -> dict[str, Any]:
        params = job.params
        view: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "outputModelName": params["customModelName"],
            "roleArn": params["roleArn"],
            "status": job.status,
            "statusDetails": self._status_details(job),
            "creationTime": job.created,
            "lastModifiedTime": job.last_modified,
            "baseModelArn": job.base_model_arn,
            "hyperParameters": copy.deepcopy(params.get("hyperParameters", {})),
            "trainingDataConfig": copy.deepcopy(params["trainingDataConfig"]),
            "validationDataConfig": copy.deepcopy(params.get("validationDataConfig", {"validators": []})),
            "outputDataConfig": copy.deepcopy(params["outputDataConfig"]),
            "customizationType": params.get("customizationType", "FINE_TUNING"),
        }
        for key in ("clientRequestToken", "customizationConfig", "vpcConfig"):
            if key in params:
                view[key] = copy.deepcopy(params[key])
        if job.end_time is not None:
            view["endTime"] = job.end_time
        if job.status == "Failed":
            view["failureMessage"] = job.fail_message
        if job.output_model_arn is not None:
            view["outputModelArn"] = job.output_model_arn
            view["trainingMetrics"] = {"trainingLoss": self.training_loss}
        return view

    def _get_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._find_job(params["jobIdentifier"])
            self._advance_job(job)
            return self._job_view(job)

    def _stop_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._begin_stop(self._find_job(params["jobIdentifier"]), "Job")
        return {}

    def _list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_page(
            "ListModelCustomizationJobs",
            "modelCustomizationJobSummaries",
            self._jobs.values(),
            params,
            filters={
                "statusEquals": (lambda j: j.status, equals),
                "nameContains": (lambda j: j.name, contains),
                "creationTimeAfter": (lambda j: j.created, after),
                "creationTimeBefore": (lambda j: j.created, before),
            },
            summary=self._job_summary,
        )

    def _job_summary(self, job: JobRecord) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "jobArn": job.arn,
            "baseModelArn": job.base_model_arn,
            "jobName": job.name,
            "status": job.status,
            "statusDetails": self._status_details(job),
            "lastModifiedTime": job.last_modified,
            "creationTime": job.created,
            "customModelName": job.params["customModelName"],
            "customizationType": job.params.get("customizationType", "FINE_TUNING"),
        }
        if job.end_time is not None:
            summary["endTime"] = job.end_time
        if job.output_model_arn is not None:
            summary["customModelArn"] = job.output_model_arn
        return summary

    # ------------------------------------------------------------------------------------------ custom models
    def _find_model(self, identifier: str) -> CustomModelRecord:
        model = self._models.get(identifier) or next((m for m in self._models.values() if m.name == identifier), None)
        if model is None:
            raise FakeServiceError("ResourceNotFoundException", f"Custom model {identifier} not found.")
        return model

    def _model_view(self, model: CustomModelRecord) -> dict[str, Any]:
        params = model.job.params
        view: dict[str, Any] = {
            "modelArn": model.arn,
            "modelName": model.name,
            "jobName": model.job.name,
            "jobArn": model.job.arn,
            "baseModelArn": model.job.base_model_arn,
            "customizationType": params.get("customizationType", "FINE_TUNING"),
            "hyperParameters": copy.deepcopy(params.get("hyperParameters", {})),
            "trainingDataConfig": copy.deepcopy(params["trainingDataConfig"]),
            "outputDataConfig": copy.deepcopy(params["outputDataConfig"]),
            "trainingMetrics": {"trainingLoss": self.training_loss},
            "creationTime": model.created,
            "modelStatus": model.status,
        }
        if "customizationConfig" in params:
            view["customizationConfig"] = copy.deepcopy(params["customizationConfig"])
        return view

    def _get_custom_model(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._find_model(params["modelIdentifier"])
            if model.status == "Creating":
                model.polls += 1
                if model.polls >= model.polls_to_active:
                    model.status = "Active"
            return self._model_view(model)

    def _list_custom_models(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_page(
            "ListCustomModels",
            "modelSummaries",
            self._models.values(),
            params,
            filters={
                "nameContains": (lambda m: m.name, contains),
                "baseModelArnEquals": (lambda m: m.job.base_model_arn, equals),
                "foundationModelArnEquals": (lambda m: m.job.base_model_arn, equals),
                "modelStatus": (lambda m: m.status, equals),
            },
            summary=_model_summary,
        )

    def _delete_custom_model(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._find_model(params["modelIdentifier"])
            users = [d.name for d in self._deployments.values() if model.arn in (d.model_arn, d.update_model_arn)]
            if users:
                raise FakeServiceError(
                    "ConflictException",
                    f"Custom model {model.name} can't be deleted while deployments use it: {users}.",
                )
            del self._models[model.arn]
            self._tags.pop(model.arn, None)
        return {}


def _model_summary(model: CustomModelRecord) -> dict[str, Any]:
    return {
        "modelArn": model.arn,
        "modelName": model.name,
        "creationTime": model.created,
        "baseModelArn": model.job.base_model_arn,
        "baseModelName": foundation_model_id_of(model.job.base_model_arn).split(":", 1)[0],
        "customizationType": model.job.params.get("customizationType", "FINE_TUNING"),
        "ownerAccountId": ACCOUNT_ID,
        "modelStatus": model.status,
    }
