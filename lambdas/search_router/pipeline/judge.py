"""The LLM-as-judge metric: its definition (instructions + 1-5 rating scale), its result parsing, and the
report's reading of the judge step (:func:`read_judge`).

The instructions use Bedrock's template variables ``{{prompt}}``, ``{{prediction}}`` and
``{{ground_truth}}``; the ground truth is the teacher's weights. The scale is the reference rubric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from search_router.pipeline.analysis import per_query_values, query_keys
from search_router.pipeline.metrics import Channels, QueryResult

JUDGE_METRIC = "OverallQuality"
JUDGE_PROMPT_PREFIX: Final = "Route this video search query to the search channels: "
"""The judged prompt of a held-out query is this followed by the query (:func:`judge_prompt`)."""
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


def judge_prompt(query: str) -> str:
    """The ``prompt`` of a query's judge-dataset line: the key its rating is read back by."""
    return f"{JUDGE_PROMPT_PREFIX}{query}"


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
    by_prompt: Mapping[str, float] = field(default_factory=dict)
    """The ratings (1-5) by judged prompt (:func:`prompt_keys`: ``prompt #2`` for a second record with the same
    prompt), calibration excluded; records without a prompt or a score are not in it."""


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


def _prompt_of(record: Mapping[str, Any]) -> str | None:
    for source in (record.get("inputRecord"), record):
        if isinstance(source, Mapping) and isinstance(source.get("prompt"), str):
            return str(source["prompt"])
    return None


def prompt_keys(prompts: Iterable[str]) -> list[str]:
    """One key per prompt: the prompt, ``prompt #2`` for its second occurrence, ... (as ``analysis.query_keys``
    keys the results, so the nth record of a repeated query meets the nth result)."""
    seen: dict[str, int] = {}
    keys = []
    for prompt in prompts:
        seen[prompt] = seen.get(prompt, 0) + 1
        keys.append(prompt if seen[prompt] == 1 else f"{prompt} #{seen[prompt]}")
    return keys


def _by_prompt(rated: list[tuple[str | None, float | None]], scale: str) -> dict[str, float]:
    named = [(prompt, value) for prompt, value in rated if prompt is not None]
    keys = prompt_keys(prompt for prompt, _ in named)
    return {key: _to_rating(value, scale) for key, (_, value) in zip(keys, named, strict=True) if value is not None}


def parse_judge_scores(lines: Iterable[str]) -> JudgeScores:
    """Read a job's ``*_output.jsonl`` lines: the ``OverallQuality`` ratings of the held-out records on 1-5.

    The scale is decided from the results themselves: a value above 1 can only be a raw rating, a value below 1
    only a normalized score; when every value is exactly 1.0, the calibration record decides (it is rated the
    lowest, so its presence at 1.0 means raw ratings). With no calibration result either, the scale is ambiguous
    and no score is given (never "all worst" for what may be "all perfect"). Unparseable lines are skipped.
    """
    values: list[float | None] = []
    prompts: list[str | None] = []
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
            prompts.append(_prompt_of(record))
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
    return JudgeScores(
        [_to_rating(v, scale) for v in present],
        len(values),
        scale,
        calibration,
        by_prompt=_by_prompt(list(zip(prompts, values, strict=True)), scale),
    )


# What the judge step left, as the report reads it. Its state (``{"jobs": [{"candidate", "status", "score", "reason",
# "job_arn", "repeat"?, "output_keys"?}]}``, or ``{"error": {"Error", "Cause"}}`` when the step failed and the state
# machine caught it) becomes one ``{"score", "status", "reason"}`` per candidate, over its repeats (``judge_repeats``).
JUDGE_OFF: Final = {"score": None, "status": "skipped", "reason": "judge off"}
MAX_FAILURE_CHARS: Final = 300
ANY_CANDIDATE: Final = "*"
DISAGREEMENT_POINTS: Final = 2.0
"""A query where the judge's rating and the rubric differ by this much (1-5 scale) counts as a disagreement."""
MIN_RANK_PAIRS: Final = 3


@dataclass(frozen=True)
class JudgeRun:
    """One judge job of a candidate, as the report reads it: ``ok`` with a score, or ``missing`` with a reason."""

    repeat: int
    status: str
    score: float | None
    reason: str | None
    output_keys: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.status == "ok" and self.score is not None


