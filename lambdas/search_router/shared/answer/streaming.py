"""The streaming reader: the weights of a router answer as soon as they are complete, before the reasoning."""

from __future__ import annotations

from search_router.shared.answer.builder import Builder
from search_router.shared.answer.decision import ParseFailure, ParseFailureReason, ParseResult, RoutingDecision, decide
from search_router.shared.answer.detail import clip
from search_router.shared.answer.lexer import Lexer
from search_router.shared.answer.parser import DEFAULT_MAX_CHARS, DEFAULT_SUM_TOLERANCE, parse_routing_answer
from search_router.shared.channels import ChannelSet

_MAX_STREAM_RESTARTS = 32


class StreamingWeightsReader:
    """Reads a router answer as it streams and returns the weights as soon as they are complete.

    ``feed`` returns the :class:`RoutingDecision` (reasoning ``None``) once every channel's value is complete
    (a number counts once the following ``,`` or ``}`` arrives), validated exactly like the parser; later
    calls return the same decision. Prose or objects without channel keys before the answer are skipped.
    The first object that holds a channel key decides: if it is malformed or invalid, ``failed`` becomes True
    and ``failure`` says why (the full-text parser may still find a later valid object: call :meth:`finish`).
    Work is linear in the streamed length, apart from a bounded number of rescans after malformed prose braces.

    With ``whole_object=True`` the reader waits until the JSON object that holds the weights has closed and its
    decision carries the reasoning (read from that object or the one around it), like the full-text parser: the
    caller that wants the reasoning still stops at the answer's closing brace, not at the end of the stream.
    """

    def __init__(
        self,
        channels: ChannelSet,
        *,
        sum_tolerance: float = DEFAULT_SUM_TOLERANCE,
        max_chars: int = DEFAULT_MAX_CHARS,
        whole_object: bool = False,
    ) -> None:
        self._channels = channels
        self._whole_object = whole_object
        self._watch = frozenset(channels.names)
        self._sum_tolerance = sum_tolerance
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._text = ""
        self._length = 0  # characters accepted for scanning (at most max_chars)
        self._received = 0
        self._lexer: Lexer | None = None
        self._builder: Builder | None = None
        self._start = 0  # absolute offset of the current candidate's '{'
        self._restarts = 0
        self._pairs_seen = 0
        self._present: set[str] = set()
        self._decision: RoutingDecision | None = None
        self._failure: ParseFailure | None = None

    @property
    def text(self) -> str:
        """Everything fed so far."""
        if len(self._parts) > 1:
            self._text = "".join(self._parts)
            self._parts = [self._text]
        elif self._parts:
            self._text = self._parts[0]
        return self._text

    @property
    def decision(self) -> RoutingDecision | None:
        return self._decision

    @property
    def leads(self) -> bool:
        """The object holding the weights opens the answer: only white space or an opening code fence before it
        (anything else, an array bracket or prose, is for the full-text parser to judge)."""
        head = self.text[: self._start].strip()
        return head in ("", "```") or (head.startswith("```") and head[3:].strip().isalpha())

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def failure(self) -> ParseFailure | None:
        return self._failure

    def finish(self) -> ParseResult:
        """Parse the whole accumulated text (with its reasoning) like :func:`parse_routing_answer`."""
        return parse_routing_answer(
            self.text, self._channels, sum_tolerance=self._sum_tolerance, max_chars=self._max_chars
        )

    def feed(self, delta: str) -> RoutingDecision | None:
        """Add the next piece of the answer; the decision once the weights are complete, else None."""
        try:
            self._feed(delta)
        except Exception as exc:  # like the parser, the reader reports instead of raising
            self._failure = ParseFailure(ParseFailureReason.INTERNAL_ERROR, clip(f"{type(exc).__name__}: {exc}", 300))
        return self._decision

    def _feed(self, delta: str) -> None:
        if not delta:
            return
        self._parts.append(delta)
        self._received += len(delta)
        if self._decision is not None or self._failure is not None or self._length >= self._max_chars:
            return
        room = self._max_chars - self._length
        piece = delta[:room]
        offset = self._length
        self._length += len(piece)
        if self._lexer is None:
            self._begin(piece, offset)
        else:
            self._lexer.feed(piece)
        self._pump()
        if self._decision is None and self._failure is None and self._received > self._max_chars:
            self._failure = ParseFailure(
                ParseFailureReason.TOO_LARGE,
                f"no complete weights within the first {self._max_chars} characters",
            )

    def _begin(self, text: str, offset: int) -> None:
        """Start a candidate at the first '{' of ``text`` (which starts at absolute ``offset``)."""
        index = text.find("{")
        if index == -1:
            self._lexer = self._builder = None
            return
        self._start = offset + index
        self._lexer = Lexer(text, index, base=offset)
        self._builder = Builder(self._watch)
        self._pairs_seen = 0
        self._present = set()

    def _pump(self) -> None:
        while self._lexer is not None and self._builder is not None:
            lexer, builder = self._lexer, self._builder
            token = lexer.next_token()
            if token is None:
                return
            builder.push(token)
            if builder.error is not None:
                if builder.keyed is not None or self._restarts >= _MAX_STREAM_RESTARTS:
                    message = f"invalid JSON at character {lexer.offset}: {builder.error}"
                    self._failure = ParseFailure(ParseFailureReason.INVALID_JSON, message)
                    return
                # Prose braces before the answer: rescan from the next '{' (a bounded number of times).
                self._restarts += 1
                start = self._start + 1
                self._begin(self.text[start : self._length], start)
                continue
            if token[0] in (",", "}", "]") and self._check(builder):
                return
            if builder.done:
                # An object without channel keys (an unrelated object): look further on.
                self._begin(lexer.remainder(), lexer.offset)

    def _check(self, builder: Builder) -> bool:
        """Decide once every channel is present or the object holding them closed; True when decided."""
        keyed = builder.keyed
        if keyed is None:
            return False
        for key, _raw_key, _value in keyed.pairs[self._pairs_seen :]:
            if key in self._watch:
                self._present.add(key)
        self._pairs_seen = len(keyed.pairs)
        if not builder.done and (self._whole_object or len(self._present) < len(self._watch)):
            return False
        result = decide(
            keyed, builder.root, self._channels, self._sum_tolerance, truncated=False, with_reasoning=self._whole_object
        )
        if result.ok:
            self._decision = result.decision
        else:
            self._failure = result
        return True
