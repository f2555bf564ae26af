"""The queries a run labels: the user's first, then synthetic ones, ``n_total`` in all when possible."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Final

from search_router.pipeline.queries.query import Query, normalize_query
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import ChannelSet

DEFAULT_MAX_USER_SHARE: Final = 0.5


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
    """
    if n_total < 0:
        raise ValueError(f"n_total must be >= 0, got {n_total}")
    if not 0.0 <= max_user_share <= 1.0:
        raise ValueError(f"max_user_share must be within 0..1, got {max_user_share}")
    unique: list[Query] = []
    seen: set[str] = set()
    for query in user or ():
        key = normalize_query(query.text)
        if key and key not in seen:
            seen.add(key)
            unique.append(query)
    rng = random.Random(f"plan:{seed}")  # noqa: S311 - reproducible sampling, not security

    def sample(items: list[Query], k: int) -> list[Query]:
        if k >= len(items):
            return list(items)
        keep = sorted(rng.sample(range(len(items)), k))
        return [items[index] for index in keep]

    if not mix_user and len(unique) >= n_total:
        return sample(unique, n_total)
    user_quota = len(unique) if not mix_user else min(len(unique), math.floor(n_total * max_user_share))
    chosen = sample(unique, user_quota)
    n_synthetic = n_total - len(chosen)
    synthetic = synthesize_queries(
        channels,
        n_synthetic,
        seed=seed,
        mix=mix,
        exclude={normalize_query(q.text) for q in unique},
        reserved=min(unseen_heldout, n_synthetic),
    )
    if mix_user and len(chosen) + len(synthetic) < n_total and len(unique) > len(chosen):
        # The synthesizer ran short: use more of the user's queries rather than fewer queries in all.
        chosen_keys = {normalize_query(q.text) for q in chosen}
        extra = [q for q in unique if normalize_query(q.text) not in chosen_keys]
        chosen += extra[: n_total - len(chosen) - len(synthetic)]
    return chosen + synthetic
