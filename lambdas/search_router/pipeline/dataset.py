"""Labeled examples, Bedrock training records, the held-out split, validation and the dataset manifest.

Flow: the labeling shards write :class:`LabeledExample` JSON lines; the prepare step de-duplicates them,
splits off a stratified held-out set (:func:`split_heldout`), writes the training file
(:func:`training_record`, one ``bedrock-conversation-2024`` record per line), checks it against the service
limits (:func:`validate_training_jsonl`) and records what happened in a manifest (:func:`build_manifest`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, NotRequired, TypedDict, Unpack

from search_router.pipeline.queries.mix import largest_remainder
from search_router.pipeline.queries.planning import unseen_template_queries
from search_router.pipeline.queries.query import PRODUCTION, USER, normalize_query
from search_router.pipeline.queries.synthesis import heldout_templates
from search_router.pipeline.queries.user_files import UserQueries
from search_router.shared.answer.decision import ParseSuccess, RoutingDecision
from search_router.shared.answer.formatting import format_answer
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import ChannelSet
from search_router.shared.prompts import student_prompt, teacher_prompt

SCHEMA_VERSION: Final = "bedrock-conversation-2024"
MIN_RECORDS: Final = 100
MAX_RECORDS: Final = 15_000
MAX_FILE_BYTES: Final = 1_000_000_000
TRAINING_SUM_TOLERANCE: Final = 0.01
"""Teacher answers (and training targets) must sum to 1 within this: the reference's rule, strict on purpose."""
MANIFEST_VERSION: Final = 1
MAX_REPORTED_ERRORS: Final = 100

_RECORD_KEYS: Final = frozenset({"schemaVersion", "system", "messages"})
_ROLES: Final = ("user", "assistant")


