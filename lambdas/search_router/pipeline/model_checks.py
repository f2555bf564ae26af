"""Is a Bedrock model usable for its role here, and which teacher should a run use? Pure decisions over facts.

The facts (:class:`ModelFacts`) are read from Bedrock by an adapter (``common/bedrock_catalog.py``:
``GetInferenceProfile``, ``GetFoundationModel``, ``GetFoundationModelAvailability`` and
``ListFoundationModels(byCustomizationType="DISTILLATION")``); this module only judges them, so Preflight (in the
pipeline) and ``python -m cli doctor`` (on the operator's machine) apply exactly the same rules:

- the model (and its inference profile) exists in the Region and is ``ACTIVE`` — a ``LEGACY`` model is past or
  near its end of life and new customization jobs on it may be refused;
- model access is granted to the account (``authorizationStatus`` AUTHORIZED, entitlement and Region ``AVAILABLE``;
  necessary, not sufficient: a zero quota still refuses calls); an end-user agreement not yet in place is a
  warning (whether the first call accepts it is not documented);
- for distillation: the student's customization id is listed for ``DISTILLATION`` in the Region, and the pair
  (teacher family → student family) is one the Bedrock user guide documents (``distillation_pairs`` in
  ``cdk.json``); a teacher missing from that listing is a warning (teachers are named by on-demand ids there).

Teacher selection (:func:`select_teacher`) never freezes a model choice: with ``teacher_model_id: "auto"`` it takes
the first usable teacher of ``teacher_preference``; an explicit id is checked the same way. When nothing fits,
the message lists every candidate checked and why each was refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from search_router.shared.model_ids import AUTO_TEACHER, base_model_id, foundation_model_id, is_inference_profile_id

ACTIVE = "ACTIVE"
AVAILABLE = "AVAILABLE"
AUTHORIZED = "AUTHORIZED"

# What a run needs a model for. A requirement's ``distillation`` says which side of a distillation job it is.
STUDENT_SIDE = "student"
TEACHER_SIDE = "teacher"


@dataclass(frozen=True)
class Availability:
    """``GetFoundationModelAvailability`` of one model (is model access granted to this account?)."""

    agreement: str
    authorization: str
    entitlement: str
    region: str
    agreement_error: str | None = None

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> Availability:
        agreement = response.get("agreementAvailability") or {}
        return cls(
            agreement=str(agreement.get("status", "UNKNOWN")),
            agreement_error=agreement.get("errorMessage"),
            authorization=str(response.get("authorizationStatus", "UNKNOWN")),
            entitlement=str(response.get("entitlementAvailability", "UNKNOWN")),
            region=str(response.get("regionAvailability", "UNKNOWN")),
        )

    def problems(self) -> list[str]:
        """What refuses calls: access not authorized, no entitlement, not offered to the account here."""
        found = []
        if self.region != AVAILABLE:
            found.append(f"it is not available to this account in the Region (regionAvailability {self.region})")
        if self.authorization != AUTHORIZED:
            found.append(f"model access is not granted to this account (authorizationStatus {self.authorization})")
        if self.entitlement != AVAILABLE:
            found.append(f"the account has no entitlement to it (entitlementAvailability {self.entitlement})")
        return found

    def warnings(self) -> list[str]:
        """An agreement that is not in place yet. Whether it refuses the first call or is accepted by it (models
        sold through AWS Marketplace subscribe on first use) is not documented, so it is reported, not refused."""
        if self.agreement == AVAILABLE:
            return []
        detail = f": {self.agreement_error}" if self.agreement_error else ""
        return [
            f"its end-user agreement is {self.agreement}{detail} (the first call may accept it, or be refused until "
            "it is accepted in the Bedrock console)"
        ]


@dataclass(frozen=True)
class ModelFacts:
    """What Bedrock says about one model id in one Region. ``None`` means "not read" (with the reason in
    ``*_error``); a read that showed the model does not exist sets ``exists=False``."""

    model_id: str
    region: str
    exists: bool = True
    missing_detail: str | None = None
    profile_status: str | None = None  # set only for inference-profile ids
    lifecycle: str | None = None
    model_name: str | None = None  # e.g. "Nova Pro" (Service Quotas names use it)
    describe_error: str | None = None  # GetFoundationModel / GetInferenceProfile refused (e.g. AccessDenied)
    availability: Availability | None = None
    availability_error: str | None = None
    distillation_ids: tuple[str, ...] | None = None  # ids of this model family listed for DISTILLATION here


@dataclass(frozen=True)
class Requirement:
    """A model a run (or the router) needs, and the setting a user changes to fix it."""

    role: str
    model_id: str
    setting: str
    distillation: str | None = None  # STUDENT_SIDE or TEACHER_SIDE for the two ends of the distillation job


@dataclass(frozen=True)
class Verdict:
    """Whether a model can serve its role. ``problems`` block; ``warnings`` are what could not be verified."""

    requirement: Requirement
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    lifecycle: str | None = None

    @property
    def usable(self) -> bool:
        return not self.problems

    def reason(self) -> str:
        return "; ".join(self.problems) if self.problems else "usable"

    def message(self, region: str) -> str:
        """One sentence for a failure: what is wrong and what to change."""
        r = self.requirement
        return f"{r.role} model {r.model_id} cannot be used in {region}: {self.reason()}; {fix_for(self, region)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.requirement.role,
            "model_id": self.requirement.model_id,
            "usable": self.usable,
            "lifecycle": self.lifecycle,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def fix_for(verdict: Verdict, region: str) -> str:
    """The change that makes a refused model usable (or replaces it)."""
    r = verdict.requirement
    text = " ".join(verdict.problems)
    replace = f"change '{r.setting}' (execution input or cdk.json) to a model that is ACTIVE and enabled in {region}"
    if "model access" in text or "entitlement" in text:
        return (
            f"request or enable access to {foundation_model_id(r.model_id)} in the Amazon Bedrock console of "
            f"{region} (and check that no SCP or permission boundary denies it), or {replace}"
        )
    if "distillation_pairs" in text:
        return f"{replace}, or add the pair to 'distillation_pairs' in cdk.json once the Bedrock user guide lists it"
    return replace


def judge_model(
    requirement: Requirement,
    facts: ModelFacts,
    *,
    student_job_model_id: str | None = None,
    pairs: Mapping[str, Sequence[str]] | None = None,
) -> Verdict:
    """Apply every rule to one model's facts (see the module docstring)."""
    problems: list[str] = []
    warnings: list[str] = []
    region = facts.region
    if not facts.exists:
        detail = f" ({facts.missing_detail})" if facts.missing_detail else ""
        return Verdict(requirement, (f"it is not offered in {region}{detail}",))
    if facts.describe_error:
        problems.append(f"it cannot be described ({facts.describe_error})")
    if is_inference_profile_id(requirement.model_id) and facts.profile_status not in (None, ACTIVE):
        problems.append(f"its inference profile is {facts.profile_status}")
    if facts.lifecycle is not None and facts.lifecycle != ACTIVE:
        problems.append(
            f"it is {facts.lifecycle} in {region} (past or near its end of life: new customers and new "
            "customization jobs may be refused)"
        )
    if facts.availability is not None:
        problems += facts.availability.problems()
        warnings += facts.availability.warnings()
    elif facts.availability_error:
        warnings.append(f"model access could not be checked ({facts.availability_error})")
    listed_ids = facts.distillation_ids
    if requirement.distillation == STUDENT_SIDE and listed_ids is not None and requirement.model_id not in listed_ids:
        listed = ", ".join(listed_ids) or "no variant of it"
        problems.append(
            f"it is not offered for DISTILLATION in {region} (ListFoundationModels byCustomizationType="
            f"DISTILLATION lists {listed})"
        )
    if requirement.distillation == TEACHER_SIDE:
        # The user guide names teachers by their on-demand ids; whether ListFoundationModels lists them for
        # DISTILLATION is unconfirmed, so absence is reported, and the documented pairs decide.
        if facts.distillation_ids is not None and not facts.distillation_ids:
            warnings.append(f"it is not listed for DISTILLATION in {region}; its pairing comes from distillation_pairs")
        if student_job_model_id is not None and not is_paired(requirement.model_id, student_job_model_id, pairs):
            problems.append(
                f"distilling {base_model_id(student_job_model_id)} from it is not a documented pair "
                "(distillation_pairs)"
            )
    return Verdict(requirement, tuple(problems), tuple(warnings), facts.lifecycle)


