"""The query synthesizer: template spaces over the vocabulary, drawn without replacement, deterministic for a seed.

Built-in templates apply to the channels named ``visual``, ``audio``, ``transcription`` and ``metadata``
(:mod:`search_router.pipeline.queries.vocabulary`); a custom channel's phrases come from its own configuration
(``examples`` and the short phrases of its ``description``) inside generic patterns.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from search_router.pipeline.queries.mix import (
    BALANCED,
    COMPLEX,
    categories,
    dominant_category,
    largest_remainder,
    resolve_mix,
)
from search_router.pipeline.queries.query import SYNTHETIC, Query, clean_text, normalize_query
from search_router.pipeline.queries.vocabulary import BUILTIN, slots, vocab_name
from search_router.shared.channels import ChannelSet

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------
# Custom channels: vocabulary from the channel's own configuration
# ---------------------------------------------------------------------------------------------------------
_TERM_SPLIT = re.compile(r"[:;,()/\[\]]|\s+(?:and|or|e\.g\.|such as|like|including)\s+", re.IGNORECASE)
_STOPWORDS: Final = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "for", "with", "by", "at", "from", "and", "or", "is", "are", "be",
    "that", "this", "what", "which", "who", "how", "any", "other", "etc",
})  # fmt: skip
_MAX_TERM_WORDS: Final = 6


def _description_terms(description: str) -> tuple[str, ...]:
    """Short noun-ish phrases of a channel description: ``"mood: happy, sad or tense"`` -> mood, happy, sad, tense."""
    terms: list[str] = []
    for raw in _TERM_SPLIT.split(description):
        term = " ".join(raw.strip(" .!?'\"-").split())
        words = term.split()
        if not words or len(words) > _MAX_TERM_WORDS or len(term) < 3:
            continue
        if all(word.lower() in _STOPWORDS for word in words):
            continue
        if term.lower() not in (existing.lower() for existing in terms):
            terms.append(term)
    return tuple(terms)


def _custom_heads(channel_name: str, examples: Sequence[str], description: str) -> tuple[str, ...]:
    heads: list[str] = []
    seen: set[str] = set()
    for phrase in (*examples, *_description_terms(description), channel_name.replace("_", " ")):
        key = normalize_query(phrase)
        if key and key not in seen:
            seen.add(key)
            heads.append(" ".join(phrase.split()))
    return tuple(heads)


# ---------------------------------------------------------------------------------------------------------
# Template spaces
# ---------------------------------------------------------------------------------------------------------
class _LazyPermutation:
    """Distinct indices of ``range(total)`` in random order without materializing the range up front.

    Random draws with rejection while less than half is used; then the unused rest is listed and shuffled,
    so the cost stays linear even when a small space is used up completely.
    """

    def __init__(self, total: int, rng: random.Random) -> None:
        self._total = total
        self._rng = rng
        self._used: set[int] = set()
        self._rest: list[int] | None = None

    def next(self) -> int | None:
        if self._rest is None and 2 * len(self._used) >= self._total:
            self._rest = [index for index in range(self._total) if index not in self._used]
            self._rng.shuffle(self._rest)
            self._used = set()
        if self._rest is not None:
            return self._rest.pop() if self._rest else None
        while True:
            index = self._rng.randrange(self._total)
            if index not in self._used:
                self._used.add(index)
                return index


BUILTIN_VOCABULARY: Final = "builtin"
"""The vocabulary of the built-in templates (``vocabulary.json``)."""
CHANNEL_VOCABULARY: Final = "channels"
"""The vocabulary of the generic patterns: the channels' own phrases (built-in heads, custom examples and terms)."""


def template_id(vocabulary: str, category: str, pattern: str) -> str:
    """The id a synthetic query carries: which vocabulary, category and pattern produced it
    (``"builtin/visual_dominant/{v_scene} {v_light}"``). The template-disjoint held-out split groups by it."""
    return f"{vocabulary}/{category}/{pattern}"


