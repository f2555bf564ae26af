"""Reads what :mod:`search_router.pipeline.model_checks` judges: the Bedrock catalog of one Region, as seen by this
account.

One adapter, two callers: the pipeline's Preflight (with the function's role) and ``python -m cli doctor`` (with
the operator's credentials). Every answer is cached for the life of the object, so a model that plays several
roles (Nova Micro as student and router) is read once.

Calls: ``GetInferenceProfile`` (profile ids), ``GetFoundationModel`` (lifecycle), ``GetFoundationModelAvailability``
(model access) and one ``ListFoundationModels(byCustomizationType="DISTILLATION")`` per Region. Throttling and
other transient errors propagate as the ``ClientError`` they are (the caller retries); "does not exist" and
"access denied" become facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_router.adapters.aws_errors import TRANSIENT_CODES, ClientError, error_code, error_message
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.names import DISTILLED
from search_router.pipeline.model_checks import (
    STUDENT_SIDE,
    Availability,
    ModelFacts,
    Requirement,
    TeacherChoice,
    Verdict,
    judge_model,
    select_teacher,
)
from search_router.shared.model_ids import AUTO_TEACHER, base_model_id, foundation_model_id, is_inference_profile_id

_MISSING_CODES = frozenset({"ResourceNotFoundException", "ValidationException"})


def _described(exc: ClientError) -> str:
    return f"{error_code(exc)}: {error_message(exc)}"


class BedrockCatalog:
    """Facts about models in ``region`` through ``client`` (a ``bedrock`` control-plane client)."""

    def __init__(self, client: Any, region: str) -> None:
        self._client = client
        self.region = region
        self._facts: dict[str, ModelFacts] = {}
        self._distillation: list[dict[str, Any]] | None = None

    def distillation_models(self) -> list[dict[str, Any]]:
        """The Region's model summaries usable in distillation (``ListFoundationModels``, cached)."""
        if self._distillation is None:
            response = self._client.list_foundation_models(byCustomizationType="DISTILLATION")
            self._distillation = list(response.get("modelSummaries", []))
        return self._distillation

    def distillation_ids(self) -> list[str]:
        return [str(m["modelId"]) for m in self.distillation_models()]

    def facts(self, model_id: str) -> ModelFacts:
        if model_id not in self._facts:
            self._facts[model_id] = self._read(model_id)
        return self._facts[model_id]

    # ------------------------------------------------------------------------------------------------------
    def _read(self, model_id: str) -> ModelFacts:
        values: dict[str, Any] = {}
        try:
            if is_inference_profile_id(model_id):
                profile, values["describe_error"] = self._ask(
                    self._client.get_inference_profile, inferenceProfileIdentifier=model_id
                )
                if profile is not None:
                    values["profile_status"] = str(profile.get("status", "UNKNOWN"))
            found, error = self._ask(self._client.get_foundation_model, modelIdentifier=foundation_model_id(model_id))
            values["describe_error"] = values.get("describe_error") or error
            if found is not None:
                details = found["modelDetails"]
                values["lifecycle"] = str((details.get("modelLifecycle") or {}).get("status", "UNKNOWN"))
                values["model_name"] = details.get("modelName")
        except _Missing as missing:
            return ModelFacts(model_id, self.region, exists=False, missing_detail=str(missing))
        try:
            availability, values["availability_error"] = self._ask(
                self._client.get_foundation_model_availability, modelId=base_model_id(model_id)
            )
        except _Missing as missing:  # no availability for a model that exists: access cannot be told
            availability, values["availability_error"] = None, str(missing)
        if availability is not None:
            values["availability"] = Availability.from_response(availability)
        family = base_model_id(model_id)
        values["distillation_ids"] = tuple(i for i in self.distillation_ids() if base_model_id(i) == family)
        return ModelFacts(model_id, self.region, **values)

    @staticmethod
    def _ask(operation: Any, **params: Any) -> tuple[dict[str, Any] | None, str | None]:
        """(response, None), or (None, what refused it); "does not exist" raises :class:`_Missing`, and a transient
        error is re-raised as it is (the caller retries)."""
        try:
            return operation(**params), None
        except ClientError as exc:
            if error_code(exc) in TRANSIENT_CODES:
                raise
            if error_code(exc) in _MISSING_CODES:
                raise _Missing(_described(exc)) from None
            return None, _described(exc)