@dataclass(frozen=True)
class JudgeReadout:
    """The judge's verdict per candidate (:data:`ANY_CANDIDATE` when one verdict stands for every candidate), its
    runs per candidate (one per repeat, in repeat order), and the judge jobs still running (the poll loop broke off:
    they bill until stopped)."""

    by_candidate: Mapping[str, Mapping[str, Any]]
    unfinished: list[str]
    runs: Mapping[str, Sequence[JudgeRun]] = field(default_factory=dict)

    def for_candidate(self, name: str) -> dict[str, Any]:
        """``{"score", "status", "reason"}`` of ``name``: its own, the one for every candidate, or "judge off"."""
        return dict(self.by_candidate.get(name) or self.by_candidate.get(ANY_CANDIDATE) or JUDGE_OFF)


def _run(job: Mapping[str, Any], step_reason: str | None) -> JudgeRun:
    repeat = int(job.get("repeat") or 1)
    if job["status"] == "InProgress":  # the poll loop broke off: no score
        return JudgeRun(repeat, "missing", None, step_reason or "judge unfinished")
    score = job.get("score")
    return JudgeRun(
        repeat,
        job["status"],
        None if score is None else float(score),
        job.get("reason"),
        tuple(job.get("output_keys") or ()),
    )


def _verdict(runs: Sequence[JudgeRun]) -> dict[str, Any]:
    """One candidate's verdict over its repeats: the mean score of the usable ones; the repeats without a score
    named, with their reasons (the verdict of a single run is that run's)."""
    if len(runs) == 1:
        (run,) = runs
        return {"score": run.score, "status": run.status, "reason": run.reason}
    usable = [run for run in runs if run.usable]
    lost = "; ".join(f"repeat {run.repeat}: {run.reason or 'no score'}" for run in runs if not run.usable)
    if not usable:
        return {"score": None, "status": "missing", "reason": f"no repeat of the judge gave a score ({lost})"}
    score = math.fsum(run.score or 0.0 for run in usable) / len(usable)
    if len(usable) == len(runs):
        return {"score": score, "status": "ok", "reason": None}
    used = ", ".join(str(run.repeat) for run in usable)
    reason = f"{len(runs) - len(usable)} of {len(runs)} judge repeats gave no score ({lost}); the score is the mean "
    reason += f"of repeat(s) {used}"
    return {"score": score, "status": "ok", "reason": reason}


def read_judge(judge: Mapping[str, Any] | None, *, enabled: bool) -> JudgeReadout:
    """The report's reading of the judge step's state ``judge`` (None: the step did not run) for a run whose judge
    is ``enabled``: a candidate without a usable score is ``missing`` with the reason (the step's failure, an
    unfinished job, or the job's own reason); with repeats, its score is the mean of its usable repeats."""
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
    runs: dict[str, list[JudgeRun]] = {}
    for job in jobs:
        runs.setdefault(job["candidate"], []).append(_run(job, reason))
    for candidate_runs in runs.values():
        candidate_runs.sort(key=lambda run: run.repeat)
    return JudgeReadout({name: _verdict(r) for name, r in runs.items()}, unfinished, runs)


# ---------------------------------------------------------------------------------------------------------------
# The judge's reliability: its repeats' spread, and its agreement with the deterministic rubric, per query
# ---------------------------------------------------------------------------------------------------------------
def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span (``[1, 1, 2]`` → 1.5, 1.5, 3)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired ``xs`` and ``ys`` (the Pearson correlation of their average ranks);
    None with fewer than :data:`MIN_RANK_PAIRS` pairs or when either side has no variance."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs paired values, got {len(xs)} and {len(ys)}")
    if len(xs) < MIN_RANK_PAIRS:
        return None
    rx, ry = average_ranks(xs), average_ranks(ys)
    mx, my = math.fsum(rx) / len(rx), math.fsum(ry) / len(ry)
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx, syy = math.fsum((a - mx) ** 2 for a in rx), math.fsum((b - my) ** 2 for b in ry)
    if sxx == 0.0 or syy == 0.0:
        return None
    return sxy / math.sqrt(sxx * syy)


