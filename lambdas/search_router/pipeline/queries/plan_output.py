"""What PlanQueries decided, as plain data: the planned queries split into shards, and the statistics it reports
(``runs/<run>/dataset/plan.json``): counts per category, the shortfall, and what became of the user's file.

Pure: the handler reads the user's file, calls :func:`~search_router.pipeline.queries.planning.plan_queries`,
and writes what this module shapes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from search_router.pipeline.queries.query import Query, normalize_query
from search_router.pipeline.queries.user_files import REJECTED_CONTROL_CHARACTERS, UserQueries

MAX_SHARDS: Final = 500
"""Keep the Map's item list (and so the state) small whatever the shard size asked for."""
MAX_USER_SAMPLES: Final = 10
"""Rejected lines of the user's file quoted in ``plan.json``."""


def shard_size_for(total: int, requested: int) -> int:
    """The requested shard size, or larger: never more than :data:`MAX_SHARDS` shards."""
    return max(requested, math.ceil(total / MAX_SHARDS))


def shard_document(queries: Sequence[Query]) -> dict[str, Any]:
    """One shard's file, as the label shard reads it (``template`` only on synthetic queries)."""
    return {"queries": [_query_item(q) for q in queries]}


def _query_item(query: Query) -> dict[str, Any]:
    item = {"text": query.text, "category": query.category, "source": query.source}
    if query.template is not None:
        item["template"] = query.template
    return item


@dataclass(frozen=True)
class UserFileStats:
    """What became of the lines of the user's query file (``queries_s3_uri``)."""

    uri: str
    parsed: UserQueries

    @property
    def rejected(self) -> int:
        """Lines not used: invalid or too long."""
        return self.parsed.invalid + self.parsed.too_long

    @property
    def control_character_lines(self) -> int:
        return self.parsed.rejected.get(REJECTED_CONTROL_CHARACTERS, 0)

    def to_dict(self) -> dict[str, Any]:
        """``plan.json``'s ``user_queries``: the file's counts and the first rejected lines."""
        return {
            "uri": self.uri,
            **self.parsed.to_stats(),
            "invalid_samples": self.parsed.invalid_samples[:MAX_USER_SAMPLES],
        }

    def log_fields(self) -> dict[str, Any]:
        """The counts without the samples (a sample quotes the user's text)."""
        return {k: v for k, v in self.to_dict().items() if k != "invalid_samples"}


@dataclass(frozen=True)
class ProductionFileStats:
    """What became of the production queries file (``production_heldout_s3_uri``): its lines (as a user file),
    the queries held out, those over the judge's limit, and the user's queries left out of training because they
    repeat a production query."""

    file: UserFileStats
    held: Sequence[Query]
    over_limit: int
    user_left_out: int

    @classmethod
    def of(cls, file: UserFileStats, held: Sequence[Query], over_limit: int, user: UserFileStats | None) -> Self:
        keys = {normalize_query(q.text) for q in held}
        user_keys = {normalize_query(q.text) for q in user.parsed.queries} if user is not None else set()
        left_out = len(user_keys & keys)  # distinct queries, as plan_queries de-duplicates them
        return cls(file, held, over_limit, left_out)

    def to_dict(self) -> dict[str, Any]:
        """``plan.json``'s ``production_queries``."""
        return {
            **self.file.to_dict(),
            "held_out": len(self.held),
            "over_judge_limit": self.over_limit,
            "user_queries_left_out": self.user_left_out,
        }


@dataclass(frozen=True)
class QueryPlan:
    """The planned queries, the size of their shards, and where the user's queries (if any) came from."""

    queries: Sequence[Query]
    requested: int
    shard_size: int
    user: UserFileStats | None = None
    production: ProductionFileStats | None = None

    @classmethod
    def of(
        cls,
        queries: Sequence[Query],
        *,
        requested: int,
        shard_size: int,
        user: UserFileStats | None = None,
        production: ProductionFileStats | None = None,
    ) -> QueryPlan:
        """The plan with shards of ``shard_size``, or larger where that would make more than :data:`MAX_SHARDS`.
        ``requested`` counts the production queries held out too."""
        return cls(queries, requested, shard_size_for(len(queries), shard_size), user, production)

    def shards(self) -> list[Sequence[Query]]:
        return [self.queries[start : start + self.shard_size] for start in range(0, len(self.queries), self.shard_size)]

    def per_category(self) -> dict[str, int]:
        """Planned queries by category, in order of first appearance."""
        return dict(Counter(query.category for query in self.queries))

    def summary(self) -> dict[str, Any]:
        """``plan.json``."""
        return {
            "requested": self.requested,
            "planned": len(self.queries),
            "shortfall": self.requested - len(self.queries),
            "shard_size": self.shard_size,
            "shards": len(self.shards()),
            "per_category": self.per_category(),
            "user_queries": self.user.to_dict() if self.user is not None else None,
            "production_queries": self.production.to_dict() if self.production is not None else None,
        }