# ---------------------------------------------------------------------------------------------------------
# Labeled examples
# ---------------------------------------------------------------------------------------------------------
def json_record(line: str, where: str) -> dict[str, Any]:
    """One JSON line of a query record (a labeled example, a training group): an object whose ``query``,
    ``category`` and ``source`` are strings; ``ValueError`` names ``where`` and what is wrong."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(item).__name__}")
    for key in ("query", "category", "source"):
        if not isinstance(item.get(key), str):
            raise ValueError(f"{where}: {key!r} must be a string")
    return item


@dataclass(frozen=True)
class LabeledExample:
    """One query with the teacher's validated weights (channel order) and reasoning. Shards are JSONL of these.
    ``template`` is the synthesizer's template id (:func:`~search_router.pipeline.queries.synthesis.template_id`),
    ``None`` for a user's query; the template-disjoint held-out split groups by it."""

    query: str
    category: str
    source: str
    weights: dict[str, float]
    reasoning: str | None
    template: str | None = None

    @property
    def decision(self) -> RoutingDecision:
        """The weights and reasoning as a :class:`RoutingDecision` (validates the numbers)."""
        return RoutingDecision(dict(self.weights), self.reasoning)

    @property
    def dominant_channel(self) -> str:
        """The highest-weighted channel (first in channel order on a tie)."""
        return max(self.weights, key=self.weights.__getitem__)

    def to_json_line(self) -> str:
        """Compact JSON, no trailing newline (``template`` only when known)."""
        item: dict[str, Any] = {
            "query": self.query,
            "category": self.category,
            "source": self.source,
            "weights": self.weights,
            "reasoning": self.reasoning,
        }
        if self.template is not None:
            item["template"] = self.template
        return json.dumps(item, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json_line(cls, line: str) -> LabeledExample:
        """Parse a line written by :meth:`to_json_line`; ``ValueError`` names what is wrong."""
        item = json_record(line, "labeled example")
        weights = item.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise ValueError("labeled example needs a non-empty 'weights' object")
        reasoning = item.get("reasoning")
        if reasoning is not None and not isinstance(reasoning, str):
            raise ValueError("labeled example 'reasoning' must be a string or null")
        template = item.get("template")
        if template is not None and not isinstance(template, str):
            raise ValueError("labeled example 'template' must be a string or absent")
        example = cls(
            query=item["query"],
            category=item["category"],
            source=item["source"],
            weights=weights,
            reasoning=reasoning,
            template=template,
        )
        example.decision  # noqa: B018 - validates the weights (finite, in [0, 1], summing to 1)
        return example


def read_examples(text: str) -> list[LabeledExample]:
    """All examples of a shard file (blank lines ignored); ``ValueError`` names the first bad line."""
    examples: list[LabeledExample] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            examples.append(LabeledExample.from_json_line(line))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
    return examples


def write_examples(examples: Sequence[LabeledExample]) -> str:
    """JSONL of ``examples``, one per line, newline-terminated."""
    return "".join(example.to_json_line() + "\n" for example in examples)


# ---------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------
def training_record(example: LabeledExample, channels: ChannelSet, *, reasoning: bool = True) -> dict[str, Any]:
    """A ``bedrock-conversation-2024`` record: a compact student prompt as system, the query as the user turn, the
    teacher's canonical JSON as the assistant turn, rendered to match the prompt: weights then reasoning
    (``reasoning=True``) or weights only. An example without reasoning can only be a weights-only record."""
    if reasoning and example.reasoning is None:
        raise ValueError(f"the example {example.query!r} has no reasoning: it can only train the weights-only prompt")
    return {
        "schemaVersion": SCHEMA_VERSION,
        "system": [{"text": student_prompt(channels, reasoning=reasoning)}],
        "messages": [
            {"role": "user", "content": [{"text": example.query}]},
            {
                "role": "assistant",
                "content": [{"text": format_answer(example.decision, channels, with_reasoning=reasoning)}],
            },
        ],
    }


def reasoning_assignment(examples: Sequence[LabeledExample], share: float, *, seed: int) -> list[bool]:
    """Which examples train the weights-and-reasoning prompt (True) and which the weights-only one (False).

    ``round(share * n)`` of the ``n`` examples get the reasoning prompt, drawn with ``seed`` among the examples that
    have a reasoning (the others are weights-only records; when they are too many, fewer get the reasoning prompt).
    Each example appears once, with one of the two prompts, so the file stays within :data:`MAX_RECORDS`.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the reasoning share must be within 0..1, got {share!r}")
    eligible = [index for index, example in enumerate(examples) if example.reasoning is not None]
    wanted = min(len(eligible), round(share * len(examples)))
    chosen = set(random.Random(seed).sample(eligible, wanted))  # noqa: S311 - reproducible, not security
    return [index in chosen for index in range(len(examples))]


def training_jsonl(
    examples: Sequence[LabeledExample], channels: ChannelSet, *, reasoning: Sequence[bool] | None = None
) -> str:
    """The training file: one :func:`training_record` per line, newline-terminated; ``reasoning`` (one flag per
    example, from :func:`reasoning_assignment`) picks each record's prompt (default: every one with reasoning)."""
    flags = [True] * len(examples) if reasoning is None else list(reasoning)
    if len(flags) != len(examples):
        raise ValueError(f"{len(flags)} reasoning flags for {len(examples)} examples")
    return "".join(
        json.dumps(training_record(example, channels, reasoning=flag), ensure_ascii=False, separators=(",", ":")) + "\n"
        for example, flag in zip(examples, flags, strict=True)
    )


def examples_from_training_jsonl(text: str, channels: ChannelSet) -> list[LabeledExample]:
    """The (query, teacher's weights) pairs of the ``bedrock-conversation-2024`` training file PrepareDataset wrote
    (:func:`~search_router.pipeline.dataset.training_jsonl`), read back through the router's answer parser.

    The file has no template ids (Bedrock's format has no field for them), so each query is its own calibration
    group unless :func:`assign_training_groups` gives them from the groups file. ``ValueError`` names the first line
    whose user or assistant turn is missing or whose answer does not parse: that file was validated before it was
    written, so a bad line means it is not the file PrepareDataset wrote."""
    examples: list[LabeledExample] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
            query = messages[0]["content"][0]["text"]
            answer = messages[1]["content"][0]["text"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"training file line {number}: not a user turn then an assistant turn ({exc})") from exc
        parsed = parse_routing_answer(answer, channels)
        if not isinstance(parsed, ParseSuccess):
            raise ValueError(f"training file line {number}: the assistant turn does not parse ({parsed})")
        examples.append(
            LabeledExample(
                query=query,
                category="",
                source="training-file",
                weights=dict(parsed.decision.weights),
                reasoning=parsed.decision.reasoning,
            )
        )
    return examples


@dataclass(frozen=True)
class TrainingGroup:
    """One line of the training file's groups file (``train-groups.jsonl``, :func:`training_groups_jsonl`): the
    query of the training line at the same position and where it came from — the synthesizer's ``template`` id
    (``None`` for a user's query, or when unknown), its ``category`` and ``source``. The planner's facts, nothing
    the teacher answered: the training file itself stays exactly the ``bedrock-conversation-2024`` format, which
    allows no extra fields, and the micro-router reads its calibration groups from here."""

    query: str
    template: str | None
    category: str
    source: str

    @classmethod
    def of(cls, example: LabeledExample) -> TrainingGroup:
        return cls(query=example.query, template=example.template, category=example.category, source=example.source)


def training_groups_jsonl(examples: Sequence[LabeledExample]) -> str:
    """The groups file of :func:`training_jsonl` for the same ``examples``: one :class:`TrainingGroup` per line, in
    the same order, newline-terminated (``template`` is ``null`` when unknown)."""
    return "".join(
        json.dumps(asdict(TrainingGroup.of(example)), ensure_ascii=False, separators=(",", ":")) + "\n"
        for example in examples
    )


def training_groups_summary(examples: Sequence[LabeledExample]) -> dict[str, int]:
    """The manifest's ``train_groups``: the groups file's ``lines`` (one per training record), how many carry a
    template id (``with_template``) and how many not (``without_template``: user queries), and the distinct
    ``templates`` among them."""
    templates = [example.template for example in examples if example.template is not None]
    return {
        "lines": len(examples),
        "with_template": len(templates),
        "without_template": len(examples) - len(templates),
        "templates": len(set(templates)),
    }


def read_training_groups(text: str) -> list[TrainingGroup]:
    """The lines of a groups file (:func:`training_groups_jsonl`; blank lines ignored, like the training file's
    reader). ``ValueError`` names the first line that is not a group: not JSON, not an object, a ``query``,
    ``category`` or ``source`` that is not a string, or a ``template`` that is neither a string nor null."""
    groups: list[TrainingGroup] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        item = json_record(line, f"groups file line {number}")
        template = item.get("template")
        if template is not None and not isinstance(template, str):
            raise ValueError(f"groups file line {number}: 'template' must be a string or null")
        groups.append(TrainingGroup(item["query"], template, item["category"], item["source"]))
    return groups


def heldout_record(example: LabeledExample, split: str | None = None) -> dict[str, Any]:
    """An evaluation line: the query, its category and the teacher's weights as reference (reasoning stripped),
    and its held-out ``split`` (:data:`HELDOUT_SPLITS`) when given."""
    record: dict[str, Any] = {"query": example.query, "category": example.category, "reference": dict(example.weights)}
    if split is not None:
        record["split"] = split
    return record


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingFileReport:
    """What :func:`validate_training_jsonl` found. ``errors`` holds at most :data:`MAX_REPORTED_ERRORS`
    messages; ``error_count`` counts them all."""

    records: int
    errors: list[str]
    error_count: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.ok:
            return f"{self.records} records, {self.bytes} bytes: valid"
        shown = "; ".join(self.errors[:5])
        more = f" (+{self.error_count - 5} more)" if self.error_count > 5 else ""
        return f"{self.records} records, {self.error_count} errors: {shown}{more}"


def validate_training_jsonl(text: str, channels: ChannelSet) -> TrainingFileReport:
    """Check a training file against the distillation data rules, every line.

    Each record: a JSON object with only ``schemaVersion`` (exactly :data:`SCHEMA_VERSION`), optional ``system``
    (a list of ``{"text": non-empty}``) and ``messages`` (non-empty; roles alternate ``user``, ``assistant``,
    ... starting with ``user``; each message has exactly one content item with a non-empty ``text`` and nothing
    else: text only). Every assistant text must parse into valid weights for ``channels`` (sum within
    :data:`TRAINING_SUM_TOLERANCE`). The file: :data:`MIN_RECORDS`..:data:`MAX_RECORDS` records, at most
    :data:`MAX_FILE_BYTES` bytes. Errors name the line number.
    """
    errors: list[str] = []
    error_count = 0

    def error(message: str) -> None:
        nonlocal error_count
        error_count += 1
        if len(errors) < MAX_REPORTED_ERRORS:
            errors.append(message)

    size = len(text.encode("utf-8"))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    records = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            error(f"line {number}: blank line")
            continue
        records += 1
        for problem in _record_problems(line, channels):
            error(f"line {number}: {problem}")
    if records < MIN_RECORDS:
        error(f"file has {records} records; Bedrock distillation needs at least {MIN_RECORDS}")
    if records > MAX_RECORDS:
        error(f"file has {records} records; Bedrock distillation accepts at most {MAX_RECORDS}")
    if size > MAX_FILE_BYTES:
        error(f"file has {size} bytes; the limit is {MAX_FILE_BYTES}")
    return TrainingFileReport(records=records, errors=errors, error_count=error_count, bytes=size)


def _record_problems(line: str, channels: ChannelSet) -> list[str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return [f"not valid JSON ({exc.msg})"]
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    problems: list[str] = []
    unknown = sorted(set(record) - _RECORD_KEYS)
    if unknown:
        problems.append(f"unexpected key(s) {unknown}; allowed: {sorted(_RECORD_KEYS)}")
    if record.get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"schemaVersion must be {SCHEMA_VERSION!r}, got {record.get('schemaVersion')!r}")
    if "system" in record:
        problems += _system_problems(record["system"])
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("messages must be a non-empty list")
        return problems
    for index, message in enumerate(messages):
        problems += _message_problems(index, message, channels)
    return problems


def _system_problems(system: Any) -> list[str]:
    if not isinstance(system, list):
        return ['system must be a list of {"text": ...} objects']
    problems = []
    for index, block in enumerate(system):
        if not isinstance(block, dict) or set(block) != {"text"}:
            problems.append(f"system[{index}] must be an object with only a 'text' key")
        elif not isinstance(block["text"], str) or not block["text"].strip():
            problems.append(f"system[{index}].text must be a non-empty string")
    return problems


def _message_problems(index: int, message: Any, channels: ChannelSet) -> list[str]:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        return [f"{where} must be an object"]
    expected = _ROLES[index % 2]
    problems = []
    unknown = sorted(set(message) - {"role", "content"})
    if unknown:
        problems.append(f"{where} has unexpected key(s) {unknown}")
    role = message.get("role")
    if role != expected:
        problems.append(f"{where}.role must be {expected!r} (roles alternate, starting with 'user'), got {role!r}")
    content = message.get("content")
    if not isinstance(content, list) or len(content) != 1:
        count = len(content) if isinstance(content, list) else type(content).__name__
        problems.append(f"{where}.content must be a list with exactly one item, got {count}")
        return problems
    item = content[0]
    if not isinstance(item, dict) or set(item) != {"text"}:
        keys = sorted(item) if isinstance(item, dict) else type(item).__name__
        problems.append(f'{where}.content[0] must be text only ({{"text": ...}}), got {keys}')
        return problems
    text = item["text"]
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}.content[0].text must be a non-empty string")
        return problems
    if role == "assistant":
        parsed = parse_routing_answer(text, channels, sum_tolerance=TRAINING_SUM_TOLERANCE)
        if not parsed.ok:
            problems.append(f"{where} assistant answer is not valid weights: {parsed.reason.value}: {parsed.detail}")
    return problems


