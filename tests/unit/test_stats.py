"""The bootstrap, the paired bootstrap, the set-size check and the non-inferiority decision (pipeline/stats.py).

Numbers marked "by hand" were worked out on paper in the comment next to them; the coverage test is a simulation
against a known mean, with its tolerance derived from the binomial spread of the trial count.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import pytest

from search_router.pipeline.stats import (
    Direction,
    Outcome,
    achievable_width,
    bootstrap_mean,
    check_sample_size,
    non_inferiority,
    paired_difference,
    required_size,
)

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal (tables: 1.95996)


def keyed(values: Sequence[float | None], prefix: str = "q") -> dict[str, float | None]:
    return {f"{prefix}{i:03d}": value for i, value in enumerate(values)}


# ---------------------------------------------------------------------------------------------------------
# bootstrap_mean
# ---------------------------------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    # Given
    rng = random.Random(7)
    values = [rng.uniform(1, 5) for _ in range(60)]
    # When
    first = bootstrap_mean(values, seed=11, resamples=300)
    again = bootstrap_mean(values, seed=11, resamples=300)
    other = bootstrap_mean(values, seed=12, resamples=300)
    # Then
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.estimate == other.estimate == pytest.approx(statistics.fmean(values))


def test_the_interval_does_not_depend_on_the_order_of_the_values() -> None:
    values = [float(v) for v in (1, 5, 3, 3, 2, 4, 5, 1, 2, 2, 4, 3)]
    shuffled = values[:]
    random.Random(3).shuffle(shuffled)
    assert shuffled != values
    assert bootstrap_mean(values, seed=5, resamples=200) == bootstrap_mean(shuffled, seed=5, resamples=200)


def test_the_interval_holds_the_mean_and_reports_its_settings() -> None:
    # By hand: mean of 1, 2, 3, 4, 5, 6 = 21 / 6 = 3.5; every bootstrap mean lies in [1, 6].
    interval = bootstrap_mean([1, 2, 3, 4, 5, 6], seed=1, resamples=500, confidence=0.9)
    assert interval.estimate == 3.5
    assert interval.low is not None and interval.high is not None
    assert 1 <= interval.low < 3.5 < interval.high <= 6
    assert interval.width == pytest.approx(interval.high - interval.low)
    assert interval.to_dict()["confidence"] == 0.9
    assert (interval.n, interval.missing, interval.resamples, interval.seed) == (6, 0, 500, 1)


def test_constant_values_give_a_zero_width_interval() -> None:
    interval = bootstrap_mean([4.0] * 30, seed=2, resamples=100)
    assert (interval.estimate, interval.low, interval.high, interval.width) == (4.0, 4.0, 4.0, 0.0)


def test_missing_values_are_excluded_and_counted() -> None:
    # By hand: the present values 2, 4, 6 have mean 4; two values are missing.
    interval = bootstrap_mean([2, None, 4, None, 6], seed=0, resamples=100)
    assert (interval.estimate, interval.n, interval.missing) == (4.0, 3, 2)


def test_missing_values_can_be_rejected_with_their_positions() -> None:
    with pytest.raises(ValueError, match=r"2 value\(s\) missing \(None\) at position\(s\) 1, 3"):
        bootstrap_mean([2, None, 4, None, 6], missing="reject")


def test_no_usable_value_gives_an_empty_interval_not_an_error() -> None:
    interval = bootstrap_mean([None, None])
    assert (interval.estimate, interval.low, interval.high, interval.width) == (None, None, None, None)
    assert (interval.n, interval.missing) == (0, 2)


@pytest.mark.parametrize(
    ("values", "settings", "message"),
    [
        ([1.0, math.nan], {}, "value at position 1 must be a finite number or None"),
        ([1.0, True], {}, "value at position 1 must be a finite number or None"),
        ([1.0, "2"], {}, "value at position 1 must be a finite number or None"),
        ([1.0], {"resamples": 0}, "resamples must be a whole number >= 1"),
        ([1.0], {"confidence": 1.0}, "confidence must be a number strictly between 0 and 1"),
        ([1.0], {"confidence": 95}, "confidence must be a number strictly between 0 and 1"),
        ([1.0], {"seed": "x"}, "seed must be a whole number"),
        ([1.0], {"missing": "drop"}, "missing must be 'exclude' or 'reject'"),
    ],
)
def test_bad_input_is_named(values: list[object], settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_mean(values, **settings)  # type: ignore[arg-type]


def test_the_95_percent_interval_covers_a_known_mean_about_95_percent_of_the_time() -> None:
    """1,000 trials: 40 values from a normal distribution with mean 3 and sd 1, each trial's interval from 200
    resamples. The percentile bootstrap of a mean under-covers slightly for small samples (it uses the plug-in
    spread, divisor n, and normal rather than t quantiles): a reference simulation with numpy (4,000 trials, 1,000
    resamples, n = 40) covers 0.9375, and 200 resamples cost a little more. The count of covering trials is
    binomial(1000, p); at p = 0.935 its sd is sqrt(0.935 * 0.065 / 1000) = 0.0078. The band [0.91, 0.97] is
    3 sd below the small-sample value and 3 sd above the nominal 0.95 (0.0069 * 3). For the 90% interval the
    same reasoning (about 0.885 expected, sd 0.0101) gives [0.85, 0.93]: the two bands do not overlap, so an
    interval of the wrong confidence fails one of them. The trials are seeded: the test is deterministic."""
    true_mean = 3.0
    rng = random.Random(20261201)
    trials = 1_000
    covered = covered_90 = 0
    for trial in range(trials):
        sample = [rng.gauss(true_mean, 1.0) for _ in range(40)]
        interval = bootstrap_mean(sample, resamples=200, seed=trial)
        narrower = bootstrap_mean(sample, resamples=200, seed=trial, confidence=0.90)
        assert interval.low is not None and interval.high is not None
        assert narrower.low is not None and narrower.high is not None
        covered += interval.low <= true_mean <= interval.high
        covered_90 += narrower.low <= true_mean <= narrower.high
    assert 0.91 <= covered / trials <= 0.97
    assert 0.85 <= covered_90 / trials <= 0.93


def test_the_bootstrap_width_is_close_to_the_normal_approximation_for_a_large_set() -> None:
    # By hand: 400 values of sd ~1 -> 2 * 1.96 * sd / sqrt(400) = 0.196 * sd.
    rng = random.Random(5)
    values = [rng.gauss(0.0, 1.0) for _ in range(400)]
    interval = bootstrap_mean(values, seed=3, resamples=1_000)
    expected = achievable_width(400, sd=statistics.pstdev(values))
    assert interval.width == pytest.approx(expected, rel=0.10)


# ---------------------------------------------------------------------------------------------------------
# paired_difference
# ---------------------------------------------------------------------------------------------------------
def test_pairs_are_matched_by_query_and_the_unmatched_are_listed() -> None:
    # Given: q1..q3 on both sides; q4 only the candidate's; q5 only the baseline's; q6 None for the candidate.
    candidate = {"q1": 4.0, "q2": 5.0, "q3": 3.0, "q4": 5.0, "q6": None}
    baseline = {"q3": 2.0, "q2": 4.0, "q1": 3.0, "q5": 1.0, "q6": 2.0}
    # When
    paired = paired_difference(candidate, baseline, seed=1, resamples=200)
    # Then: by hand, the differences are 1, 1, 1 (q1, q2, q3): mean 1, every resample 1.
    assert paired.matched == 3
    assert (paired.interval.estimate, paired.interval.low, paired.interval.high) == (1.0, 1.0, 1.0)
    assert paired.only_candidate == ("q4",)
    assert paired.only_baseline == ("q5",)
    assert paired.missing_candidate == ("q6",)
    assert paired.missing_baseline == ()
    assert paired.unmatched == 3
    assert paired.to_dict()["unmatched"] == 3


def test_the_paired_interval_does_not_depend_on_the_order_of_the_queries() -> None:
    rng = random.Random(9)
    candidate = keyed([float(rng.randint(1, 5)) for _ in range(50)])
    baseline = keyed([float(rng.randint(1, 5)) for _ in range(50)])
    reversed_candidate = dict(reversed(list(candidate.items())))
    assert paired_difference(candidate, baseline, seed=4, resamples=300) == paired_difference(
        reversed_candidate, list(baseline.items()), seed=4, resamples=300
    )


def test_pairing_keeps_the_correlation_so_the_paired_interval_is_narrower() -> None:
    # Given: per-query difficulty dominates both candidates' scores; the candidate is 0.1 better everywhere
    # up to small noise.
    rng = random.Random(2)
    difficulty = [rng.gauss(3.0, 1.0) for _ in range(80)]
    baseline = keyed(difficulty)
    candidate = keyed([d + 0.1 + rng.gauss(0.0, 0.05) for d in difficulty])
    # When
    paired = paired_difference(candidate, baseline, seed=0, resamples=500)
    separate = bootstrap_mean(list(candidate.values()), seed=0, resamples=500)
    # Then
    assert paired.interval.width is not None and separate.width is not None
    assert paired.interval.width < separate.width / 5
    assert paired.interval.low is not None and paired.interval.low > 0.0


def test_a_repeated_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="baseline: query 'q1' appears more than once"):
        paired_difference({"q1": 1.0}, [("q1", 1.0), ("q1", 2.0)])


def test_values_that_are_neither_a_mapping_nor_pairs_are_named() -> None:
    with pytest.raises(ValueError, match=r"candidate: per-query values must be a mapping or \(query, value\) pairs"):
        paired_difference([1.0, 2.0], {"q1": 1.0})  # type: ignore[list-item]


def test_a_non_finite_paired_value_is_named() -> None:
    with pytest.raises(ValueError, match="candidate value of query 'q2' must be a finite number"):
        paired_difference({"q1": 1.0, "q2": math.inf}, {"q1": 1.0, "q2": 1.0})


# ---------------------------------------------------------------------------------------------------------
# set size
# ---------------------------------------------------------------------------------------------------------
def test_achievable_width_and_required_size_by_hand() -> None:
    # By hand: 2 * 1.95996 * 1 / sqrt(100) = 0.391993; half-width 0.2 at sd 1 needs (1.95996 / 0.2)^2 = 96.04
    # -> 97 queries; at sd 0.5, 24.01 -> 25.
    assert achievable_width(100, sd=1.0) == pytest.approx(2 * Z95 / 10)
    assert required_size(0.2, sd=1.0) == 97
    assert required_size(0.2, sd=0.5) == 25
    check = check_sample_size(100, sd=1.0, margin=0.2)
    assert check.sufficient is True
    small = check_sample_size(50, sd=1.0, margin=0.2)
    assert small.sufficient is False
    assert "too small for a margin of 0.2 (about 97 queries needed)" in small.message
    assert "50 queries give an interval about 0.554 wide" in small.message  # 2 * 1.96 / sqrt(50) = 0.5544


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: achievable_width(0, sd=1.0), "n must be a whole number >= 1"),
        (lambda: achievable_width(10, sd=-1.0), "sd must be >= 0"),
        (lambda: required_size(0.0, sd=1.0), "half_width must be > 0"),
        (lambda: check_sample_size(10, sd=1.0, margin=0.0), "margin must be > 0"),
        (lambda: achievable_width(10, sd=1.0, confidence=0.0), "confidence must be a number strictly between"),
    ],
)
def test_bad_sizing_input_is_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------------------
# non_inferiority
# ---------------------------------------------------------------------------------------------------------
def decide(diffs: list[float], *, margin: float = 0.2, direction: Direction = Direction.HIGHER_IS_BETTER):
    """The decision for a candidate whose per-query value is the baseline's (3.0) plus ``diffs``."""
    baseline = keyed([3.0] * len(diffs))
    candidate = keyed([3.0 + d for d in diffs])
    paired = paired_difference(candidate, baseline, seed=7, resamples=1_000)
    return non_inferiority(paired, metric="rubric_mean", margin=margin, direction=direction)


