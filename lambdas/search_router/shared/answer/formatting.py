"""The canonical router answer: compact JSON, weights in channel order rounded to sum to exactly 1, then the
reasoning (what training targets and prompts use).

Two forms, one per student prompt: weights then reasoning, and weights only (``with_reasoning=False``, the
compact form the router asks for by default: ``{"visual":0.7,"audio":0,...}``, no spaces, no trailing zeros; the
benchmark ``benchmarks/router_overhead.py`` measures its tokens against the alternatives). Both parse with the
shared parser (a weights-only answer gives ``reasoning=None``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Final

from search_router.shared.answer.decision import REASONING_KEY, RoutingDecision
from search_router.shared.channels import ChannelSet

MAX_DECIMALS: Final = 6


def round_weights(weights: Mapping[str, float], channels: ChannelSet, *, decimals: int = 2) -> dict[str, float]:
    """Weights rounded to ``decimals`` in channel order, still summing to 1 (largest-remainder method)."""
    scale = 10**decimals
    return {name: units / scale for name, units in _rounded_units(weights, channels, decimals).items()}


def format_answer(
    decision: RoutingDecision, channels: ChannelSet, *, decimals: int = 2, with_reasoning: bool = True
) -> str:
    """The canonical answer: compact JSON, weights in channel order, then ``reasoning`` (omitted if None, or
    always with ``with_reasoning=False``: the weights-only form, which also writes a weight of 0 or 1 as ``0`` or
    ``1``, the shortest JSON number).

    Values are rounded to ``decimals`` so that they still sum to exactly 1, and parsing the result gives
    exactly :func:`round_weights` of the decision.
    """
    units = _rounded_units(decision.weights, channels, decimals)
    bare = not with_reasoning  # the weights-only form writes 0 and 1 without ".0": two tokens fewer each
    fields = [f"{json.dumps(name)}:{_format_units(count, decimals, bare=bare)}" for name, count in units.items()]
    if with_reasoning and decision.reasoning is not None:
        fields.append(f"{json.dumps(REASONING_KEY)}:{json.dumps(decision.reasoning, ensure_ascii=False)}")
    return "{" + ",".join(fields) + "}"


def _rounded_units(weights: Mapping[str, float], channels: ChannelSet, decimals: int) -> dict[str, int]:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be an integer in 0..{MAX_DECIMALS}, got {decimals!r}")
    names = channels.names
    if set(weights) != set(names):
        raise ValueError(f"weights have channels {sorted(weights)}, expected {list(names)}")
    scale = 10**decimals
    total = math.fsum(weights[name] for name in names)
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"weights must have a positive finite sum, got {total!r}")
    # Rounding the scaled value to 6 places first absorbs binary noise such as 0.29 * 100 = 28.999999999999996.
    scaled = {name: round(weights[name] / total * scale, 6) for name in names}
    units = {name: math.floor(value) for name, value in scaled.items()}
    left = max(0, min(len(names), scale - sum(units.values())))
    order = sorted(range(len(names)), key=lambda i: (-(scaled[names[i]] - units[names[i]]), i))
    for index in order[:left]:
        units[names[index]] += 1
    return units


def _format_units(units: int, decimals: int, *, bare: bool = False) -> str:
    if bare and units % 10**decimals == 0:
        return str(units // 10**decimals)
    text = f"{units / 10**decimals:.{decimals}f}"
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text
