"""``estimate``: tokens and US dollars of a pipeline run and of routing, before any money is spent.

No AWS call is made (no credentials needed). Token counts come from the project's own text: the teacher and
student prompts (:mod:`search_router.shared.prompts`), the mean length of the queries the synthesizer plans for this
seed (:mod:`search_router.pipeline.queries`), the canonical answer format
(:mod:`search_router.shared.answer.formatting`) and the judge's instructions (:mod:`search_router.pipeline.judge`), at
~4 characters per token. Model token prices are the configuration's ``prices`` (cdk.json). Every other rate or
assumption is in :class:`Rates` below, the only place to change them; the ones AWS does not document precisely are
marked unconfirmed and flagged with ``*`` in the output.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass
from typing import Any

from rich.console import Group

from cli.app import App
from cli.capture_cost import capture_cost, capture_cost_lines
from cli.start import local_pipeline_defaults, validate
from cli.text import lines, table
from infra.config import AppConfig
from search_router.pipeline.batch_labeling import MIN_BATCH_RECORDS
from search_router.pipeline.judge import INSTRUCTIONS, JUDGE_PROMPT_PREFIX, RATING_SCALE
from search_router.pipeline.metrics import Price
from search_router.pipeline.queries.planning import plan_queries
from search_router.pipeline.report import fmt_usd
from search_router.shared.answer.decision import RoutingDecision
from search_router.shared.answer.formatting import format_answer
from search_router.shared.channels import ChannelSet
from search_router.shared.model_ids import AUTO_TEACHER
from search_router.shared.prompts import (
    STUDENT_WEIGHTS_ONLY,
    named_prompt,
    prompt_for,
    student_prompt,
    teacher_prompt,
)

QUERY_SAMPLE = 500  # queries synthesized to measure the mean query length


@dataclass(frozen=True)
class Rates:
    """Every rate and assumption of the estimate except the models' token prices (``prices`` in cdk.json)."""

    chars_per_token: float = 4.0
    """Rule of thumb for English text with these models' tokenizers."""
    reasoning_tokens: int = 50
    """The one-sentence reasoning after the weights; with the weights JSON a 4-channel answer is ~70 tokens
    (60-80 observed for the teacher)."""
    distillation_teacher_calls_per_record: float = 1.0
    """*Unconfirmed*: Bedrock bills the teacher's inference while it prepares the distillation data; assumed one
    call per training record (it may also synthesize extra prompts, each billed the same way)."""
    distillation_teacher_output_tokens: int | None = None
    """*Unconfirmed*: length of those teacher answers; None = the same as labeling (the cap is
    maxResponseLengthForInference = 1000 tokens)."""
    distillation_epochs: int = 2
    """*Unconfirmed*: passes over the training data (distillation does not expose its hyperparameters)."""
    training_usd_per_1k_tokens: tuple[tuple[str, float], ...] = (
        ("amazon.nova-micro-v1:0:128k", 0.001),
        ("amazon.nova-lite-v1:0:300k", 0.002),
        ("amazon.nova-pro-v1:0:300k", 0.008),
    )
    """*Unconfirmed*: model customization (training) price per 1K training tokens × epochs, us-east-1."""
    custom_model_storage_usd_per_month: float = 1.95
    """*Unconfirmed*: monthly storage of a custom (distilled) model while it exists."""
    judge_overhead_tokens: int = 250
    """*Unconfirmed*: Bedrock's evaluator template around the custom metric's instructions."""
    judge_output_tokens: int = 150
    """*Unconfirmed*: the judge's explanation and rating per answer."""
    batch_price_ratio: float = 0.5
    """*Unconfirmed*: batch inference's token prices as a share of on-demand ("about half", docs/bedrock-facts.md)."""

    def training_price(self, student_job_model: str) -> float | None:
        return dict(self.training_usd_per_1k_tokens).get(student_job_model)


RATES = Rates()


@dataclass(frozen=True)
class LineItem:
    step: str
    model: str
    calls: int | None
    input_tokens: float
    output_tokens: float
    usd: float | None
    unconfirmed: bool = False