def test_a_clearly_better_candidate_passes() -> None:
    # By hand: differences 1, 0, 1, 0, ... (n = 100): mean 0.5, sd 0.5, interval about 0.5 +- 0.1 > -0.2.
    decision = decide([1.0, 0.0] * 50)
    assert decision.outcome is Outcome.PASS
    assert decision.bound is not None and decision.bound > 0.3
    assert decision.threshold == -0.2
    assert "lower bound" in decision.reason and "is above -0.2" in decision.reason
    assert decision.sample is not None and decision.sample.sufficient


def test_a_clearly_worse_candidate_fails() -> None:
    # By hand: differences -1, -2, ... (n = 100): mean -1.5, sd 0.5, interval about -1.5 +- 0.1 < -0.2.
    decision = decide([-1.0, -2.0] * 50)
    assert decision.outcome is Outcome.FAIL
    assert "the whole interval" in decision.reason and "is beyond -0.2" in decision.reason
    assert decision.to_dict()["outcome"] == "fail"


def test_an_equal_candidate_on_a_too_small_set_is_inconclusive_and_passes_on_a_large_one() -> None:
    # By hand: differences +2, -2, ... have mean 0 and sd about 2; with 12 pairs the interval is about
    # +-1.96 * 2 / sqrt(12) = +-1.13, straddling -0.2; (1.96 * 2 / 0.2)^2 = 384 pairs are needed. With 500
    # pairs: +-1.96 * 2 / sqrt(500) = +-0.175, above -0.2.
    small = decide([2.0, -2.0] * 6)
    assert small.outcome is Outcome.INCONCLUSIVE
    assert "straddles -0.2: the set is too small for the margin" in small.reason
    assert small.sample is not None and not small.sample.sufficient
    assert 380 <= small.sample.required_n <= 440
    large = decide([2.0, -2.0] * 250)
    assert large.outcome is Outcome.PASS


