"""The default catalog (foundation models and cross-Region inference profiles) and what model identifiers name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulation.bedrock.values import ACCOUNT_ID, REGION


@dataclass(frozen=True)
class FoundationModel:
    """A catalog entry returned by ``GetFoundationModel``."""

    model_id: str
    provider_name: str
    model_name: str
    lifecycle: str = "ACTIVE"
    inference_types: tuple[str, ...] = ("ON_DEMAND",)
    customizations: tuple[str, ...] = ()
    input_modalities: tuple[str, ...] = ("TEXT",)
    output_modalities: tuple[str, ...] = ("TEXT",)

    @property
    def arn(self) -> str:
        return f"arn:aws:bedrock:{REGION}::foundation-model/{self.model_id}"

    def details(self) -> dict[str, Any]:
        return {
            "modelArn": self.arn,
            "modelId": self.model_id,
            "modelName": self.model_name,
            "providerName": self.provider_name,
            "inputModalities": list(self.input_modalities),
            "outputModalities": list(self.output_modalities),
            "responseStreamingSupported": True,
            "customizationsSupported": list(self.customizations),
            "inferenceTypesSupported": list(self.inference_types),
            "modelLifecycle": {"status": self.lifecycle},
        }


@dataclass(frozen=True)
class InferenceProfile:
    """A system-defined cross-Region inference profile returned by ``GetInferenceProfile``."""

    profile_id: str
    model_arns: tuple[str, ...]
    status: str = "ACTIVE"

    @property
    def arn(self) -> str:
        return f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:inference-profile/{self.profile_id}"

    @property
    def name(self) -> str:
        # InferenceProfileName allows letters, digits and single separators: no dots or colons.
        words = re.split(r"[^0-9a-zA-Z]+", self.profile_id)
        return " ".join(w for w in words if w)[:64]

    def details(self) -> dict[str, Any]:
        return {
            "inferenceProfileName": self.name,
            "description": f"Routes requests to {self.profile_id.split('.', 1)[-1].replace(':', ' ')}",
            "inferenceProfileArn": self.arn,
            "inferenceProfileId": self.profile_id,
            "models": [{"modelArn": arn} for arn in self.model_arns],
            "status": self.status,
            "type": "SYSTEM_DEFINED",
        }


# Default catalog (docs/bedrock-facts.md, as of December 2026): Nova base models are invoked on demand through their
# ``us.`` profiles; the customization variants (``:128k`` / ``:300k`` / ``:1000k``) are what distillation lists.
# Nova Premier is LEGACY (end of life 14 Sep 2026 on its model card).
PROFILE_REGIONS = ("us-east-1", "us-east-2", "us-west-2")
DEFAULT_FOUNDATION_MODELS: tuple[FoundationModel, ...] = (
    FoundationModel(
        "amazon.nova-premier-v1:0",
        "Amazon",
        "Nova Premier",
        lifecycle="LEGACY",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE", "VIDEO"),
    ),
    FoundationModel(
        "amazon.nova-premier-v1:0:1000k",
        "Amazon",
        "Nova Premier",
        lifecycle="LEGACY",
        inference_types=("PROVISIONED",),
        customizations=("DISTILLATION",),
    ),
    FoundationModel(
        "amazon.nova-pro-v1:0",
        "Amazon",
        "Nova Pro",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE", "VIDEO"),
    ),
    FoundationModel(
        "amazon.nova-lite-v1:0",
        "Amazon",
        "Nova Lite",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE", "VIDEO"),
    ),
    FoundationModel("amazon.nova-micro-v1:0", "Amazon", "Nova Micro", inference_types=("INFERENCE_PROFILE",)),
    FoundationModel(
        "amazon.nova-pro-v1:0:300k",
        "Amazon",
        "Nova Pro",
        inference_types=("PROVISIONED",),
        customizations=("FINE_TUNING", "DISTILLATION"),
    ),
    FoundationModel(
        "amazon.nova-lite-v1:0:300k",
        "Amazon",
        "Nova Lite",
        inference_types=("PROVISIONED",),
        customizations=("FINE_TUNING", "DISTILLATION"),
    ),
    FoundationModel(
        "amazon.nova-micro-v1:0:128k",
        "Amazon",
        "Nova Micro",
        inference_types=("PROVISIONED",),
        customizations=("FINE_TUNING", "DISTILLATION"),
    ),
    FoundationModel(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "Anthropic",
        "Claude Haiku 4.5",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE"),
    ),
    FoundationModel(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Anthropic",
        "Claude Sonnet 4.5",
        inference_types=("INFERENCE_PROFILE",),
        input_modalities=("TEXT", "IMAGE"),
    ),
)
DEFAULT_PROFILES: tuple[str, ...] = (
    "us.amazon.nova-premier-v1:0",
    "us.amazon.nova-pro-v1:0",
    "us.amazon.nova-lite-v1:0",
    "us.amazon.nova-micro-v1:0",
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
)


def foundation_model_id_of(identifier: str) -> str:
    if ":foundation-model/" in identifier:
        return identifier.split(":foundation-model/", 1)[1]
    return identifier


def base_model_id_of(identifier: str) -> str:
    """A model family without profile prefix or context suffix (``amazon.nova-pro-v1:0``)."""
    without_profile = re.sub(r"^(us|eu|apac|us-gov|ca|jp|au|global)\.", "", foundation_model_id_of(identifier))
    return re.sub(r":\d+k$", "", without_profile)


def profile_id_of(identifier: str) -> str:
    if ":inference-profile/" in identifier:
        return identifier.split(":inference-profile/", 1)[1]
    return identifier
