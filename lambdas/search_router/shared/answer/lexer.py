"""The tokenizer of router answers: incremental, string-aware, tolerant (comments, single quotes); no
backtracking regexes."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Final, TypeAlias

MAX_TOKEN_CHARS: Final = 1_000  # an unquoted word or number longer than this is an error

_WHITESPACE = re.compile(r"\s*")
_WORD = re.compile(r"[^\s{}\[\]:,\"'/]+")
_STRING_STOP = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LOOSE_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE_WORDS = frozenset({"nan", "inf", "infinity"})
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
_PUNCTUATION = frozenset("{}[]:,")
_CONTROL = re.compile(r"[\x00-\x1f]")
STRING_START = '"'

_NORMAL, _STRING, _LINE_COMMENT, _BLOCK_COMMENT = range(4)

# A token is (kind, value, end): kind is one of "{}[]:," for punctuation, '"' when a string opens (so a
# misplaced string fails at once instead of swallowing the rest of a stream), "s" for a complete string
# (value: text, standard), "w" for an unquoted word (value: raw text), "!" for an error (value: message); end
# is the absolute offset just after the token.
Token: TypeAlias = tuple[str, Any, int]


class BareWord(str):
    """An unquoted word that is not a JSON literal or number (``high``, ``None``...)."""

    __slots__ = ()


class Lexer:
    """Tokens from a text that may arrive in pieces.

    ``next_token`` returns ``None`` when it needs more text (or, with ``final``, at the end). Consumed text
    is dropped on :meth:`feed`, and a long string's scanned parts are kept aside, so feeding a text in many
    small pieces costs time linear in its length.
    """

    __slots__ = ("_base", "_buf", "_final", "_mode", "_parts", "_pos", "_quote", "comments")

    def __init__(self, text: str, start: int, *, base: int = 0, final: bool = False) -> None:
        self._buf = text
        self._pos = start
        self._base = base  # absolute offset of _buf[0]
        self._final = final
        self._mode = _NORMAL
        self._parts: list[str] = []
        self._quote = '"'
        self.comments = False

    @property
    def offset(self) -> int:
        """Absolute offset of the first character not yet consumed."""
        return self._base + self._pos

    def remainder(self) -> str:
        return self._buf[self._pos :]

    def feed(self, delta: str) -> None:
        if self._pos:
            self._buf = self._buf[self._pos :] + delta
            self._base += self._pos
            self._pos = 0
        else:
            self._buf += delta

    def next_token(self) -> Token | None:
        while True:
            if self._mode == _STRING:
                return self._string()
            if self._mode == _LINE_COMMENT:
                if not self._skip_line_comment():
                    return None
                continue
            if self._mode == _BLOCK_COMMENT:
                if not self._skip_block_comment():
                    return None
                continue
            token = self._normal()
            if token is not None or self._mode == _NORMAL:
                return token
            # a comment opened: skip it

    def _skip_line_comment(self) -> bool:
        """Past the comment's end: True to go on scanning, False when the comment may go on in the next piece."""
        buf = self._buf
        newline = buf.find("\n", self._pos)
        if newline != -1:
            self._pos, self._mode = newline + 1, _NORMAL
            return True
        self._pos = len(buf)
        if not self._final:
            return False
        self._mode = _NORMAL
        return True

    def _skip_block_comment(self) -> bool:
        """Past the comment's end: True to go on scanning, False when the comment may go on in the next piece."""
        buf, pos = self._buf, self._pos
        close = buf.find("*/", pos)
        if close != -1:
            self._pos, self._mode = close + 2, _NORMAL
            return True
        if self._final:
            self._pos, self._mode = len(buf), _NORMAL
            return True
        self._pos = max(pos, len(buf) - 1)  # keep a trailing '*' for the next piece
        return False

    def _normal(self) -> Token | None:
        """The next token outside strings and comments; None when more text is needed or when a comment opened
        (then the mode says so)."""
        buf = self._buf
        match = _WHITESPACE.match(buf, self._pos)
        pos = match.end() if match else self._pos
        self._pos = pos
        if pos >= len(buf):
            return None
        char = buf[pos]
        if char in _PUNCTUATION:
            self._pos = pos + 1
            return char, None, self._base + pos + 1
        if char in _STRING_STOP:
            self._mode, self._quote, self._parts, self._pos = _STRING, char, [], pos + 1
            return STRING_START, None, self._base + pos + 1
        if char == "/":
            return self._comment_start(pos)
        return self._word(pos)

    def _comment_start(self, pos: int) -> Token | None:
        """At the '/' at ``pos``: open a comment (None), or the error of a lone '/'."""
        buf = self._buf
        if pos + 1 >= len(buf):
            return self._error("unexpected '/'", pos + 1) if self._final else None
        follower = buf[pos + 1]
        if follower not in "/*":
            return self._error("unexpected '/'", pos + 1)
        self.comments = True
        self._mode = _LINE_COMMENT if follower == "/" else _BLOCK_COMMENT
        self._pos = pos + 2
        return None

    def _word(self, pos: int) -> Token | None:
        buf = self._buf
        word = _WORD.match(buf, pos)
        end = word.end() if word else pos + 1
        if end - pos > MAX_TOKEN_CHARS:
            return self._error(f"an unquoted token longer than {MAX_TOKEN_CHARS} characters", end)
        if end >= len(buf) and not self._final:
            return None  # the word may continue in the next piece
        self._pos = end
        return "w", buf[pos:end], self._base + end

    def _string(self) -> Token | None:
        buf, pos = self._buf, self._pos
        stop = _STRING_STOP[self._quote]
        scan = pos
        while True:
            match = stop.search(buf, scan)
            if match is None:  # the string continues in the next piece (or was cut off, when final)
                self._parts.append(buf[pos:])
                self._pos = len(buf)
                return None
            index = match.start()
            if buf[index] == "\\":
                if index + 1 >= len(buf):
                    self._parts.append(buf[pos:index])
                    self._pos = index  # keep the backslash with the character it escapes
                    return None
                scan = index + 2
                continue
            self._parts.append(buf[pos:index])
            raw = "".join(self._parts)
            self._parts = []
            self._mode = _NORMAL
            self._pos = index + 1
            text, standard = _unescape(raw, self._quote)
            return "s", (text, standard), self._base + index + 1

    def _error(self, message: str, end: int) -> Token:
        self._pos = min(end, len(self._buf))
        return "!", message, self._base + self._pos


