"""The daily compaction of captured queries: one day's Firehose objects (gzip JSON lines, one routed query per
line) into one query file, ``inputs/captured/<date>.jsonl``, deduplicated with a count per query.

Each output line is ``{"query": text, "count": n}``: a ``.jsonl`` user query file as
:func:`search_router.pipeline.queries.user_files.parse_user_queries` reads it (``count`` is extra information the
reader ignores). Queries are deduplicated by the pipeline's own key (:func:`normalize_query`: case-folded, edge
punctuation removed), the text kept being the first one seen; the most frequent come first, ties in the order
first seen. The same objects always give the same bytes, so a re-run rewrites the same file (idempotent).

A line that is not a captured record is counted by reason, never dropped silently: an object that is not gzip
(``not_gzip``), not UTF-8 (``not_utf8``), a line that is not JSON (``not_json``), not an object
(``not_an_object``), without a ``query`` string (``missing_query``), or with nothing left after normalization
(``empty_query``). The first :data:`MAX_SAMPLES` say where (object key and line number).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from search_router.pipeline.queries.query import clean_text, normalize_query

MAX_SAMPLES = 20


@dataclass
class Compaction:
    """What one day's objects held: the queries with their counts, and every line that was not a record."""

    objects: int = 0
    lines: int = 0
    records: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    _counts: Counter[str] = field(default_factory=Counter)
    _texts: dict[str, str] = field(default_factory=dict)

    @property
    def queries(self) -> list[tuple[str, int]]:
        """(query, count), the most frequent first, ties in the order first seen."""
        order = {key: index for index, key in enumerate(self._texts)}
        keys = sorted(self._counts, key=lambda key: (-self._counts[key], order[key]))
        return [(self._texts[key], self._counts[key]) for key in keys]

    def to_jsonl(self) -> bytes:
        return query_file(self.queries)

    def summary(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "lines": self.lines,
            "records": self.records,
            "queries": len(self._counts),
            "malformed": dict(sorted(self.malformed.items())),
            "malformed_samples": list(self.samples),
        }

    def _reject(self, where: str, reason: str) -> None:
        self.malformed[reason] += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(f"{where}: {reason}")

    def add_object(self, key: str, body: bytes) -> None:
        """One Firehose object (gzip of JSON lines)."""
        self.objects += 1
        try:
            text = gzip.decompress(body).decode("utf-8")
        except (OSError, EOFError, zlib.error):
            self._reject(key, "not_gzip")
            return
        except UnicodeDecodeError:
            self._reject(key, "not_utf8")
            return
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                self.lines += 1
                self._add_line(f"{key} line {number}", line)

    def _add_line(self, where: str, line: str) -> None:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            self._reject(where, "not_json")
            return
        if not isinstance(record, dict):
            self._reject(where, "not_an_object")
            return
        query = record.get("query")
        if not isinstance(query, str):
            self._reject(where, "missing_query")
            return
        text = clean_text(query)
        key = normalize_query(text)
        if not key:
            self._reject(where, "empty_query")
            return
        self._accept(where, record, key, text)

    def _accept(self, where: str, record: dict[str, Any], key: str, text: str) -> None:
        """A record with a usable query (``key`` its normalized form): counted. Subclasses that need more of
        the record (the drift check: weights, source) override this and may still reject it by reason."""
        del where, record
        self.records += 1
        self._counts[key] += 1
        self._texts.setdefault(key, text)


def query_file(queries: Iterable[tuple[str, int]]) -> bytes:
    """A ``.jsonl`` query file of ``(query, count)``: ``{"query", "count"}`` lines, as a user's file is read."""
    lines = (json.dumps({"query": q, "count": n}, ensure_ascii=False, separators=(",", ":")) for q, n in queries)
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def compact(objects: Iterable[tuple[str, bytes]]) -> Compaction:
    """The compaction of ``(key, body)`` objects, read one at a time in the order given (the handler lists them
    in key order: Firehose's keys sort by delivery time, so "first seen" is the same on every run)."""
    compaction = Compaction()
    for key, body in objects:
        compaction.add_object(key, body)
    return compaction
