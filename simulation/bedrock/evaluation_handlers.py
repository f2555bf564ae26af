"""Evaluation jobs (LLM-as-a-judge)."""

from __future__ import annotations

import copy
from typing import Any

from simulation.bedrock.records import EvaluationRecord
from simulation.bedrock.state import FakeState, contains, equals, now_after
from simulation.bedrock.values import ACCOUNT_ID, REGION, EvaluationJobRequest, FakeServiceError


class EvaluationHandlers(FakeState):
    """``CreateEvaluationJob``, ``GetEvaluationJob``, ``StopEvaluationJob``, ``ListEvaluationJobs``."""

    def _create_evaluation(self, params: dict[str, Any]) -> dict[str, Any]:
        operation = "CreateEvaluationJob"
        with self._lock:
            existing = self._idempotent(operation, params)
            if existing is not None:
                return {"jobArn": existing}
            if any(e.name == params["jobName"] for e in self._evaluations.values()):
                raise FakeServiceError(
                    "ConflictException", f"An evaluation job named {params['jobName']!r} already exists."
                )
            for evaluator in self._evaluator_ids(params):
                self._resolve_known_model(evaluator, "evaluator model")
            job_id = self._new_id()
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:evaluation-job/{job_id}"
            created = now_after(self._latest_creation())
            self._evaluations[arn] = EvaluationRecord(
                arn=arn,
                job_id=job_id,
                name=params["jobName"],
                params=params,
                created=created,
                last_modified=created,
                polls_to_complete=max(self.evaluation_polls_to_complete, 1),
                fail_messages=self._next_evaluation_failure,
            )
            self._next_evaluation_failure = None
            self._tags[arn] = self._tags_or_empty(params.get("jobTags"))
            self._remember_token(operation, params, arn)
        return {"jobArn": arn}

    @staticmethod
    def _evaluator_ids(params: dict[str, Any]) -> list[str]:
        automated = params["evaluationConfig"].get("automated", {})
        judges = automated.get("evaluatorModelConfig", {}).get("bedrockEvaluatorModels", [])
        ids = [m["modelIdentifier"] for m in judges]
        custom = automated.get("customMetricConfig", {}).get("evaluatorModelConfig", {})
        ids += [m["modelIdentifier"] for m in custom.get("bedrockEvaluatorModels", [])]
        return ids

    def _find_evaluation(self, identifier: str) -> EvaluationRecord:
        if not identifier.startswith("arn:"):
            raise FakeServiceError(
                "ValidationException", f"jobIdentifier must be an evaluation job ARN, got {identifier!r}"
            )
        job = self._evaluations.get(identifier)
        if job is None:
            raise FakeServiceError("ResourceNotFoundException", f"Evaluation job {identifier} not found.")
        return job

    def _evaluation_view(self, job: EvaluationRecord) -> dict[str, Any]:
        params = job.params
        view: dict[str, Any] = {
            "jobName": job.name,
            "status": job.status,
            "jobArn": job.arn,
            "roleArn": params["roleArn"],
            "jobType": "Automated" if "automated" in params["evaluationConfig"] else "Human",
            "applicationType": params.get("applicationType", "ModelEvaluation"),
            "evaluationConfig": copy.deepcopy(params["evaluationConfig"]),
            "inferenceConfig": copy.deepcopy(params["inferenceConfig"]),
            "outputDataConfig": copy.deepcopy(params["outputDataConfig"]),
            "creationTime": job.created,
            "lastModifiedTime": job.last_modified,
        }
        for key in ("jobDescription", "customerEncryptionKeyId"):
            if key in params:
                view[key] = params[key]
        if job.status == "Failed":
            view["failureMessages"] = list(job.fail_messages or ())
        return view

    def _get_evaluation(self, params: dict[str, Any]) -> dict[str, Any]:
        completed: EvaluationJobRequest | None = None
        with self._lock:
            job = self._find_evaluation(params["jobIdentifier"])
            now = now_after(job.last_modified)
            if job.status == "Stopping":
                job.status, job.last_modified = "Stopped", now
            elif job.status == "InProgress":
                job.polls += 1
                if job.polls >= job.polls_to_complete:
                    job.status = "Failed" if job.fail_messages is not None else "Completed"
                    job.last_modified = now
                    if job.status == "Completed":
                        completed = EvaluationJobRequest(
                            job_arn=job.arn,
                            job_id=job.job_id,
                            job_name=job.name,
                            output_s3_uri=job.params["outputDataConfig"]["s3Uri"],
                            params=copy.deepcopy(job.params),
                        )
            view = self._evaluation_view(job)
        if completed is not None and self.on_evaluation_complete is not None:
            self.on_evaluation_complete(completed)
        return view

    def _stop_evaluation(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._begin_stop(self._find_evaluation(params["jobIdentifier"]), "Evaluation job")
        return {}

    def _list_evaluations(self, params: dict[str, Any]) -> dict[str, Any]:
        page = self._list_page(
            "ListEvaluationJobs",
            "jobSummaries",
            self._evaluations.values(),
            params,
            filters={
                "statusEquals": (lambda j: j.status, equals),
                "applicationTypeEquals": (lambda j: j.params.get("applicationType", "ModelEvaluation"), equals),
                "nameContains": (lambda j: j.name, contains),
            },
            summary=self._evaluation_summary,
        )
        if not page["jobSummaries"]:
            del page["jobSummaries"]  # the model says min length 1: an empty list is left out
        return page

    def _evaluation_summary(self, job: EvaluationRecord) -> dict[str, Any]:
        evaluation_config = job.params["evaluationConfig"]
        automated = evaluation_config.get("automated") or evaluation_config.get("human", {})
        models = job.params["inferenceConfig"].get("models", [])
        bedrock_models = [m["bedrockModel"]["modelIdentifier"] for m in models if "bedrockModel" in m]
        return {
            "jobArn": job.arn,
            "jobName": job.name,
            "status": job.status,
            "creationTime": job.created,
            "jobType": "Automated" if "automated" in evaluation_config else "Human",
            "evaluationTaskTypes": [c["taskType"] for c in automated.get("datasetMetricConfigs", [])],
            "modelIdentifiers": bedrock_models,
            "evaluatorModelIdentifiers": self._evaluator_ids(job.params)[:1],
            "inferenceConfigSummary": {
                "modelConfigSummary": {
                    "bedrockModelIdentifiers": list(bedrock_models),
                    "precomputedInferenceSourceIdentifiers": [
                        m["precomputedInferenceSource"]["inferenceSourceIdentifier"]
                        for m in models
                        if "precomputedInferenceSource" in m
                    ],
                }
            },
            "applicationType": job.params.get("applicationType", "ModelEvaluation"),
        }