def test_a_difference_right_at_the_margin_is_inconclusive_for_closeness_not_size() -> None:
    # Differences -0.1, -0.3 (n = 400): mean -0.2 = -margin, sd 0.1: the interval -0.2 +- 0.01 straddles it.
    decision = decide([-0.1, -0.3] * 200)
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert "the difference is close to the margin" in decision.reason


def test_too_few_pairs_do_not_decide() -> None:
    decision = decide([1.0, 1.0, 1.0])
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert "only 3 paired queries (at least 10 needed to decide)" in decision.reason


def test_no_pairs_at_all_are_inconclusive_and_name_the_unmatched() -> None:
    paired = paired_difference({"a": 1.0}, {"b": 1.0})
    decision = non_inferiority(paired, metric="rubric_mean", margin=0.2, direction=Direction.HIGHER_IS_BETTER)
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert decision.bound is None
    assert "only 0 paired queries" in decision.reason
    assert "2 query(ies) without a value on both sides excluded" in decision.reason


def test_lower_is_better_metrics_decide_on_the_upper_bound() -> None:
    # MAE: candidate 0.02 lower than the baseline on every query (alternately 0.01 and 0.03 lower) passes a
    # margin of 0.01 (upper bound about -0.02 < +0.01); 0.05 higher everywhere fails it (lower bound 0.04 > 0.01).
    better = decide([-0.01, -0.03] * 50, margin=0.01, direction=Direction.LOWER_IS_BETTER)
    assert better.outcome is Outcome.PASS
    assert better.threshold == 0.01
    assert "upper bound" in better.reason and "is below +0.01" in better.reason
    worse = decide([0.04, 0.06] * 50, margin=0.01, direction=Direction.LOWER_IS_BETTER)
    assert worse.outcome is Outcome.FAIL
    # The direction as configuration gives it (a string) decides the same.
    as_configured = decide([0.04, 0.06] * 50, margin=0.01, direction="lower_is_better")  # type: ignore[arg-type]
    assert as_configured.direction is Direction.LOWER_IS_BETTER
    assert as_configured.outcome is Outcome.FAIL
    # The same "better" differences read as higher-is-better are a clear loss of 0.02 > 0.01.
    assert decide([-0.01, -0.03] * 50, margin=0.01).outcome is Outcome.FAIL