class _Missing(Exception):
    """The model (or its profile) does not exist in the Region."""


@dataclass(frozen=True)
class ModelPlan:
    """The models a run and the router use, as configured (``MODELS`` / ``cdk.json``) and requested."""

    teacher: str  # "auto" or an id
    teacher_preference: tuple[str, ...]
    distillation_pairs: Mapping[str, Sequence[str]]
    student_job: str
    student: str
    baseline: str
    judge: str | None  # None: the run does not use the judge
    candidates: tuple[str, ...] = ()  # evaluation candidates' models other than the run's own deployment
    router: tuple[str, ...] = ()  # the router's default model and fallback chain


DISTILLED_CANDIDATE = DISTILLED  # the evaluation candidate that is the run's own deployment (eval_candidates)


def plan_from_environment(environ: Mapping[str, str], *, teacher: str, judge: bool) -> ModelPlan:
    """The models of a deployed stack, from the pipeline functions' environment (:class:`PipelineEnvironment`),
    with a run's teacher and judge settings.
    Preflight reads its own environment; the doctor reads the deployed Preflight function's."""

    def read(name: str) -> Any:
        return PipelineEnvironment.read(environ, name)

    models = read("models")
    return ModelPlan(
        teacher=teacher,
        teacher_preference=tuple(read("teacher_preference")),
        distillation_pairs={k: tuple(v) for k, v in read("distillation_pairs").items()},
        student_job=models["student_job"],
        student=models["student"],
        baseline=models["baseline"],
        judge=models["judge"] if judge else None,
        candidates=tuple(c["model"] for c in read("candidates") if c["model"] != DISTILLED_CANDIDATE),
        router=tuple(models.get("router", ())),
    )


@dataclass(frozen=True)
class Readiness:
    """Every verdict for one :class:`ModelPlan`: ``blocking`` stop a run; ``router`` ones degrade the router."""

    teacher: TeacherChoice
    verdicts: tuple[Verdict, ...]
    router: tuple[Verdict, ...]
    region: str

    @property
    def blocking(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.usable]

    def failure_message(self) -> str | None:
        """Why a run cannot start here (every problem, each with its fix), or None."""
        problems = [] if self.teacher.model_id else [self.teacher.failure_message()]
        problems += [v.message(self.region) for v in self.blocking]
        return " | ".join(problems) or None


def assess_models(catalog: BedrockCatalog, plan: ModelPlan) -> Readiness:
    """Check every model of ``plan`` (Preflight and ``cli doctor`` both call this)."""
    teacher_facts = {
        m: catalog.facts(m) for m in (plan.teacher_preference if plan.teacher == AUTO_TEACHER else (plan.teacher,))
    }
    choice = select_teacher(
        plan.teacher,
        plan.teacher_preference,
        teacher_facts,
        student_job_model_id=plan.student_job,
        pairs=plan.distillation_pairs,
        region=catalog.region,
        distillation_listed=catalog.distillation_ids(),
    )
    requirements = [
        Requirement("student (customization base)", plan.student_job, "student_job_model_id", STUDENT_SIDE),
        Requirement("student (inference)", plan.student, "student_model_id"),
        Requirement("baseline router", plan.baseline, "baseline_model_id"),
    ]
    if plan.judge is not None:
        requirements.append(Requirement("judge", plan.judge, "judge_model_id"))
    named = {r.model_id for r in requirements}
    requirements += [
        Requirement("evaluation candidate", m, "eval_candidates")
        for m in dict.fromkeys(plan.candidates)
        if m not in named
    ]
    verdicts = tuple(judge_model(r, catalog.facts(r.model_id)) for r in requirements)
    router = tuple(
        judge_model(
            Requirement(
                "router default" if index == 0 else "router fallback",
                model_id,
                "router_default_model_id" if index == 0 else "router_fallback_models",
            ),
            catalog.facts(model_id),
        )
        for index, model_id in enumerate(plan.router)
        if not model_id.startswith("arn:")
    )
    return Readiness(choice, verdicts, router, catalog.region)
