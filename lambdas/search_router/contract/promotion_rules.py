"""The promotion document's ``micro_router`` block, its rules in plain Python: defined once, here.

``contract/promotion.py`` (pydantic: the stack and Promote write the document with it) takes its field
constraints from these constants, and the router reads the block with :func:`read_micro_router`, which needs no
pydantic (the router function's import path leaves pydantic out: ``benchmarks/cold_start.py``).
``tests/unit/test_promotion_rules.py`` holds the two to the same verdict and the same values on thousands of
generated blocks.

The block is ``{"artifact_uri": "s3://<bucket>/<key>", "tau": <number in 0..1>}``, nothing else: the URI matches
:data:`MICRO_ROUTER_URI_PATTERN` in full (a trailing line break is not allowed) and is valid Unicode text, ``tau``
is a JSON number (not a string, not ``true``) within :data:`TAU_MIN`..:data:`TAU_MAX`.
"""

from __future__ import annotations

import re
from typing import Any, Final

MICRO_ROUTER_URI_PATTERN: Final = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$"
TAU_MIN: Final = 0.0
TAU_MAX: Final = 1.0
MICRO_ROUTER_FIELDS: Final = ("artifact_uri", "tau")

_URI: Final = re.compile(MICRO_ROUTER_URI_PATTERN)


class MicroRouterBlockError(ValueError):
    """The ``micro_router`` block is malformed; ``problems`` name each field (``micro_router.tau: ...``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_micro_router(value: Any) -> tuple[str, float]:
    """The block's ``(artifact_uri, tau)``, or :class:`MicroRouterBlockError` listing every problem."""
    if not isinstance(value, dict):
        raise MicroRouterBlockError([f"micro_router: must be an object with {' and '.join(MICRO_ROUTER_FIELDS)}"])
    problems: list[str] = []
    uri = _artifact_uri(value, problems)
    tau = _tau(value, problems)
    problems.extend(
        f"micro_router.{key}: is not a known field (allowed: {', '.join(MICRO_ROUTER_FIELDS)})"
        for key in value
        if key not in MICRO_ROUTER_FIELDS
    )
    if problems or uri is None or tau is None:
        raise MicroRouterBlockError(problems)
    return uri, tau


def _artifact_uri(block: dict[str, Any], problems: list[str]) -> str | None:
    if "artifact_uri" not in block:
        problems.append("micro_router.artifact_uri: is required")
        return None
    uri = block["artifact_uri"]
    if not isinstance(uri, str):
        problems.append("micro_router.artifact_uri: must be a string")
        return None
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        problems.append("micro_router.artifact_uri: must be valid Unicode text (it holds an unpaired surrogate)")
        return None
    if _URI.fullmatch(uri) is None:
        problems.append(
            f"micro_router.artifact_uri: must be an s3://bucket/key URI matching {MICRO_ROUTER_URI_PATTERN}"
        )
        return None
    return uri


def _tau(block: dict[str, Any], problems: list[str]) -> float | None:
    if "tau" not in block:
        problems.append("micro_router.tau: is required")
        return None
    raw = block["tau"]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        problems.append("micro_router.tau: must be a number")
        return None
    try:
        tau = float(raw)
    except OverflowError:  # an integer too large for a float
        problems.append("micro_router.tau: must be a number")
        return None
    if not TAU_MIN <= tau <= TAU_MAX:  # NaN fails too
        problems.append(f"micro_router.tau: must be in {TAU_MIN:g}..{TAU_MAX:g}, got {tau!r}")
        return None
    return tau