@dataclass(frozen=True)
class RouteCost:
    name: str
    model: str
    prompt_kind: str
    input_tokens: float
    output_tokens: float
    usd_per_1m: float | None
    usd_per_1m_no_reasoning: float | None


@dataclass(frozen=True)
class TokenSizes:
    teacher_prompt: float
    student_prompt: float
    query: float
    answer: float
    weights_only: float
    judge_instructions: float
    """The custom metric's instructions, its rating scale and the judged prompt's fixed text."""


@dataclass(frozen=True)
class Estimate:
    num_examples: int
    eval_examples: int
    teacher: str
    student_job: str
    judge: bool
    sizes: TokenSizes
    items: list[LineItem]
    routes: list[RouteCost]
    storage_usd_per_month: float
    missing_prices: list[str]
    teacher_note: str | None = None
    judge_repeats: int = 1
    judge_call: tuple[float, float] | None = None
    """Input and output tokens of one judge call (the mean over the judged candidates), when the judge is on."""
    batch_labeling: LineItem | None = None
    """Teacher labeling priced as a batch job (``labeling_mode: batch``); the total counts on-demand labeling."""

    @property
    def total_usd(self) -> float:
        return sum(item.usd or 0.0 for item in self.items)


def _tokens(text: str, rates: Rates) -> float:
    return len(text) / rates.chars_per_token


def token_sizes(channels: ChannelSet, seed: int, rates: Rates = RATES) -> TokenSizes:
    queries = plan_queries(channels, n_total=QUERY_SAMPLE, seed=seed, user=None, mix_user=True)
    query_chars = statistics.mean(len(q.text) for q in queries) if queries else 40.0
    uniform = {name: 1.0 / len(channels.names) for name in channels.names}
    with_reasoning = format_answer(RoutingDecision.from_weights(uniform, channels, reasoning=""), channels)
    weights_only = format_answer(RoutingDecision.from_weights(uniform, channels), channels)
    scale = "".join(definition for _, definition in RATING_SCALE)
    return TokenSizes(
        teacher_prompt=_tokens(teacher_prompt(channels), rates),
        student_prompt=_tokens(student_prompt(channels), rates),
        query=query_chars / rates.chars_per_token,
        answer=_tokens(with_reasoning, rates) + rates.reasoning_tokens,
        weights_only=_tokens(weights_only, rates),
        judge_instructions=_tokens(INSTRUCTIONS + scale + JUDGE_PROMPT_PREFIX, rates),
    )


class _Prices:
    """The configuration's token prices; ``missing`` names every model asked for that has none."""

    def __init__(self, config: AppConfig) -> None:
        self._prices = config.prices
        self.missing: list[str] = []

    def of(self, model: str) -> Price | None:
        entry = self._prices.get(model)
        if entry is None:
            if model not in self.missing:
                self.missing.append(model)
            return None
        return Price(entry.input, entry.output)

    def item(
        self, step: str, model: str, calls: int, input_tokens: float, output_tokens: float, *, unconfirmed: bool = False
    ) -> LineItem:
        """A step's calls of ``model`` at its price (``usd`` None without one)."""
        usd = _cost(self.of(model), input_tokens, output_tokens)
        return LineItem(step, model, calls, input_tokens, output_tokens, usd, unconfirmed)


def _cost(price: Price | None, input_tokens: float, output_tokens: float) -> float | None:
    return None if price is None else price.cost_per_route(input_tokens, output_tokens)