def test_a_bound_exactly_on_the_threshold_does_not_pass() -> None:
    # Every difference is 0.3 - 0.5 = -0.2 exactly in floats: the interval is [-0.2, -0.2]; "above -margin" is
    # strict, and the interval is not beyond it either.
    assert 0.3 - 0.5 == -0.2
    paired = paired_difference(keyed([0.3] * 20), keyed([0.5] * 20))
    decision = non_inferiority(paired, metric="m", margin=0.2, direction=Direction.HIGHER_IS_BETTER)
    assert decision.bound == -0.2
    assert decision.outcome is Outcome.INCONCLUSIVE


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"margin": -0.1}, "margin must be >= 0"),
        ({"margin": math.nan}, "margin must be a finite number"),
        ({"direction": "up"}, "direction must be one of higher_is_better, lower_is_better"),
        ({"min_pairs": 1}, "min_pairs must be a whole number >= 2"),
    ],
)
def test_bad_decision_settings_are_named(settings: dict[str, object], message: str) -> None:
    paired = paired_difference(keyed([1.0] * 10), keyed([1.0] * 10))
    arguments: dict[str, object] = {"metric": "m", "margin": 0.2, "direction": Direction.HIGHER_IS_BETTER}
    with pytest.raises(ValueError, match=message):
        non_inferiority(paired, **(arguments | settings))  # type: ignore[arg-type]
