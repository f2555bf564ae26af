"""``make simulate ARGS="--captured FILE"``: a local file of routed queries as the capture would have delivered it.

The file is one of:

* ``.jsonl`` (or ``.jsonl.gz``): JSON lines as the router captures them (``{"query", "weights", "source", ...}``;
  only ``query`` is needed) or as the compaction writes them (``{"query", "count"}``). The lines go to the
  compaction unchanged, so a line it cannot read is counted by reason there, as in the stack.
* ``.txt`` (or ``.txt.gz``): one routed query per line (a query that was routed five times is five lines).

The simulation writes it as one Firehose object (gzip JSON lines) under ``captured/raw/<yesterday>/``, runs the
real compaction for that day and the real scheduled retraining, which starts the run (or says why it does not).
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Final

from search_router.router.capture import capture_record

EXTENSIONS: Final = (".jsonl", ".txt")


class CapturedFileError(ValueError):
    """The file cannot be used; the message names it and says what is expected."""


def firehose_object(path: Path) -> tuple[bytes, int]:
    """The gzip object Firehose would have delivered for ``path``, and how many lines it holds."""
    name = path.name.removesuffix(".gz")
    if not name.endswith(EXTENSIONS):
        raise CapturedFileError(
            f'{path}: use a .jsonl file (captured records or {{"query", "count"}} lines) or a .txt file (one '
            "routed query per line), optionally .gz"
        )
    try:
        body = path.read_bytes()
        text = (gzip.decompress(body) if path.name.endswith(".gz") else body).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise CapturedFileError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if name.endswith(".txt"):
        now = time.time()
        records = [
            capture_record(query=line.strip(), weights={}, source="model", model=None, latency_ms=0.0, timestamp=now)
            for line in lines
        ]
    else:
        records = [f"{line}\n".encode() for line in _expanded(lines)]
    if not records:
        raise CapturedFileError(f"{path}: holds no routed query")
    return gzip.compress(b"".join(records)), len(records)


def _expanded(lines: list[str]) -> list[str]:
    """Compacted lines (``{"query", "count"}`` without ``weights``) as ``count`` routes; every other line as is."""
    expanded: list[str] = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            expanded.append(line)
            continue
        count = record.get("count") if isinstance(record, dict) and "weights" not in record else None
        if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= 1_000_000:
            expanded.extend([json.dumps({"query": record.get("query")}, ensure_ascii=False)] * count)
        else:
            expanded.append(line)
    return expanded