def _unescape(raw: str, quote: str) -> tuple[str, bool]:
    """Decode a string body; ``standard`` is False for single quotes, raw control characters or bad escapes."""
    if quote == '"' and _CONTROL.search(raw) is None:
        if "\\" not in raw:
            return raw, True
        try:
            return json.loads(f'"{raw}"', strict=False), True
        except ValueError:
            pass
    if "\\" not in raw:
        return raw, False

    def replace_escape(match: re.Match[str]) -> str:
        escape = match.group(1)
        if len(escape) == 5:
            return chr(int(escape[1:], 16))
        return _SIMPLE_ESCAPES.get(escape, "\\" + escape)

    text = _ESCAPE.sub(replace_escape, raw)
    with contextlib.suppress(UnicodeError):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16")  # join surrogate pairs (\\ud83d\\ude00)
    return text, False


def word_value(raw: str) -> tuple[Any, bool]:
    """The value of an unquoted word and whether it is standard JSON."""
    if raw in _JSON_LITERALS:
        return _JSON_LITERALS[raw], True
    if _JSON_NUMBER.fullmatch(raw):
        return float(raw), True
    lowered = raw.lower()
    if lowered in _LOOSE_LITERALS:  # True, False, None, NULL...
        return _LOOSE_LITERALS[lowered], False
    number = number_from_text(raw)
    return (BareWord(raw) if number is None else number), False


_JSON_LITERALS: Final[dict[str, bool | None]] = {"true": True, "false": False, "null": None}
_LOOSE_LITERALS: Final[dict[str, bool | None]] = {**_JSON_LITERALS, "none": None}


def number_from_text(text: str) -> float | None:
    """A number written as text ("0.5", ".5", "1e-1", "NaN", "-Infinity"), or None."""
    if _LOOSE_NUMBER.fullmatch(text):
        return float(text)
    if text.lower().lstrip("+-") in _NON_FINITE_WORDS and len(text) - len(text.lstrip("+-")) <= 1:
        return float(text.lower())
    return None