# ---------------------------------------------------------------------------------------------------------
# Held-out split
# ---------------------------------------------------------------------------------------------------------
def dedupe_examples(examples: Sequence[LabeledExample]) -> tuple[list[LabeledExample], int]:
    """``examples`` without repeats by :func:`normalize_query` (first kept), and how many were removed."""
    unique: list[LabeledExample] = []
    seen: set[str] = set()
    for example in examples:
        key = normalize_query(example.query)
        if key in seen:
            continue
        seen.add(key)
        unique.append(example)
    return unique, len(examples) - len(unique)


def split_heldout(
    examples: Sequence[LabeledExample], n_heldout: int, *, seed: int
) -> tuple[list[LabeledExample], list[LabeledExample], int]:
    """``(train, heldout, duplicates_removed)``: de-duplicate, then hold out a stratified sample.

    Duplicates (by :func:`normalize_query`, first kept) are removed first so that no query is in both sets.
    The held-out size per category is proportional to the category's size (largest remainder); when
    ``n_heldout`` allows, every category with at least two examples gets at least one held-out example (taken
    from the category with the most to spare). Deterministic for ``seed``; both lists keep input order.
    ``n_heldout`` larger than the number of unique examples holds out everything.
    """
    if n_heldout < 0:
        raise ValueError(f"n_heldout must be >= 0, got {n_heldout}")
    unique, duplicates = dedupe_examples(examples)
    n_heldout = min(n_heldout, len(unique))
    by_category: dict[str, list[int]] = {}
    for index, example in enumerate(unique):
        by_category.setdefault(example.category, []).append(index)
    names = sorted(by_category)
    sizes = {name: len(by_category[name]) for name in names}
    allocation = _stratified_allocation(n_heldout, sizes)
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    chosen: set[int] = set()
    for name in names:
        chosen.update(rng.sample(by_category[name], allocation[name]))
    train = [example for index, example in enumerate(unique) if index not in chosen]
    heldout = [example for index, example in enumerate(unique) if index in chosen]
    return train, heldout, duplicates


