"""Bedrock Service Quotas against a labeling plan: which quota limits the teacher, and how long labeling takes.

Pure: the quotas come from ``ListServiceQuotas(ServiceCode="bedrock")`` (read by the caller). Quota *names* are not
an API contract and AWS has renamed them ("Cross-region model inference requests per minute for Amazon Nova Pro",
later "Cross-Region InvokeModel tokens per minute for ${model}"), so they are matched by pattern and the matched
name is always shown; a quota that cannot be found is reported as such, never assumed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

REQUESTS: Final = "requests"
TOKENS: Final = "tokens"
TEACHER_CALL_SECONDS: Final = 2.0
"""*Unconfirmed* assumption: one teacher labeling call (~600 input + ~70 output tokens) takes about 2 s."""

_MODEL_QUOTA = re.compile(
    r"^(?P<scope>global cross-region|cross-region|on-demand)\s+(?:model inference|invokemodel)\s+"
    r"(?P<kind>requests|tokens)\s+per\s+minute\s+for\s+(?P<model>.+?)\s*$",
    re.IGNORECASE,
)
_VENDOR = re.compile(r"^(amazon|anthropic|meta|mistral|cohere|ai21|deepseek|openai|qwen)\s+", re.IGNORECASE)
_VERSION = re.compile(r"\s+v\d+(\.\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Quota:
    name: str
    value: float
    code: str | None = None

    @classmethod
    def from_response(cls, item: Mapping[str, Any]) -> Quota:
        return cls(str(item.get("QuotaName", "")), float(item.get("Value", 0.0)), item.get("QuotaCode"))


def _model_key(name: str) -> str:
    """``Amazon Nova Premier V1`` / ``Nova Premier`` → ``nova premier``."""
    return _VERSION.sub("", _VENDOR.sub("", " ".join(name.split()))).lower()


def find_model_quota(quotas: Iterable[Quota], model_name: str, *, kind: str, cross_region: bool) -> Quota | None:
    """The per-minute ``kind`` (requests/tokens) quota of ``model_name`` (``GetFoundationModel.modelName``, e.g.
    "Nova Pro"): the cross-Region one for an inference profile, else the on-demand one."""
    wanted = _model_key(model_name)
    preferred = ("cross-region", "global cross-region") if cross_region else ("on-demand",)
    matches: dict[str, Quota] = {}
    for quota in quotas:
        match = _MODEL_QUOTA.match(quota.name.strip())
        if match and match["kind"].lower() == kind and _model_key(match["model"]) == wanted:
            matches.setdefault(match["scope"].lower(), quota)
    return next((matches[scope] for scope in preferred if scope in matches), None)


def custom_model_deployment_quotas(quotas: Iterable[Quota]) -> list[Quota]:
    """Quotas on the *number* of on-demand custom model deployments (not their per-minute token rates)."""
    return [
        q
        for q in quotas
        if "custom model deployment" in q.name.lower()
        and "per minute" not in q.name.lower()
        and "per day" not in q.name.lower()
        and "tokens" not in q.name.lower()
    ]


def evaluation_job_quotas(quotas: Iterable[Quota]) -> list[Quota]:
    """Quotas on the *number* of (concurrent) model evaluation jobs: the LLM judge starts one per candidate and
    repeat at once. *Unconfirmed*: the quota's name is not documented; any "... evaluation jobs ..." quota that is
    a count (not a rate, a size or a number of prompts) matches, and the doctor shows the name it matched."""
    excluded = ("per minute", "per day", "tokens", "prompts", "records", "size", "datasets", "metrics", "human")
    return [
        q for q in quotas if "evaluation job" in q.name.lower() and not any(word in q.name.lower() for word in excluded)
    ]


@dataclass(frozen=True)
class LabelingProjection:
    """What the quotas do to a labeling plan of ``calls`` teacher calls with ``in_flight`` at a time."""

    calls: int
    in_flight: int
    demand_rpm: float
    rpm_quota: float | None
    tpm_quota: float | None
    tokens_per_call: float
    effective_rpm: float
    minutes: float
    quota_bound: bool
    max_in_flight: int | None  # the most calls in flight that stay within the quotas (None: unknown)


def project_labeling(
    *,
    calls: int,
    in_flight: int,
    tokens_per_call: float,
    rpm_quota: float | None,
    tpm_quota: float | None,
    call_seconds: float = TEACHER_CALL_SECONDS,
) -> LabelingProjection:
    """Projected labeling time: calls in flight send ``in_flight × 60 / call_seconds`` requests a minute, capped
    by the requests-per-minute quota and by the tokens-per-minute quota divided by the tokens of a call."""
    demand = in_flight * 60.0 / call_seconds
    caps = [c for c in (rpm_quota, (tpm_quota / tokens_per_call) if tpm_quota and tokens_per_call else None) if c]
    cap = min(caps) if caps else None
    effective = min(demand, cap) if cap is not None else demand
    minutes = calls / effective if effective > 0 else math.inf
    max_in_flight = max(1, math.floor(cap * call_seconds / 60.0)) if cap is not None else None
    return LabelingProjection(
        calls=calls,
        in_flight=in_flight,
        demand_rpm=demand,
        rpm_quota=rpm_quota,
        tpm_quota=tpm_quota,
        tokens_per_call=tokens_per_call,
        effective_rpm=effective,
        minutes=minutes,
        quota_bound=cap is not None and demand > cap,
        max_in_flight=max_in_flight,
    )
