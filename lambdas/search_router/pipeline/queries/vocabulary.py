"""The synthesizer's built-in vocabulary and templates, read once from ``vocabulary.json`` next to this module.

The file holds the slot lists (``vocabulary``), whole phrases of each built-in channel (``heads``, used when it is
combined with a custom channel), the generic words around a custom channel's phrases (``generic_prefix``,
``generic_suffix``) and, per category, the templates (``{slot}`` patterns and the channels they need). Its order
is part of the synthesizer's output: the same file and seed give the same queries. :func:`load_vocabulary`
checks that every template names a known category, known channels and existing slot lists.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from search_router.pipeline.queries.mix import BALANCED, COMPLEX, DOMINANT_SUFFIX

DATA_FILE: Final = "vocabulary.json"

_SUFFIX_NUMBER = re.compile(r"_\d+$")
_FORMATTER = string.Formatter()


def slots(pattern: str) -> tuple[str, ...]:
    """The ``{slot}`` names of a pattern, in order (repeats included)."""
    return tuple(name for _, name, _, _ in _FORMATTER.parse(pattern) if name)


def vocab_name(slot: str) -> str:
    """The list a slot draws from: ``a_sound_2`` (a second sound) -> ``a_sound``."""
    return _SUFFIX_NUMBER.sub("", slot)


@dataclass(frozen=True)
class Template:
    """A pattern whose ``{slot}`` fields are filled from vocabulary lists. ``uses`` names the channels it needs."""

    pattern: str
    uses: tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """The built-in data: slot lists by name, each built-in channel's phrases, the generic words, the templates."""

    words: Mapping[str, tuple[str, ...]]
    heads: Mapping[str, tuple[str, ...]]
    generic_prefix: tuple[str, ...]
    generic_suffix: tuple[str, ...]
    templates: Mapping[str, tuple[Template, ...]]


def load_vocabulary(text: str | None = None) -> Vocabulary:
    """The vocabulary in ``text`` (JSON), by default the packaged ``vocabulary.json``; ``ValueError`` names what
    is malformed."""
    if text is None:
        text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{DATA_FILE} must hold a JSON object")
    words = {name: _phrases(entries, f"vocabulary.{name}") for name, entries in _section(data, "vocabulary").items()}
    heads = {name: _phrases(entries, f"heads.{name}") for name, entries in _section(data, "heads").items()}
    templates = {
        category: tuple(_template(entry, f"templates.{category}", words, heads) for entry in _list(entries, category))
        for category, entries in _section(data, "templates").items()
    }
    allowed = {BALANCED, COMPLEX, *(f"{channel}{DOMINANT_SUFFIX}" for channel in heads)}
    unknown = sorted(set(templates) - allowed)
    if unknown:
        raise ValueError(f"{DATA_FILE}: unknown template categories {unknown}; allowed: {sorted(allowed)}")
    return Vocabulary(
        words=words,
        heads=heads,
        generic_prefix=_phrases(data.get("generic_prefix"), "generic_prefix"),
        generic_suffix=_phrases(data.get("generic_suffix"), "generic_suffix"),
        templates=templates,
    )


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    section = data.get(key)
    if not isinstance(section, dict) or not section:
        raise ValueError(f"{DATA_FILE}: {key} must be a non-empty object")
    return section


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{DATA_FILE}: {where} must be a non-empty list")
    return value


def _phrases(value: Any, where: str) -> tuple[str, ...]:
    entries = _list(value, where)
    if not all(isinstance(entry, str) and entry.strip() == entry and entry for entry in entries):
        raise ValueError(f"{DATA_FILE}: {where} must hold non-empty strings without surrounding spaces")
    return tuple(entries)


def _template(
    entry: Any, where: str, words: Mapping[str, tuple[str, ...]], heads: Mapping[str, tuple[str, ...]]
) -> Template:
    if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
        raise ValueError(f"{DATA_FILE}: {where}: a template is an object with a pattern string")
    pattern = entry["pattern"]
    uses = tuple(entry.get("uses") or ())
    if not uses or not all(channel in heads for channel in uses):
        raise ValueError(f"{DATA_FILE}: {where}: {pattern!r} must use built-in channels ({', '.join(heads)})")
    missing = sorted({vocab_name(slot) for slot in slots(pattern)} - set(words))
    if missing:
        raise ValueError(f"{DATA_FILE}: {where}: {pattern!r} names no vocabulary list {missing}")
    return Template(pattern, uses)


BUILTIN: Final = load_vocabulary()
"""The packaged vocabulary."""