SEEN: Final = "seen"
"""A held-out query drawn from a template that training also uses (new words in a known pattern)."""
UNSEEN_TEMPLATE: Final = "unseen_template"
"""A held-out query from a template (and vocabulary) that no training example comes from: the hardest split."""
USER_SPLIT: Final = "user"
"""A held-out query from the user's own file."""
PRODUCTION_SPLIT: Final = "production"
"""A captured production query (source ``"production"``): always held out, beyond ``eval_examples``."""
HELDOUT_SPLITS: Final = (SEEN, UNSEEN_TEMPLATE, USER_SPLIT, PRODUCTION_SPLIT)


@dataclass(frozen=True)
class HeldOutSplit:
    """What :func:`split_heldout_disjoint` decided. ``splits`` is parallel to ``heldout``; ``withheld`` counts
    the examples of the unseen templates beyond the held-out share: neither trained on (that would make the
    templates seen) nor held out, so ``train + heldout + withheld + duplicates`` is every example given."""

    train: list[LabeledExample]
    heldout: list[LabeledExample]
    splits: list[str]
    duplicates: int
    withheld: int
    unseen_templates: tuple[str, ...]

    def per_split(self) -> dict[str, int]:
        """Held-out records by split, every split named (0 when empty)."""
        counts = dict.fromkeys(HELDOUT_SPLITS, 0)
        for split in self.splits:
            counts[split] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        """The manifest's ``heldout_split``."""
        return {
            "per_split": self.per_split(),
            "withheld_unseen_template": self.withheld,
            "unseen_templates": list(self.unseen_templates),
        }