@dataclass
class _Space:
    """One template with its slot lists: ``size`` combinations, drawn without replacement. ``template`` is its
    :func:`template_id`."""

    pattern: str
    slot_names: tuple[str, ...]
    lists: tuple[tuple[str, ...], ...]
    size: int
    template: str = ""
    permutation: _LazyPermutation | None = None

    def render(self, index: int) -> str | None:
        """The text of combination ``index``; ``None`` if it repeats a vocabulary entry ("a dog and a dog")."""
        values: dict[str, str] = {}
        chosen: list[str] = []
        for name, options in zip(self.slot_names, self.lists, strict=True):
            index, position = divmod(index, len(options))
            value = options[position]
            values[name] = value
            chosen.append(value)
        if len(set(chosen)) != len(chosen):
            return None
        return clean_text(self.pattern.format_map(values))


def _space(pattern: str, vocab: Mapping[str, tuple[str, ...]], template: str) -> _Space:
    names = tuple(dict.fromkeys(slots(pattern)))
    lists = tuple(vocab[vocab_name(name)] for name in names)
    return _Space(pattern, names, lists, math.prod(len(options) for options in lists), template)


def _category_spaces(channels: ChannelSet) -> dict[str, list[_Space]]:
    """Every template space per category for ``channels``.

    Built-in templates apply when all the channels they use are in the set (channels named ``visual``,
    ``audio``, ``transcription`` and ``metadata`` get the built-in vocabulary). Any other channel is built from
    its ``examples`` and the short phrases of its ``description`` (see :func:`synthesize_queries`).
    """
    names = set(channels.names)
    vocab: dict[str, tuple[str, ...]] = dict(BUILTIN.words)
    vocab["g_prefix"] = BUILTIN.generic_prefix
    vocab["g_suffix"] = BUILTIN.generic_suffix
    for channel in channels:
        heads = BUILTIN.heads.get(channel.name) or _custom_heads(channel.name, channel.examples, channel.description)
        vocab[f"h_{channel.name}"] = heads

    def generic(category: str, pattern: str) -> _Space:
        return _space(pattern, vocab, template_id(CHANNEL_VOCABULARY, category, pattern))

    spaces: dict[str, list[_Space]] = {category: [] for category in categories(channels)}
    for category, templates in BUILTIN.templates.items():
        if category in spaces:
            spaces[category] += [
                _space(t.pattern, vocab, template_id(BUILTIN_VOCABULARY, category, t.pattern))
                for t in templates
                if set(t.uses) <= names
            ]
    custom = [name for name in channels.names if name not in BUILTIN.heads]
    for name in custom:
        category = dominant_category(name)
        spaces[category] += [generic(category, p) for p in _dominant_patterns(name)]
    for category, patterns in _mixed_patterns(channels.names, set(custom)).items():
        spaces[category] += [generic(category, pattern) for pattern in patterns]
    # A subset of the built-in channels that no built-in mixed template covers: generic mixed patterns.
    for category, patterns in _mixed_patterns(channels.names, names).items():
        if not spaces[category]:
            spaces[category] += [generic(category, pattern) for pattern in patterns]
    return spaces


def _dominant_patterns(name: str) -> list[str]:
    """Generic patterns of one channel's own phrases (examples and description terms)."""
    head = f"{{h_{name}}}"
    return [head, f"{{g_prefix}} {head}", f"{head} {{g_suffix}}", f"{{g_prefix}} {head} {{g_suffix}}"]


def _mixed_patterns(names: tuple[str, ...], involved: set[str]) -> dict[str, list[str]]:
    """Generic balanced (ordered pairs) and complex (ordered triples; long pairs for two channels) patterns
    over the channels' phrases, for the combinations that include at least one ``involved`` channel."""
    patterns: dict[str, list[str]] = {BALANCED: [], COMPLEX: []}
    for first, second in itertools.permutations(names, 2):
        if {first, second} & involved:
            patterns[BALANCED].append(f"{{h_{first}}} with {{h_{second}}}")
            if len(names) == 2:  # no triples: long pair queries instead
                patterns[COMPLEX].append(f"{{g_prefix}} {{h_{first}}} {{g_suffix}} with {{h_{second}}}")
    for first, second, third in itertools.permutations(names, 3):
        if {first, second, third} & involved:
            patterns[COMPLEX].append(f"{{h_{first}}} {{g_suffix}} with {{h_{second}}} and {{h_{third}}}")
    return patterns


