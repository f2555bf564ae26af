"""The run layout (search_router.contract.layout): one run's keys, and the patterns the IAM grants derive."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from search_router.contract.layout import RunLayout, part_number


def test_a_runs_keys_sit_under_its_folders() -> None:
    run = RunLayout("nightly-1")
    assert run.plan == "runs/nightly-1/dataset/plan.json"
    assert (run.train, run.heldout, run.manifest) == (
        "runs/nightly-1/dataset/train.jsonl",
        "runs/nightly-1/dataset/heldout.jsonl",
        "runs/nightly-1/dataset/manifest.json",
    )
    assert run.train_groups == "runs/nightly-1/dataset/train-groups.jsonl"  # beside the training file
    assert run.judge_input("distilled") == "runs/nightly-1/evaluation/judge-input/distilled.jsonl"
    assert run.judge_output("distilled") == "runs/nightly-1/evaluation/judge-output/distilled/"
    assert run.compensation_claim(2) == "runs/nightly-1/compensation/attempt-2.json"
    assert run.plan_shard(3) == "tmp/nightly-1/plan/shard-00003.json"
    shard = run.shard(3)
    assert (shard.examples, shard.stats) == (
        "tmp/nightly-1/labeled/shard-00003.jsonl",
        "tmp/nightly-1/labeled/shard-00003.stats.json",
    )
    part = shard.part(7, "8f1c-41aa-b2")
    assert part.startswith(shard.parts_prefix) and part_number(part) == 7
    assert shard.part_keys([part, shard.stats, run.shard(30).part(1, "x")]) == [part]


def test_the_patterns_of_every_run_match_each_runs_keys_and_nothing_beside_them() -> None:
    every, run, other = RunLayout.any(), RunLayout("r-1"), RunLayout("r-2")
    for prefix, key in [
        (every.dataset_prefix, run.train),
        (every.dataset_prefix, run.train_groups),  # PrepareDataset writes it, TrainMicroRouter reads it
        (every.labeled_prefix, run.shard(1).part(1, "abc")),
        (every.judge_output_prefix, f"{run.judge_output('base-student')}x_output.jsonl"),
        (every.report_prefix, f"{other.report_prefix}report.md"),
        (every.report_prefix, other.report_html),  # the Report function may write report.html
        (every.outputs, run.outputs),
    ]:
        assert fnmatchcase(key, RunLayout.pattern(prefix)), (prefix, key)
    assert RunLayout.pattern(every.outputs) == "runs/*/outputs.json"  # an object, not a folder
    assert not fnmatchcase(run.plan_shard(1), RunLayout.pattern(every.dataset_prefix))
    assert not fnmatchcase(run.judge_input("distilled"), RunLayout.pattern(every.judge_output_prefix))


def test_each_judge_repeat_has_a_prefix_that_lists_none_of_the_others_and_the_grants_still_cover() -> None:
    run, every = RunLayout("r-1"), RunLayout.any()
    # the first repeat keeps the prefix it had before repeats; a later one is a sibling, not a child
    assert run.judge_output("distilled", 1) == run.judge_output("distilled")
    assert run.judge_output("distilled", 2) == "runs/r-1/evaluation/judge-output/distilled--repeat-2/"
    prefixes = [run.judge_output(c, n) for c in ("distilled", "distilled-weights", "distilled-2") for n in (1, 2, 3)]
    assert len(set(prefixes)) == len(prefixes)
    assert not [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a)]
    for prefix in prefixes:  # the Bedrock role writes there, CheckJudge lists and reads there (one pattern)
        assert fnmatchcase(f"{prefix}job/id/x_output.jsonl", RunLayout.pattern(every.judge_output_prefix))
    with pytest.raises(ValueError, match="numbered from 1"):
        run.judge_output("distilled", 0)