def split_heldout_disjoint(
    examples: Sequence[LabeledExample],
    n_heldout: int,
    *,
    seed: int,
    unseen_templates: frozenset[str] = frozenset(),
    n_unseen: int = 0,
) -> HeldOutSplit:
    """The held-out set with a template-disjoint part: up to ``n_unseen`` examples from the ``unseen_templates``
    (the synthesizer's :func:`~search_router.pipeline.queries.synthesis.heldout_templates`, which PlanQueries
    drew that many queries from), and :func:`split_heldout`'s stratified sample of the other examples for the
    rest of ``n_heldout`` (the user's queries among them, split ``"user"``). Every production query (source
    ``"production"``: a scheduled run's sample of captured traffic) is held out too, beyond ``n_heldout``, in
    split ``"production"``: never trained on.

    No training example comes from an unseen template: should there be more of their examples than
    ``n_unseen``, the extra ones are ``withheld`` (counted, not trained on). Deterministic for ``seed``; every
    list keeps input order.
    """
    if n_heldout < 0:
        raise ValueError(f"n_heldout must be >= 0, got {n_heldout}")
    if n_unseen < 0:
        raise ValueError(f"n_unseen must be >= 0, got {n_unseen}")
    everything, duplicates = dedupe_examples(examples)
    production = [example for example in everything if example.source == PRODUCTION]
    unique = [example for example in everything if example.source != PRODUCTION]
    n_heldout = min(n_heldout, len(unique))
    pool = [index for index, example in enumerate(unique) if _is_unseen(example, unseen_templates)]
    n_unseen = min(n_unseen, len(pool), n_heldout)
    rng = random.Random(f"unseen:{seed}")  # noqa: S311 - reproducible sampling, not security
    unseen = set(rng.sample(pool, n_unseen))
    in_pool = set(pool)
    rest = [example for index, example in enumerate(unique) if index not in in_pool]
    train, stratified, _ = split_heldout(rest, n_heldout - n_unseen, seed=seed)
    chosen = {normalize_query(example.query) for example in stratified}
    heldout = [
        example
        for index, example in enumerate(unique)
        if index in unseen or (index not in in_pool and normalize_query(example.query) in chosen)
    ] + production
    return HeldOutSplit(
        train=train,
        heldout=heldout,
        splits=[_split_of(example, unseen_templates) for example in heldout],
        duplicates=duplicates,
        withheld=len(pool) - n_unseen,
        unseen_templates=tuple(sorted({unique[index].template or "" for index in unseen})),
    )


