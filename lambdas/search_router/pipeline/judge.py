"""The LLM-as-judge metric: its definition (instructions + 1-5 rating scale), its result parsing, and the
report's reading of the judge step (:func:`read_judge`).

The instructions use Bedrock's template variables ``{{prompt}}``, ``{{prediction}}`` and
``{{ground_truth}}``; the ground truth is the teacher's weights. The scale is the reference rubric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

JUDGE_METRIC = "OverallQuality"
MAX_INSTRUCTIONS = 5000
MAX_DEFINITION = 100

RATING_SCALE: tuple[tuple[float, str], ...] = (
    (5.0, "Every weight within 0.05 of the reference and specific, correct reasoning"),
    (4.0, "Every weight within 0.10 of the reference"),
    (3.0, "Dominant channel right and mean weight error below 0.15"),
    (2.0, "Dominant channel wrong or mean weight error above 0.15"),
    (1.0, "Unparseable, channels missing, or mean weight error above 0.30"),
)

INSTRUCTIONS = """You are grading a search-intent router. For a video search query it must answer with one JSON
object giving a weight in [0, 1] for every search channel (the weights sum to 1), followed by a short
"reasoning" string. The reference answer comes from a strong teacher model and holds the correct weights.

Query:
{{prompt}}

Router answer:
{{prediction}}

Reference weights:
{{ground_truth}}

Compare the router's weights with the reference channel by channel. Compute the absolute error of each
channel and their mean. Identify the dominant (highest-weight) channel in both. Then judge the reasoning:
it should name the concrete cues in the query that justify the weights.

