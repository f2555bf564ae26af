"""Shadow evaluation on production traffic: the run's production held-out queries (split ``production``, a
scheduled run's sample of captured traffic, labeled by the teacher and never trained on), answered by the
candidate the gate judges and by the model in service, both against the teacher's labels and against each other.

- :func:`production_sample`: which held-out records ShadowReplay replays (every production one, or a seeded
  sample of ``limit``);
- :func:`figures`: n, valid-JSON rate, MAE and dominant-channel agreement with the teacher
  (:func:`~search_router.pipeline.metrics.compute_metrics`' definitions);
- :func:`agreement`: the candidate against the model in service on the same queries (paired by text): the share
  of queries where both gave usable weights with the same dominant channel, and the mean absolute weight
  difference over those queries;
- :func:`production_traffic`: the report's "Production traffic" section.

Pure standard library.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Final

from search_router.pipeline.analysis import query_keys
from search_router.pipeline.dataset import PRODUCTION_SPLIT
from search_router.pipeline.metrics import Channels, QueryResult, abs_errors, channel_names, compute_metrics
from search_router.pipeline.metrics import dominant_channel as dominant

FIGURES: Final = ("n", "valid_json_rate", "mae_overall", "dominant_accuracy")
"""What the section gives of each model against the teacher (``compute_metrics`` keys)."""
SHADOW_OK: Final = "ok"
SHADOW_SKIPPED: Final = "skipped"
SHADOW_FAILED: Final = "failed"
NO_PRODUCTION_QUERIES: Final = "the run has no production held-out queries (split production)"


def production_sample(items: Sequence[Mapping[str, Any]], *, limit: int, seed: int) -> tuple[list[Any], int]:
    """The held-out records of split ``production`` to replay, in file order, and how many there are: all of
    them up to ``limit``, else a sample of ``limit`` seeded by ``seed`` (the same run replays the same ones)."""
    if limit < 1:
        raise ValueError(f"the shadow replay's limit must be at least 1, got {limit}")
    production = [item for item in items if item.get("split") == PRODUCTION_SPLIT]
    if len(production) <= limit:
        return list(production), len(production)
    rng = random.Random(f"shadow:{seed}")  # noqa: S311 - reproducible sampling, not security
    chosen = set(rng.sample(range(len(production)), limit))
    return [item for index, item in enumerate(production) if index in chosen], len(production)


def production_results(results: Sequence[QueryResult]) -> list[QueryResult]:
    """The results of split ``production``."""
    return [result for result in results if result.split == PRODUCTION_SPLIT]


def figures(results: Sequence[QueryResult], channels: Channels) -> dict[str, Any]:
    """:data:`FIGURES` of ``results`` against their references (the teacher's labels)."""
    metrics = compute_metrics(results, channels, price=None)
    return {key: metrics[key] for key in FIGURES}


def _usable(result: QueryResult, names: Sequence[str]) -> dict[str, float] | None:
    weights = result.weights if result.answered else None
    return weights if weights is not None and all(name in weights for name in names) else None


def agreement(candidate: Sequence[QueryResult], service: Sequence[QueryResult], channels: Channels) -> dict[str, Any]:
    """The candidate against the model in service on the queries both answered (paired by text, the n-th
    occurrence with the n-th): ``paired`` queries, ``compared`` (both gave weights for every channel),
    ``dominant_agreement`` (share of ``compared`` with the same dominant channel) and
    ``mean_abs_weight_difference`` (mean over ``compared`` of the mean over channels of ``|candidate -
    service|``); None when nothing could be compared."""
    names = channel_names(channels)
    theirs = dict(zip(query_keys(service), service, strict=True))
    pairs = [(mine, theirs[key]) for key, mine in zip(query_keys(candidate), candidate, strict=True) if key in theirs]
    compared = [
        (a, b) for a, b in ((_usable(x, names), _usable(y, names)) for x, y in pairs) if a is not None and b is not None
    ]
    same = sum(dominant(a, names) == dominant(b, names) for a, b in compared)
    differences = [math.fsum(abs_errors(a, b, names).values()) / len(names) for a, b in compared]
    return {
        "paired": len(pairs),
        "compared": len(compared),
        "dominant_agreement": same / len(compared) if compared else None,
        "mean_abs_weight_difference": math.fsum(differences) / len(differences) if differences else None,
    }


def judge_mean(values: Sequence[float | None]) -> tuple[float | None, int]:
    """The mean of the judge's ratings given (None when none) and how many there are."""
    rated = [value for value in values if value is not None]
    return (math.fsum(rated) / len(rated) if rated else None), len(rated)


def production_traffic(
    *,
    candidate: str,
    candidate_results: Sequence[QueryResult],
    shadow: Mapping[str, Any],
    service_results: Sequence[QueryResult] | None,
    channels: Channels,
    judge: Mapping[str, Any],
) -> dict[str, Any]:
    """The report's ``production`` section.

    ``candidate_results``: the gated candidate's results on split production (every production query);
    ``shadow``: what ShadowReplay did (``status`` ok, skipped or failed, with ``reason``, ``model_id``,
    ``prompt_kind``, ``promoted_run_id``, ``replayed``); ``service_results``: the model in service's answers
    (None unless the replay ran). The candidate's figures are over the replayed queries when there was a
    replay (the same queries as the model in service's), else over every production query. ``judge``: the
    candidate's judge rubric on split production (``rubric``, ``rated``, ``reason``)."""
    replayed = {key for key in query_keys(service_results)} if service_results is not None else None
    same_queries = (
        [r for key, r in zip(query_keys(candidate_results), candidate_results, strict=True) if key in replayed]
        if replayed is not None
        else list(candidate_results)
    )
    return {
        "candidate": candidate,
        "production_queries": len(candidate_results),
        "shadow": dict(shadow),
        "candidate_figures": figures(same_queries, channels),
        "service_figures": figures(service_results, channels) if service_results is not None else None,
        "agreement": agreement(same_queries, service_results, channels) if service_results is not None else None,
        "judge": dict(judge),
    }
