"""The promotion document: the value of the router's SSM parameter (``/<stack>/router/promoted-model``).

Written by the stack (the initial value: the router's default model, nothing promoted yet) and by the pipeline's
Promote step; read by the router (``router/model_source.parse_promotion``, which validates it strictly and says
what is wrong, without pydantic: the ``micro_router`` block's rules are ``contract/promotion_rules.py``'s), by
the compensation (the deployment in service is never removed) and by ``cli rollback``. SSM keeps every version,
so a rollback is one ``put_parameter`` of an earlier one.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from search_router.contract.promotion_rules import MICRO_ROUTER_URI_PATTERN, TAU_MAX, TAU_MIN
from search_router.shared.prompts import PromptKind

__all__ = ["MICRO_ROUTER_URI_PATTERN", "SUMMARY_FIELDS", "MicroRouterPromotion", "PromotionDocument", "model_id_of"]


class MicroRouterPromotion(BaseModel):
    """The micro-router promoted with the model: its artifact (``s3://`` URI of the file
    :meth:`search_router.shared.micro_router.MicroRouter.to_bytes` wrote) and the confidence threshold ``tau``
    at or above which the router answers from it (source ``micro``) instead of calling the model.

    The field rules are ``contract/promotion_rules.py``'s, which the router reads the block with (strict types:
    ``tau`` a number, not a string or a boolean, as the router's reader requires)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact_uri: str = Field(pattern=MICRO_ROUTER_URI_PATTERN, strict=True)
    tau: float = Field(ge=TAU_MIN, le=TAU_MAX, strict=True)


class PromotionDocument(BaseModel):
    """What the router calls (``model_id`` with the prompt it was trained for), which channels it routes to, and
    where it came from (``run_id``, ``promoted_at``, the gate's ``metrics`` and the report; ``None`` before the
    first promotion), and the micro-router that answers the queries it is confident about (``None``: every query
    goes to the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str = Field(min_length=1)
    prompt_kind: PromptKind
    channels: list[str]
    run_id: str | None = None
    promoted_at: str | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    report_uri: str | None = None
    micro_router: MicroRouterPromotion | None = None

    def to_parameter(self) -> str:
        """The parameter's value: compact JSON (a Standard parameter holds 4 KB); ``micro_router`` only when one
        is promoted (a router of an earlier version reads the document as before)."""
        value = self.model_dump(mode="json", exclude_none=False)
        if value["micro_router"] is None:
            del value["micro_router"]
        return json.dumps(value, separators=(",", ":"))


SUMMARY_FIELDS: tuple[str, ...] = ("model_id", "prompt_kind", "run_id", "promoted_at")
"""The fields ``cli rollback`` shows of each version."""


def model_id_of(value: str) -> Any:
    """The ``model_id`` of a parameter value, or None when the value is not a JSON object (not ours)."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data.get("model_id") if isinstance(data, dict) else None