def is_paired(teacher: str, student: str, pairs: Mapping[str, Sequence[str]] | None) -> bool:
    """Whether ``pairs`` (teacher family → student families) lists this teacher for this student."""
    students = (pairs or {}).get(base_model_id(teacher), ())
    return base_model_id(student) in {base_model_id(s) for s in students}


@dataclass(frozen=True)
class TeacherChoice:
    """The outcome of :func:`select_teacher`: the chosen id (None when nothing fits) and every verdict."""

    requested: str
    model_id: str | None
    considered: tuple[Verdict, ...]
    region: str
    not_in_preference: tuple[str, ...] = field(default=())

    @property
    def automatic(self) -> bool:
        return self.requested == AUTO_TEACHER

    def failure_message(self) -> str:
        checked = "; ".join(f"{v.requirement.model_id}: {v.reason()}" for v in self.considered)
        if self.automatic:
            return (
                f"no usable teacher for teacher_model_id 'auto' in {self.region}. Checked, in the order of "
                f"teacher_preference: {checked}. Grant model access to one of them in the Bedrock console, or add a "
                "usable teacher to 'teacher_preference' (and its pair to 'distillation_pairs') in cdk.json and redeploy"
            )
        verdict = self.considered[0] if self.considered else None
        if verdict is None:
            return f"teacher {self.requested} was not checked"
        return verdict.message(self.region)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "model_id": self.model_id,
            "automatic": self.automatic,
            "considered": [v.to_dict() for v in self.considered],
            "not_in_preference": list(self.not_in_preference),
        }


