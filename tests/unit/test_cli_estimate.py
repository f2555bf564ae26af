"""``python -m cli estimate`` (pure: configuration and the project's own prompts, no AWS) and the CLI's text
helpers."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import RenderableType
from rich.table import Table

from cli.estimate import RATES, Estimate, LineItem, Rates, estimate, render, token_sizes
from cli.status import parse_history
from cli.text import FractionBar, console, duration, plain, progress, show, table
from infra.config import load_config
from search_router.pipeline.metrics import Price
from search_router.shared.prompts import student_prompt, teacher_prompt

CONFIG = load_config()
SEED = 42


def run_estimate(**overrides: object) -> Estimate:
    options: dict[str, object] = {
        "num_examples": 1000,
        "eval_examples": 100,
        "teacher": "us.amazon.nova-premier-v1:0",
        "judge": True,
        "seed": SEED,
    }
    options.update(overrides)
    return estimate(CONFIG, **options)  # type: ignore[arg-type]


def item(result: Estimate, prefix: str) -> LineItem:
    return next(i for i in result.items if i.step.startswith(prefix))


def price_of(model: str) -> Price:
    entry = CONFIG.prices[model]
    return Price(entry.input, entry.output)


def test_teacher_auto_is_priced_as_the_costliest_teacher_it_can_pick() -> None:
    auto = run_estimate(teacher="auto")
    assert CONFIG.models.teacher == "auto"
    assert item(auto, "Teacher labeling").model == "us.amazon.nova-premier-v1:0"  # $0.0025/$0.0125 vs Nova Pro
    assert auto.teacher_note and "costliest" in auto.teacher_note and "doctor" in auto.teacher_note
    assert run_estimate(teacher="us.amazon.nova-pro-v1:0").teacher_note is None


def test_token_sizes_come_from_the_prompts_and_a_70_token_answer() -> None:
    sizes = token_sizes(CONFIG.channels, SEED)
    assert sizes.teacher_prompt == pytest.approx(len(teacher_prompt(CONFIG.channels)) / 4)
    assert sizes.student_prompt == pytest.approx(len(student_prompt(CONFIG.channels)) / 4)
    assert 5 <= sizes.query <= 30
    assert 60 <= sizes.answer <= 80  # weights JSON + one sentence of reasoning
    assert sizes.weights_only < sizes.answer


def test_teacher_labeling_is_every_query_with_the_teacher_prompt_at_the_teachers_price() -> None:
    result = run_estimate()
    sizes = result.sizes
    labeling = item(result, "Teacher labeling")
    calls = 1000 + 100
    assert labeling.calls == calls
    assert labeling.input_tokens == pytest.approx(calls * (sizes.teacher_prompt + sizes.query))
    assert labeling.output_tokens == pytest.approx(calls * sizes.answer)
    expected = price_of(labeling.model).cost_per_route(labeling.input_tokens, labeling.output_tokens)
    assert labeling.model == "us.amazon.nova-premier-v1:0"
    assert labeling.usd == pytest.approx(expected)
    assert not labeling.unconfirmed


def test_distillation_bills_teacher_inference_and_training_per_token_and_is_marked_unconfirmed() -> None:
    result = run_estimate()
    sizes = result.sizes
    inference = item(result, "Distillation: teacher inference")
    assert inference.calls == 1000
    assert inference.input_tokens == pytest.approx(1000 * (sizes.student_prompt + sizes.query))
    training = item(result, "Distillation: training")
    trained = 1000 * (sizes.student_prompt + sizes.query + sizes.answer) * RATES.distillation_epochs
    assert training.input_tokens == pytest.approx(trained)
    assert training.usd == pytest.approx(trained / 1000 * RATES.training_price(CONFIG.models.student_job))
    assert inference.unconfirmed and training.unconfirmed


def test_the_judge_costs_repeats_x_candidates_x_heldout_plus_calibration_calls_at_the_judges_price() -> None:
    # Given two judge repeats of every candidate (judge_repeats)
    once, twice = run_estimate(), run_estimate(judge_repeats=2)
    names = [c.name for c in CONFIG.eval_candidates]
    judge = item(twice, "LLM judge")
    sizes = twice.sizes
    # Then every repeat judges each held-out answer and its own calibration record again ...
    assert judge.calls == 2 * (100 + 1) * len(names)
    assert item(once, "LLM judge").calls == (100 + 1) * len(names)
    # ... each call reading the instructions and scale, the judged prompt, the candidate's answer (weights only
    # for a weights-only candidate) and the reference weights inside the evaluator's template
    fixed = sizes.judge_instructions + sizes.query + sizes.weights_only + RATES.judge_overhead_tokens
    answers = [
        sizes.weights_only if c.prompt_kind == "student_weights_only" else sizes.answer for c in CONFIG.eval_candidates
    ]
    assert judge.input_tokens == pytest.approx(2 * 101 * sum(fixed + a for a in answers))
    assert judge.output_tokens == pytest.approx(judge.calls * RATES.judge_output_tokens)
    # at the judge model's price from cdk.json, so twice the repeats cost twice as much
    assert judge.usd == pytest.approx(
        price_of(CONFIG.models.judge).cost_per_route(judge.input_tokens, judge.output_tokens)
    )
    assert judge.usd == pytest.approx(2 * item(once, "LLM judge").usd)
    assert twice.total_usd == pytest.approx(once.total_usd + item(once, "LLM judge").usd)
    # and the output says how a judge call was sized
    text = plain(render(twice))
    assert "2 job(s) per candidate (judge_repeats)" in text and "evaluator template" in text


def test_the_rates_are_the_one_place_to_change_an_assumption() -> None:
    base = run_estimate()
    doubled = estimate(
        CONFIG,
        num_examples=1000,
        eval_examples=100,
        teacher=CONFIG.models.teacher,
        judge=True,
        seed=SEED,
        rates=dataclasses.replace(RATES, distillation_epochs=RATES.distillation_epochs * 2),
    )
    assert item(doubled, "Distillation: training").usd == pytest.approx(2 * item(base, "Distillation: training").usd)
    assert item(doubled, "Teacher labeling").usd == item(base, "Teacher labeling").usd


def test_evaluation_has_one_line_per_candidate_and_the_judge_can_be_left_out() -> None:
    with_judge = run_estimate()
    names = [c.name for c in CONFIG.eval_candidates]
    assert [i.step for i in with_judge.items if i.step.startswith("Evaluation")] == [f"Evaluation: {n}" for n in names]
    judge = item(with_judge, "LLM judge")
    # one judge call per held-out answer and one for each job's calibration record
    assert judge.calls == (100 + 1) * len(names) and judge.model == CONFIG.models.judge and judge.unconfirmed

    without = run_estimate(judge=False)
    assert not any(i.step.startswith("LLM judge") for i in without.items)
    assert without.total_usd == pytest.approx(with_judge.total_usd - judge.usd)


def test_costs_scale_with_the_number_of_examples() -> None:
    small, large = run_estimate(num_examples=1000), run_estimate(num_examples=2000)
    ratio = item(large, "Teacher labeling").usd / item(small, "Teacher labeling").usd
    assert ratio == pytest.approx(2100 / 1100)
    assert item(large, "Distillation: training").usd == pytest.approx(2 * item(small, "Distillation: training").usd)
    assert item(large, "Evaluation: baseline").usd == item(small, "Evaluation: baseline").usd


def test_routing_cost_per_million_uses_each_candidates_prompt_and_price() -> None:
    result = run_estimate()
    sizes = result.sizes
    routes = {r.name: r for r in result.routes}
    distilled = routes["distilled"]
    assert distilled.input_tokens == pytest.approx(sizes.student_prompt + sizes.query)
    assert distilled.usd_per_1m == pytest.approx(
        1e6 * price_of("distilled").cost_per_route(distilled.input_tokens, sizes.answer)
    )
    baseline = routes["baseline"]
    assert baseline.input_tokens == pytest.approx(sizes.teacher_prompt + sizes.query)
    assert baseline.usd_per_1m > 20 * distilled.usd_per_1m  # the long prompt and the bigger model
    assert distilled.usd_per_1m_no_reasoning < distilled.usd_per_1m
    # The router's default model (before any promotion) is listed too.
    assert routes["router default"].model == CONFIG.router.default_model.model_id


def test_a_model_without_a_price_is_reported_not_guessed() -> None:
    result = run_estimate(teacher="us.meta.llama3-3-70b-instruct-v1:0")
    assert item(result, "Teacher labeling").usd is None
    assert "us.meta.llama3-3-70b-instruct-v1:0" in result.missing_prices
    text = plain(render(result))
    assert "no price" in text
    assert "No price configured for: us.meta.llama3-3-70b-instruct-v1:0" in text


def test_render_shows_a_table_with_a_total_and_flags_assumptions() -> None:
    text = plain(render(run_estimate()))
    assert "Distillation: teacher inference *" in text
    assert "* unconfirmed" in text and "cli/estimate.py" in text
    assert "Routing cost per 1M routes" in text
    assert "$1.95/month" in text


def test_rates_document_their_unconfirmed_assumptions() -> None:
    assert Rates.__doc__
    assert RATES.training_price("amazon.nova-micro-v1:0:128k") is not None
    assert RATES.training_price("no-such-model") is None


# ---------------------------------------------------------------------------------------------------------
# Text helpers and history parsing
# ---------------------------------------------------------------------------------------------------------
class AsciiBuffer(io.StringIO):
    """An output that can only encode ASCII (rich's ``ascii_only``)."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "ascii"


def cells(renderable: RenderableType, *, ascii_only: bool = False) -> str:
    """Exactly the cells ``renderable`` fills on a line (a marker after it keeps its trailing blanks)."""
    row = Table.grid()
    row.add_row(renderable, "|")
    out = AsciiBuffer() if ascii_only else io.StringIO()
    show(console(out), row)
    return out.getvalue().rstrip("\n").removesuffix("|")


def test_bars_have_a_fixed_width_and_eighth_cell_resolution() -> None:
    assert cells(FractionBar(0.0, 10)) == " " * 10
    assert cells(FractionBar(1.0, 10)) == "█" * 10
    assert cells(FractionBar(0.8, 30)).count("█") == 24 and len(cells(FractionBar(0.8, 30))) == 30
    assert cells(FractionBar(0.05, 10)) == "▌" + " " * 9  # 4 eighths of one cell
    assert cells(FractionBar(0.5, 10), ascii_only=True) == "-----" + " " * 5
    assert cells(FractionBar(float("nan"), 4)) == " " * 4 and cells(FractionBar(7.0, 4)) == "████"
    assert cells(progress(1, 4, "shards", width=8)) == "━━" + " " * 6 + " 1/4 shards  25%"
    assert cells(progress(1, 4, "shards", width=8), ascii_only=True) == "--" + " " * 6 + " 1/4 shards  25%"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (65, "1m 05s"), (3600 * 3 + 7 * 60, "3h 07m"), (86400 * 2 + 3600 * 4, "2d 04h")],
)
def test_durations_are_short(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_tables_pad_columns_and_align_numbers_right() -> None:
    drawn = table(["name", "usd"], [["a", "$1.00"], ["longer", "$10.00"]], right=(1,))
    assert plain(drawn).splitlines() == ["name       usd", "──────────────", "a        $1.00", "longer  $10.00"]
    ascii_out = AsciiBuffer()
    show(console(ascii_out), drawn)
    rule = ascii_out.getvalue().splitlines()[1]  # where blocks cannot be encoded, rich draws the rule in ASCII
    assert rule and set(rule) <= {"-", "+"}


def test_history_events_inside_map_iterations_are_not_top_level_states() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(n: int, kind: str, **details: object) -> dict[str, object]:
        return {"id": n, "type": kind, "timestamp": t0 + timedelta(seconds=n), **details}

    events = [
        event(1, "MapStateEntered", stateEnteredEventDetails={"name": "LabelShards"}),
        event(2, "MapStateStarted", mapStateStartedEventDetails={"length": 2}),
        event(3, "MapIterationStarted", mapIterationStartedEventDetails={"name": "LabelShards", "index": 0}),
        event(4, "MapIterationStarted", mapIterationStartedEventDetails={"name": "LabelShards", "index": 1}),
        event(5, "TaskStateEntered", stateEnteredEventDetails={"name": "LabelShard"}),
        event(6, "TaskStateEntered", stateEnteredEventDetails={"name": "LabelShard"}),
        event(7, "TaskStateExited", stateExitedEventDetails={"name": "LabelShard", "output": "{}"}),
        event(8, "MapIterationSucceeded", mapIterationSucceededEventDetails={"name": "LabelShards", "index": 1}),
    ]
    history = parse_history(reversed(events))  # order comes from the event ids
    assert history.current == "LabelShards"
    assert [name for name, _ in history.entered] == ["LabelShards"]
    assert history.map_length == {"LabelShards": 2}
    assert history.map_done == {"LabelShards": 1}
    assert "LabelShard" not in history.exits


def test_the_weights_only_candidate_is_estimated_with_the_weights_only_prompt_and_answer() -> None:
    from search_router.shared.prompts import STUDENT_WEIGHTS_ONLY

    result = run_estimate()
    sizes = result.sizes
    (candidate,) = [c for c in CONFIG.eval_candidates if c.prompt_kind == STUDENT_WEIGHTS_ONLY]
    (line,) = [i for i in result.items if i.step == f"Evaluation: {candidate.name}"]

    prompt = len(student_prompt(CONFIG.channels, reasoning=False)) / 4
    assert line.input_tokens == pytest.approx(100 * (prompt + sizes.query))
    assert line.output_tokens == pytest.approx(100 * sizes.weights_only)
    assert sizes.weights_only < sizes.answer


def test_the_capture_cost_bills_firehose_per_5_kb_record_and_packing_cuts_it() -> None:
    from cli.capture_cost import CAPTURE_RATES, capture_cost

    cost = capture_cost(CONFIG, routes_per_day=1_000_000)
    # Every query is one JSON line of a few hundred bytes; unpacked, each would be billed a whole 5 KB
    assert 100 < cost.record_bytes < 1_000
    routes = 1_000_000 * CAPTURE_RATES.days_per_month
    assert cost.unpacked_billed_gb == pytest.approx(routes * 5 * 1024 / 1024**3)
    assert 1 <= cost.queries_per_record <= cost.pack_capacity <= 5_000 // cost.record_bytes
    assert cost.billed_gb == pytest.approx(cost.unpacked_billed_gb / cost.queries_per_record, rel=1e-3)
    assert cost.firehose_usd == pytest.approx(cost.billed_gb * CAPTURE_RATES.firehose_usd_per_gb)
    # S3: Firehose writes an object at least every buffer interval (900 s: 96 a day), plus the compacted file
    assert cost.s3_puts == pytest.approx(97 * CAPTURE_RATES.days_per_month)
    assert cost.total_usd == pytest.approx(cost.firehose_usd + cost.s3_requests_usd + cost.storage_usd_per_month)
    # Ten times the traffic costs more, and packs fuller records
    busier = capture_cost(CONFIG, routes_per_day=10_000_000)
    assert busier.firehose_usd > cost.firehose_usd and busier.queries_per_record >= cost.queries_per_record


def test_estimate_prints_the_capture_cost(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["estimate", "--examples", "100", "--eval", "10", "--no-judge"]) == 0
    out = capsys.readouterr().out
    assert "Capture (capture_queries) at 1,000,000 routes a day" in out
    assert "Firehose ingestion" in out and "S3 storage" in out


def test_both_labeling_modes_are_shown_batch_at_the_configured_share_of_on_demand_prices() -> None:
    # Given the configuration's Nova Premier prices and 1,100 teacher calls
    result = run_estimate()
    on_demand = item(result, "Teacher labeling")
    # When / Then: batch labeling is the same tokens at batch_price_ratio of the on-demand price
    assert result.batch_labeling is not None and result.batch_labeling.unconfirmed
    expected = price_of("us.amazon.nova-premier-v1:0").cost_per_route(on_demand.input_tokens, on_demand.output_tokens)
    assert on_demand.usd == pytest.approx(expected)
    assert result.batch_labeling.usd == pytest.approx(RATES.batch_price_ratio * expected)
    assert (result.batch_labeling.input_tokens, result.batch_labeling.calls) == (on_demand.input_tokens, 1100)
    # the total counts on-demand labeling; the text shows both, and the total with batch labeling
    text = " ".join(plain(render(result)).split())
    assert "Labeling modes: on_demand" in text and "batch ~" in text and "50% of on-demand token prices" in text
    assert "the run's total with batch labeling" in text
    cheaper = dataclasses.replace(RATES, batch_price_ratio=0.25)
    assert estimate(
        CONFIG,
        num_examples=1000,
        eval_examples=100,
        teacher="us.amazon.nova-premier-v1:0",
        judge=True,
        seed=SEED,
        rates=cheaper,
    ).batch_labeling.usd == pytest.approx(0.25 * expected)  # type: ignore[union-attr]


def test_a_run_below_the_batch_minimum_says_batch_labeling_cannot_take_it() -> None:
    text = " ".join(plain(render(run_estimate(num_examples=60, eval_examples=20))).split())
    assert "batch needs at least 100 queries, this run has 80" in text
