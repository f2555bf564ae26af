"""One query to label, and the rules for its text: the de-duplication key and the characters a query may hold."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

SYNTHETIC: Final = "synthetic"
USER: Final = "user"
PRODUCTION: Final = "production"
"""A captured production query a scheduled run holds out for evaluation (``production_heldout_s3_uri``): labeled
by the teacher, never trained on."""


@dataclass(frozen=True)
class Query:
    """One query to label. ``source`` is ``"synthetic"``, ``"user"`` or ``"production"`` (held out, never trained
    on); ``category`` a mix category or a user
    label (``"user"`` by default); ``template`` the id of the template and vocabulary a synthetic query was drawn
    from (:func:`search_router.pipeline.queries.synthesis.template_id`), ``None`` for a user's query."""

    text: str
    category: str
    source: str
    template: str | None = None


# ---------------------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------------------
_EDGE_SYMBOLS: Final = frozenset("`´^~|")


def _is_edge_char(char: str) -> bool:
    return char.isspace() or char in _EDGE_SYMBOLS or unicodedata.category(char).startswith("P")


def normalize_query(text: str) -> str:
    """The de-duplication key of a query: NFKC, case-folded, whitespace collapsed, edge punctuation removed.

    ``'  "Sunset  over Mountains?" '`` and ``"sunset over mountains"`` share a key. Idempotent. Only edges are
    stripped: inner punctuation (``"rock 'n' roll"``, ``"AC/DC"``) is kept.
    """
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(text)
    while start < end and _is_edge_char(text[start]):
        start += 1
    while end > start and _is_edge_char(text[end - 1]):
        end -= 1
    return text[start:end]


def clean_text(text: str) -> str:
    """A query as stored: surrounding whitespace removed and inner whitespace runs collapsed to one space."""
    return " ".join(text.split())


# Control characters a query may contain only as ordinary whitespace (collapsed to a space when stored).
_ORDINARY_WHITESPACE: Final = frozenset("\t\n\r\x0b\x0c")
# Format characters kept because they carry meaning: zero-width non-joiner and joiner (Persian and Indic
# scripts, emoji sequences). Every other format character (zero-width space, BOM, bidi controls, soft hyphen ...)
# is invisible and is removed.
_KEPT_FORMAT_CHARACTERS: Final = frozenset("\u200c\u200d")


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a control character (Unicode Cc) other than ordinary whitespace."""
    return any(unicodedata.category(c) == "Cc" and c not in _ORDINARY_WHITESPACE for c in text)


def strip_format_characters(text: str) -> str:
    """``text`` without invisible format characters (Unicode Cf), zero-width (non-)joiners excepted."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf" or c in _KEPT_FORMAT_CHARACTERS)


def has_visible_text(text: str) -> bool:
    """True when ``text`` holds at least one letter, digit or symbol (emoji included), not just marks and spaces."""
    return any(unicodedata.category(c)[0] in "LNS" for c in text)