def estimate(
    config: AppConfig,
    *,
    num_examples: int,
    eval_examples: int,
    teacher: str,
    judge: bool,
    seed: int,
    judge_repeats: int = 1,
    rates: Rates = RATES,
) -> Estimate:
    channels = config.channels
    sizes = token_sizes(channels, seed, rates)
    prices = _Prices(config)
    items: list[LineItem] = []
    teacher_note = None
    if teacher == AUTO_TEACHER:
        teacher = costliest_teacher(config, sizes)
        teacher_note = (
            f"teacher 'auto' is picked at run time from teacher_preference; priced here as {teacher}, the costliest "
            "choice it can make (python -m cli doctor shows the one your account gets)."
        )

    # Teacher labeling: every planned query (training + held-out) once, with the detailed teacher prompt.
    calls = num_examples + eval_examples
    tin, tout = calls * (sizes.teacher_prompt + sizes.query), calls * sizes.answer
    labeling = prices.item("Teacher labeling", teacher, calls, tin, tout)
    items.append(labeling)
    batch_labeling = LineItem(
        "Teacher labeling, batch",
        teacher,
        calls,
        tin,
        tout,
        None if labeling.usd is None else labeling.usd * rates.batch_price_ratio,
        unconfirmed=True,
    )

    # Distillation: the teacher answers the training records' prompts (compact student prompt + query) ...
    calls = round(num_examples * rates.distillation_teacher_calls_per_record)
    answer = rates.distillation_teacher_output_tokens or sizes.answer
    din, dout = calls * (sizes.student_prompt + sizes.query), calls * answer
    items.append(prices.item("Distillation: teacher inference", teacher, calls, din, dout, unconfirmed=True))
    # ... and the student is trained on the records (system + user + assistant) for some epochs.
    student_job = config.models.student_job
    trained = num_examples * (sizes.student_prompt + sizes.query + sizes.answer) * rates.distillation_epochs
    training_price = rates.training_price(student_job)
    if training_price is None:
        prices.missing.append(f"{student_job} (training)")
    items.append(
        LineItem(
            f"Distillation: training ({rates.distillation_epochs} epochs)",
            student_job,
            None,
            trained,
            0.0,
            None if training_price is None else trained / 1000.0 * training_price,
            unconfirmed=True,
        )
    )

    # Evaluation: every candidate answers every held-out query with its own prompt.
    routes: list[RouteCost] = []
    for candidate in config.eval_candidates:
        prompt = _tokens(named_prompt(candidate.prompt_kind, channels), rates)
        price = prices.of(candidate.model)
        answer = sizes.weights_only if candidate.prompt_kind == STUDENT_WEIGHTS_ONLY else sizes.answer
        ein, eout = eval_examples * (prompt + sizes.query), eval_examples * answer
        items.append(
            LineItem(
                f"Evaluation: {candidate.name}", candidate.model, eval_examples, ein, eout, _cost(price, ein, eout)
            )
        )
        routes.append(
            _route_cost(candidate.name, candidate.model, candidate.prompt_kind, prompt=prompt, sizes=sizes, price=price)
        )

    # LLM judge: judge_repeats Bedrock evaluation jobs per candidate, each one judge call per held-out answer and
    # one for the calibration record (search_router.pipeline.judge). A call reads the metric's instructions and
    # scale, the judged prompt (fixed text + query), the candidate's answer and the reference weights, inside
    # Bedrock's own evaluator template (unconfirmed overhead); it answers an explanation and a rating.
    judge_call = None
    if judge:
        candidates = config.eval_candidates
        calls = judge_repeats * (eval_examples + 1) * len(candidates)
        answers = [sizes.weights_only if c.prompt_kind == STUDENT_WEIGHTS_ONLY else sizes.answer for c in candidates]
        fixed = sizes.judge_instructions + sizes.query + sizes.weights_only + rates.judge_overhead_tokens
        jin = judge_repeats * (eval_examples + 1) * math.fsum(fixed + answer for answer in answers)
        jout = calls * rates.judge_output_tokens
        judge_call = (jin / calls, float(rates.judge_output_tokens))
        step = f"LLM judge ({len(candidates)} candidates x {judge_repeats} repeat{'s' if judge_repeats > 1 else ''})"
        items.append(prices.item(step, config.models.judge, calls, jin, jout, unconfirmed=True))

    default = config.router.default_model
    if (default.model_id, default.prompt_kind) not in {(c.model, c.prompt_kind) for c in config.eval_candidates}:
        prompt = _tokens(prompt_for(default.prompt_kind, channels), rates)
        price = prices.of(default.model_id)
        routes.append(
            _route_cost(
                "router default", default.model_id, default.prompt_kind, prompt=prompt, sizes=sizes, price=price
            )
        )

    return Estimate(
        num_examples=num_examples,
        eval_examples=eval_examples,
        teacher=teacher,
        student_job=student_job,
        judge=judge,
        sizes=sizes,
        items=items,
        routes=routes,
        storage_usd_per_month=rates.custom_model_storage_usd_per_month,
        missing_prices=prices.missing,
        teacher_note=teacher_note,
        judge_repeats=judge_repeats,
        judge_call=judge_call,
        batch_labeling=batch_labeling,
    )


