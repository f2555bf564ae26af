"""What a weight error does to search results: overlap@10 of the fused rankings under two sets of weights.

The downstream search asks every channel's index for a scored list of documents and fuses them
(:func:`fuse`):

- a channel whose weight is below :data:`WEIGHT_FLOOR` (0.05, with 1e-9 of float tolerance) is skipped; if that
  would skip every channel, none is skipped (the search still answers, with the weights as given);
- each kept channel's scores are min-max normalized (:func:`min_max`): ``(s - min) / (max - min)``; a constant
  list (one document, or all scores equal) normalizes to 1.0 for every listed document;
- a document's fused score is the weighted mean ``sum(w_c * s_c) / sum(w_c)`` over the kept channels, where a
  document absent from a channel's list scores 0 there (it was not retrieved);
- the ranking covers the documents of the kept channels' lists, by fused score (rounded to 12 decimals so that
  float noise does not break a tie), ties broken by document id (ascending).

:func:`query_impact` compares the top ``k`` (10) under the candidate's weights with the top ``k`` under the
teacher's on the same lists: ``overlap = |both| / max(|top_a|, |top_b|)`` and ``changed`` = the number of the
candidate's top results not in the teacher's. :func:`fusion_impact` aggregates over the held-out queries: the mean
overlap@k with a bootstrap interval (:func:`search_router.pipeline.stats.bootstrap_mean`) and the share of
queries whose top-k changes by more than ``changed_threshold`` (3) results, with its interval.

The score lists come from a source (:data:`ScoreSource`): :func:`drawn_lists`, seeded per query from the query's
text (so a query gets the same lists whatever the order of the queries and whichever candidate is compared) in a
configurable :class:`ScoreShape`; or :func:`given_lists`, the user's own score samples. Pure standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeAlias

from search_router.pipeline.metrics import QueryResult
from search_router.pipeline.stats import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, Interval, bootstrap_mean

WEIGHT_FLOOR = 0.05
"""The downstream search skips a channel whose weight is below this."""
DEFAULT_K = 10
DEFAULT_CHANGED_THRESHOLD = 3
"""A query's top-k has *changed* when more than this many of its results differ."""
_FLOOR_TOLERANCE = 1e-9
_TIE_DECIMALS = 12

ScoreList: TypeAlias = Mapping[str, float]
"""One channel's retrieved documents: document id -> score (any scale; higher is better)."""
ScoreLists: TypeAlias = Mapping[str, ScoreList]
"""Per channel name, that channel's score list."""
ScoreSource: TypeAlias = Callable[[str], ScoreLists]
"""Gives the score lists of a query (by its text)."""
Distribution: TypeAlias = Literal["normal", "uniform", "exponential"]