def split_heldout_for_run(
    examples: Sequence[LabeledExample],
    channels: ChannelSet,
    n_heldout: int,
    *,
    seed: int,
    unseen_template_share: float,
) -> HeldOutSplit:
    """:func:`split_heldout_disjoint` with the templates PlanQueries reserved for the same ``channels``, ``seed``
    and share (:func:`~search_router.pipeline.queries.synthesis.heldout_templates`)."""
    n_unseen = unseen_template_queries(n_heldout, unseen_template_share)
    return split_heldout_disjoint(
        examples,
        n_heldout,
        seed=seed,
        unseen_templates=heldout_templates(channels, seed=seed, wanted=n_unseen),
        n_unseen=n_unseen,
    )


def _is_unseen(example: LabeledExample, unseen_templates: frozenset[str]) -> bool:
    return example.source != USER and example.template is not None and example.template in unseen_templates


def _split_of(example: LabeledExample, unseen_templates: frozenset[str]) -> str:
    if example.source == USER:
        return USER_SPLIT
    if example.source == PRODUCTION:
        return PRODUCTION_SPLIT
    return UNSEEN_TEMPLATE if _is_unseen(example, unseen_templates) else SEEN


def _stratified_allocation(n: int, sizes: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder shares of ``n`` by size; then one for each category of >= 2 that got none, when the
    categories of >= 2 are no more than ``n``."""
    allocation = largest_remainder(n, {name: float(size) for name, size in sizes.items()})
    eligible = [name for name, size in sizes.items() if size >= 2]
    if len(eligible) > n:
        return allocation
    for name in eligible:
        if allocation[name] > 0:
            continue
        # Take from the category whose allocation is furthest above its minimum of one (ties: larger share).
        donor = max(
            (other for other in sizes if allocation[other] > (1 if other in eligible else 0)),
            key=lambda other: (allocation[other], sizes[other]),
        )
        allocation[donor] -= 1
        allocation[name] = 1
    return allocation


# ---------------------------------------------------------------------------------------------------------
# Manifest and size check
# ---------------------------------------------------------------------------------------------------------
class DatasetCounts(TypedDict):
    """What became of the requested queries, the numbers :class:`DatasetTooSmall` explains itself with (a count
    left out is 0)."""

    requested: int
    labeled: int
    invalid: int
    duplicates: int
    errors: NotRequired[int]
    unlabeled: NotRequired[int]
    withheld: NotRequired[int]
    calls: NotRequired[int]
    throttled: NotRequired[int]
    unlabeled_throttled: NotRequired[int]
    errors_throttled: NotRequired[int]
    unlabeled_failed_shards: NotRequired[int]
    failed_shards: NotRequired[int]


@dataclass(kw_only=True, eq=False, repr=False)
class DatasetTooSmall(Exception):
    """Too few valid examples to train; the message gives the numbers that explain why (and says so when the
    teacher's throttling was the reason). The fields are :class:`DatasetCounts`, ``valid`` and ``minimum``."""

    valid: int
    requested: int
    labeled: int
    invalid: int
    duplicates: int
    errors: int = 0
    unlabeled: int = 0
    withheld: int = 0
    minimum: int = MIN_RECORDS
    calls: int = 0
    throttled: int = 0
    unlabeled_throttled: int = 0
    errors_throttled: int = 0
    unlabeled_failed_shards: int = 0
    failed_shards: int = 0

    def __post_init__(self) -> None:
        super().__init__(self._message())

    def _message(self) -> str:
        details = (
            f"requested {self.requested}, labeled {self.labeled}, invalid {self.invalid}, duplicates {self.duplicates}"
        )
        if self.errors:
            details += f", errors {self.errors}"
        if self.withheld:
            details += f", withheld (unseen templates) {self.withheld}"
        if self.unlabeled:
            details += f", unlabeled {self.unlabeled}"
            if self.unlabeled_failed_shards:
                details += (
                    f" ({self.unlabeled_failed_shards} of them in {self.failed_shards} failed shard"
                    f"{'' if self.failed_shards == 1 else 's'}: shard_failed)"
                )
        message = (
            f"only {self.valid} valid training examples ({details}); Bedrock distillation needs at least {self.minimum}"
        )
        if self.throttling_was_the_reason:
            calls, throttled = self.calls, self.throttled
            share = f" ({throttled / calls:.0%} of {calls} calls)" if calls else ""
            message += (
                f". The teacher's throttling was the reason: {throttled} throttled responses{share}; "
                f"{self.errors_throttled} queries gave up after every retry was throttled, and "
                f"{self.unlabeled_throttled} were left unlabeled because the teacher answered nothing for the whole "
                "throttle budget. Raise the teacher's on-demand quota (Service Quotas, Amazon Bedrock: requests and "
                "tokens per minute for the teacher; `python -m cli doctor` shows them) or lower 'concurrency' x "
                "'threads' in the execution input"
            )
        return message

    @property
    def throttling_was_the_reason(self) -> bool:
        """Throttling (retries that ran out, shards that gave up) lost more queries than every other cause."""
        lost = self.unlabeled_throttled + self.errors_throttled
        others = (
            self.invalid
            + (self.errors - self.errors_throttled)
            + self.duplicates
            + self.unlabeled_failed_shards
            + self.withheld
        )
        return lost > 0 and lost >= others


class TooManyShardsFailed(Exception):
    """More labeling shards failed after their retries than the run tolerates (``max_failed_shards_percent``);
    the message gives the numbers and the errors the failed shards recorded."""

    def __init__(
        self,
        *,
        failed: int,
        planned: int,
        max_percent: int,
        queries_lost: int,
        kept: int = 0,
        errors: Mapping[str, int] | None = None,
    ) -> None:
        self.failed = failed
        self.planned = planned
        self.max_percent = max_percent
        self.queries_lost = queries_lost
        self.kept = kept
        self.errors = dict(errors or {})
        share = failed / planned if planned else 0.0
        causes = ", ".join(f"{code} ({n})" for code, n in sorted(self.errors.items(), key=lambda kv: (-kv[1], kv[0])))
        message = (
            f"{failed} of {planned} labeling shards ({share:.0%}) failed after their retries; the run tolerates "
            f"{max_percent}% (max_failed_shards_percent). {queries_lost} queries were left unlabeled (shard_failed)"
        )
        if kept:
            message += f"; {kept} labeled examples were kept from the failed shards' checkpoints"
        if causes:
            message += f". Last errors of the failed shards: {causes}"
        super().__init__(message)


def too_many_failed_shards(failed: int, planned: int, max_percent: float) -> bool:
    """Step Functions' rule for a Map's ``ToleratedFailurePercentage``: the share of failed items must not exceed
    the percentage (``failed / planned * 100 > max_percent`` fails; 100 tolerates everything, 0 nothing)."""
    return planned > 0 and failed * 100 > max_percent * planned


def ensure_trainable(train_records: int, **counts: Unpack[DatasetCounts]) -> None:
    """Raise :class:`DatasetTooSmall` when ``train_records`` is below :data:`MIN_RECORDS`."""
    if train_records < MIN_RECORDS:
        raise DatasetTooSmall(valid=train_records, **counts)


def sha256_text(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text (prompt fingerprints in the manifest)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _split_counts(
    train: Sequence[LabeledExample], heldout: Sequence[LabeledExample], key: str, names: Sequence[str] = ()
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {name: {"train": 0, "heldout": 0} for name in names}
    for split, examples in (("train", train), ("heldout", heldout)):
        for example in examples:
            value = example.dominant_channel if key == "dominant" else getattr(example, key)
            counts.setdefault(value, {"train": 0, "heldout": 0})[split] += 1
    return counts


def _counter_dict(counts: Mapping[str, int]) -> dict[str, Any]:
    by = {str(key): int(value) for key, value in sorted(counts.items(), key=lambda item: (-item[1], item[0]))}
    return {"total": sum(by.values()), "by": by}


def build_manifest(
    *,
    channels: ChannelSet,
    requested: int,
    planned: int,
    labeled: int,
    invalid: Mapping[str, int],
    errors: Mapping[str, int],
    duplicates: int,
    unlabeled: int,
    train: Sequence[LabeledExample],
    heldout: Sequence[LabeledExample],
    teacher_model_id: str,
    student_model_id: str,
    seed: int | None = None,
    user_queries: UserQueries | Mapping[str, Any] | None = None,
    labeling: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dataset manifest (JSON-serialisable), written next to the training and held-out files.

    Arguments: ``requested`` queries asked for; ``planned`` queries actually planned (fewer when the sources ran
    out); ``labeled`` valid teacher answers; ``invalid`` rejected answers by parse-failure reason; ``errors``
    failed calls by error code; ``duplicates`` examples removed by de-duplication; ``unlabeled`` queries never
    labeled (by reason in ``labeling.unlabeled_by_reason``: ``deadline``, ``throttled``, ``shard_failed``);
    ``train`` / ``heldout`` the final splits; ``user_queries`` the user file's
    :class:`~search_router.pipeline.queries.user_files.UserQueries` (or its stats); ``labeling`` optional labeling
    stats (tokens, retries, elapsed, shards planned / failed / resumed); ``extra`` any further fields (merged last).

    Layout::

        {"manifestVersion", "schemaVersion", "channels", "seed",
         "requested", "planned", "shortfall", "labeled",
         "invalid": {"total", "by": {reason: n}}, "errors": {"total", "by": {code: n}},
         "duplicates", "unlabeled", "train_records", "heldout_records",
         "per_category": {category: {"train", "heldout"}},
         "per_dominant_channel": {channel: {"train", "heldout"}},
         "per_source": {source: {"train", "heldout"}},
         "models": {"teacher", "student"},
         "prompts": {"teacher": {"sha256", "chars"}, "student": {"sha256", "chars", "text"},
                     "student_weights_only": {"sha256", "chars", "text"}},
         "limits": {"min_records", "max_records"},
         "user_queries"?: {...}, "labeling"?: {...}}
    """
    teacher = teacher_prompt(channels)
    student = student_prompt(channels)
    weights_only = student_prompt(channels, reasoning=False)
    manifest: dict[str, Any] = {
        "manifestVersion": MANIFEST_VERSION,
        "schemaVersion": SCHEMA_VERSION,
        "channels": list(channels.names),
        "seed": seed,
        "requested": requested,
        "planned": planned,
        "shortfall": max(0, requested - planned),
        "labeled": labeled,
        "invalid": _counter_dict(invalid),
        "errors": _counter_dict(errors),
        "duplicates": duplicates,
        "unlabeled": unlabeled,
        "train_records": len(train),
        "heldout_records": len(heldout),
        "per_category": _split_counts(train, heldout, "category"),
        "per_dominant_channel": _split_counts(train, heldout, "dominant", channels.names),
        "per_source": _split_counts(train, heldout, "source"),
        "models": {"teacher": teacher_model_id, "student": student_model_id},
        "prompts": {
            "teacher": {"sha256": sha256_text(teacher), "chars": len(teacher)},
            "student": {"sha256": sha256_text(student), "chars": len(student), "text": student},
            "student_weights_only": {
                "sha256": sha256_text(weights_only),
                "chars": len(weights_only),
                "text": weights_only,
            },
        },
        "limits": {"min_records": MIN_RECORDS, "max_records": MAX_RECORDS},
    }
    if user_queries is not None:
        stats = user_queries.to_stats() if isinstance(user_queries, UserQueries) else dict(user_queries)
        manifest["user_queries"] = stats
    if labeling is not None:
        manifest["labeling"] = dict(labeling)
    if extra:
        manifest.update(extra)
    return json.loads(json.dumps(manifest))  # a plain, JSON-safe copy