def capacity(channels: ChannelSet) -> dict[str, int]:
    """Approximate number of distinct queries per category (template combinations; an upper bound, since a few
    combinations are rejected as repeats or normalize to the same text)."""
    return {category: sum(space.size for space in spaces) for category, spaces in _category_spaces(channels).items()}


# ---------------------------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthesisResult:
    """Queries plus what happened: ``targets`` per category from the mix, ``produced`` per category, and the
    categories whose template space ran out (their shortfall was filled from other categories)."""

    queries: list[Query]
    targets: dict[str, int]
    produced: dict[str, int]
    exhausted: list[str] = field(default_factory=list)

    @property
    def shortfall(self) -> int:
        """How many fewer queries than requested exist at all (0 normally)."""
        return sum(self.targets.values()) - len(self.queries)


class _CategorySampler:
    def __init__(self, category: str, spaces: list[_Space], rng: random.Random) -> None:
        self.category = category
        self._rng = rng
        self._live = [space for space in spaces if space.size > 0]
        for space in self._live:
            space.permutation = _LazyPermutation(space.size, rng)

    @property
    def exhausted(self) -> bool:
        return not self._live

    def draw(self, seen: set[str]) -> Query | None:
        """One new query, or ``None`` when every template of the category is used up."""
        while self._live:
            space = self._live[self._rng.randrange(len(self._live))]
            assert space.permutation is not None
            index = space.permutation.next()
            if index is None:
                self._live.remove(space)
                continue
            text = space.render(index)
            if text is None:
                continue
            key = normalize_query(text)
            if not key or key in seen:
                continue
            seen.add(key)
            return Query(text=text, category=self.category, source=SYNTHETIC, template=space.template)
        return None


class _Drawing:
    """One synthesis: every category's sampler, and what they produced so far."""

    def __init__(self, samplers: dict[str, _CategorySampler], seen: set[str]) -> None:
        self._samplers = samplers
        self._seen = seen
        self.produced = dict.fromkeys(samplers, 0)
        self.queries: list[Query] = []
        self.exhausted: list[str] = []

    def take(self, category: str) -> bool:
        """One more query of ``category``; False when the category has run out."""
        query = self._samplers[category].draw(self._seen)
        if query is None:
            if category not in self.exhausted:
                self.exhausted.append(category)
            return False
        self.queries.append(query)
        self.produced[category] += 1
        return True

    def fill_targets(self, targets: Mapping[str, int]) -> int:
        """Each category's target count, in order; how many are missing where categories ran out."""
        missing = 0
        for category, target in targets.items():
            for _ in range(target):
                if not self.take(category):
                    missing += target - self.produced[category]
                    break
        return missing

    def fill_shortfall(self, missing: int, shares: Mapping[str, float]) -> int:
        """Fill a shortfall round-robin from the categories the mix uses that still have room; what is left."""
        donors = [
            category for category, share in shares.items() if share > 0 and not self._samplers[category].exhausted
        ]
        while missing and donors:
            for category in list(donors):
                if not missing:
                    break
                if self.take(category):
                    missing -= 1
                else:
                    donors.remove(category)
        return missing


def heldout_templates(channels: ChannelSet, *, seed: int, wanted: int) -> frozenset[str]:
    """The templates (:func:`template_id`) reserved for the template-disjoint held-out set: none of the training
    queries comes from them. Deterministic for ``channels`` and ``seed``, so PlanQueries and PrepareDataset agree
    without passing the set along.

    In rounds, each category gives one more template in random order, never its last one, until the reserved
    templates can produce at least twice ``wanted`` queries (repeats and collisions are rejected); none when
    ``wanted`` is 0.
    """
    if wanted <= 0:
        return frozenset()
    rng = random.Random(f"heldout-templates:{seed}")  # noqa: S311 - reproducible sampling, not security
    queues: dict[str, list[_Space]] = {}
    for category, spaces in sorted(_category_spaces(channels).items()):
        live = [space for space in spaces if space.size > 0]
        rng.shuffle(live)
        queues[category] = live[1:]
    picked: set[str] = set()
    room = 0
    while room < 2 * wanted and any(queues.values()):
        for queue in queues.values():
            if queue:
                space = queue.pop()
                picked.add(space.template)
                room += space.size
    return frozenset(picked)