def costliest_teacher(config: AppConfig, sizes: TokenSizes) -> str:
    """The teacher of ``teacher_preference`` whose labeling call costs most (the estimate's upper bound)."""

    def call_cost(model: str) -> float:
        price = config.prices.get(model)
        if price is None:
            return 0.0
        return Price(price.input, price.output).cost_per_route(sizes.teacher_prompt + sizes.query, sizes.answer)

    return max(config.teacher_preference, key=call_cost)


def _route_cost(
    name: str, model: str, kind: str, *, prompt: float, sizes: TokenSizes, price: Price | None
) -> RouteCost:
    rin = prompt + sizes.query
    answer = sizes.weights_only if kind == STUDENT_WEIGHTS_ONLY else sizes.answer
    return RouteCost(
        name=name,
        model=model,
        prompt_kind=kind,
        input_tokens=rin,
        output_tokens=answer,
        usd_per_1m=None if price is None else 1e6 * price.cost_per_route(rin, answer),
        usd_per_1m_no_reasoning=None if price is None else 1e6 * price.cost_per_route(rin, sizes.weights_only),
    )


# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------
def fmt_tokens(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def _usd(value: float | None) -> str:
    return "no price" if value is None else fmt_usd(value)


def _judge_lines(result: Estimate, rates: Rates) -> list[str]:
    if result.judge_call is None:
        return []
    judge_in, judge_out = result.judge_call
    s = result.sizes
    return [
        f"Judge: {result.judge_repeats} job(s) per candidate (judge_repeats), each {result.eval_examples} held-out "
        f"answers + 1 calibration record; a call ~{judge_in:.0f} input tokens (instructions and rating scale "
        f"{s.judge_instructions:.0f} + query {s.query:.0f} + the candidate's answer + reference weights "
        f"{s.weights_only:.0f} + evaluator template {rates.judge_overhead_tokens} *) and {judge_out:.0f} output *.",
    ]


def labeling_mode_lines(result: Estimate, rates: Rates = RATES) -> list[str]:
    """Both labeling modes side by side: on demand (in the total) and batch (cheaper, slower, >= 100 records)."""
    on_demand = next(item for item in result.items if item.step == "Teacher labeling")
    batch = result.batch_labeling
    if batch is None:
        return []
    text = (
        f"Labeling modes: on_demand {_usd(on_demand.usd)} (in the total, minutes to hours at the teacher's quota); "
        f"batch ~{_usd(batch.usd)} * ({rates.batch_price_ratio:.0%} of on-demand token prices; a batch job can "
        "queue for hours, up to its 24-168 h timeout)"
    )
    if batch.calls is not None and batch.calls < MIN_BATCH_RECORDS:
        text += f"; batch needs at least {MIN_BATCH_RECORDS} queries, this run has {batch.calls}"
    elif on_demand.usd is not None and batch.usd is not None:
        text += f"; the run's total with batch labeling {fmt_usd(result.total_usd - on_demand.usd + batch.usd)}"
    return [text + "."]


def render(result: Estimate, rates: Rates = RATES) -> Group:
    """The estimate as rich renders it: the sizes, the run's cost table, the routing cost table, the notes."""
    s = result.sizes
    head = [
        f"Estimate for one pipeline run: {result.num_examples} training + {result.eval_examples} held-out examples, "
        f"teacher {result.teacher}, student {result.student_job}, judge {'on' if result.judge else 'off'}.",
        f"Tokens at ~{rates.chars_per_token:g} characters per token: teacher prompt {s.teacher_prompt:.0f}, "
        f"student prompt {s.student_prompt:.0f}, mean query {s.query:.0f}, answer {s.answer:.0f} "
        f"(weights only {s.weights_only:.0f}).",
        *([f"Note: {result.teacher_note}"] if result.teacher_note else []),
        *_judge_lines(result, rates),
        "",
    ]
    rows = [
        [
            item.step + (" *" if item.unconfirmed else ""),
            item.model,
            "-" if item.calls is None else f"{item.calls:,}",
            fmt_tokens(item.input_tokens),
            fmt_tokens(item.output_tokens) if item.output_tokens else "-",
            _usd(item.usd),
        ]
        for item in result.items
    ]
    rows.append(["Total", "", "", "", "", fmt_usd(result.total_usd)])
    run_table = table(["step", "model", "calls", "input tokens", "output tokens", "USD"], rows, right=(2, 3, 4, 5))
    middle = [
        "",
        *labeling_mode_lines(result, rates),
        f"While the distilled model exists: storage ~{fmt_usd(result.storage_usd_per_month)}/month *; "
        "its on-demand deployment bills per token (the 'distilled' price), no hourly charge *.",
        "Not counted: Step Functions, Lambda, S3 and API Gateway (cents for a run).",
        "",
        "Routing cost per 1M routes (one query each; 'no reasoning' = weights only, streamed *)",
    ]
    route_rows = [
        [
            r.name,
            r.model,
            r.prompt_kind,
            f"{r.input_tokens:.0f}",
            f"{r.output_tokens:.0f}",
            _usd(r.usd_per_1m),
            _usd(r.usd_per_1m_no_reasoning),
        ]
        for r in result.routes
    ]
    route_table = table(
        ["router", "model", "prompt", "input tok", "output tok", "USD / 1M", "no reasoning"],
        route_rows,
        right=(3, 4, 5, 6),
    )
    notes = [
        "",
        "* unconfirmed: Bedrock's distillation data processing (teacher calls assumed one per training record, "
        f"{rates.distillation_epochs} training epochs), training and storage rates, the judge's prompt overhead "
        "and output length, on-demand custom model pricing, batch inference's discount, and output tokens billed "
        "when a stream is closed early. "
        "Rates live in cli/estimate.py "
        "(Rates); model token prices in cdk.json (prices).",
    ]
    if result.missing_prices:
        notes.append(f"No price configured for: {', '.join(result.missing_prices)} (add them to cdk.json 'prices').")
    return Group(*lines(head), run_table, *lines(middle), route_table, *lines(notes))


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "estimate",
        parents=[common],
        help="tokens and dollars of a run and per 1M routes (offline, no AWS credentials needed)",
        description="Estimate a pipeline run's tokens and cost at the configured (or given) sizes, and the cost "
        "of routing with each candidate. Uses cdk.json only; no AWS call is made.",
    )
    parser.add_argument("--examples", type=int, help="training examples (num_examples; default from cdk.json)")
    parser.add_argument("--eval", type=int, help="held-out examples (eval_examples; default from cdk.json)")
    parser.add_argument("--teacher", help="teacher model id, or auto (default from cdk.json)")
    judge = parser.add_mutually_exclusive_group()
    judge.add_argument("--judge", dest="judge", action="store_true", default=None, help="count the LLM judge")
    judge.add_argument("--no-judge", dest="judge", action="store_false", help="leave the LLM judge out")
    parser.add_argument(
        "--judge-repeats", type=int, help="judge jobs per candidate (judge_repeats, 1..3; default from cdk.json)"
    )
    parser.set_defaults(handler=run)


def run(app: App, args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    for key, value in (
        ("num_examples", args.examples),
        ("eval_examples", args.eval),
        ("teacher_model_id", args.teacher),
        ("judge", args.judge),
        ("judge_repeats", args.judge_repeats),
    ):
        if value is not None:
            overrides[key] = value
    settings = validate(overrides, local_pipeline_defaults(app))
    result = estimate(
        app.config,
        num_examples=settings.num_examples,
        eval_examples=settings.eval_examples,
        teacher=settings.teacher_model_id,
        judge=settings.judge,
        seed=settings.seed,
        judge_repeats=settings.judge_repeats,
    )
    app.terminal.show(render(result))
    app.terminal.show(Group(*lines(["", *capture_cost_lines(capture_cost(app.config))])))
    return 0
