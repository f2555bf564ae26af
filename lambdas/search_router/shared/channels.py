"""Search channels: the one place that says which indexes a query can be routed to.

Channels are configuration (``cdk.json`` → Lambda environment ``CHANNELS``), never code. The
teacher prompt, the student prompt, the parser and the metrics are all derived from a
:class:`ChannelSet`, so an enterprise user can add ``camera_angle`` or ``mood`` without touching
code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MIN_CHANNELS = 2
MAX_CHANNELS = 12
MAX_DESCRIPTION_CHARS = 400
MAX_EXAMPLES = 10
MAX_EXAMPLE_CHARS = 200
RESERVED_NAMES = frozenset({"reasoning", "weights", "query"})


class ChannelConfigError(ValueError):
    """A channel definition is invalid. The message names the channel and the field."""


@dataclass(frozen=True)
class Channel:
    """One search index the router can weight.

    ``examples`` are short queries (or query fragments) for which this channel should dominate;
    they feed the teacher prompt's worked examples and the query synthesizer.
    """

    name: str
    description: str
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "examples": list(self.examples)}


@dataclass(frozen=True)
class ChannelSet(Sequence[Channel]):
    """An ordered, validated, immutable list of channels."""

    channels: tuple[Channel, ...]

    def __post_init__(self) -> None:
        _validate(self.channels)

    # Sequence protocol -------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Channel:  # type: ignore[override]
        return self.channels[index]

    def __len__(self) -> int:
        return len(self.channels)

    def __iter__(self) -> Iterator[Channel]:
        return iter(self.channels)

    # Convenience ------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def get(self, name: str) -> Channel:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.channels]

    def to_json(self) -> str:
        return json.dumps(self.to_list(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_obj(cls, value: Any) -> ChannelSet:
        """Build from a JSON string or a list of ``{name, description, examples}`` mappings."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ChannelConfigError(f"channels must be a JSON list of objects: {exc.msg}") from exc
        if not isinstance(value, list):
            raise ChannelConfigError(
                f"channels must be a list of {{name, description, examples}} objects, got {type(value).__name__}"
            )
        parsed: list[Channel] = []
        for index, item in enumerate(value):
            parsed.append(_channel_from_mapping(index, item))
        return cls(tuple(parsed))


def _channel_from_mapping(index: int, item: Any) -> Channel:
    where = f"channels[{index}]"
    if not isinstance(item, Mapping):
        raise ChannelConfigError(f"{where} must be an object with name, description, examples")
    unknown = set(item) - {"name", "description", "examples"}
    if unknown:
        raise ChannelConfigError(
            f"{where} has unknown field(s) {sorted(unknown)}; allowed: name, description, examples"
        )
    name = item.get("name")
    description = item.get("description")
    examples = item.get("examples", [])
    if not isinstance(name, str):
        raise ChannelConfigError(f"{where}.name must be a string")
    if not isinstance(description, str):
        raise ChannelConfigError(f"{where}.description must be a string")
    if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
        raise ChannelConfigError(f"{where}.examples must be a list of strings")
    return Channel(name=name, description=description.strip(), examples=tuple(e.strip() for e in examples))


def _validate(channels: Iterable[Channel]) -> None:
    items = tuple(channels)
    if not MIN_CHANNELS <= len(items) <= MAX_CHANNELS:
        raise ChannelConfigError(f"channels must contain {MIN_CHANNELS}..{MAX_CHANNELS} entries, got {len(items)}")
    seen: set[str] = set()
    for index, channel in enumerate(items):
        where = f"channels[{index}]"
        if not NAME_PATTERN.match(channel.name):
            raise ChannelConfigError(
                f"{where}.name {channel.name!r} is invalid: use 1-32 characters, lower-case letters, digits and "
                "underscore, starting with a letter"
            )
        if channel.name in RESERVED_NAMES:
            raise ChannelConfigError(f"{where}.name {channel.name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
        if channel.name in seen:
            raise ChannelConfigError(f"{where}.name {channel.name!r} is duplicated")
        seen.add(channel.name)
        if not channel.description or len(channel.description) > MAX_DESCRIPTION_CHARS:
            raise ChannelConfigError(f"{where}.description must be 1..{MAX_DESCRIPTION_CHARS} characters")
        if len(channel.examples) > MAX_EXAMPLES:
            raise ChannelConfigError(f"{where}.examples has {len(channel.examples)} entries; at most {MAX_EXAMPLES}")
        for example in channel.examples:
            if not example or len(example) > MAX_EXAMPLE_CHARS:
                raise ChannelConfigError(f"{where}.examples entries must be 1..{MAX_EXAMPLE_CHARS} characters")


DEFAULT_CHANNELS = ChannelSet(
    (
        Channel(
            name="visual",
            description=(
                "what can be seen: appearance, colours, objects, actions, scenes, landscapes, lighting and how "
                "people look"
            ),
            examples=(
                "sunset over snowy mountains",
                "man in a red jacket riding a bicycle",
                "aerial shot of a city at night",
            ),
        ),
        Channel(
            name="audio",
            description="non-speech sound: music, noise, sound effects, ambience, instruments, animals heard",
            examples=("thunder and heavy rain", "upbeat jazz saxophone", "crowd cheering in a stadium"),
        ),
        Channel(
            name="transcription",
            description="spoken words: dialogue, narration, quotes, what someone says or explains",
            examples=(
                "where the narrator says climate change is accelerating",
                "someone saying happy birthday",
            ),
        ),
        Channel(
            name="metadata",
            description=(
                "facts attached to the video and matched by keywords (BM25): names of people, titles, genre, "
                "captions, dates, places, brands and other proper nouns"
            ),
            examples=("Taylor Swift interview 2023", "BBC documentary about Antarctica"),
        ),
    )
)


def load_channels(raw: str | None) -> ChannelSet:
    """Channels from the ``CHANNELS`` environment value; the defaults when unset or empty."""
    if raw is None or not raw.strip():
        return DEFAULT_CHANNELS
    return ChannelSet.from_obj(raw)
