"""Query categories and the mix: which share of the synthetic queries each category gets."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from search_router.shared.channels import DEFAULT_CHANNELS, ChannelSet

BALANCED: Final = "balanced"
COMPLEX: Final = "complex"
DOMINANT_SUFFIX: Final = "_dominant"

DEFAULT_MIX: Final[Mapping[str, float]] = {
    "visual_dominant": 0.22,
    "audio_dominant": 0.17,
    "transcription_dominant": 0.17,
    "metadata_dominant": 0.14,
    BALANCED: 0.15,
    COMPLEX: 0.15,
}
"""Category shares for :data:`search_router.shared.channels.DEFAULT_CHANNELS` (sums to 1)."""

_MIXED_SHARE: Final = 0.30  # balanced + complex share in default_mix() for other channel sets


def dominant_category(channel: str) -> str:
    """``"visual"`` -> ``"visual_dominant"``."""
    return f"{channel}{DOMINANT_SUFFIX}"


def categories(channels: ChannelSet) -> tuple[str, ...]:
    """Synthetic categories for ``channels``: one dominant per channel (channel order), balanced, complex."""
    return (*(dominant_category(name) for name in channels.names), BALANCED, COMPLEX)


def default_mix(channels: ChannelSet) -> dict[str, float]:
    """:data:`DEFAULT_MIX` for the default channels; otherwise 15% balanced, 15% complex and the remaining 70%
    spread evenly over the channels' dominant categories."""
    if channels.names == DEFAULT_CHANNELS.names:
        return dict(DEFAULT_MIX)
    share = (1.0 - _MIXED_SHARE) / len(channels)
    mix = {dominant_category(name): share for name in channels.names}
    mix[BALANCED] = _MIXED_SHARE / 2
    mix[COMPLEX] = _MIXED_SHARE / 2
    return mix


def resolve_mix(channels: ChannelSet, mix: Mapping[str, float] | None) -> dict[str, float]:
    """A validated mix over every category of ``channels``, normalized to sum 1 (missing categories get 0).

    ``ValueError`` names an unknown category or a negative, non-finite or all-zero share.
    """
    allowed = categories(channels)
    if mix is None:
        return default_mix(channels)
    unknown = sorted(set(mix) - set(allowed))
    if unknown:
        raise ValueError(f"unknown query categories {unknown}; allowed: {', '.join(allowed)}")
    for name, share in mix.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) or share < 0:
            raise ValueError(f"mix share for {name!r} must be a finite number >= 0, got {share!r}")
    total = math.fsum(mix.values())
    if total <= 0:
        raise ValueError("mix shares must not all be zero")
    return {name: float(mix.get(name, 0.0)) / total for name in allowed}


def largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split the integer ``total`` proportionally to ``weights`` so that the parts sum to ``total`` exactly.

    Each part is the floor of its exact share plus at most one; the leftover units go to the largest
    fractional parts (ties: earlier key first). Zero weights get zero.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    weight_sum = math.fsum(weights.values())
    if weight_sum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {key: total * weight / weight_sum for key, weight in weights.items()}
    parts = {key: math.floor(value) for key, value in exact.items()}
    left = total - sum(parts.values())
    order = sorted(exact, key=lambda key: -(exact[key] - parts[key]))  # stable: ties keep key order
    for key in order[:left]:
        parts[key] += 1
    return parts
