"""The catalog: foundation models, model access and inference profiles, set up by tests and answered by the fake."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Self

from simulation.bedrock.catalog import (
    DEFAULT_FOUNDATION_MODELS,
    DEFAULT_PROFILES,
    PROFILE_REGIONS,
    FoundationModel,
    InferenceProfile,
    base_model_id_of,
    profile_id_of,
)
from simulation.bedrock.state import FakeState, contains, equals, matches
from simulation.bedrock.values import REGION, FakeServiceError


def _same_text(wanted: str, value: str) -> bool:
    return value.lower() == wanted.lower()


class CatalogHandlers(FakeState):
    """``GetFoundationModel``, ``GetFoundationModelAvailability``, ``ListFoundationModels``,
    ``GetInferenceProfile``, ``ListInferenceProfiles``, and the methods that set the catalog up."""

    # ------------------------------------------------------------------------------------------------- set-up
    def add_foundation_model(
        self,
        model_id: str,
        *,
        lifecycle: str = "ACTIVE",
        inference_types: Sequence[str] = ("ON_DEMAND",),
        customizations: Sequence[str] = (),
        provider_name: str | None = None,
        model_name: str | None = None,
    ) -> FoundationModel:
        """Add (or replace) a foundation model; ``GetFoundationModel`` accepts its id or ARN."""
        provider = provider_name or model_id.split(".", 1)[0].capitalize()
        model = FoundationModel(
            model_id=model_id,
            provider_name=provider,
            model_name=(model_name or model_id.split(".", 1)[-1].split(":", 1)[0])[:20],
            lifecycle=lifecycle,
            inference_types=tuple(inference_types),
            customizations=tuple(customizations),
        )
        with self._lock:
            self._foundation_models[model_id] = model
        return model

    def set_model_access(
        self,
        model_id: str,
        *,
        authorization: str = "AUTHORIZED",
        entitlement: str = "AVAILABLE",
        agreement: str = "AVAILABLE",
        region: str = "AVAILABLE",
        agreement_error: str | None = None,
    ) -> None:
        """What ``GetFoundationModelAvailability`` answers for a model (by id, profile id or customization id;
        stored for its base model): e.g. ``authorization="NOT_AUTHORIZED"`` for model access not granted."""
        agreement_availability: dict[str, Any] = {"status": agreement}
        if agreement_error:
            agreement_availability["errorMessage"] = agreement_error
        with self._lock:
            self._access[base_model_id_of(model_id)] = {
                "agreementAvailability": agreement_availability,
                "authorizationStatus": authorization,
                "entitlementAvailability": entitlement,
                "regionAvailability": region,
            }

    def set_model_lifecycle(self, model_id: str, lifecycle: str) -> None:
        """Flip a catalog model to ``"LEGACY"`` (or back to ``"ACTIVE"``), e.g. to exercise preflight: every id of
        its family (``amazon.nova-premier-v1:0`` and ``amazon.nova-premier-v1:0:1000k``) changes together."""
        family = base_model_id_of(model_id)
        with self._lock:
            matches = [m for m in self._foundation_models.values() if base_model_id_of(m.model_id) == family]
            if not matches:
                raise KeyError(f"{model_id} is not in the fake's catalog")
            for model in matches:
                self._foundation_models[model.model_id] = FoundationModel(**{**model.__dict__, "lifecycle": lifecycle})

    def add_inference_profile(
        self, profile_id: str, model_ids: Sequence[str], *, status: str = "ACTIVE"
    ) -> InferenceProfile:
        """Add a system-defined profile routing to ``model_ids`` (foundation model ids or ARNs)."""
        arns = tuple(
            m if m.startswith("arn:") else f"arn:aws:bedrock:{REGION}::foundation-model/{m}" for m in model_ids
        )
        profile = InferenceProfile(profile_id=profile_id, model_arns=arns, status=status)
        with self._lock:
            self._profiles[profile_id] = profile
        return profile

    def with_default_catalog(self) -> Self:
        """Preload the models and ``us.`` profiles of docs/bedrock-facts.md, with model access granted to all:
        every model ACTIVE except Nova Premier, which is LEGACY (flip it back with
        ``set_model_lifecycle("amazon.nova-premier-v1:0", "ACTIVE")``)."""
        with self._lock:
            for model in DEFAULT_FOUNDATION_MODELS:
                self._foundation_models[model.model_id] = model
        for profile_id in DEFAULT_PROFILES:
            model_id = profile_id.split(".", 1)[1]
            self.add_inference_profile(
                profile_id, [f"arn:aws:bedrock:{region}::foundation-model/{model_id}" for region in PROFILE_REGIONS]
            )
        return self

    # ------------------------------------------------------------------------------------------------ handlers
    def _get_foundation_model(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._find_foundation_model(params["modelIdentifier"])
        if model is None:
            raise FakeServiceError("ResourceNotFoundException", f"Model {params['modelIdentifier']} not found.")
        return {"modelDetails": model.details()}

    def _get_foundation_model_availability(self, params: dict[str, Any]) -> dict[str, Any]:
        model_id = params["modelId"]
        with self._lock:
            known = any(base_model_id_of(m) == base_model_id_of(model_id) for m in self._foundation_models)
            access = copy.deepcopy(self._access.get(base_model_id_of(model_id)))
        if not known:
            raise FakeServiceError("ResourceNotFoundException", f"Model {model_id} not found.")
        return {
            "modelId": model_id,
            **(
                access
                or {
                    "agreementAvailability": {"status": "AVAILABLE"},
                    "authorizationStatus": "AUTHORIZED",
                    "entitlementAvailability": "AVAILABLE",
                    "regionAvailability": "AVAILABLE",
                }
            ),
        }

    def _list_foundation_models(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            models = list(self._foundation_models.values())
        filters = {
            "byProvider": (lambda m: m.provider_name, _same_text),
            "byCustomizationType": (lambda m: m.customizations, contains),
            "byInferenceType": (lambda m: m.inference_types, contains),
            "byOutputModality": (lambda m: m.output_modalities, contains),
        }
        return {"modelSummaries": [m.details() for m in models if matches(m, params, filters)]}

    def _get_inference_profile(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            profile = self._profiles.get(profile_id_of(params["inferenceProfileIdentifier"]))
        if profile is None:
            raise FakeServiceError(
                "ResourceNotFoundException", f"Inference profile {params['inferenceProfileIdentifier']} not found."
            )
        return profile.details()

    def _list_inference_profiles(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_page(
            "ListInferenceProfiles",
            "inferenceProfileSummaries",
            self._profiles.values(),
            params,
            filters={"typeEquals": (lambda _profile: "SYSTEM_DEFINED", equals)},
            summary=InferenceProfile.details,
            by_creation=False,
        )
