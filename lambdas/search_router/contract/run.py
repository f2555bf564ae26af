"""A pipeline run: its validated settings, its identity and where its objects live.

The state machine carries ``{"run": RunState}`` from task to task. ``RunSettings`` is the execution input
merged over the defaults the stack was deployed with (``PIPELINE_DEFAULTS``), so ``{}`` is a valid input.

``RunSettings`` is the one definition of the run's settings: their names, types and bounds. Their default values
are in one place too, ``cdk.json``'s ``run_defaults`` block (keyed by these field names), which the CDK app
validates with this very model at synth (``infra/config.py``) and Preflight validates again with the input.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search_router.contract.errors import InvalidRunInput
from search_router.contract.layout import RunLayout
from search_router.contract.tags import run_tags
from search_router.pipeline.fusion import ScoreShape
from search_router.pipeline.report import teacher_text
from search_router.shared.model_ids import AUTO_TEACHER, MODEL_ID_PATTERN

MAX_JUDGE_REPEATS = 3
MAX_SHADOW_QUERIES = 1_000
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


class RunSettings(BaseModel):
    """What a run does. Every field can be overridden in the execution input; the defaults are cdk.json's
    ``run_defaults`` (so no field has a default here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_examples: int = Field(ge=100, le=15_000, description="training examples to produce")
    eval_examples: int = Field(
        ge=10, le=999, description="held-out examples, never trained on (a judge job holds them + 1 calibration)"
    )
    heldout_unseen_template_share: float = Field(
        ge=0.0,
        le=0.5,
        description="share of the held-out examples drawn from synthesizer templates never used in training "
        "(the template-disjoint split; the rest of those templates' examples are withheld from training)",
    )
    queries_s3_uri: str | None = Field(description="your own queries (txt, jsonl or csv) in S3")
    mix_user_queries: bool = Field(description="top up your queries with synthesized ones")
    production_heldout_s3_uri: str | None = Field(
        description="production queries (txt, jsonl or csv) in S3 to label and hold out in split 'production', "
        "beyond eval_examples, never trained on (a scheduled retraining run's sample of captured traffic)"
    )
    teacher_model_id: str = Field(description="'auto' (first usable of teacher_preference) or a teacher id")
    poll_seconds: int = Field(ge=0, le=3_600, description="wait between distillation status checks")
    deployment_poll_seconds: int = Field(ge=0, le=3_600)
    concurrency: int = Field(ge=1, le=40, description="shards labeled in parallel (Map MaxConcurrency)")
    threads: int = Field(ge=1, le=64, description="teacher calls in flight per shard")
    evaluation_concurrency: int = Field(
        ge=1, le=6, description="candidates evaluated in parallel (evaluation Map MaxConcurrency)"
    )
    shard_size: int = Field(ge=10, le=5_000)
    seed: int = Field(ge=0, le=2**31 - 1)
    max_distillation_hours: int = Field(ge=1, le=168)
    judge: bool = Field(description="run the LLM-as-judge evaluation jobs")
    # A default, unlike the others: the run state of an execution started before the setting existed stays valid.
    judge_repeats: int = Field(
        default=1,
        ge=1,
        le=MAX_JUDGE_REPEATS,
        description="judge jobs per candidate (each judges every held-out answer again): the spread of their scores "
        "says how much the judge varies; each repeat costs as much as the first and takes one more concurrent "
        "evaluation job",
    )
    micro_router: bool = Field(
        default=True, description="train the micro-router (TrainMicroRouter) after PrepareDataset"
    )
    # The settings added after the first release have a default here too, equal to cdk.json's: the state of an
    # execution started before them still validates when it is redriven.
    router_cascade: Literal["auto", "off"] = Field(
        default="auto",
        description="'auto': the promotion lets the micro-router answer the queries it is confident about (at the "
        "run's τ) when the cascade passes the quality gate too; 'off': every query goes to the model",
    )
    cascade_margin: float = Field(
        default=0.1,
        ge=0.0,
        le=4.0,
        description="τ is the lowest threshold at which the cascade's rubric mean on the hardest held-out split is "
        "at most this far below the distilled model's own there (1-5 scale)",
    )
    fusion_shape: dict[str, Any] = Field(
        default_factory=lambda: ScoreShape().to_dict(),
        description="how the fusion-impact metric draws each held-out query's per-channel score lists: documents, "
        "list_length, overlap (0..1), distribution (normal, uniform, exponential), correlation (0..1)",
    )
    fusion_scores_s3_uri: str | None = Field(
        default=None,
        description="your own score samples (JSON lines, one search's per-channel lists each) under inputs/; "
        "each held-out query is given one of them instead of drawn lists",
    )
    labeling_mode: Literal["on_demand", "batch"] = Field(
        default="on_demand",
        description="'on_demand': the teacher labels through Converse calls, shard by shard (minutes to hours); "
        "'batch': through one Bedrock batch inference job, at about half the price, which can queue for hours "
        "(at least 100 queries)",
    )
    throttle_budget_seconds: int = Field(
        ge=1,
        le=840,
        description="a labeling shard stops after the teacher has answered nothing (only throttling) this long; "
        "keep it well above one teacher call",
    )
    keep_failed_artifacts: bool = Field(
        description="when the run fails, times out or is aborted, keep its jobs, custom model and deployment "
        "(to inspect them or redrive past distillation) instead of stopping and deleting them",
    )
    max_failed_shards_percent: int = Field(
        ge=0,
        le=100,
        description="labeling shards that may still fail after their retries (percent of all shards) before the "
        "run fails; their queries are counted as unlabeled (shard_failed)",
    )

    shadow_max_queries: int = Field(
        default=200,
        ge=1,
        le=MAX_SHADOW_QUERIES,
        description="at most this many of the run's production held-out queries are replayed against the model in "
        "service (ShadowReplay; a sample seeded by 'seed' when there are more)",
    )

    reasoning_share: float = Field(
        ge=0.0,
        le=1.0,
        description="share of the training examples given the weights-and-reasoning student prompt (the rest get the "
        "weights-only prompt the router sends by default); seeded by 'seed'",
    )

    @field_validator("teacher_model_id")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if value.strip().lower() == AUTO_TEACHER:
            return AUTO_TEACHER
        if not MODEL_ID_PATTERN.match(value):
            raise ValueError(
                "must be 'auto' or a Bedrock model or inference-profile id such as 'us.amazon.nova-pro-v1:0'"
            )
        return value

    @field_validator("fusion_shape")
    @classmethod
    def _fusion_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        known = {item.name for item in fields(ScoreShape)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return ScoreShape(**value).to_dict()  # ValueError names a bad value

    @field_validator("queries_s3_uri", "production_heldout_s3_uri", "fusion_scores_s3_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _S3_URI.match(value):
            raise ValueError("must be an S3 object URI such as s3://bucket/inputs/queries.txt")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> RunSettings:
        if self.eval_examples >= self.num_examples:
            raise ValueError("eval_examples must be smaller than num_examples")
        return self

    @property
    def total_queries(self) -> int:
        return self.num_examples + self.eval_examples


def settings_from_input(defaults: dict[str, Any], overrides: Any) -> RunSettings:
    """Merge the execution input over the defaults and validate; errors name each bad field."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise InvalidRunInput(f"the execution input must be a JSON object such as {{}}, got {type(overrides).__name__}")
    unknown = sorted(set(overrides) - set(RunSettings.model_fields))
    if unknown:
        raise InvalidRunInput(
            f"unknown input field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(RunSettings.model_fields))}"
        )
    try:
        return RunSettings.model_validate({**defaults, **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise InvalidRunInput(f"invalid execution input: {problems}") from None


class RunTeacher(BaseModel):
    """The teacher Preflight chose for the run: ``requested`` is the setting (``auto`` or an id), ``refused`` the
    preferred teachers that were checked first and could not be used, with the reason."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model_id: str
    requested: str
    refused: list[dict[str, str]] = Field(default_factory=list)

    @property
    def automatic(self) -> bool:
        return self.requested == AUTO_TEACHER

    def describe(self) -> str:
        """``us.amazon.nova-pro-v1:0 (chosen automatically ...; us.amazon.nova-premier-v1:0 refused: ...)``."""
        return teacher_text(self.model_dump())


class RunState(BaseModel):
    """Identity and settings of a run, passed to every task."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str
    execution_arn: str
    started_at: str
    settings: RunSettings
    candidates: list[dict[str, str]] = Field(default_factory=list)
    teacher: RunTeacher | None = None

    @property
    def teacher_model_id(self) -> str:
        """The teacher every task uses: Preflight's choice (``settings.teacher_model_id`` may be ``auto``)."""
        if self.teacher is not None:
            return self.teacher.model_id
        if self.settings.teacher_model_id == AUTO_TEACHER:
            raise RuntimeError("the run state carries no resolved teacher; it must come from Preflight")
        return self.settings.teacher_model_id

    @property
    def layout(self) -> RunLayout:
        """Where this run's objects live (``contract/layout.py``)."""
        return RunLayout(self.run_id)

    @property
    def run_prefix(self) -> str:
        return self.layout.run_prefix

    @property
    def tmp_prefix(self) -> str:
        return self.layout.tmp_prefix

    def token(self, purpose: str) -> str:
        """An idempotency token stable for this execution (a redrive reuses it), unique per purpose."""
        digest = hashlib.sha256(f"{self.execution_arn}|{purpose}".encode()).hexdigest()
        return f"{purpose[:20]}-{digest[:40]}".strip("-")

    def tags(self, stack_name: str) -> dict[str, str]:
        return run_tags(stack_name, self.run_id)


def run_id_from_execution(execution_name: str) -> str:
    """A run id usable in S3 keys and Bedrock names: letters, digits and single hyphens, ≤ 40 characters."""
    cleaned = _SEPARATORS.sub("-", execution_name).strip("-")
    if len(cleaned) > 40 or not cleaned:
        digest = hashlib.sha256(execution_name.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:31].strip('-')}-{digest}".strip("-")
    return cleaned


def bedrock_name(*parts: str, max_len: int = 63) -> str:
    """A name valid for jobs, custom models and deployments: ``([0-9a-zA-Z][_-]?){1,63}``.

    Letters and digits joined by single hyphens; shortened with a hash suffix when too long.
    """
    joined = "-".join(_SEPARATORS.sub("-", p).strip("-") for p in parts if p)
    joined = re.sub(r"-+", "-", joined).strip("-")
    if len(joined) <= max_len:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:8]
    return f"{joined[: max_len - 9].rstrip('-')}-{digest}"


def evaluation_job_name(*parts: str) -> str:
    """Evaluation job names must match ``[a-z0-9](-*[a-z0-9]){0,62}`` (lower case)."""
    return bedrock_name(*parts).lower()


def next_wait_seconds(base: int, elapsed_s: float, *, cap: int) -> int:
    """Seconds to wait before the next status check: the run's poll interval, growing with the time already
    waited (a tenth of it, up to ``cap``). Keeps every Wait/Check loop to a few hundred iterations however long
    the job runs and however short the interval, far below Step Functions' 25,000-event history limit."""
    return max(base, min(cap, int(max(0.0, elapsed_s) / 10)))


def hours_since(moment: Any) -> float:
    """Hours from ``moment`` (a Bedrock ``createdAt`` or ``creationTime``; a naive one is UTC) until now; 0 when
    it is not a datetime (the response had none)."""
    if not isinstance(moment, datetime):
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (datetime.now(UTC) - moment).total_seconds() / 3600.0