# ---------------------------------------------------------------------------------------------------------
# Fusion
# ---------------------------------------------------------------------------------------------------------
def min_max(scores: ScoreList) -> dict[str, float]:
    """``(s - min) / (max - min)`` per document; every document 1.0 when all scores are equal; ``{}`` for none."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    span = high - low
    return {doc: (score - low) / span for doc, score in scores.items()}


def kept_channels(weights: Mapping[str, float], *, floor: float = WEIGHT_FLOOR) -> tuple[str, ...]:
    """The channels the search uses: weight >= ``floor`` (in ``weights``' order), or all if none is."""
    kept = tuple(name for name, weight in weights.items() if weight >= floor - _FLOOR_TOLERANCE)
    return kept or tuple(weights)


def fuse(lists: ScoreLists, weights: Mapping[str, float], *, floor: float = WEIGHT_FLOOR) -> list[tuple[str, float]]:
    """The fused ranking, best first: ``(document id, fused score)`` (see the module docstring).

    ``ValueError`` when the weights and the lists name different channels, a weight or a score is not a finite
    number, a weight is negative, or the kept channels' weights sum to 0.
    """
    checked = _check_weights(weights, lists)
    for name, scores in lists.items():
        _check_scores(scores, name)  # a skipped channel's list too: bad input is named, not passed over
    channels = kept_channels(checked, floor=floor)
    total = math.fsum(checked[name] for name in channels)
    if total <= 0:
        raise ValueError("the weights of the channels the search would use sum to 0: nothing to rank by")
    normalized = {name: min_max(lists[name]) for name in channels}
    documents = sorted({doc for name in channels for doc in normalized[name]})
    fused = [
        (doc, math.fsum(checked[name] * normalized[name].get(doc, 0.0) for name in channels) / total)
        for doc in documents
    ]
    fused.sort(key=lambda item: (-round(item[1], _TIE_DECIMALS), item[0]))
    return fused


def top_k(lists: ScoreLists, weights: Mapping[str, float], *, k: int = DEFAULT_K) -> tuple[str, ...]:
    """The ids of the first ``k`` documents of :func:`fuse`'s ranking (fewer if fewer were retrieved)."""
    return tuple(doc for doc, _ in fuse(lists, weights)[:k])


def _check_weights(weights: Mapping[str, float], lists: ScoreLists) -> dict[str, float]:
    if set(weights) != set(lists):
        raise ValueError(
            f"the weights name channels {sorted(weights)} but the score lists {sorted(lists)}: they must be the same"
        )
    checked: dict[str, float] = {}
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of channel {name!r} must be a finite number >= 0, got {weight!r}")
        checked[name] = float(weight)
    return checked


def _check_scores(scores: ScoreList, channel: str) -> None:
    if not isinstance(scores, Mapping):
        raise ValueError(f"the score list of channel {channel!r} must map document ids to scores")
    for doc, score in scores.items():
        if not isinstance(doc, str):
            raise ValueError(f"channel {channel!r}: document ids must be strings, got {doc!r}")
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise ValueError(f"channel {channel!r}: score of document {doc!r} must be a finite number, got {score!r}")


# ---------------------------------------------------------------------------------------------------------
# Score lists: drawn or given
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreShape:
    """How :func:`drawn_lists` draws a query's score lists.

    ``documents``: the corpus the channels retrieve from (ids ``d0000``...). ``list_length``: documents per
    channel (at least ``k``). ``overlap`` (0..1): the share of each list that is a core of documents common to
    every channel; the rest of each list is drawn independently from the other documents (and may coincide by
    chance). ``distribution`` of the scores: ``normal`` (standard normal), ``uniform`` (0..1) or ``exponential``
    (rate 1: a few high scores, a long tail). ``correlation`` (0..1): a document's score in a channel is
    ``c * common + sqrt(1 - c^2) * own``, ``common`` drawn once per document and ``own`` per channel and document,
    so that the channels agree on which documents are good to that degree.
    """

    documents: int = 200
    list_length: int = 50
    overlap: float = 0.3
    distribution: Distribution = "normal"
    correlation: float = 0.0

    def __post_init__(self) -> None:
        for name in ("documents", "list_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"score shape {name} must be a whole number >= 1, got {value!r}")
        if self.list_length > self.documents:
            raise ValueError(
                f"score shape list_length ({self.list_length}) must not exceed documents ({self.documents})"
            )
        for name in ("overlap", "correlation"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"score shape {name} must be a number in 0..1, got {value!r}")
        if self.distribution not in ("normal", "uniform", "exponential"):
            raise ValueError(
                f"score shape distribution must be normal, uniform or exponential, got {self.distribution!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def query_seed(seed: int, query: str) -> int:
    """The seed of one query's lists: the first 8 bytes of ``sha256("<seed>\\0<query>")`` (stable across
    processes and Python versions, unlike ``hash``)."""
    digest = hashlib.sha256(f"{seed}\0{query}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw_lists(query: str, channels: Sequence[str], shape: ScoreShape, *, seed: int = DEFAULT_SEED) -> ScoreLists:
    """One query's score lists per channel, drawn from ``random.Random(query_seed(seed, query))``."""
    rng = random.Random(query_seed(seed, query))  # noqa: S311 - reproducible draws, not security
    width = len(str(shape.documents - 1))
    corpus = [f"d{i:0{max(4, width)}d}" for i in range(shape.documents)]
    core_size = round(shape.overlap * shape.list_length)
    core = rng.sample(corpus, core_size)
    rest = sorted(set(corpus) - set(core))
    common = {doc: _draw(rng, shape.distribution) for doc in corpus}
    own_share = math.sqrt(1.0 - shape.correlation**2)
    lists: dict[str, dict[str, float]] = {}
    for name in channels:
        docs = core + rng.sample(rest, shape.list_length - core_size)
        lists[name] = {
            doc: shape.correlation * common[doc] + own_share * _draw(rng, shape.distribution) for doc in docs
        }
    return lists


def _draw(rng: random.Random, distribution: Distribution) -> float:
    if distribution == "normal":
        return rng.gauss(0.0, 1.0)
    if distribution == "uniform":
        return rng.random()
    return rng.expovariate(1.0)


def drawn_lists(channels: Sequence[str], shape: ScoreShape | None = None, *, seed: int = DEFAULT_SEED) -> ScoreSource:
    """A :data:`ScoreSource` drawing every query's lists with :func:`draw_lists`."""
    names = tuple(channels)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"channels must be a non-empty list of unique names, got {list(names)}")
    chosen = shape or ScoreShape()

    def source(query: str) -> ScoreLists:
        return draw_lists(query, names, chosen, seed=seed)

    return source


def parse_score_samples(text: str, channels: Sequence[str]) -> list[ScoreLists]:
    """The user's score samples (``fusion_scores_s3_uri``): JSON lines, each one search's lists
    ``{"<channel>": {"<document id>": score, ...}, ...}`` with every channel, at least one document each and
    finite scores. ``ValueError`` names the first bad line and what is wrong; blank lines are skipped."""
    samples: list[ScoreLists] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"score samples line {number}: not valid JSON ({exc})") from None
        if not isinstance(item, dict):
            raise ValueError(f"score samples line {number}: expected an object of channel score lists")
        missing = [name for name in channels if name not in item]
        if missing:
            raise ValueError(f"score samples line {number}: no list for channel(s) {', '.join(missing)}")
        lists: dict[str, dict[str, float]] = {}
        for name in channels:
            scores = item[name]
            if not isinstance(scores, dict) or not scores:
                raise ValueError(f"score samples line {number}: {name!r} must be a non-empty object doc -> score")
            try:
                _check_scores(scores, name)
            except ValueError as exc:
                raise ValueError(f"score samples line {number}: {exc}") from None
            lists[name] = {str(doc): float(score) for doc, score in scores.items()}
        samples.append(lists)
    if not samples:
        raise ValueError("the score samples file holds no sample")
    return samples


def sampled_lists(samples: Sequence[ScoreLists], *, seed: int = DEFAULT_SEED) -> ScoreSource:
    """A :data:`ScoreSource` giving each query one of the user's ``samples`` (real searches' lists, from
    :func:`parse_score_samples`), chosen by :func:`query_seed`: the same for every candidate and every run with
    this seed, whatever the order of the queries."""
    if not samples:
        raise ValueError("at least one score sample is needed")
    pool = list(samples)

    def source(query: str) -> ScoreLists:
        return pool[query_seed(seed, query) % len(pool)]

    return source


def given_lists(lists_by_query: Mapping[str, ScoreLists]) -> ScoreSource:
    """A :data:`ScoreSource` of the user's own score samples, by query text. A query without lists is an
    error naming it (never a silent draw)."""

    def source(query: str) -> ScoreLists:
        try:
            return lists_by_query[query]
        except KeyError:
            raise ValueError(f"no score lists were given for query {query!r}") from None

    return source


# ---------------------------------------------------------------------------------------------------------
# Per query and aggregate
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueryImpact:
    """One query: the top ``k`` under the candidate's and the teacher's weights, their overlap and how many of
    the candidate's results are not in the teacher's (``changed``)."""

    query: str
    candidate_top: tuple[str, ...]
    teacher_top: tuple[str, ...]
    overlap: float
    changed: int


def query_impact(
    query: str,
    lists: ScoreLists,
    candidate: Mapping[str, float],
    teacher: Mapping[str, float],
    *,
    k: int = DEFAULT_K,
) -> QueryImpact:
    """Overlap@k of the candidate's and the teacher's fused top-k on the same lists (``ValueError`` when no
    document was retrieved under either)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    mine = top_k(lists, candidate, k=k)
    theirs = top_k(lists, teacher, k=k)
    size = max(len(mine), len(theirs))
    if size == 0:
        raise ValueError(f"query {query!r}: the score lists hold no document")
    shared = len(set(mine) & set(theirs))
    return QueryImpact(
        query=query, candidate_top=mine, teacher_top=theirs, overlap=shared / size, changed=size - shared
    )


@dataclass(frozen=True)
class FusionItem:
    """One held-out query: the candidate's weights (None when it gave none) and the teacher's reference."""

    query: str
    candidate: Mapping[str, float] | None
    teacher: Mapping[str, float]


@dataclass(frozen=True)
class FusionImpact:
    """The fusion-impact metric of one candidate over the held-out queries.

    ``mean_overlap``: bootstrap interval of the mean overlap@k; ``share_changed``: of the share of queries whose
    top-k changed by more than ``changed_threshold`` results. ``n`` queries in all; ``without_weights`` had no
    candidate weights: with ``unanswered_weights`` given they were ranked with those (``substituted``), otherwise
    they are excluded and counted in the intervals' ``missing``.
    """

    k: int
    changed_threshold: int
    n: int
    without_weights: int
    substituted: bool
    mean_overlap: Interval
    share_changed: Interval
    queries: tuple[QueryImpact | None, ...]
    """Per query, in input order (None for an excluded query)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "changed_threshold": self.changed_threshold,
            "n": self.n,
            "without_weights": self.without_weights,
            "substituted": self.substituted,
            "mean_overlap": self.mean_overlap.to_dict(),
            "share_changed": self.share_changed.to_dict(),
        }


def fusion_impact(
    items: Iterable[FusionItem],
    source: ScoreSource,
    *,
    k: int = DEFAULT_K,
    changed_threshold: int = DEFAULT_CHANGED_THRESHOLD,
    unanswered_weights: Mapping[str, float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> FusionImpact:
    """The fusion impact of one candidate (see :class:`FusionImpact`); ``source`` gives each query's lists.

    ``unanswered_weights`` are the weights the search would use for a query the candidate gave none for (the
    router's default weights); without them such a query is excluded and counted, never dropped silently.
    """
    if isinstance(changed_threshold, bool) or not isinstance(changed_threshold, int) or changed_threshold < 0:
        raise ValueError(f"changed_threshold must be a whole number >= 0, got {changed_threshold!r}")
    impacts: list[QueryImpact | None] = []
    without = 0
    for item in items:
        weights = item.candidate
        if weights is None:
            without += 1
            weights = unanswered_weights
        if weights is None:
            impacts.append(None)
            continue
        impacts.append(query_impact(item.query, source(item.query), weights, item.teacher, k=k))
    overlaps = [None if i is None else i.overlap for i in impacts]
    changed = [None if i is None else float(i.changed > changed_threshold) for i in impacts]
    return FusionImpact(
        k=k,
        changed_threshold=changed_threshold,
        n=len(impacts),
        without_weights=without,
        substituted=unanswered_weights is not None and without > 0,
        mean_overlap=bootstrap_mean(overlaps, resamples=resamples, confidence=confidence, seed=seed),
        share_changed=bootstrap_mean(changed, resamples=resamples, confidence=confidence, seed=seed),
        queries=tuple(impacts),
    )


def items_from_results(results: Iterable[QueryResult]) -> list[FusionItem]:
    """A candidate's evaluation results as fusion items: its weights when it answered and they parsed (None
    otherwise), against the teacher's reference weights."""
    return [
        FusionItem(query=r.query, candidate=r.weights if r.answered else None, teacher=r.reference) for r in results
    ]
