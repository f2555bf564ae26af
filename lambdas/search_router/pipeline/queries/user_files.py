"""The user's own query files (``.txt``, ``.jsonl``, ``.csv``): every line read, kept or counted by reason."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from search_router.pipeline.queries.query import (
    USER,
    Query,
    clean_text,
    has_control_characters,
    has_visible_text,
    normalize_query,
    strip_format_characters,
)

USER_CATEGORY: Final = "user"
MAX_QUERY_CHARS: Final = 1_000
MAX_CATEGORY_CHARS: Final = 64
MAX_INVALID_SAMPLES: Final = 20
REJECTED_CONTROL_CHARACTERS: Final = "control_characters"
RESERVED_CATEGORY_PREFIX: Final = "calibration"  # the judge's calibration record (search_router.pipeline.judge) uses it
REJECTED_NO_VISIBLE_TEXT: Final = "no_visible_text"
USER_FILE_EXTENSIONS: Final = (".txt", ".jsonl", ".csv")


@dataclass(frozen=True)
class UserQueries:
    """Queries read from a user's file, and every skipped line counted by reason.

    ``total_lines`` counts data lines (for CSV: rows after the header); it always equals
    ``len(queries) + blank + comments + invalid + too_long + duplicates``. ``rejected`` counts the ``invalid`` and
    ``too_long`` lines by reason (``control_characters``, ``no_visible_text``, ``not_json`` ...);
    ``format_characters_stripped`` the accepted lines that lost invisible format characters.
    """

    queries: list[Query]
    total_lines: int
    blank: int
    invalid: int
    too_long: int
    duplicates: int
    invalid_samples: list[str]
    comments: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    format_characters_stripped: int = 0

    def to_stats(self) -> dict[str, object]:
        """JSON-serialisable counts (for the dataset manifest)."""
        return {
            "accepted": len(self.queries),
            "total_lines": self.total_lines,
            "blank": self.blank,
            "comments": self.comments,
            "invalid": self.invalid,
            "too_long": self.too_long,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "format_characters_stripped": self.format_characters_stripped,
            "invalid_samples": list(self.invalid_samples),
        }


class _Collector:
    def __init__(self) -> None:
        self.queries: list[Query] = []
        self.seen: set[str] = set()
        self.total = self.blank = self.comments = self.invalid = self.too_long = self.duplicates = 0
        self.samples: list[str] = []
        self.rejected: Counter[str] = Counter()
        self.format_stripped = 0

    def reject(self, line: int, reason: str, kind: Literal["invalid", "too_long"], code: str) -> None:
        if kind == "invalid":
            self.invalid += 1
        else:
            self.too_long += 1
        self.rejected[code] += 1
        if len(self.samples) < MAX_INVALID_SAMPLES:
            self.samples.append(f"line {line}: {reason}"[:300])

    def add(self, line: int, text: str, category: str | None) -> None:  # noqa: PLR0911 - one return per rejection
        if has_control_characters(text):
            # Never sent to the teacher: a control character is no part of a search query (and may be an attack
            # on the prompt or a corrupt export). The sample shows it escaped.
            self.reject(line, f"query {text[:80]!r} holds control characters", "invalid", REJECTED_CONTROL_CHARACTERS)
            return
        stripped = strip_format_characters(text)
        cleaned = clean_text(stripped)
        if not cleaned:
            self.reject(line, "empty query", "invalid", "empty")
            return
        if not has_visible_text(cleaned):
            self.reject(line, f"query {text[:80]!r} has no visible text", "invalid", REJECTED_NO_VISIBLE_TEXT)
            return
        if len(cleaned) > MAX_QUERY_CHARS:
            self.reject(line, f"query has {len(cleaned)} characters; at most {MAX_QUERY_CHARS}", "too_long", "too_long")
            return
        key = normalize_query(cleaned)
        if not key:
            self.reject(
                line, f"query {cleaned[:80]!r} has no text besides punctuation", "invalid", REJECTED_NO_VISIBLE_TEXT
            )
            return
        if category is not None:
            category = strip_format_characters(category).strip()
            if category.lower().startswith(RESERVED_CATEGORY_PREFIX):
                self.reject(line, f"category {category!r} is reserved", "invalid", "reserved_category")
                return
            if has_control_characters(category):
                self.reject(line, "category holds control characters", "invalid", REJECTED_CONTROL_CHARACTERS)
                return
            if len(category) > MAX_CATEGORY_CHARS:
                self.reject(
                    line, f"category is longer than {MAX_CATEGORY_CHARS} characters", "invalid", "category_too_long"
                )
                return
        if stripped != text:
            self.format_stripped += 1
        if key in self.seen:
            self.duplicates += 1
            return
        self.seen.add(key)
        self.queries.append(Query(text=cleaned, category=category or USER_CATEGORY, source=USER))

    def result(self) -> UserQueries:
        return UserQueries(
            queries=self.queries,
            total_lines=self.total,
            blank=self.blank,
            invalid=self.invalid,
            too_long=self.too_long,
            duplicates=self.duplicates,
            invalid_samples=self.samples,
            comments=self.comments,
            rejected=dict(self.rejected),
            format_characters_stripped=self.format_stripped,
        )


def _lines(text: str) -> list[str]:
    """Physical lines ("\\n", "\\r\\n" or "\\r"), without a phantom empty line after a final newline."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _decode(body: bytes, key: str) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{key} is not UTF-8 text: invalid byte at offset {exc.start}") from exc


