"""The evaluation report of one pipeline run: ``report.json``, ``report.md`` and a notification headline.

:func:`build_report` assembles the JSON document (candidates with their metrics and judge scores, the gate
decision, the dataset manifest summary, prices, chart file names); :func:`render_markdown` turns it into a page a
person reads next to the charts (:mod:`search_router.pipeline.charts`); :func:`headline` is the short plain text sent
by SNS. Rendering reads only the report dict, so an old ``report.json`` can be re-rendered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from search_router.pipeline.metrics import Channels, Price, channel_names

MIN_SPLIT_SIZE = 10
"""A held-out split with fewer queries is too noisy to choose τ on (the cascade's rule)."""

SCHEMA_VERSION = 1
CHART_FILES: dict[str, str] = {
    "latency": "latency.png",
    "mae_per_channel": "mae_per_channel.png",
    "rubric_distribution": "rubric_distribution.png",
    "cascade_tau": "cascade_tau.png",
    "confusion": "confusion.png",
}
"""Chart key → file name, relative to the report's own folder."""
CHART_TITLES: dict[str, str] = {
    "latency": "Latency per candidate",
    "mae_per_channel": "Mean absolute error per channel",
    "rubric_distribution": "Rubric score distribution",
    "cascade_tau": "Cascade: quality, latency and cost over the confidence threshold τ",
    "confusion": "Dominant channel: teacher vs candidate (confusion matrix)",
}


def chart_applies(key: str, cascade: Any, candidates: Sequence[Mapping[str, Any]]) -> bool:
    """Whether chart ``key`` is drawn: ``cascade_tau`` only with a cascade section, ``confusion`` only when a
    candidate has a confusion matrix, every other chart always."""
    if key == "cascade_tau":
        return cascade is not None
    if key == "confusion":
        return any(isinstance(c.get("confusion"), Mapping) for c in candidates)
    return True


JUDGE_STATUSES = ("ok", "missing", "skipped")
ANALYSIS_FIELDS = ("intervals", "fusion", "breakdowns", "confusion", "worst")
"""A candidate's optional fields from :func:`search_router.pipeline.analysis.analyse`."""
NA = "n/a"


# ---------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------
def with_interval(candidate: Mapping[str, Any], metric: str, value: Any, fmt: Any) -> str:
    """``fmt(value)``, then `` [low, high]`` when the candidate has an interval for ``metric``."""
    interval = _get(candidate, "intervals", metric) or {}
    low, high = _num(interval.get("low")), _num(interval.get("high"))
    text = fmt(value)
    return text if low is None or high is None or text == NA else f"{text} [{fmt(low)}, {fmt(high)}]"


def _judge(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {"score": None, "status": "skipped", "reason": None}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}.judge must be an object {{score, status, reason}}")
    status = raw.get("status", "ok" if raw.get("score") is not None else "missing")
    if status not in JUDGE_STATUSES:
        raise ValueError(f"{where}.judge.status must be one of {', '.join(JUDGE_STATUSES)}; got {status!r}")
    score = raw.get("score")
    if score is not None and _num(score) is None:
        raise ValueError(f"{where}.judge.score must be a number or null, got {score!r}")
    if status == "ok" and score is None:
        raise ValueError(f"{where}.judge has status 'ok' but no score")
    reason = raw.get("reason")
    return {"score": None if score is None else float(score), "status": status, "reason": reason}


def _price_for(candidate: Mapping[str, Any], prices: Mapping[str, Any]) -> dict[str, float] | None:
    """The price the candidate's cost was computed with, else ``prices[name]``, else ``prices[model_id]``."""
    metric_price = candidate["metrics"].get("price")
    if isinstance(metric_price, Mapping):
        return Price.from_dict(metric_price).to_dict()
    for key in (candidate["name"], candidate.get("model_id")):
        entry = prices.get(key) if isinstance(key, str) else None
        if isinstance(entry, Mapping):
            return Price.from_dict(entry).to_dict()
    return None


def build_report(
    *,
    run_id: str,
    channels: Channels,
    candidates: Sequence[Mapping[str, Any]],
    gate: Mapping[str, Any] | None,
    dataset: Mapping[str, Any] | None,
    prices: Mapping[str, Any],
    generated_at: str | None = None,
    teacher: Mapping[str, Any] | None = None,
    cascade: Mapping[str, Any] | None = None,
    comparison: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
    judge_reliability: Mapping[str, Any] | None = None,
    fusion_source: Mapping[str, Any] | None = None,
    drift: Mapping[str, Any] | None = None,
    production: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``report.json`` document.

    ``candidates``: ``{"name", "model_id", "prompt_kind", "metrics": compute_metrics(...), "judge": {"score",
    "status": "ok"|"missing"|"skipped", "reason"}}`` in display order (a missing ``judge`` means skipped).
    ``gate``: :meth:`search_router.pipeline.gate.GateDecision.to_dict` output (optionally with ``candidate`` and
    ``thresholds``), or None when the gate did not run. ``prices``: ``{model id or candidate name: {"input",
    "output"}}`` in USD per 1K tokens; each candidate's price is the one its metrics were computed with, else
    the entry for its name, else for its model id. ``teacher``: the run's teacher as Preflight chose it
    (``{"model_id", "requested", "refused": [{"model_id", "reason"}]}``). A candidate's optional
    ``metrics_by_split`` (:func:`~search_router.pipeline.metrics.metrics_by_split`) is kept. ``cascade``: the
    micro-router and cascade section (``setting``, ``fallback_candidate``, ``choice``
    (:meth:`~search_router.pipeline.cascade.TauChoice.to_dict`), ``sweep``, ``gate``, ``outcome``, ``training``),
    None when no micro-router was trained. A candidate's optional ``intervals``, ``fusion``, ``breakdowns``,
    ``confusion`` and ``worst`` (:func:`search_router.pipeline.analysis.analyse`) are kept; ``comparison`` is the
    gate's non-inferiority test (:meth:`~search_router.pipeline.analysis.Comparison.to_dict`), ``warnings`` what
    the reader must know (e.g. a held-out set too small for the gate's margin); ``judge_reliability``: per
    candidate ``{"repeats", "scores", "spread", "rank_correlation", "disagreement_share"}`` (the judge's repeated
    runs and its agreement with the rubric); ``fusion_source``: where the fusion metric's score lists came from
    (``{"kind": "drawn", "shape"}`` or ``{"kind": "samples", "uri", "samples"}``). ``ValueError`` on a malformed
    candidate. ``drift``: the latest production drift summary (:mod:`search_router.pipeline.drift`), when the
    stack captures queries and its daily check has run. ``production``: the gated candidate and the model in
    service on the run's production held-out queries (:func:`search_router.pipeline.shadow.production_traffic`),
    when the run has some or its shadow replay did not skip.
    """
    if not isinstance(run_id, str) or not run_id:
        raise ValueError("run_id must be a non-empty string")
    names = channel_names(channels)
    built: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, candidate in enumerate(candidates):
        where = f"candidates[{index}]"
        name = candidate.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.name must be a non-empty string")
        if name in seen:
            raise ValueError(f"{where}.name {name!r} is duplicated")
        seen.add(name)
        metrics = candidate.get("metrics")
        if not isinstance(metrics, Mapping):
            raise ValueError(f"{where}.metrics must be the compute_metrics() object")
        built.append(
            {
                "name": name,
                "model_id": candidate.get("model_id"),
                "prompt_kind": candidate.get("prompt_kind"),
                "metrics": dict(metrics),
                "judge": _judge(candidate.get("judge"), where),
                "price": _price_for(candidate, prices),
                "metrics_by_split": dict(candidate.get("metrics_by_split") or {}),
                **{key: candidate[key] for key in ANALYSIS_FIELDS if candidate.get(key) is not None},
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "generated_at": generated_at,
        "channels": list(names),
        "teacher": dict(teacher) if teacher is not None else None,
        "candidates": built,
        "gate": dict(gate) if gate is not None else None,
        "dataset": dict(dataset) if dataset is not None else None,
        "prices": {key: Price.from_dict(value).to_dict() for key, value in prices.items()},
        "cascade": dict(cascade) if cascade is not None else None,
        "comparison": dict(comparison) if comparison is not None else None,
        "warnings": list(warnings),
        "judge_reliability": dict(judge_reliability) if judge_reliability else None,
        "fusion_source": dict(fusion_source) if fusion_source else None,
        "drift": dict(drift) if drift else None,
        "production": dict(production) if production else None,
        "charts": {key: name for key, name in CHART_FILES.items() if chart_applies(key, cascade, candidates)},
    }


# ---------------------------------------------------------------------------------------------------------
# Number formatting
# ---------------------------------------------------------------------------------------------------------
def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _formatted(value: Any, spec: str) -> str:
    """``value`` in the format ``spec``; :data:`NA` when it is not a finite number."""
    number = _num(value)
    return NA if number is None else format(number, spec)


def fmt_rate(value: Any) -> str:
    """A share as a percentage with one decimal: ``0.97`` → ``97.0%``."""
    return _formatted(value, ".1%")


def fmt_ms(value: Any) -> str:
    """Milliseconds without decimals, thousands separated: ``1741.2`` → ``1,741``; under 10 ms with two
    decimals (``0.0412`` → ``0.04``: the micro-router's answers are not 0 ms)."""
    number = _num(value)
    return _formatted(value, ".2f" if number is not None and abs(number) < 10 else ",.0f")


def fmt_mae(value: Any) -> str:
    """An absolute error with three decimals."""
    return _formatted(value, ".3f")


def fmt_score(value: Any) -> str:
    """A 1-5 score with two decimals."""
    return _formatted(value, ".2f")


def fmt_usd(value: Any) -> str:
    """US dollars: cents from $1 up; below, two significant digits past the leading zeros.

    ``10.5`` → ``$10.50``, ``0.0105`` → ``$0.0105``, ``0.000035`` → ``$0.000035``, ``0.00014`` → ``$0.00014``.
    """
    number = _num(value)
    if number is None:
        return NA
    if number == 0:
        return "$0"
    if abs(number) >= 1:
        return f"${number:,.2f}"
    decimals = min(10, max(2, -math.floor(math.log10(abs(number))) + 2))
    text = f"{number:.{decimals}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def _fmt_tokens(value: Any) -> str:
    return _formatted(value, ",.1f")


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ").strip()


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: Sequence[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def judge_text(judge: Mapping[str, Any] | None) -> str:
    """``4.00``, ``missing (reason)`` or ``skipped``."""
    if not judge:
        return "skipped"
    status = judge.get("status")
    if status == "ok" and _num(judge.get("score")) is not None:
        return fmt_score(judge.get("score"))
    label = "missing" if status == "missing" else "skipped"
    reason = judge.get("reason")
    return f"{label} ({reason})" if reason else label


def _get(mapping: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = mapping
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


# ---------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------
def _gate_status(gate: Mapping[str, Any] | None) -> str:
    if not gate:
        return "NOT EVALUATED"
    return "PASSED" if gate.get("passed") else "FAILED"


CANDIDATE_HEADER: tuple[str, ...] = (
    "candidate",
    "model",
    "prompt",
    "judge (1-5)",
    "rubric mean (1-5)",
    "MAE",
    "dominant accuracy",
    "valid JSON",
    "latency mean (ms)",
    "latency p95 (ms)",
    "input $/1K tokens",
    "output $/1K tokens",
    "$ per 1M routes",
)
"""The candidates table's columns (report.md and report.html)."""


def _candidates_section(report: Mapping[str, Any]) -> list[str]:
    header = list(CANDIDATE_HEADER)
    align = [":---", ":---", ":---"] + ["---:"] * (len(header) - 3)
    rows = []
    for c in report.get("candidates", []):
        m = c.get("metrics", {})
        rows.append(
            [
                f"**{c['name']}**",
                f"`{c.get('model_id')}`" if c.get("model_id") else NA,
                c.get("prompt_kind") or NA,
                judge_text(c.get("judge")),
                with_interval(c, "rubric_mean", m.get("rubric_mean"), fmt_score),
                with_interval(c, "mae_overall", m.get("mae_overall"), fmt_mae),
                with_interval(c, "dominant_accuracy", m.get("dominant_accuracy"), fmt_rate),
                with_interval(c, "valid_json_rate", m.get("valid_json_rate"), fmt_rate),
                fmt_ms(_get(m, "latency", "mean")),
                fmt_ms(_get(m, "latency", "p95")),
                fmt_usd(_get(c, "price", "input_per_1k")),
                fmt_usd(_get(c, "price", "output_per_1k")),
                fmt_usd(m.get("cost_per_1m_routes")),
            ]
        )
    note = (
        ["95% bootstrap intervals in brackets (seeded; the same run gives the same intervals).", ""]
        if any(c.get("intervals") for c in report.get("candidates", []))
        else []
    )
    return ["## Candidates", "", *note, *_table(header, rows, align), ""]


def _details_section(report: Mapping[str, Any]) -> list[str]:
    header = [
        "candidate",
        "queries",
        "answered",
        "schema-valid",
        "within 0.05",
        "within 0.10",
        "max abs error",
        "latency p50 / p99 (ms)",
        "service latency mean (ms)",
        "tokens in / out (mean)",
    ]
    align = [":---"] + ["---:"] * (len(header) - 1)
    rows = []
    for c in report.get("candidates", []):
        m = c.get("metrics", {})
        rows.append(
            [
                c["name"],
                m.get("n", NA),
                fmt_rate(m.get("answered_rate")),
                fmt_rate(m.get("schema_valid_rate")),
                fmt_rate(m.get("within_005_rate")),
                fmt_rate(m.get("within_010_rate")),
                fmt_mae(m.get("max_abs_error")),
                f"{fmt_ms(_get(m, 'latency', 'p50'))} / {fmt_ms(_get(m, 'latency', 'p99'))}",
                fmt_ms(m.get("service_latency_mean")),
                f"{_fmt_tokens(_get(m, 'tokens', 'input_mean'))} / {_fmt_tokens(_get(m, 'tokens', 'output_mean'))}",
            ]
        )
    return ["### Details", "", *_table(header, rows, align), ""]


def _mae_section(report: Mapping[str, Any]) -> list[str]:
    channels = list(report.get("channels", []))
    header = ["candidate", *channels, "overall"]
    align = [":---"] + ["---:"] * (len(header) - 1)
    rows = []
    for c in report.get("candidates", []):
        m = c.get("metrics", {})
        per_channel = m.get("mae_per_channel") or {}
        rows.append([c["name"], *(fmt_mae(per_channel.get(ch)) for ch in channels), fmt_mae(m.get("mae_overall"))])
    return [
        "## Mean absolute error per channel",
        "",
        "Over schema-valid answers, against the teacher's reference weights (lower is better).",
        "",
        *_table(header, rows, align),
        "",
    ]


def _rubric_section(report: Mapping[str, Any]) -> list[str]:
    header = ["candidate", "1", "2", "3", "4", "5", "mean"]
    align = [":---"] + ["---:"] * (len(header) - 1)
    rows = []
    for c in report.get("candidates", []):
        m = c.get("metrics", {})
        dist = m.get("rubric_distribution") or {}
        rows.append([c["name"], *(dist.get(str(s), 0) for s in range(1, 6)), fmt_score(m.get("rubric_mean"))])
    return [
        "## Rubric distribution",
        "",
        "Deterministic 1-5 rubric from the weights (5: every weight within 0.05 of the reference; 4: within 0.10; "
        "3: dominant channel right and mean error < 0.15; 2: otherwise; 1: unparseable, unanswered or mean "
        "error > 0.30). Counts of queries.",
        "",
        *_table(header, rows, align),
        "",
    ]


def _failures_section(report: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for c in report.get("candidates", []):
        m = c.get("metrics", {})
        errors = m.get("errors_by_kind") or {}
        failures = m.get("parse_failures_by_reason") or {}
        if not errors and not failures:
            continue
        parts = []
        if errors:
            parts.append("errors: " + ", ".join(f"{k} × {v}" for k, v in errors.items()))
        if failures:
            parts.append("parse failures: " + ", ".join(f"{k} × {v}" for k, v in failures.items()))
        lines.append(f"- **{c['name']}**: " + "; ".join(parts))
    if not lines:
        return []
    return ["## Errors and parse failures", "", *lines, ""]


def _gate_section(report: Mapping[str, Any]) -> list[str]:
    gate = report.get("gate")
    lines = ["## Quality gate", ""]
    if not gate:
        return [*lines, "The quality gate was not evaluated.", ""]
    mark = "✅" if gate.get("passed") else "❌"
    subject = f" for **{gate['candidate']}**" if gate.get("candidate") else ""
    lines += [f"**{_gate_status(gate)}** {mark}{subject}", ""]
    for check in gate.get("checks", []):
        icon = "⏭️" if check.get("skipped") else ("✅" if check.get("passed") else "❌")
        lines.append(f"- {icon} `{check.get('name')}`: {check.get('message')}")
    thresholds = gate.get("thresholds")
    if isinstance(thresholds, Mapping) and thresholds:
        lines += ["", "Thresholds: " + ", ".join(f"`{k}` = {v}" for k, v in thresholds.items())]
    return [*lines, ""]


SPLIT_HEADER: tuple[str, ...] = (
    "candidate",
    "split",
    "queries",
    "rubric mean",
    "MAE",
    "dominant accuracy",
    "valid JSON",
    "latency mean (ms)",
    "$ per 1M routes",
)
"""The per-split table's columns (report.md and report.html)."""


def split_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """Every candidate's headline metrics on each held-out split, formatted (:data:`SPLIT_HEADER`)."""
    rows = []
    for c in report.get("candidates", []):
        for split, m in (c.get("metrics_by_split") or {}).items():
            rows.append(
                [
                    c["name"],
                    split,
                    m.get("n", NA),
                    fmt_score(m.get("rubric_mean")),
                    fmt_mae(m.get("mae_overall")),
                    fmt_rate(m.get("dominant_accuracy")),
                    fmt_rate(m.get("valid_json_rate")),
                    fmt_ms(_get(m, "latency", "mean")),
                    fmt_usd(m.get("cost_per_1m_routes")),
                ]
            )
    return rows


def _splits_section(report: Mapping[str, Any]) -> list[str]:
    """Every candidate's headline metrics on each held-out split."""
    rows = split_rows(report)
    if not rows:
        return []
    header = list(SPLIT_HEADER)
    align = [":---", ":---"] + ["---:"] * (len(header) - 2)
    return [
        "## Per held-out split",
        "",
        "`seen`: queries of templates the training set also drew from; `unseen_template`: templates and vocabulary "
        "never used in training (what a lexical model cannot have memorized); `user`: your own queries.",
        "",
        *_table(header, rows, align),
        "",
    ]


PRODUCTION_HEADER: tuple[str, ...] = ("model", "queries", "valid JSON", "MAE", "dominant channel = teacher's")
"""The "Production traffic" table's columns (report.md and report.html)."""


def production_rows(production: Mapping[str, Any]) -> list[list[Any]]:
    """The gated candidate and the model in service against the teacher on the production queries, formatted
    (:data:`PRODUCTION_HEADER`); the model in service's row only when the replay ran."""
    shadow = production.get("shadow") or {}
    rows = []
    for label, figures in (
        (f"{production.get('candidate')} (candidate)", production.get("candidate_figures")),
        (f"{shadow.get('model_id')} (in service)", production.get("service_figures")),
    ):
        if isinstance(figures, Mapping):
            rows.append(
                [
                    label,
                    figures.get("n", NA),
                    fmt_rate(figures.get("valid_json_rate")),
                    fmt_mae(figures.get("mae_overall")),
                    fmt_rate(figures.get("dominant_accuracy")),
                ]
            )
    return rows


def production_notes(production: Mapping[str, Any]) -> list[str]:
    """What the replay did, how the two models agree, and the candidate's judge rubric there (one sentence each)."""
    shadow = production.get("shadow") or {}
    total = production.get("production_queries", 0)
    status = shadow.get("status")
    if status == "ok":
        origin = (
            f"promoted by run {shadow['promoted_run_id']}"
            if shadow.get("promoted_run_id")
            else "the router's default model, nothing promoted yet"
        )
        notes = [
            f"Shadow replay: the model in service, {shadow.get('model_id')} (prompt {shadow.get('prompt_kind')}; "
            f"{origin}), answered {shadow.get('replayed')} of the {total} production queries; the candidate's row "
            "is over the same queries."
        ]
    elif status == "failed":
        notes = [f"Shadow replay FAILED: {shadow.get('reason')}. The candidate's row is over every production query."]
    else:
        notes = [f"Shadow replay skipped: {shadow.get('reason') or 'no reason given'}."]
    agreement = production.get("agreement")
    if isinstance(agreement, Mapping):
        notes.append(
            f"Candidate vs model in service on {agreement.get('compared')} of {agreement.get('paired')} queries "
            f"where both gave weights: same dominant channel {fmt_rate(agreement.get('dominant_agreement'))}, mean "
            f"absolute weight difference {fmt_mae(agreement.get('mean_abs_weight_difference'))}."
        )
    judge = production.get("judge") or {}
    if judge.get("rubric") is not None:
        notes.append(
            f"Judge rubric of the candidate on {judge.get('rated')} of the {total} production queries: "
            f"{fmt_score(judge.get('rubric'))}."
        )
    else:
        notes.append(f"Judge rubric of the candidate on the production queries: {NA} ({judge.get('reason')}).")
    return notes


def _production_section(report: Mapping[str, Any]) -> list[str]:
    """The gated candidate and the model in service on the run's production held-out queries."""
    production = report.get("production")
    if not isinstance(production, Mapping):
        return []
    lines = ["## Production traffic", ""]
    lines += [
        f"{production.get('production_queries', 0)} production queries (split `production`: captured traffic, "
        "labeled by the teacher, never trained on).",
        "",
    ]
    rows = production_rows(production)
    if rows:
        lines += [*_table(list(PRODUCTION_HEADER), rows, [":---"] + ["---:"] * 4), ""]
    lines += [f"- {note}" for note in production_notes(production)]
    return [*lines, ""]


def _interval_cell(interval: Any, fmt: Any) -> str:
    if not isinstance(interval, Mapping):
        return NA
    low, high = _num(interval.get("low")), _num(interval.get("high"))
    text = fmt(interval.get("estimate"))
    return text if low is None or high is None else f"{text} [{fmt(low)}, {fmt(high)}]"


def _fusion_text(source: Any, k: int) -> str:
    how = (
        "fused as the search does (weighted mean of min-max normalized scores, channels under 0.05 skipped), and "
        f"the top {k} under the candidate's weights is compared with the top {k} under the teacher's."
    )
    if isinstance(source, Mapping) and source.get("kind") == "samples":
        return (
            f"Per held-out query, one of your {source.get('samples')} score samples (`{source.get('uri')}`, chosen "
            f"by the query and the seed; the same for every candidate) is {how}"
        )
    shape = source.get("shape") if isinstance(source, Mapping) else None
    drawn = ", ".join(f"{key} {value}" for key, value in shape.items()) if isinstance(shape, Mapping) else ""
    return (
        f"Per held-out query, per-channel score lists are drawn (seeded by the query; the same for every candidate"
        f"{'; ' + drawn if drawn else ''}), {how} The lists are synthetic: the figures compare candidates, not a real "
        "index (give your own with `fusion_scores_s3_uri`)."
    )


def _fusion_section(report: Mapping[str, Any]) -> list[str]:
    rows = []
    for c in report.get("candidates", []):
        fusion = c.get("fusion")
        if not isinstance(fusion, Mapping):
            continue
        rows.append(
            [
                c["name"],
                _interval_cell(fusion.get("mean_overlap"), fmt_rate),
                _interval_cell(fusion.get("share_changed"), fmt_rate),
                fusion.get("n", NA),
                fusion.get("without_weights", NA),
            ]
        )
    if not rows:
        return []
    first = next(c["fusion"] for c in report["candidates"] if isinstance(c.get("fusion"), Mapping))
    k, changed = first.get("k", 10), first.get("changed_threshold", 3)
    header = [
        "candidate",
        f"mean overlap@{k} with the teacher's top {k}",
        f"queries whose top {k} changes by > {changed}",
        "queries",
        "without weights (ranked with equal weights)",
    ]
    return [
        "## What the weights do to search results",
        "",
        _fusion_text(report.get("fusion_source"), k),
        "",
        *_table(header, rows, [":---"] + ["---:"] * 4),
        "",
    ]


def _breakdown_section(report: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    titles = {"category": "query category", "dominant_channel": "the teacher's dominant channel"}
    for key, title in titles.items():
        rows = [
            [
                c["name"],
                row.get("key"),
                row.get("n", NA),
                fmt_score(row.get("rubric_mean")),
                fmt_mae(row.get("mae_overall")),
                fmt_rate(row.get("dominant_accuracy")),
            ]
            for c in report.get("candidates", [])
            for row in (_get(c, "breakdowns", key) or [])
        ]
        if rows:
            header = ["candidate", title, "queries", "rubric mean", "MAE", "dominant accuracy"]
            lines += [f"### By {title}", "", *_table(header, rows, [":---", ":---"] + ["---:"] * 4), ""]
    return ["## Where it goes wrong", "", *lines] if lines else []


def _weights_text(weights: Any, channels: Sequence[str]) -> str:
    if not isinstance(weights, Mapping):
        return "none"
    return " ".join(f"{name[:5]} {_formatted(weights.get(name), '.2f')}" for name in channels)


def _worst_section(report: Mapping[str, Any]) -> list[str]:
    channels = list(report.get("channels", []))
    lines: list[str] = []
    for c in report.get("candidates", []):
        worst = c.get("worst") or []
        if not worst:
            continue
        rows = [
            [
                w.get("query"),
                w.get("split") or NA,
                w.get("rubric"),
                fmt_mae(w.get("mae")),
                _weights_text(w.get("reference"), channels),
                _weights_text(w.get("weights"), channels),
                w.get("failure") or "",
            ]
            for w in worst
        ]
        header = ["query", "split", "rubric", "MAE", "teacher", "candidate", "failure"]
        lines += [
            f"### {c['name']}",
            "",
            *_table(header, rows, [":---", ":---", "---:", "---:", ":---", ":---", ":---"]),
            "",
        ]
    if not lines:
        return []
    title = "## The worst answers (lowest rubric first, then the largest error), with the teacher's weights"
    return [title, "", *lines]


def _judge_reliability_section(report: Mapping[str, Any]) -> list[str]:
    reliability = report.get("judge_reliability")
    if not isinstance(reliability, Mapping) or not reliability:
        return []
    rows = []
    for name, entry in reliability.items():
        scores = ", ".join(fmt_score(s) for s in entry.get("scores") or []) or NA
        rows.append(
            [
                name,
                entry.get("repeats", NA),
                scores,
                fmt_score(entry.get("spread")),
                _formatted(entry.get("rank_correlation"), "+.2f"),
                fmt_rate(entry.get("disagreement_share")),
                entry.get("reason") or "",
            ]
        )
    header = [
        "candidate",
        "judge runs",
        "scores",
        "spread (max − min)",
        "rank correlation with the rubric",
        "queries where judge and rubric differ by ≥ 2",
        "note",
    ]
    return [
        "## The judge's reliability",
        "",
        "Repeated judge runs (`judge_repeats`) and, per query, the judge's rating against the deterministic rubric "
        "(Spearman rank correlation; a judge that agrees with the rubric adds little, one that often differs by 2 "
        "or more points deserves a look at those queries).",
        "",
        *_table(header, rows, [":---"] + ["---:"] * 5 + [":---"]),
        "",
    ]


def _warnings_section(report: Mapping[str, Any]) -> list[str]:
    warnings = report.get("warnings") or []
    return [*(f"> ⚠️ {warning}" for warning in warnings), ""] if warnings else []


def _tau(value: Any) -> str:
    return "never (model only)" if value is None else _formatted(value, ".3f")


def _cascade_section(report: Mapping[str, Any]) -> list[str]:
    cascade = report.get("cascade")
    if not isinstance(cascade, Mapping):
        return []
    outcome = cascade.get("outcome") or {}
    mark = "✅ enabled" if outcome.get("enabled") else "⏸️ not enabled"
    lines = ["## Micro-router and cascade", "", f"**{mark}** — {outcome.get('reason')}", ""]
    choice = cascade.get("choice")
    if isinstance(choice, Mapping):
        shares = ", ".join(f"`{k}` {fmt_rate(v)}" for k, v in (choice.get("answered_share_by_split") or {}).items())
        lines += [
            f"- τ = **{_tau(choice.get('tau'))}**, chosen on the hardest split `{choice.get('split')}`: the lowest "
            f"threshold at which the cascade's {choice.get('metric')} there "
            f"({fmt_score(choice.get('cascade_quality'))}) "
            f"is within {choice.get('margin')} of the distilled model's ({fmt_score(choice.get('model_quality'))}; "
            f"micro-router alone {fmt_score(choice.get('micro_quality'))}); the hardest split is the one where the "
            f"micro-router alone does worst, among splits of at least {MIN_SPLIT_SIZE} queries; at τ, the "
            "micro-router's own answers are also within the margin of the model's on the same queries",
            "- τ is chosen on these held-out queries and the cascade is then scored on them: its figures are "
            "optimistic by that choice (a larger `eval_examples` narrows the gap)",
            f"- share answered by the micro-router at τ: {fmt_rate(choice.get('answered_share_overall'))} of all "
            f"held-out queries ({shares})",
            f"- the cascade falls back to `{cascade.get('fallback_candidate')}`; the router uses the micro-router "
            "only for requests without reasoning (`include_reasoning: false`), setting "
            f"`router_cascade` = `{cascade.get('setting')}`",
        ]
    gate = cascade.get("gate")
    if isinstance(gate, Mapping):
        lines += ["", f"The cascade's quality gate: **{_gate_status(gate)}**"]
        for check in gate.get("checks", []):
            icon = "⏭️" if check.get("skipped") else ("✅" if check.get("passed") else "❌")
            lines.append(f"- {icon} `{check.get('name')}`: {check.get('message')}")
    sweep = cascade.get("sweep") or []
    if sweep:
        header = ["τ", "answered by micro-router", "rubric mean", "MAE", "latency mean (ms)", "$ per 1K routes"]
        rows = [
            [
                _tau(p.get("tau")),
                fmt_rate(p.get("answered_share")),
                fmt_score(p.get("rubric_mean")),
                fmt_mae(p.get("mae_overall")),
                fmt_ms(p.get("latency_mean_ms")),
                fmt_usd(p.get("cost_per_1k_routes")),
            ]
            for p in sweep
        ]
        lines += ["", "Over τ (every held-out query):", "", *_table(header, rows, [":---"] + ["---:"] * 5)]
    return [*lines, ""]


def teacher_text(teacher: Mapping[str, Any] | None) -> str:
    """``us.amazon.nova-pro-v1:0 (chosen automatically from teacher_preference; ... refused: ...)``."""
    if not teacher or not teacher.get("model_id"):
        return "not recorded"
    if teacher.get("requested") not in (None, "auto"):
        return f"{teacher['model_id']} (set explicitly)"
    refused = "; ".join(f"{r.get('model_id')} refused: {r.get('reason')}" for r in teacher.get("refused") or [])
    how = "chosen automatically from teacher_preference" if teacher.get("requested") == "auto" else "teacher"
    return f"{teacher['model_id']} ({how}{'; ' + refused if refused else ''})"


def _teacher_section(report: Mapping[str, Any]) -> list[str]:
    if not report.get("teacher"):
        return []
    return [f"Teacher: `{report['teacher'].get('model_id')}` — {teacher_text(report['teacher'])}", ""]


def _dataset_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_dataset_value(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(_dataset_value(v) for v in value) or "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _dataset_section(report: Mapping[str, Any]) -> list[str]:
    dataset = report.get("dataset")
    lines = ["## Dataset", ""]
    if not dataset:
        return [*lines, "No dataset manifest was given.", ""]
    lines += [f"- **{key}**: {_dataset_value(value)}" for key, value in dataset.items()]
    return [*lines, ""]


def _charts_section(report: Mapping[str, Any]) -> list[str]:
    charts = report.get("charts") or {}
    lines = ["## Charts", ""]
    for key, filename in charts.items():
        title = CHART_TITLES.get(key, key)
        lines += [f"### {title}", "", f"![{title}]({filename})", ""]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown (tables, gate checks, dataset, links to the chart files)."""
    gate = report.get("gate")
    lines = [f"# Routing evaluation report — run `{report.get('run_id')}`", ""]
    if report.get("generated_at"):
        lines += [f"Generated at {report['generated_at']}.", ""]
    mark = {"PASSED": " ✅", "FAILED": " ❌"}.get(_gate_status(gate), "")
    lines += [f"Quality gate: **{_gate_status(gate)}**{mark}", ""]
    lines += _warnings_section(report)
    lines += ["Channels: " + ", ".join(f"`{c}`" for c in report.get("channels", [])), ""]
    lines += _teacher_section(report)
    lines += _candidates_section(report)
    lines += _details_section(report)
    lines += _mae_section(report)
    lines += _rubric_section(report)
    lines += _splits_section(report)
    lines += _production_section(report)
    lines += _fusion_section(report)
    lines += _breakdown_section(report)
    lines += _failures_section(report)
    lines += _gate_section(report)
    lines += _judge_reliability_section(report)
    if report.get("drift"):
        from search_router.pipeline.drift import drift_section  # the router's capture constants: only when shown

        lines += drift_section(report["drift"])
    lines += _cascade_section(report)
    lines += _worst_section(report)
    lines += _dataset_section(report)
    lines += _charts_section(report)
    return "\n".join(lines).rstrip() + "\n"


# The helpers the HTML page (report_html.py) shares with the Markdown, by public names.
gate_status, get_path, dataset_value, tau_text, interval_cell = _gate_status, _get, _dataset_value, _tau, _interval_cell


# ---------------------------------------------------------------------------------------------------------
# Notification
# ---------------------------------------------------------------------------------------------------------
def _ms(value: Any) -> str:
    text = fmt_ms(value)
    return text if text == NA else f"{text} ms"


def headline(report: Mapping[str, Any]) -> str:
    """A short plain-text summary for the SNS notification: the gate verdict, each of its checks (with the
    intervals their messages give), the warnings, then one line per candidate."""
    gate = report.get("gate")
    status = _gate_status(gate)
    first = f"Routing evaluation run {report.get('run_id')}: quality gate {status}"
    if gate and gate.get("candidate"):
        first += f" for {gate['candidate']}"
    failures = [check.get("message") for check in (gate or {}).get("checks", []) if not check.get("passed")]
    if failures:
        first += " (" + "; ".join(str(f) for f in failures) + ")"
    lines = [first]
    for check in (gate or {}).get("checks", []):
        mark = "skip" if check.get("skipped") else ("pass" if check.get("passed") else "FAIL")
        lines.append(f"  [{mark}] {check.get('message')}")
    lines += [f"Warning: {warning}" for warning in report.get("warnings") or []]
    if report.get("teacher"):
        lines.append(f"Teacher: {teacher_text(report['teacher'])}")
    for c in report.get("candidates", []):
        m = c.get("metrics", {})
        lines.append(
            f"- {c['name']}: judge {judge_text(c.get('judge'))}, rubric {fmt_score(m.get('rubric_mean'))}, "
            f"MAE {fmt_mae(m.get('mae_overall'))}, valid JSON {fmt_rate(m.get('valid_json_rate'))}, "
            f"latency mean {_ms(_get(m, 'latency', 'mean'))} (p95 {_ms(_get(m, 'latency', 'p95'))}), "
            f"{fmt_usd(m.get('cost_per_1m_routes'))} per 1M routes"
        )
    return "\n".join(lines)
