"""The evaluation Map runs min(candidates, the run's ``evaluation_concurrency``) evaluations at once.

Its ``MaxConcurrencyPath`` reads the setting from the run; moto's interpreter starts that many workers for an
inline Map, so how many EvaluateCandidate invocations overlap shows what the deployed definition asks for.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from search_router.pipeline.cascade import CASCADE_CANDIDATE, MICRO_CANDIDATE
from simulation.bedrock_fake import BedrockFake
from simulation.harness import PipelineHarness
from simulation.synth import Synthesized
from tests.workflow.conftest import FAST_POLLING, SMALL_STACK, running
from tests.workflow.test_evaluation_and_promotion import BASE_STUDENT, BASELINE, scripted_routers

CANDIDATES = 4  # cdk.json's eval_candidates: distilled, distilled-weights, base-student, baseline
# The most candidates a stack may have (eval_candidates: 1..6): more than the Map's old fixed MaxConcurrency of 3.
SIX_CANDIDATES = [
    {"name": "distilled", "model": "distilled", "prompt_kind": "student"},
    {"name": "base-student", "model": BASE_STUDENT, "prompt_kind": "student"},
    {"name": "base-student-teacher-prompt", "model": BASE_STUDENT, "prompt_kind": "teacher"},
    {"name": "baseline", "model": BASELINE, "prompt_kind": "teacher"},
    {"name": "baseline-student-prompt", "model": BASELINE, "prompt_kind": "student"},
    {"name": "baseline-again", "model": BASELINE, "prompt_kind": "teacher"},
]


@pytest.fixture(scope="module")
def synthesized_six(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    six = {**FAST_POLLING, **SMALL_STACK, "eval_candidates": SIX_CANDIDATES}
    return Synthesized(tmp_path_factory.mktemp("workflow-six-cdk-out"), six)


@pytest.fixture
def six_candidates(
    synthesized_six: Synthesized, bedrock: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PipelineHarness]:
    yield from running(synthesized_six, monkeypatch)


class InFlight:
    """Counts the evaluations running at once. Each one waits (briefly) until ``expected`` are in flight, so the
    peak does not depend on how fast a candidate answers: with less concurrency than expected it stays lower."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.now = 0
        self.peak = 0
        self.calls = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def around(self, logical_id: str) -> Iterator[None]:
        if "EvaluateCandidate" not in logical_id:
            yield
            return
        with self._changed:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.now >= self.expected, timeout=5)
        try:
            yield
        finally:
            with self._changed:
                self.now -= 1
                self._changed.notify_all()


def test_by_default_every_candidate_is_evaluated_at_once(small_pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    # Given a run with the default evaluation_concurrency (6, the most candidates a stack may have)
    bedrock.responder = scripted_routers()
    evaluations = InFlight(expected=CANDIDATES)
    small_pipeline.on_invoke = evaluations.around
    # When it runs
    execution = small_pipeline.run({"judge": False}, name="all-at-once")
    # Then its three candidates were evaluated side by side
    assert execution.status == "SUCCEEDED", execution.cause
    assert (evaluations.calls, evaluations.peak) == (CANDIDATES, CANDIDATES)


def test_six_candidates_are_evaluated_at_once(six_candidates: PipelineHarness, bedrock: BedrockFake) -> None:
    bedrock.responder = scripted_routers()
    evaluations = InFlight(expected=len(SIX_CANDIDATES))
    six_candidates.on_invoke = evaluations.around
    execution = six_candidates.run({"judge": False}, name="six-at-once")
    assert execution.status == "SUCCEEDED", execution.cause
    assert (evaluations.calls, evaluations.peak) == (6, 6)
    report = six_candidates.s3_json("runs/six-at-once/report/report.json")
    # every evaluated candidate, then the micro-router and the cascade the report derives (issue 12)
    # no weights-only distilled candidate among these six: the cascade cannot be judged (the micro-router answers
    # only requests without reasoning), so the report says so instead of scoring it against another prompt
    assert sorted(c["name"] for c in report["candidates"]) == sorted(c["name"] for c in SIX_CANDIDATES)
    assert MICRO_CANDIDATE not in {c["name"] for c in report["candidates"]}
    assert "no weights-only candidate of the distilled model" in report["cascade"]["outcome"]["reason"]
    assert CASCADE_CANDIDATE not in {c["name"] for c in report["candidates"]}


def test_a_run_can_evaluate_one_candidate_at_a_time(small_pipeline: PipelineHarness, bedrock: BedrockFake) -> None:
    bedrock.responder = scripted_routers()
    evaluations = InFlight(expected=1)
    small_pipeline.on_invoke = evaluations.around
    execution = small_pipeline.run({"judge": False, "evaluation_concurrency": 1}, name="one-at-a-time")
    assert execution.status == "SUCCEEDED", execution.cause
    assert (evaluations.calls, evaluations.peak) == (CANDIDATES, 1)
    report = small_pipeline.s3_json("runs/one-at-a-time/report/report.json")
    assert len(report["candidates"]) == CANDIDATES + 2  # and the micro-router and the cascade


def test_an_evaluation_concurrency_out_of_range_fails_in_preflight_naming_it(
    small_pipeline: PipelineHarness, bedrock: BedrockFake
) -> None:
    execution = small_pipeline.run({"evaluation_concurrency": 7}, name="too-many", compensate=False)
    assert execution.status == "FAILED"
    assert execution.error == "InvalidRunInput"
    assert "evaluation_concurrency: Input should be less than or equal to 6" in (execution.cause or "")
