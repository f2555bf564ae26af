"""On-demand custom model deployments."""

from __future__ import annotations

from typing import Any

from simulation.bedrock.records import DeploymentRecord
from simulation.bedrock.state import FakeState, after, before, contains, equals, now_after
from simulation.bedrock.values import ACCOUNT_ID, REGION, FakeServiceError


class DeploymentHandlers(FakeState):
    """``CreateCustomModelDeployment``, ``GetCustomModelDeployment``, ``ListCustomModelDeployments``,
    ``UpdateCustomModelDeployment``, ``DeleteCustomModelDeployment``."""

    def _find_deployment(self, identifier: str) -> DeploymentRecord:
        deployment = self._deployments.get(identifier) or next(
            (d for d in self._deployments.values() if d.name == identifier), None
        )
        if deployment is None:
            raise FakeServiceError("ResourceNotFoundException", f"Custom model deployment {identifier} not found.")
        return deployment

    def _create_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        operation = "CreateCustomModelDeployment"
        with self._lock:
            existing = self._idempotent(operation, params)
            if existing is not None:
                return {"customModelDeploymentArn": existing}
            if params["modelArn"] not in self._models:
                raise FakeServiceError("ResourceNotFoundException", f"Custom model {params['modelArn']} not found.")
            if self._models[params["modelArn"]].status != "Active":
                # docs/bedrock-facts.md: a deployment needs the custom model Active (the wording is the fake's).
                raise FakeServiceError(
                    "ValidationException",
                    f"Custom model {params['modelArn']} is {self._models[params['modelArn']].status}; "
                    "it must be Active to be deployed.",
                )
            if any(d.name == params["modelDeploymentName"] for d in self._deployments.values()):
                raise FakeServiceError(
                    "ConflictException", f"A deployment named {params['modelDeploymentName']!r} already exists."
                )
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:custom-model-deployment/{self._new_id()}"
            created = now_after(self._latest_creation())
            self._deployments[arn] = DeploymentRecord(
                arn=arn,
                name=params["modelDeploymentName"],
                model_arn=params["modelArn"],
                params=params,
                created=created,
                last_updated=created,
                polls_to_active=max(self.deployment_polls_to_active, 1),
                fail_message=self._next_deployment_failure,
            )
            self._next_deployment_failure = None
            self._tags[arn] = self._tags_or_empty(params.get("tags"))
            self._remember_token(operation, params, arn)
        return {"customModelDeploymentArn": arn}

    def _advance_deployment(self, deployment: DeploymentRecord) -> None:
        now = now_after(deployment.last_updated)
        if deployment.status == "Creating":
            deployment.polls += 1
            if deployment.polls >= deployment.polls_to_active:
                deployment.status = "Failed" if deployment.fail_message is not None else "Active"
                deployment.last_updated = now
        elif deployment.update_status == "Updating":
            deployment.update_polls += 1
            if deployment.update_polls >= deployment.polls_to_active:
                deployment.model_arn = deployment.update_model_arn or deployment.model_arn
                deployment.update_status = "UpdateCompleted"
                deployment.last_updated = now

    def _deployment_view(self, deployment: DeploymentRecord) -> dict[str, Any]:
        view: dict[str, Any] = {
            "customModelDeploymentArn": deployment.arn,
            "modelDeploymentName": deployment.name,
            "modelArn": deployment.model_arn,
            "createdAt": deployment.created,
            "status": deployment.status,
            "lastUpdatedAt": deployment.last_updated,
        }
        if "description" in deployment.params:
            view["description"] = deployment.params["description"]
        if deployment.status == "Failed":
            view["failureMessage"] = deployment.fail_message
        if deployment.update_status is not None:
            view["updateDetails"] = {
                "modelArn": deployment.update_model_arn,
                "updateStatus": deployment.update_status,
            }
        return view

    def _get_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            deployment = self._find_deployment(params["customModelDeploymentIdentifier"])
            self._advance_deployment(deployment)
            return self._deployment_view(deployment)

    def _list_deployments(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_page(
            "ListCustomModelDeployments",
            "modelDeploymentSummaries",
            self._deployments.values(),
            params,
            filters={
                "statusEquals": (lambda d: d.status, equals),
                "modelArnEquals": (lambda d: d.model_arn, equals),
                "nameContains": (lambda d: d.name, contains),
                "createdAfter": (lambda d: d.created, after),
                "createdBefore": (lambda d: d.created, before),
            },
            summary=_deployment_summary,
        )

    def _update_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            deployment = self._find_deployment(params["customModelDeploymentIdentifier"])
            if params["modelArn"] not in self._models:
                raise FakeServiceError("ResourceNotFoundException", f"Custom model {params['modelArn']} not found.")
            if deployment.status != "Active" or deployment.update_status == "Updating":
                raise FakeServiceError(
                    "ValidationException",
                    f"Deployment {deployment.name} can't be updated in status {deployment.status}"
                    f"{' (update in progress)' if deployment.update_status == 'Updating' else ''}.",
                )
            deployment.update_model_arn = params["modelArn"]
            deployment.update_status = "Updating"
            deployment.update_polls = 0
            deployment.last_updated = now_after(deployment.last_updated)
            return {"customModelDeploymentArn": deployment.arn}

    def _delete_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            deployment = self._find_deployment(params["customModelDeploymentIdentifier"])
            del self._deployments[deployment.arn]
            self._tags.pop(deployment.arn, None)
        return {}


def _deployment_summary(deployment: DeploymentRecord) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "customModelDeploymentArn": deployment.arn,
        "customModelDeploymentName": deployment.name,
        "modelArn": deployment.model_arn,
        "createdAt": deployment.created,
        "status": deployment.status,
        "lastUpdatedAt": deployment.last_updated,
    }
    if deployment.status == "Failed":
        summary["failureMessage"] = deployment.fail_message
    return summary
