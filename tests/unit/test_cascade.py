"""Choosing τ for the micro-router cascade (search_router.pipeline.cascade.choose_tau), checked against the
report's own rubric and error definitions (search_router.pipeline.metrics) and a brute-force search."""

from __future__ import annotations

import math
import random

import pytest

from search_router.pipeline.cascade import NEVER, CascadeItem, choose_tau, hardest_split
from search_router.pipeline.metrics import rubric_score

NAMES = ("visual", "audio", "transcription", "metadata")
REFERENCE = {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}
CLOSE = {"visual": 0.63, "audio": 0.13, "transcription": 0.12, "metadata": 0.12}  # rubric 4
WRONG = {"visual": 0.0, "audio": 0.9, "transcription": 0.05, "metadata": 0.05}  # rubric 1


def item(split: str, micro: dict[str, float], confidence: float, model: dict[str, float] | None = CLOSE) -> CascadeItem:
    return CascadeItem(split=split, reference=REFERENCE, micro=micro, confidence=confidence, model=model)


def brute_force(items: list[CascadeItem], margin: float, metric: str) -> float:
    """The lowest τ among every confidence (and never) meeting the target, by direct evaluation: the cascade within
    the margin of the model on the whole split, and the micro-router within it on the queries it answers."""

    def quality(pred: dict[str, float] | None) -> float:
        if metric == "rubric":
            return rubric_score(pred, REFERENCE, NAMES)
        used = pred or dict.fromkeys(NAMES, 0.25)
        return sum(abs(used[n] - REFERENCE[n]) for n in NAMES) / 4

    model = sum(quality(i.model) for i in items) / len(items)
    best = NEVER
    for tau in {i.confidence for i in items}:
        cascade = sum(quality(i.micro if i.confidence >= tau else i.model) for i in items) / len(items)
        answered = [i for i in items if i.confidence >= tau]
        delta = sum(quality(i.micro) - quality(i.model) for i in answered) / len(answered)
        if metric == "rubric":
            ok = cascade >= model - margin - 1e-9 and delta >= -margin - 1e-9
        else:
            ok = cascade <= model + margin + 1e-9 and delta <= margin + 1e-9
        if ok:
            best = min(best, tau)
    return best


def test_the_lowest_tau_within_the_margin_of_the_model() -> None:
    # Given ten queries: the five most confident micro answers are exact (rubric 5), the rest wrong (rubric 1);
    # the model is close on all of them (rubric 4)
    assert rubric_score(CLOSE, REFERENCE, NAMES) == 4 and rubric_score(WRONG, REFERENCE, NAMES) == 1
    items = [item("unseen_template", REFERENCE, c / 10) for c in range(9, 4, -1)]
    items += [item("unseen_template", WRONG, c / 10) for c in range(4, -1, -1)]
    # When τ is chosen for a rubric mean within 0.1 of the model's (4.0)
    choice = choose_tau(items, NAMES, margin=0.1)
    # Then τ = 0.4: the micro-router answers 5 exact + 1 wrong, (25 + 1) / 6 = 4.33 against the model's 4 on those
    # six, and the cascade is (26 + 16) / 10 = 4.2. At 0.3 the cascade (3.9) would still be within 0.1 of 4.0, but
    # on the seven queries the micro-router would answer it scores 27 / 7 = 3.86 against the model's 4: its gain on
    # the exact answers would pay for two it gets wrong.
    assert choice.tau == 0.4
    assert choice.answered_share == 0.6
    assert math.isclose(choice.cascade_quality, 4.2) and choice.model_quality == 4.0
    assert choice.tau == brute_force(items, 0.1, "rubric")


def test_the_micro_router_never_answers_when_it_is_worse_at_every_threshold() -> None:
    items = [item("seen", WRONG, c / 20) for c in range(20)]
    choice = choose_tau(items, NAMES, margin=0.1)
    assert choice.tau == NEVER and not choice.enabled
    assert choice.answered_share == 0.0 and choice.answered_share_overall == 0.0
    assert choice.to_dict()["tau"] is None


def test_tau_is_chosen_on_the_hardest_split_and_reported_per_split() -> None:
    # Given a micro-router exact on seen templates and wrong on the less confident unseen-template queries
    rng = random.Random(1)
    seen = [item("seen", REFERENCE, rng.uniform(0.2, 1.0)) for _ in range(40)]
    unseen = [item("unseen_template", REFERENCE if c > 0.6 else WRONG, c) for c in (rng.random() for _ in range(30))]
    items = seen + unseen
    # Then the hardest split is the unseen one and τ is chosen there
    assert hardest_split(items, NAMES) == "unseen_template"
    choice = choose_tau(items, NAMES)
    assert choice.split == "unseen_template"
    assert choice.tau == brute_force(unseen, 0.1, "rubric")
    assert choice.tau > 0.2  # on the seen split alone every threshold would do
    assert choose_tau(items, NAMES, split="seen").tau == min(i.confidence for i in seen)
    # and the share answered is given per split and overall at that τ
    for split, group in (("seen", seen), ("unseen_template", unseen)):
        assert choice.answered_share_by_split[split] == sum(i.confidence >= choice.tau for i in group) / len(group)
    assert choice.answered_share_overall == sum(i.confidence >= choice.tau for i in items) / len(items)


@pytest.mark.parametrize("metric", ["rubric", "mae"])
def test_agrees_with_brute_force_on_random_predictions(metric: str) -> None:
    rng = random.Random(7)
    for _ in range(30):
        items = []
        for _ in range(rng.randint(1, 40)):
            raw = [rng.random() for _ in NAMES]
            micro = {n: v / sum(raw) for n, v in zip(NAMES, raw, strict=True)}
            model = rng.choice([CLOSE, REFERENCE, WRONG, None])
            items.append(item("s", micro, round(rng.random(), 2), model))
        margin = rng.choice([0.0, 0.05, 0.1, 0.5])
        assert choose_tau(items, NAMES, metric=metric, margin=margin).tau == brute_force(items, margin, metric)  # type: ignore[arg-type]


def test_an_unusable_model_answer_counts_as_the_routers_fallback() -> None:
    # The model failed on every query (rubric 1): the micro-router's exact answers always help
    items = [item("s", REFERENCE, c / 10, model=None) for c in range(10)]
    assert choose_tau(items, NAMES, margin=0.0).tau == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "f1"}, "metric must be one of rubric, mae"),
        ({"margin": -0.1}, "margin must be a finite number"),
        ({"split": "user"}, "no held-out prediction is in split 'user'"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_tau([item("seen", REFERENCE, 0.5)], NAMES, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        choose_tau([], NAMES)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        choose_tau([item("seen", REFERENCE, 1.5)], NAMES)
