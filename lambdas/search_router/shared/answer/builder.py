"""The tree builder of router answers: tolerant, iterative (no recursion), keeps partial containers visible for
truncated answers."""

from __future__ import annotations

from typing import Any, Final

from search_router.shared.answer.detail import show
from search_router.shared.answer.lexer import STRING_START, Token, word_value

_MAX_DEPTH = 32  # deeper JSON is rejected rather than walked
_WEIGHTS_MAX_DEPTH = 3  # the weights object may sit at most this deep (root = 1), e.g. {"answer": {"weights": {}}}
_EXPECT_KEY, _EXPECT_COLON, _EXPECT_VALUE, _EXPECT_NEXT, _EXPECT_ITEM = range(5)
_NOTHING: Final = object()


def normalize_key(key: str) -> str:
    return key.strip().lower()


class JsonObject:
    """A JSON object as an ordered list of ``(normalized key, key, value)`` pairs (duplicates kept)."""

    __slots__ = ("eligible", "pairs")

    def __init__(self, *, eligible: bool) -> None:
        self.pairs: list[tuple[str, str, Any]] = []
        self.eligible = eligible  # may hold the weights: shallow and not inside an array


class _Frame:
    __slots__ = ("after_comma", "container", "has_pending", "key", "pending", "state")

    def __init__(self, container: JsonObject | list[Any]) -> None:
        self.container = container
        self.state = _EXPECT_KEY if isinstance(container, JsonObject) else _EXPECT_ITEM
        self.key = ""
        self.pending: Any = None
        self.has_pending = False
        self.after_comma = False


def _expected(frame: _Frame) -> str:
    """The syntax error for an unexpected token after a key or after a value."""
    if frame.state == _EXPECT_COLON:
        return f"expected ':' after the key {show(frame.key)}"
    return f"expected ',' or '{'}' if isinstance(frame.container, JsonObject) else ']'}'"


class Builder:
    """Builds values from tokens.

    A scalar is committed to its object or array only when the following ``,`` or closing bracket arrives,
    so a number at the end of a truncated answer never counts (``0.1`` might have become ``0.15``).
    Containers are attached when opened, so a truncated answer's complete values stay visible. ``keyed`` is
    the first eligible object that received a key from ``watch`` (a channel name).
    """

    __slots__ = ("_array_depth", "_stack", "done", "error", "keyed", "repaired", "root", "watch")

    def __init__(self, watch: frozenset[str]) -> None:
        self.watch = watch
        self.root: Any = _NOTHING
        self.done = False
        self.error: str | None = None
        self.repaired = False
        self.keyed: JsonObject | None = None
        self._stack: list[_Frame] = []
        self._array_depth = 0

    def push(self, token: Token) -> None:
        kind, value, _end = token
        if self.error is not None or self.done:
            return
        if kind == "!":
            self.error = value
            return
        if kind == STRING_START:
            if self._stack and self._stack[-1].state in (_EXPECT_COLON, _EXPECT_NEXT):
                self.error = _expected(self._stack[-1])
            return
        if not self._stack:
            self._value(kind, value, None)
            return
        frame = self._stack[-1]
        state = frame.state
        if state == _EXPECT_KEY:
            self._key(frame, kind, value)
        elif state == _EXPECT_COLON:
            self._colon(frame, kind)
        elif state == _EXPECT_VALUE:
            self._value(kind, value, frame)
        elif state == _EXPECT_ITEM:
            self._item(frame, kind, value)
        else:
            self._after_value(frame, kind)

    def _key(self, frame: _Frame, kind: str, value: Any) -> None:
        if kind in ("s", "w"):
            key = value[0] if kind == "s" else value
            if kind == "w" or not value[1]:
                self.repaired = True
            frame.key, frame.state, frame.after_comma = key, _EXPECT_COLON, False
        elif kind == "}":
            self._close(frame)
        else:
            self.error = "expected a key or '}'"

    def _colon(self, frame: _Frame, kind: str) -> None:
        if kind == ":":
            frame.state = _EXPECT_VALUE
        else:
            self.error = _expected(frame)

    def _item(self, frame: _Frame, kind: str, value: Any) -> None:
        if kind == "]":
            self._close(frame)
        else:
            frame.after_comma = False
            self._value(kind, value, frame)

    def _after_value(self, frame: _Frame, kind: str) -> None:
        if kind == ",":
            self._commit(frame)
            frame.state = _EXPECT_KEY if isinstance(frame.container, JsonObject) else _EXPECT_ITEM
            frame.after_comma = True
        elif kind == ("}" if isinstance(frame.container, JsonObject) else "]"):
            self._commit(frame)
            self._close(frame)
        else:
            self.error = _expected(frame)

    def _value(self, kind: str, value: Any, frame: _Frame | None) -> None:
        if kind in ("{", "["):
            if len(self._stack) >= _MAX_DEPTH:
                self.error = f"JSON nested deeper than {_MAX_DEPTH} levels"
                return
            container: JsonObject | list[Any]
            if kind == "{":
                eligible = self._array_depth == 0 and len(self._stack) < _WEIGHTS_MAX_DEPTH
                container = JsonObject(eligible=eligible)
            else:
                container = []
                self._array_depth += 1
            if frame is None:
                self.root = container
            else:
                self._attach(frame, container)
                frame.state = _EXPECT_NEXT
            self._stack.append(_Frame(container))
            return
        if kind == "s":
            scalar, standard = value
        elif kind == "w":
            scalar, standard = word_value(value)
        else:
            self.error = "expected a value"
            return
        if not standard:
            self.repaired = True
        if frame is None:
            self.root = scalar
            self.done = True
            return
        frame.pending, frame.has_pending, frame.state = scalar, True, _EXPECT_NEXT

    def _commit(self, frame: _Frame) -> None:
        if frame.has_pending:
            self._attach(frame, frame.pending)
            frame.pending, frame.has_pending = None, False

    def _attach(self, frame: _Frame, value: Any) -> None:
        container = frame.container
        if isinstance(container, JsonObject):
            key = normalize_key(frame.key)
            container.pairs.append((key, frame.key, value))
            if self.keyed is None and container.eligible and key in self.watch:
                self.keyed = container
        else:
            container.append(value)

    def _close(self, frame: _Frame) -> None:
        if frame.after_comma:
            self.repaired = True  # trailing comma
        self._stack.pop()
        if isinstance(frame.container, list):
            self._array_depth -= 1
        if not self._stack:
            self.done = True
