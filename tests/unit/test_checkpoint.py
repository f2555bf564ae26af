"""A labeling shard's checkpoint (search_router.pipeline.checkpoint): parts, merging, flushing, and exact counts across
resumes."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from typing import Any

import pytest

from search_router.adapters.converse import BedrockConverse
from search_router.contract.layout import ShardKeys, part_number
from search_router.pipeline.checkpoint import (
    Checkpoint,
    ShardProgress,
    outcome_from_record,
    outcome_record,
)
from search_router.pipeline.dataset import LabeledExample
from search_router.pipeline.labeling import (
    ERROR,
    INVALID,
    LABELED,
    UNLABELED,
    LabelingUsage,
    QueryOutcome,
    label_queries,
)
from search_router.pipeline.queries.synthesis import synthesize_queries
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.bedrock.values import ConverseRequest, FakeError
from simulation.bedrock_fake import BedrockFake
from tests.threads import from_threads

TEACHER = "us.amazon.nova-pro-v1:0"
VALID = '{"visual":0.6,"audio":0.1,"transcription":0.1,"metadata":0.2,"reasoning":"Mostly scenery."}'
WEIGHTS = {"visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.2}


def labeled(query: str) -> QueryOutcome:
    example = LabeledExample(query=query, category="user", source="user", weights=dict(WEIGHTS), reasoning="r")
    return QueryOutcome(LABELED, query=query, example=example)


def part(number: int, outcomes: list[tuple[int, QueryOutcome]], **usage: int) -> dict[str, Any]:
    return {
        "version": 1,
        "shard": 0,
        "invocation": f"inv{number}",
        "part": number,
        "outcomes": [outcome_record(index, outcome) for index, outcome in outcomes],
        "usage": {"calls": 0, **usage},
    }


# ------------------------------------------------------------------------------------------------ layout
def test_the_layout_of_a_shard() -> None:
    keys = ShardKeys("tmp/run-1/", 3)
    assert keys.examples == "tmp/run-1/labeled/shard-00003.jsonl"
    assert keys.stats == "tmp/run-1/labeled/shard-00003.stats.json"
    assert keys.error == "tmp/run-1/labeled/shard-00003.error.json"
    assert keys.part(2, "c0ffee-12ab-34cd") == "tmp/run-1/labeled/shard-00003/part-00002-c0ffee12ab34.json"
    listing = [
        "tmp/run-1/labeled/shard-00003/part-00010-b.json",
        "tmp/run-1/labeled/shard-00003/part-00002-a.json",
        "tmp/run-1/labeled/shard-00003.stats.json",
        "tmp/run-1/labeled/shard-00031/part-00001-a.json",  # another shard
    ]
    assert keys.part_keys(listing) == [listing[1], listing[0]]  # by part number, not by name
    assert part_number(listing[0]) == 10
    # the CLI and the simulation count finished shards by ".stats.json": a part never ends like that
    assert not keys.part(1, "x").endswith(".stats.json")


# ------------------------------------------------------------------------------------------------ parts
def test_every_final_outcome_survives_a_part_round_trip() -> None:
    outcomes = [
        labeled("sunset"),
        QueryOutcome(INVALID, query="rain", reason="weights_sum", detail="sum 1.2", text='{"visual": 1.2}'),
        QueryOutcome(ERROR, query="drums", code="ValidationException", message="bad"),
    ]
    for index, outcome in enumerate(outcomes):
        record = json.loads(json.dumps(outcome_record(index, outcome)))
        assert record["i"] == index
        assert outcome_from_record(record) == outcome
    with pytest.raises(ValueError, match="only final outcomes"):
        outcome_record(0, QueryOutcome(UNLABELED, reason="deadline"))
    with pytest.raises(ValueError, match="unknown outcome kind"):
        outcome_from_record({"i": 0, "kind": "maybe"})


def test_merging_counts_each_query_once_and_sums_what_every_call_cost() -> None:
    texts = ["q0", "q1", "q2", "q3", "q4"]
    throttled_out = QueryOutcome(ERROR, query="q4", code="ThrottlingException")
    parts = [
        part(
            1,
            [(0, labeled("q0")), (1, QueryOutcome(ERROR, query="q1", code="ModelErrorException")), (4, throttled_out)],
            calls=3,
        ),
        # an overlapping invocation labeled q0 again, and q2; both calls were paid for
        part(2, [(0, labeled("q0")), (2, labeled("q2"))], calls=2, input_tokens=40),
        # a record that does not match the plan at its position, and one out of range: never counted; q4, which
        # had run out of throttling retries, was asked again by a resumed invocation and labeled this time
        part(3, [(3, labeled("not q3")), (9, labeled("q9")), (4, labeled("q4"))], calls=3),
    ]
    progress = ShardProgress.merge(parts, texts)
    assert sorted(progress.outcomes) == [0, 1, 2, 4]
    assert progress.pending(5) == [1, 3]  # never answered: the error is asked again, q3 was never done
    assert progress.ignored == 3
    assert progress.usage.calls == 8 and progress.usage.input_tokens == 40
    assert progress.last_part == 3 and progress.invocations == ["inv1", "inv2", "inv3"]
    counts = progress.counts()
    assert counts["labeled"] == 3 and counts["errors"] == {"ModelErrorException": 1} and counts["invalid"] == {}
    assert [e.query for e in progress.examples()] == ["q0", "q2", "q4"]
    # an answered outcome is final: a later error for it changes nothing
    progress.add(0, QueryOutcome(ERROR, query="q0", code="ThrottlingException"))
    assert progress.outcomes[0].kind == LABELED


def test_a_part_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        ShardProgress.merge([{**part(1, []), "version": 99}])


# ------------------------------------------------------------------------------------------------ flushing
def test_parts_are_written_every_n_outcomes_and_every_few_seconds_then_on_flush() -> None:
    written: list[tuple[int, dict[str, Any]]] = []
    now = [0.0]
    checkpoint = Checkpoint(
        shard=0, invocation="inv", write=lambda n, p: written.append((n, p)), every=3, every_s=10, clock=lambda: now[0]
    )
    for index in range(7):
        checkpoint.record(index, labeled(f"q{index}"), LabelingUsage(calls=index + 1))
    assert [n for n, _ in written] == [1, 2]  # after 3 and 6 outcomes
    now[0] = 11.0
    checkpoint.record(7, labeled("q7"), LabelingUsage(calls=9))  # 10 s since the last part: written now
    assert [len(p["outcomes"]) for _, p in written] == [3, 3, 2]
    checkpoint.flush(LabelingUsage(calls=12, input_tokens=5))  # only the usage is new
    assert [n for n, _ in written] == [1, 2, 3, 4]
    assert written[-1][1]["outcomes"] == [] and written[-1][1]["usage"]["calls"] == 3
    # the usage of the parts adds up to the invocation's, whatever the part boundaries
    assert sum(p["usage"]["calls"] for _, p in written) == 12
    checkpoint.flush()  # nothing new: no empty part
    assert len(written) == 4


def test_a_failed_write_loses_nothing_and_flush_reports_it() -> None:
    attempts: list[int] = []
    failing = [True]

    def write(number: int, _: dict[str, Any]) -> None:
        attempts.append(number)
        if failing[0]:
            raise OSError("S3 is away")

    checkpoint = Checkpoint(shard=0, invocation="inv", write=write, every=2)
    for index in range(3):
        checkpoint.record(index, labeled(f"q{index}"), LabelingUsage(calls=index + 1))
    assert isinstance(checkpoint.write_error, OSError)
    with pytest.raises(OSError, match="S3 is away"):
        checkpoint.flush()
    failing[0] = False
    parts: list[dict[str, Any]] = []
    checkpoint._write = lambda number, p: parts.append(p)
    checkpoint.flush()
    assert [r["i"] for r in parts[0]["outcomes"]] == [0, 1, 2] and checkpoint.write_error is None


def test_outcomes_recorded_from_many_threads_are_written_once_each_in_order() -> None:
    parts: list[dict[str, Any]] = []
    checkpoint = Checkpoint(shard=0, invocation="inv", write=lambda n, p: parts.append(p), every=7)

    def record(index: int) -> None:
        checkpoint.record(index, labeled(f"q{index}"), LabelingUsage(calls=index))

    from_threads(record, 1000)
    checkpoint.flush()
    written = [r["i"] for p in parts for r in p["outcomes"]]
    assert sorted(written) == list(range(1000))
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))


# ------------------------------------------------------------------------------------------------ with the labeler
def test_a_shard_stopped_by_its_deadline_resumes_without_asking_again_and_counts_stay_exact(
    bedrock: BedrockFake,
) -> None:
    # Given a shard of 60 queries whose teacher answers invalid JSON for some, fails some, labels the rest
    items = synthesize_queries(DEFAULT_CHANNELS, 60, seed=5)
    texts = [q.text for q in items]
    bad = set(texts[::10])
    broken = set(texts[5::20])
    answered: Counter[str] = Counter()
    now = [0.0]
    lock = threading.Lock()

    def responder(request: ConverseRequest) -> Any:
        with lock:
            now[0] += 1.0  # one virtual second per call
            answered[request.user_text] += 1
        if request.user_text in broken:
            return FakeError("ModelErrorException", "the model broke")
        return "not json" if request.user_text in bad else VALID

    bedrock.responder = responder
    parts: list[dict[str, Any]] = []

    def invocation(deadline: float) -> tuple[Any, Checkpoint, list[int]]:
        progress = ShardProgress.merge(parts, texts)
        pending = progress.pending(len(items))
        checkpoint = Checkpoint(
            shard=0,
            invocation=f"inv{len(parts)}",
            write=lambda n, p: parts.append(p),
            first_part=progress.last_part + 1,
        )
        result = label_queries(
            [items[i] for i in pending],
            teacher=BedrockConverse(bedrock.runtime),
            model_id=TEACHER,
            channels=DEFAULT_CHANNELS,
            threads=4,
            deadline=deadline,
            clock=lambda: now[0],
            sleep=lambda _: None,
            rng=random.Random(0),
            on_outcome=lambda position, outcome, usage: checkpoint.record(pending[position], outcome, usage),
        )
        checkpoint.flush(result.usage)
        return result, checkpoint, pending

    # When the first invocation runs out of time, and a second one resumes from the parts
    first, _, _ = invocation(deadline=30.0)
    first_parts = len(parts)
    first_calls = Counter(answered)
    assert first.unlabeled_by_reason["deadline"] > 0
    second, _, pending = invocation(deadline=10_000.0)
    # Then no query that reached a final outcome was asked again ...
    progress = ShardProgress.merge(parts, texts)
    # the second asked only about what was left and what had failed
    assert len(pending) == first.unlabeled_by_reason["deadline"] + first.errors_total
    # a query the first invocation got an answer for (labeled, or invalid twice) is never asked again; every other
    # one (left at the deadline, or failed: asked again) gets exactly its usual calls (an invalid answer is asked
    # twice by design)
    before = ShardProgress.merge(parts[:first_parts], texts)
    answered_first = {o.query for o in before.outcomes.values() if o.answered}
    assert any(o.kind == ERROR for o in before.outcomes.values())  # some failed in the first invocation
    second_calls = answered - first_calls
    for text in texts:
        expected = 0 if text in answered_first else (2 if text in bad - broken else 1)
        assert second_calls[text] == expected, text
    # ... every query has exactly one outcome, and the counts add up to the shard
    counts = progress.counts()
    assert progress.done == 60
    assert {texts[i] for i in progress.pending(60)} == broken  # only errors would be asked again
    assert counts["labeled"] + counts["invalid_total"] + counts["errors_total"] == 60
    assert counts["invalid_total"] == len(bad - broken) and counts["errors"] == {"ModelErrorException": len(broken)}
    assert counts["labeled"] == 60 - len(bad | broken)
    # and the calls of both invocations are all in the parts' usage
    assert counts["calls"] == first.calls + second.calls == sum(answered.values())
