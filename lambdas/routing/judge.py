"""The LLM-as-judge metric: its definition (instructions + 1-5 rating scale) and its result parsing.

The instructions use Bedrock's template variables ``{{prompt}}``, ``{{prediction}}`` and
``{{ground_truth}}``; the ground truth is the teacher's weights. The scale is the reference rubric.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

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


def _score_of(record: Any) -> float | None:
    result = (record or {}).get("automatedEvaluationResult") if isinstance(record, dict) else None
    for score in (result or {}).get("scores", []) or []:
        if isinstance(score, dict) and score.get("metricName") == JUDGE_METRIC:
            value = score.get("result")
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
    return None


def parse_judge_scores(lines: Iterable[str]) -> list[float]:
    """``OverallQuality`` scores on the 1-5 scale from the job's ``*_output.jsonl`` lines.

    Bedrock's exact output format for custom metrics is not confirmed: a result above 1 is read as the
    rating itself; when every result lies in [0, 1] and at least one is strictly below 1, results are read
    as normalized (0 → 1, 1 → 5). All results exactly 1.0 stay 1.0 (the conservative reading: a gate never
    passes on an ambiguous score). Unparseable lines are skipped.
    """
    raw: list[float] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            value = _score_of(json.loads(line))
        except ValueError:
            continue
        if value is not None:
            raw.append(value)
    if raw and all(0.0 <= v <= 1.0 for v in raw) and any(v < 1.0 for v in raw):
        return [1.0 + 4.0 * v for v in raw]
    return raw