def parse_user_queries(body: bytes, *, key: str) -> UserQueries:
    """Read a user's query file; the format follows the object key's extension.

    * ``.txt``: one query per line; lines starting with ``#`` are comments.
    * ``.jsonl``: one JSON object per line with a ``"query"`` string and an optional ``"category"`` string.
    * ``.csv``: a header row with a ``query`` column (any case) and an optional ``category`` column.

    UTF-8, a byte-order mark is tolerated (anything else raises ``ValueError``). Queries are trimmed and their
    whitespace collapsed; a query longer than :data:`MAX_QUERY_CHARS` is skipped as ``too_long``; repeats (by
    :func:`normalize_query`, first kept) are ``duplicates``; blank lines are ``blank``. Nothing is dropped
    without being counted. An unknown extension, or a CSV without a ``query`` column, raises ``ValueError``.
    """
    lowered = key.lower()
    extension = next((ext for ext in USER_FILE_EXTENSIONS if lowered.endswith(ext)), None)
    if extension is None:
        raise ValueError(
            f"unsupported query file {key!r}: use one of {', '.join(USER_FILE_EXTENSIONS)} "
            '(one query per line, JSON lines with a "query" field, or CSV with a query column)'
        )
    text = _decode(body, key)
    collector = _Collector()
    if extension == ".txt":
        _read_txt(text, collector)
    elif extension == ".jsonl":
        _read_jsonl(text, collector)
    else:
        _read_csv(text, key, collector)
    return collector.result()


def _read_txt(text: str, collector: _Collector) -> None:
    for number, line in enumerate(_lines(text), start=1):
        collector.total += 1
        stripped = line.strip()
        if not stripped:
            collector.blank += 1
        elif stripped.startswith("#"):
            collector.comments += 1
        else:
            collector.add(number, stripped, None)


def _read_jsonl(text: str, collector: _Collector) -> None:
    for number, line in enumerate(_lines(text), start=1):
        collector.total += 1
        if not line.strip():
            collector.blank += 1
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            collector.reject(number, f"not valid JSON ({exc.msg})", "invalid", "not_json")
            continue
        if not isinstance(item, dict):
            collector.reject(number, f"expected a JSON object, got {type(item).__name__}", "invalid", "not_an_object")
            continue
        query = item.get("query")
        if not isinstance(query, str):
            collector.reject(number, 'missing "query" string', "invalid", "missing_query")
            continue
        category = item.get("category")
        if category is not None and not isinstance(category, str):
            collector.reject(number, '"category" must be a string', "invalid", "bad_category")
            continue
        collector.add(number, query, category)


def _read_csv(text: str, key: str, collector: _Collector) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for row in reader:
        if header is None:
            if not any(cell.strip() for cell in row):
                continue  # blank lines before the header
            header = [cell.strip().lower() for cell in row]
            if "query" not in header:
                raise ValueError(f"{key}: the CSV header must have a 'query' column; found {row}")
            query_at = header.index("query")
            category_at = header.index("category") if "category" in header else None
            continue
        collector.total += 1
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            collector.blank += 1
            continue
        if query_at >= len(row):
            collector.reject(
                number, f"row has {len(row)} fields; the query column is number {query_at + 1}", "invalid", "short_row"
            )
            continue
        category = row[category_at] if category_at is not None and category_at < len(row) else None
        collector.add(number, row[query_at], category or None)