def synthesize(
    channels: ChannelSet,
    n: int,
    *,
    seed: int,
    mix: Mapping[str, float] | None = None,
    exclude: Iterable[str] = frozenset(),
    reserved: int = 0,
) -> SynthesisResult:
    """:func:`synthesize_queries` with a report of per-category targets, production and exhausted categories.

    ``reserved`` of the ``n`` queries come from the :func:`heldout_templates` for ``reserved`` (the categories'
    shares of them follow the mix among the categories that reserve a template) and the rest from the other
    templates only; the per-category counts still follow the mix.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= reserved <= n:
        raise ValueError(f"reserved must be within 0..n ({n}), got {reserved}")
    shares = resolve_mix(channels, mix)
    targets = largest_remainder(n, shares)
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    seen = {normalize_query(text) for text in exclude}
    spaces = _category_spaces(channels)
    held = heldout_templates(channels, seed=seed, wanted=reserved)
    reserved_queries: list[Query] = []
    if held:
        held_shares = {
            category: share
            for category, share in shares.items()
            if share > 0 and any(space.template in held for space in spaces[category])
        }
        held_targets = largest_remainder(reserved, held_shares)
        held_drawing = _Drawing(
            {c: _CategorySampler(c, [s for s in spaces[c] if s.template in held], rng) for c in held_shares}, seen
        )
        held_drawing.fill_targets({c: min(t, targets[c]) for c, t in held_targets.items()})
        reserved_queries = held_drawing.queries
        spaces = {c: [s for s in category_spaces if s.template not in held] for c, category_spaces in spaces.items()}
    done = Counter(query.category for query in reserved_queries)
    drawing = _Drawing({category: _CategorySampler(category, spaces[category], rng) for category in shares}, seen)
    missing = drawing.fill_shortfall(
        drawing.fill_targets({category: target - done[category] for category, target in targets.items()}), shares
    )
    if drawing.exhausted:
        logger.warning(
            "query categories exhausted; filled from others",
            extra={
                "exhausted": drawing.exhausted,
                "targets": targets,
                "produced": drawing.produced,
                "shortfall": missing,
            },
        )
    queries = reserved_queries + drawing.queries
    rng.shuffle(queries)
    produced = {category: drawing.produced[category] + done[category] for category in drawing.produced}
    return SynthesisResult(queries=queries, targets=targets, produced=produced, exhausted=drawing.exhausted)


def synthesize_queries(
    channels: ChannelSet,
    n: int,
    *,
    seed: int,
    mix: Mapping[str, float] | None = None,
    exclude: Iterable[str] = frozenset(),
    reserved: int = 0,
) -> list[Query]:
    """``n`` distinct synthetic queries, deterministic for ``seed``, in shuffled order.

    Per-category counts follow ``mix`` (default :func:`default_mix`) exactly, by largest-remainder rounding.
    Texts are unique by :func:`normalize_query` and never collide with ``exclude`` (raw or normalized texts).
    Built-in templates × vocabulary cover the channels named ``visual``, ``audio``, ``transcription`` and
    ``metadata`` (over 100,000 distinct queries per category). A custom channel has no built-in vocabulary: its
    queries are its configured ``examples`` and the short phrases of its ``description`` ("mood: happy, sad or
    tense" gives "happy", "sad", "tense") inside generic templates ("clips showing ...", "... footage", "...
    with ..."), so its space is small (hundreds to a few thousand) and good ``examples`` matter. When a
    category runs out, the rest is drawn from the other categories of the mix (see :func:`synthesize` for the
    report); when everything runs out, fewer than ``n`` queries are returned. ``reserved`` of them come from the
    templates held out of training (:func:`heldout_templates`), the rest from the others.
    """
    return synthesize(channels, n, seed=seed, mix=mix, exclude=exclude, reserved=reserved).queries