@dataclass(frozen=True)
class JudgeRatings:
    """What the report knows of one candidate's judge: the score of each repeat (None where it gave none), the
    per-query ratings of the repeats it could read (:attr:`JudgeScores.by_prompt`), and why any are missing."""

    scores: Sequence[float | None]
    ratings: Sequence[Mapping[str, float]]
    reason: str | None = None


def per_query_judge(ratings: Sequence[Mapping[str, float]], results: Sequence[QueryResult]) -> list[float | None]:
    """The judge's rating of each result (mean over the repeats that rated it), in ``results`` order."""
    values: list[float | None] = []
    for key in query_keys(results):
        rated = [repeat[judge_prompt(key)] for repeat in ratings if judge_prompt(key) in repeat]
        values.append(math.fsum(rated) / len(rated) if rated else None)
    return values


def _reliability(judged: JudgeRatings, results: Sequence[QueryResult], channels: Channels) -> dict[str, Any]:
    usable = [score for score in judged.scores if score is not None]
    judge = per_query_judge(judged.ratings, results)
    rubric = per_query_values(results, channels)["rubric_mean"]
    pairs = [(j, r) for j, r in zip(judge, rubric, strict=True) if j is not None and r is not None]
    entry: dict[str, Any] = {
        "repeats": len(judged.scores),
        "scores": list(judged.scores),
        "spread": max(usable) - min(usable) if len(usable) > 1 else None,
        "rank_correlation": spearman([j for j, _ in pairs], [r for _, r in pairs]) if pairs else None,
        "disagreement_share": (
            sum(1 for j, r in pairs if abs(j - r) >= DISAGREEMENT_POINTS - _EPSILON) / len(pairs) if pairs else None
        ),
        "paired_queries": len(pairs),
    }
    if judged.reason:
        entry["reason"] = judged.reason
    return entry


def judge_reliability(
    judged: Mapping[str, JudgeRatings], results: Mapping[str, Sequence[QueryResult]], channels: Channels
) -> dict[str, dict[str, Any]]:
    """Per candidate: ``repeats`` (judge runs), ``scores`` (one per repeat, None where it gave none), ``spread``
    (max − min of the scores; None for one), ``rank_correlation`` (Spearman between the per-query judge rating,
    the mean over repeats, and the per-query rubric; ties by average rank; None with fewer than 3 pairs or no
    variance), ``disagreement_share`` (share of the paired queries where the two differ by 2 points or more),
    ``paired_queries``, and ``reason`` when some ratings could not be read. Queries pair by the judged prompt."""
    return {name: _reliability(entry, results[name], channels) for name, entry in judged.items()}


class JudgeOutputUnreadable(Exception):
    """A judge job's result object could not be read (the message says which and why)."""


def judge_ratings(runs: Sequence[JudgeRun], read: Callable[[str], str]) -> JudgeRatings:
    """One candidate's :class:`JudgeRatings` from its runs: each usable run's per-query ratings, read from its
    output keys with ``read`` (a key → the object's text; raises :class:`JudgeOutputUnreadable`). A run whose
    ratings cannot be read, or a repeat without a score, is named in ``reason``; it never raises."""
    ratings: list[Mapping[str, float]] = []
    problems: list[str] = []
    for run in runs:
        if not run.usable:
            problems.append(f"repeat {run.repeat} gave no score ({run.reason or 'no reason given'})")
            continue
        if not run.output_keys:
            problems.append(f"repeat {run.repeat}: the judge state names no result objects to read ratings from")
            continue
        try:
            lines = [line for key in run.output_keys for line in read(key).splitlines()]
        except JudgeOutputUnreadable as exc:
            problems.append(f"repeat {run.repeat}: its results could not be read ({exc})")
            continue
        parsed = parse_judge_scores(lines)
        if parsed.problem or not parsed.by_prompt:
            problem = parsed.problem or "no rating names its judged prompt"
            problems.append(f"repeat {run.repeat}: no per-query ratings ({problem})")
            continue
        ratings.append(parsed.by_prompt)
    return JudgeRatings(
        scores=[run.score if run.usable else None for run in runs],
        ratings=ratings,
        reason="; ".join(problems) or None,
    )