Rate with exactly one of these:
5 - every weight is within 0.05 of the reference and the reasoning is specific and correct;
4 - every weight is within 0.10 of the reference;
3 - the dominant channel matches and the mean absolute error is below 0.15;
2 - the dominant channel differs, or the mean absolute error is above 0.15;
1 - the answer is not parseable JSON, misses channels, or the mean absolute error is above 0.30.
"""


def judge_custom_metric() -> dict[str, Any]:
    """The ``customMetrics`` entry of ``CreateEvaluationJob``."""
    if len(INSTRUCTIONS) > MAX_INSTRUCTIONS or any(len(d) > MAX_DEFINITION for _, d in RATING_SCALE):
        raise ValueError("the judge metric exceeds Bedrock's limits")
    return {
        "customMetricDefinition": {
            "name": JUDGE_METRIC,
            "instructions": INSTRUCTIONS,
            "ratingScale": [{"definition": d, "value": {"floatValue": v}} for v, d in RATING_SCALE],
        }
    }


# One calibration record rides along in every judge job: an answer that is not JSON at all, which the rubric rates 1
# (the lowest). Its result says how Bedrock reports custom-metric scores, which is not documented: 1.0 → the raw
# rating (1..5); 0.0 → normalized (0..1). Without it, a job whose every result is 1.0 could mean "all perfect"
# (normalized) or "all worst" (raw). It is excluded from the candidate's score.
CALIBRATION_CATEGORY = "calibration-unparseable"
CALIBRATION_QUERY = "calibration record (not a held-out query)"
CALIBRATION_RESPONSE = "I am sorry, I cannot help with that."
# A judge that rates the unparseable answer this high (on the 1-5 scale) is not following the rubric.
CALIBRATION_MAX_RATING = 2.0
SCALE_RATING = "rating"  # results are the rating itself (1..5)
SCALE_NORMALIZED = "normalized"  # results are (rating - 1) / 4 (0..1)
_EPSILON = 1e-6


def calibration_record(prompt: str, reference: str, model_identifier: str) -> dict[str, Any]:
    """The judge-dataset line of the calibration record (same shape as the held-out lines)."""
    return {
        "prompt": prompt,
        "referenceResponse": reference,
        "category": CALIBRATION_CATEGORY,
        "modelResponses": [{"response": CALIBRATION_RESPONSE, "modelIdentifier": model_identifier}],
    }


@dataclass(frozen=True)
class JudgeScores:
    """The candidate's ``OverallQuality`` ratings on the 1-5 scale. ``problem`` is set (and ``ratings`` empty)
    when the results cannot be trusted: an undeterminable scale, or a judge that failed the calibration."""

    ratings: list[float]
    records: int  # judged held-out records (calibration excluded), with or without a score
    scale: str | None
    calibration: float | None  # the calibration record's rating on the 1-5 scale, when present
    problem: str | None = None


def _score_of(record: Any) -> float | None:
    result = (record or {}).get("automatedEvaluationResult") if isinstance(record, dict) else None
    for score in (result or {}).get("scores", []) or []:
        if isinstance(score, dict) and score.get("metricName") == JUDGE_METRIC:
            value = score.get("result")
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
    return None


def _is_calibration(record: Mapping[str, Any]) -> bool:
    """By its category or by its prompt, in the echoed input record or at the top level (which of them Bedrock
    copies into its output is not documented)."""
    for source in (record.get("inputRecord"), record):
        if isinstance(source, Mapping) and (
            source.get("category") == CALIBRATION_CATEGORY or CALIBRATION_QUERY in str(source.get("prompt") or "")
        ):
            return True
    return False


def _to_rating(value: float, scale: str) -> float:
    return 1.0 + 4.0 * value if scale == SCALE_NORMALIZED else value


def parse_judge_scores(lines: Iterable[str]) -> JudgeScores:
    """Read a job's ``*_output.jsonl`` lines: the ``OverallQuality`` ratings of the held-out records on 1-5.

    The scale is decided from the results themselves: a value above 1 can only be a raw rating, a value below 1
    only a normalized score; when every value is exactly 1.0, the calibration record decides (it is rated the
    lowest, so its presence at 1.0 means raw ratings). With no calibration result either, the scale is ambiguous
    and no score is given (never "all worst" for what may be "all perfect"). Unparseable lines are skipped.
    """
    values: list[float | None] = []
    calibration_raw: float | None = None
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if _is_calibration(record):
            calibration_raw = _score_of(record)
        else:
            values.append(_score_of(record))
    present = [v for v in values if v is not None]
    every = [*present, *([calibration_raw] if calibration_raw is not None else [])]
    scale: str | None = None
    if any(v > 1.0 + _EPSILON for v in every):
        scale = SCALE_RATING
    elif any(v < 1.0 - _EPSILON for v in every):
        scale = SCALE_NORMALIZED
    elif calibration_raw is not None:
        scale = SCALE_RATING  # the lowest-rated record is at 1.0 too: these are raw ratings
    if scale is None:
        return JudgeScores(
            [],
            len(values),
            None,
            None,
            "every result is 1.0 and the calibration result is missing: "
            "the score scale (raw or normalized) cannot be told, so no score is given",
        )
    calibration = _to_rating(calibration_raw, scale) if calibration_raw is not None else None
    if calibration is not None and calibration > CALIBRATION_MAX_RATING + _EPSILON:
        return JudgeScores(
            [],
            len(values),
            scale,
            calibration,
            f"the judge rated an answer that is not JSON at all {calibration:.1f} of 5 (the rubric says 1): it is not "
            "following the rubric, so its scores are not used",
        )
    return JudgeScores([_to_rating(v, scale) for v in present], len(values), scale, calibration)


# What the judge step left, as the report reads it. Its state (``{"jobs": [{"candidate", "status", "score", "reason",
# "job_arn"}]}``, or ``{"error": {"Error", "Cause"}}`` when the step failed and the state machine caught it) becomes
# one ``{"score", "status", "reason"}`` per candidate.
JUDGE_OFF: Final = {"score": None, "status": "skipped", "reason": "judge off"}
MAX_FAILURE_CHARS: Final = 300
ANY_CANDIDATE: Final = "*"


@dataclass(frozen=True)
class JudgeReadout:
    """The judge's verdict per candidate (:data:`ANY_CANDIDATE` when one verdict stands for every candidate) and
    the judge jobs still running (the poll loop broke off: they bill until stopped)."""

    by_candidate: Mapping[str, Mapping[str, Any]]
    unfinished: list[str]

    def for_candidate(self, name: str) -> dict[str, Any]:
        """``{"score", "status", "reason"}`` of ``name``: its own, the one for every candidate, or "judge off"."""
        return dict(self.by_candidate.get(name) or self.by_candidate.get(ANY_CANDIDATE) or JUDGE_OFF)


def read_judge(judge: Mapping[str, Any] | None, *, enabled: bool) -> JudgeReadout:
    """The report's reading of the judge step's state ``judge`` (None: the step did not run) for a run whose judge
    is ``enabled``: a candidate without a usable score is ``missing`` with the reason (the step's failure, an
    unfinished job, or the job's own reason)."""
    jobs = list((judge or {}).get("jobs", []))
    unfinished = [str(job["job_arn"]) for job in jobs if job["status"] == "InProgress"]
    if not enabled:
        return JudgeReadout({}, unfinished)
    error = (judge or {}).get("error")
    reason = None
    if error:
        reason = f"the judge step failed: {str(error.get('Cause') or error.get('Error'))[:MAX_FAILURE_CHARS]}"
    if judge is None or "jobs" not in judge:
        missing = {"score": None, "status": "missing", "reason": reason or "the judge step did not run"}
        return JudgeReadout({ANY_CANDIDATE: missing}, unfinished)
    judged: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job["status"] == "InProgress":  # the poll loop broke off: no score
            judged[job["candidate"]] = {"score": None, "status": "missing", "reason": reason or "judge unfinished"}
        else:
            judged[job["candidate"]] = {"score": job.get("score"), "status": job["status"], "reason": job.get("reason")}
    return JudgeReadout(judged, unfinished)
