"""How a failure's detail quotes the answer's text: short and never the whole answer."""

from __future__ import annotations

from typing import Final

MAX_DETAIL_VALUE_CHARS: Final = 40


def show(value: str) -> str:
    return repr(clip(str(value), MAX_DETAIL_VALUE_CHARS))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