def teacher_not_allowed(requested: str, preference: Sequence[str]) -> str | None:
    """Why an explicitly requested teacher cannot be used at all (it is not one the stack may invoke), or None."""
    if requested == AUTO_TEACHER or requested in preference:
        return None
    return (
        f"it is not one this stack may invoke (teacher_preference: {', '.join(preference)}); add it to "
        "'teacher_preference' in cdk.json and redeploy, or use teacher_model_id 'auto'"
    )


def teacher_requirement(model_id: str) -> Requirement:
    return Requirement("teacher", model_id, "teacher_model_id", TEACHER_SIDE)


def select_teacher(
    requested: str,
    preference: Sequence[str],
    facts: Mapping[str, ModelFacts],
    *,
    student_job_model_id: str,
    pairs: Mapping[str, Sequence[str]],
    region: str,
    distillation_listed: Sequence[str] = (),
) -> TeacherChoice:
    """Choose the run's teacher.

    ``requested`` is ``"auto"`` (the first usable entry of ``preference``) or an explicit id, which must be one of
    ``preference`` (the stack's IAM grants invoke on those only) and pass the same checks. ``facts`` holds the
    facts of every entry that was read (a missing entry is reported, not assumed usable). ``distillation_listed``
    (the Region's ``DISTILLATION`` models) lets the choice report model families neither the preference list nor
    the pairs mention yet, so a newer teacher does not go unnoticed.
    """
    # Families whose role is known (the preferred teachers, the documented students) are not news.
    known = {base_model_id(m) for m in preference} | {base_model_id(student_job_model_id)}
    known |= {base_model_id(s) for students in pairs.values() for s in students}
    others = tuple(sorted({base_model_id(m) for m in distillation_listed} - known))
    refusal = teacher_not_allowed(requested, preference)
    if refusal is not None:
        return TeacherChoice(requested, None, (Verdict(teacher_requirement(requested), (refusal,)),), region, others)
    candidates = list(preference) if requested == AUTO_TEACHER else [requested]
    verdicts: list[Verdict] = []
    for model_id in candidates:
        model_facts = facts.get(model_id)
        if model_facts is None:
            verdicts.append(Verdict(teacher_requirement(model_id), ("it was not checked",)))
            continue
        verdict = judge_model(
            teacher_requirement(model_id), model_facts, student_job_model_id=student_job_model_id, pairs=pairs
        )
        verdicts.append(verdict)
        if verdict.usable:
            return TeacherChoice(requested, model_id, tuple(verdicts), region, others)
    return TeacherChoice(requested, None, tuple(verdicts), region, others)
