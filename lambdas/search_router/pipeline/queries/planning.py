"""The queries a run labels: the user's first, then synthetic ones, ``n_total`` in all when possible."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Final

from search_router.pipeline.queries.query import PRODUCTION, Query, normalize_query
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import ChannelSet

DEFAULT_MAX_USER_SHARE: Final = 0.5
MAX_JUDGED_HELDOUT: Final = 999
"""Held-out queries one judge job can score: its 1,000 prompts less the calibration record."""
PRODUCTION_CATEGORY: Final = "production"


def production_limit(eval_examples: int) -> int:
    """How many production queries a run can hold out next to ``eval_examples``: the judge job scores them all."""
    return max(0, MAX_JUDGED_HELDOUT - eval_examples)


def as_production(queries: Sequence[Query], limit: int) -> tuple[list[Query], int]:
    """The first ``limit`` distinct ``queries`` (by :func:`normalize_query`) as production queries (source and
    category ``"production"``: held out, never trained on), and how many distinct ones were over the limit."""
    unique = _unique(queries)
    held = [Query(text=q.text, category=PRODUCTION_CATEGORY, source=PRODUCTION) for q in unique[:limit]]
    return held, max(0, len(unique) - limit)


def _unique(queries: Sequence[Query] | None) -> list[Query]:
    unique: list[Query] = []
    seen: set[str] = set()
    for query in queries or ():
        key = normalize_query(query.text)
        if key and key not in seen:
            seen.add(key)
            unique.append(query)
    return unique


def unseen_template_queries(n_heldout: int, share: float) -> int:
    """How many held-out queries come from templates never used in training (the run's
    ``heldout_unseen_template_share`` of ``eval_examples``)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the unseen-template share must be within 0..1, got {share}")
    return round(n_heldout * share)


def plan_queries(
    channels: ChannelSet,
    *,
    n_total: int,
    seed: int,
    user: Sequence[Query] | None,
    mix_user: bool,
    mix: Mapping[str, float] | None = None,
    max_user_share: float = DEFAULT_MAX_USER_SHARE,
    unseen_heldout: int = 0,
    production: Sequence[Query] = (),
) -> list[Query]:
    """The queries to label: the user's first, then synthetic ones, ``n_total`` in all when possible.

    * No user queries: ``n_total`` synthetic queries.
    * ``mix_user=False``: only the user's queries when they are enough (a seeded sample of ``n_total`` of them,
      in file order, if there are more); otherwise all of them topped up with synthetic queries.
    * ``mix_user=True``: the user's queries fill at most ``max_user_share`` of ``n_total`` (a seeded sample
      if there are more; all of them if the synthesizer cannot fill the rest); synthetic queries fill the rest.

    User queries are de-duplicated by :func:`normalize_query` and synthetic ones never repeat them. When not
    enough queries exist the result is shorter than ``n_total``: the caller reports the shortfall.
    ``unseen_heldout`` of the synthetic queries (at most) come from the templates reserved for the
    template-disjoint held-out set (:func:`~search_router.pipeline.queries.synthesis.heldout_templates`).
    ``production`` queries (:func:`as_production`) come first, beyond ``n_total``; no user or synthetic query
    repeats one of them (a user's query that does is left out), so none of them is ever trained on.
    """
    if n_total < 0:
        raise ValueError(f"n_total must be >= 0, got {n_total}")
    if not 0.0 <= max_user_share <= 1.0:
        raise ValueError(f"max_user_share must be within 0..1, got {max_user_share}")
    held = _unique(production)
    held_keys = {normalize_query(q.text) for q in held}
    unique = [q for q in _unique(user) if normalize_query(q.text) not in held_keys]
    rng = random.Random(f"plan:{seed}")  # noqa: S311 - reproducible sampling, not security

    def sample(items: list[Query], k: int) -> list[Query]:
        if k >= len(items):
            return list(items)
        keep = sorted(rng.sample(range(len(items)), k))
        return [items[index] for index in keep]

    if not mix_user and len(unique) >= n_total:
        return held + sample(unique, n_total)
    user_quota = len(unique) if not mix_user else min(len(unique), math.floor(n_total * max_user_share))
    chosen = sample(unique, user_quota)
    n_synthetic = n_total - len(chosen)
    synthetic = synthesize_queries(
        channels,
        n_synthetic,
        seed=seed,
        mix=mix,
        exclude={normalize_query(q.text) for q in unique} | held_keys,
        reserved=min(unseen_heldout, n_synthetic),
    )
    if mix_user and len(chosen) + len(synthetic) < n_total and len(unique) > len(chosen):
        # The synthesizer ran short: use more of the user's queries rather than fewer queries in all.
        chosen_keys = {normalize_query(q.text) for q in chosen}
        extra = [q for q in unique if normalize_query(q.text) not in chosen_keys]
        chosen += extra[: n_total - len(chosen) - len(synthetic)]
    return held + chosen + synthetic
