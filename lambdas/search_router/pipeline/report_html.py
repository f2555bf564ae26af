"""The evaluation report as one self-contained HTML page: ``report.html``.

:func:`render_html` turns the ``report.json`` document (:func:`search_router.pipeline.report.build_report`) and the
charts' PNG bytes into a page that needs nothing else: inline CSS, the charts as ``data:`` URIs, no script, no
external request. The gate's verdict comes first (each check, the non-inferiority comparison with its interval),
then the candidates (``estimate [low, high]`` where the report has intervals), the held-out splits, the cascade,
the fusion impact, the breakdowns, the worst queries (the teacher's and the candidate's weights side by side), the
judge's reliability, the dataset and the charts. Every optional section is rendered only when the report has it, so
an old ``report.json`` renders too. Every value is HTML-escaped (queries are user text). The numbers are formatted
by :mod:`search_router.pipeline.report`'s formatters, exactly as in the Markdown. Pure standard library.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from search_router.pipeline.report import (
    CANDIDATE_HEADER,
    CHART_FILES,
    CHART_TITLES,
    MIN_SPLIT_SIZE,
    NA,
    PRODUCTION_HEADER,
    SPLIT_HEADER,
    dataset_value,
    fmt_mae,
    fmt_ms,
    fmt_rate,
    fmt_score,
    fmt_usd,
    gate_status,
    get_path,
    interval_cell,
    judge_text,
    production_notes,
    production_rows,
    split_rows,
    tau_text,
    teacher_text,
    with_interval,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Formatter = Callable[[Any], str]
DIFFERENCE_FORMATS: dict[str, Formatter] = {
    "rubric_mean": fmt_score,
    "mae_overall": fmt_mae,
    "dominant_accuracy": fmt_rate,
    "valid_json_rate": fmt_rate,
    "latency_mean_ms": fmt_ms,
    "overlap_at_10": fmt_rate,
}
"""How the non-inferiority comparison's difference is formatted, by metric (three decimals otherwise)."""

STYLE = """
:root { color-scheme: light; --fg: #1d232a; --muted: #5b6672; --line: #d7dde3; --head: #f1f4f7;
  --pass: #1e7b34; --pass-bg: #e7f5ea; --fail: #b3261e; --fail-bg: #fbe9e7; --skip: #6b5d00; --skip-bg: #fdf6d8; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; font: 16px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, Helvetica, Arial, sans-serif; color: var(--fg); background: #fff; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: .5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; padding-bottom: .25rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .5rem; }
p, li { overflow-wrap: anywhere; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.muted { color: var(--muted); font-size: .9rem; }
.banner { border: 2px solid var(--fail); background: var(--fail-bg); color: var(--fail); padding: .75rem 1rem;
  border-radius: .5rem; margin: 0 0 1rem; }
.banner strong { font-size: 1.1rem; }
.banner ul { color: var(--fg); margin: .5rem 0 0; padding-left: 1.25rem; font-size: .9rem; }
.verdict { border-radius: .5rem; padding: .75rem 1rem; margin: 0 0 1rem; border: 2px solid var(--line); }
.verdict.passed { border-color: var(--pass); background: var(--pass-bg); }
.verdict.failed { border-color: var(--fail); background: var(--fail-bg); }
.verdict .status { font-size: 1.35rem; font-weight: 700; margin: 0 0 .5rem; }
.verdict ul { list-style: none; padding: 0; margin: .5rem 0 0; }
.verdict li { margin: .25rem 0; }
.badge { display: inline-block; min-width: 4.5rem; text-align: center; font-size: .8rem; font-weight: 700;
  border-radius: 1rem; padding: 0 .5rem; margin-right: .35rem; text-transform: uppercase; }
.badge.pass { color: var(--pass); background: #fff; border: 1px solid var(--pass); }
.badge.fail { color: var(--fail); background: #fff; border: 1px solid var(--fail); }
.badge.skip, .badge.inconclusive { color: var(--skip); background: var(--skip-bg); border: 1px solid var(--skip); }
.warnings { border-left: 4px solid var(--skip); background: var(--skip-bg); padding: .5rem 1rem; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .5rem 0 1rem; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; min-width: 100%; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; vertical-align: top; }
th { background: var(--head); text-align: left; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.query { min-width: 14rem; }
table.weights { font-size: .8rem; min-width: 0; }
table.weights th, table.weights td { padding: .1rem .35rem; }
dl { display: grid; grid-template-columns: minmax(8rem, max-content) 1fr; gap: .25rem 1rem; font-size: .9rem; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 1rem 0; } figure img { display: block; width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: .9rem; color: var(--muted); margin-top: .25rem; }
@media (max-width: 40rem) { body { padding: .75rem; } h1 { font-size: 1.25rem; } dl { grid-template-columns: 1fr; } }
"""


class Html(str):
    """Markup already escaped: inserted as is (every other value is escaped)."""


def esc(value: Any) -> Html:
    """``value`` as text safe anywhere in the page (element content and quoted attributes)."""
    return Html(html.escape("" if value is None else str(value), quote=True))


def _text(value: Any) -> str:
    return value if isinstance(value, Html) else esc(value)


def _attribute(name: str) -> str:
    """``class_`` → ``class``, ``data_status`` → ``data-status``."""
    return name.rstrip("_").replace("_", "-")


def _el(tag: str, content: Any, **attrs: str) -> Html:
    attributes = "".join(f' {_attribute(name)}="{esc(value)}"' for name, value in attrs.items())
    return Html(f"<{tag}{attributes}>{_text(content)}</{tag}>")


def _join(parts: Iterable[Any]) -> Html:
    return Html("".join(_text(part) for part in parts))


def _code(value: Any) -> Html:
    return _el("code", value)


class Cell:
    """A table cell: its content and whether it is a number (right-aligned)."""

    def __init__(self, content: Any, *, numeric: bool = False, css: str | None = None) -> None:
        self.content = content
        self.css = css or ("num" if numeric else None)

    def render(self) -> Html:
        return _el("td", self.content, class_=self.css) if self.css else _el("td", self.content)


def num(content: Any) -> Cell:
    return Cell(content, numeric=True)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, css: str | None = None) -> Html:
    """A table inside its own horizontally scrolling container; a cell is a :class:`Cell` or plain text."""
    head = _el("tr", _join(_el("th", h, scope="col") for h in header))
    body = _join(_el("tr", _join(c.render() if isinstance(c, Cell) else _el("td", c) for c in row)) for row in rows)
    content = _join([_el("thead", head), _el("tbody", body)])
    return _el("div", _el("table", content, class_=css) if css else _el("table", content), class_="table-wrap")


def _section(title: str, *parts: Any, anchor: str) -> Html:
    return _el("section", _join([_el("h2", title), *parts]), id=anchor)


def badge(label: str, css: str) -> Html:
    """A status label (``pass``, ``fail``, ``skip`` or ``inconclusive`` colours), then a space."""
    return Html(_el("span", label, class_=f"badge {css}") + " ")


def _check_badge(passed: bool | None, skipped: bool = False) -> Html:
    if skipped:
        return badge("skipped", "skip")
    return badge("passed", "pass") if passed else badge("failed", "fail")


# ---------------------------------------------------------------------------------------------------------
# Intervals
# ---------------------------------------------------------------------------------------------------------
def _metric_cell(candidate: Mapping[str, Any], metric: str, value: Any, formatter: Formatter) -> Cell:
    """The metric's value, then ``[low, high]`` when the candidate has an interval for it (as in the Markdown)."""
    return num(with_interval(candidate, metric, value, formatter))


# ---------------------------------------------------------------------------------------------------------
# Verdict
# ---------------------------------------------------------------------------------------------------------
def _check_item(check: Mapping[str, Any]) -> Html:
    """One gate check: its status, name and message (the message states the actual value and the threshold)."""
    status = _check_badge(bool(check.get("passed")), bool(check.get("skipped")))
    return _el("li", _join([status, _code(check.get("name")), ": ", check.get("message") or ""]))


def _checks(gate: Mapping[str, Any]) -> Html:
    checks = [c for c in gate.get("checks") or [] if isinstance(c, Mapping)]
    return _el("ul", _join(_check_item(c) for c in checks)) if checks else Html("")


def comparison_html(comparison: Mapping[str, Any]) -> Html:
    """The non-inferiority decision: outcome, the paired difference's interval, the deciding bound and threshold."""
    metric = str(comparison.get("metric"))
    formatter = DIFFERENCE_FORMATS.get(metric, fmt_mae)
    outcome = str(comparison.get("outcome") or "inconclusive")
    css = {"pass": "pass", "fail": "fail"}.get(outcome, "inconclusive")
    subject = f"{comparison.get('candidate') or 'candidate'} − {comparison.get('baseline') or 'baseline'}"
    rows = [
        ("difference", f"{subject} on {metric}: {interval_cell(comparison.get('difference'), formatter)}"),
        (
            "decides",
            f"bound {formatter(comparison.get('bound'))} against threshold "
            f"{formatter(comparison.get('threshold'))} (margin {dataset_value(comparison.get('margin'))}, "
            f"{str(comparison.get('direction') or '').replace('_', ' ')})",
        ),
        (
            "queries",
            f"{dataset_value(comparison.get('matched'))} paired, "
            f"{dataset_value(comparison.get('unmatched'))} unmatched",
        ),
        ("reason", comparison.get("reason") or NA),
    ]
    sample = comparison.get("sample")
    if isinstance(sample, Mapping) and sample.get("message"):
        rows.append(("set size", sample["message"]))
    details = _el("dl", _join(_join([_el("dt", k), _el("dd", v)]) for k, v in rows))
    heading = _join([badge(outcome, css), "non-inferiority against the baseline"])
    return _el("div", _join([_el("h3", heading), details]), class_="comparison", id="comparison")


def _verdict(report: Mapping[str, Any]) -> Html:
    gate = report.get("gate")
    status = gate_status(gate if isinstance(gate, Mapping) else None)
    css = {"PASSED": "passed", "FAILED": "failed"}.get(status, "not-evaluated")
    subject = f" for {gate['candidate']}" if isinstance(gate, Mapping) and gate.get("candidate") else ""
    parts: list[Any] = [_el("p", f"Quality gate: {status}{subject}", class_="status", id="gate-status")]
    if isinstance(gate, Mapping):
        parts.append(_checks(gate))
    else:
        parts.append(_el("p", "The quality gate was not evaluated."))
    comparison = report.get("comparison")
    if isinstance(comparison, Mapping):
        parts.append(comparison_html(comparison))
    warnings = [w for w in report.get("warnings") or [] if w]
    if warnings:
        parts.append(
            _el(
                "div",
                _join([_el("strong", "Warnings"), _el("ul", _join(_el("li", w) for w in warnings))]),
                class_="warnings",
                id="warnings",
            )
        )
    return _el("section", _join(parts), class_=f"verdict {css}", id="verdict", data_status=status)


# ---------------------------------------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------------------------------------


def _candidate_row(c: Mapping[str, Any]) -> list[Any]:
    m = c.get("metrics") or {}
    return [
        _el("strong", c.get("name")),
        _code(c.get("model_id")) if c.get("model_id") else NA,
        c.get("prompt_kind") or NA,
        num(judge_text(c.get("judge"))),
        _metric_cell(c, "rubric_mean", m.get("rubric_mean"), fmt_score),
        _metric_cell(c, "mae_overall", m.get("mae_overall"), fmt_mae),
        _metric_cell(c, "dominant_accuracy", m.get("dominant_accuracy"), fmt_rate),
        _metric_cell(c, "valid_json_rate", m.get("valid_json_rate"), fmt_rate),
        _metric_cell(c, "latency_mean_ms", get_path(m, "latency", "mean"), fmt_ms),
        num(fmt_ms(get_path(m, "latency", "p95"))),
        num(fmt_usd(get_path(c, "price", "input_per_1k"))),
        num(fmt_usd(get_path(c, "price", "output_per_1k"))),
        num(fmt_usd(m.get("cost_per_1m_routes"))),
    ]


def _candidates(report: Mapping[str, Any]) -> Html:
    candidates = _candidate_list(report)
    note = (
        _el(
            "p",
            "Figures with an interval: estimate [low, high], a 95% bootstrap interval over the held-out queries.",
            class_="muted",
        )
        if any(c.get("intervals") for c in candidates)
        else ""
    )
    channels = [str(ch) for ch in report.get("channels") or []]
    mae_rows = [
        [
            c.get("name"),
            *(num(fmt_mae(get_path(c, "metrics", "mae_per_channel", ch))) for ch in channels),
            num(fmt_mae(get_path(c, "metrics", "mae_overall"))),
        ]
        for c in candidates
    ]
    rubric_rows = [
        [
            c.get("name"),
            *(num(dataset_value(get_path(c, "metrics", "rubric_distribution", str(s)) or 0)) for s in range(1, 6)),
        ]
        for c in candidates
    ]
    return _section(
        "Candidates",
        note,
        table(CANDIDATE_HEADER, [_candidate_row(c) for c in candidates]),
        _el("h3", "Mean absolute error per channel"),
        _el(
            "p", "Over schema-valid answers, against the teacher's reference weights (lower is better).", class_="muted"
        ),
        table(["candidate", *channels, "overall"], mae_rows),
        _el("h3", "Rubric distribution (queries per score)"),
        table(["candidate", "1", "2", "3", "4", "5"], rubric_rows),
        _failures(candidates),
        anchor="candidates",
    )


def _candidate_list(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in report.get("candidates") or [] if isinstance(c, Mapping)]


def _failures(candidates: Sequence[Mapping[str, Any]]) -> Html:
    items = []
    for c in candidates:
        kinds = {
            **(get_path(c, "metrics", "errors_by_kind") or {}),
            **(get_path(c, "metrics", "parse_failures_by_reason") or {}),
        }
        if kinds:
            items.append(_el("li", f"{c.get('name')}: " + ", ".join(f"{k} × {v}" for k, v in kinds.items())))
    return _join([_el("h3", "Errors and parse failures"), _el("ul", _join(items))]) if items else Html("")


def _splits(report: Mapping[str, Any]) -> Html:
    rows = [
        [name, split, num(dataset_value(n)), *(num(cell) for cell in cells)]
        for name, split, n, *cells in split_rows({"candidates": _candidate_list(report)})
    ]
    if not rows:
        return Html("")
    header = list(SPLIT_HEADER)
    note = (
        "seen: queries of templates the training set also drew from; unseen_template: templates and vocabulary "
        "never used in training; user: your own queries."
    )
    return _section("Per held-out split", _el("p", note, class_="muted"), table(header, rows), anchor="splits")


def _production(report: Mapping[str, Any]) -> Html:
    production = report.get("production")
    if not isinstance(production, Mapping):
        return Html("")
    rows = [[name, *(num(cell) for cell in cells)] for name, *cells in production_rows(production)]
    intro = (
        f"{production.get('production_queries', 0)} production queries (split production: captured traffic, "
        "labeled by the teacher, never trained on)."
    )
    return _section(
        "Production traffic",
        _el("p", intro, class_="muted"),
        table(list(PRODUCTION_HEADER), rows) if rows else Html(""),
        _el("ul", _join(_el("li", note) for note in production_notes(production))),
        anchor="production",
    )


# ---------------------------------------------------------------------------------------------------------
# Cascade
# ---------------------------------------------------------------------------------------------------------
def _cascade(report: Mapping[str, Any]) -> Html:
    cascade = report.get("cascade")
    if not isinstance(cascade, Mapping):
        return Html("")
    outcome = cascade.get("outcome") or {}
    parts: list[Any] = [
        _el(
            "p",
            _join(
                [
                    badge("enabled", "pass") if outcome.get("enabled") else badge("not enabled", "skip"),
                    outcome.get("reason") or "",
                ]
            ),
        )
    ]
    choice = cascade.get("choice")
    if isinstance(choice, Mapping):
        shares = ", ".join(f"{k} {fmt_rate(v)}" for k, v in (choice.get("answered_share_by_split") or {}).items())
        facts = [
            (
                "τ",
                f"{tau_text(choice.get('tau'))}, chosen on the hardest split {choice.get('split')} (at least "
                f"{MIN_SPLIT_SIZE} queries)",
            ),
            (
                f"{choice.get('metric')} there",
                f"cascade {fmt_score(choice.get('cascade_quality'))}, distilled model "
                f"{fmt_score(choice.get('model_quality'))}, micro-router alone {fmt_score(choice.get('micro_quality'))}"
                f" (margin {dataset_value(choice.get('margin'))})",
            ),
            (
                "answered by the micro-router",
                f"{fmt_rate(choice.get('answered_share_overall'))} of all held-out queries ({shares})",
            ),
            ("falls back to", f"{cascade.get('fallback_candidate')} (router_cascade = {cascade.get('setting')})"),
        ]
        parts.append(_el("dl", _join(_join([_el("dt", k), _el("dd", v)]) for k, v in facts)))
    gate = cascade.get("gate")
    if isinstance(gate, Mapping):
        parts += [_el("h3", f"The cascade's quality gate: {gate_status(gate)}"), _checks(gate)]
    sweep = [p for p in cascade.get("sweep") or [] if isinstance(p, Mapping)]
    if sweep:
        rows = [
            [
                num(tau_text(p.get("tau"))),
                num(fmt_rate(p.get("answered_share"))),
                num(fmt_score(p.get("rubric_mean"))),
                num(fmt_mae(p.get("mae_overall"))),
                num(fmt_ms(p.get("latency_mean_ms"))),
                num(fmt_usd(p.get("cost_per_1k_routes"))),
            ]
            for p in sweep
        ]
        header = ["τ", "answered by micro-router", "rubric mean", "MAE", "latency mean (ms)", "$ per 1K routes"]
        parts += [_el("h3", "Over τ (every held-out query)"), table(header, rows)]
    return _section("Micro-router and cascade", *parts, anchor="cascade")


# ---------------------------------------------------------------------------------------------------------
# Fusion impact, breakdowns, worst queries, judge reliability
# ---------------------------------------------------------------------------------------------------------
def _fusion(report: Mapping[str, Any]) -> Html:
    rows = []
    k, threshold = None, None
    for c in _candidate_list(report):
        fusion = c.get("fusion")
        if not isinstance(fusion, Mapping):
            continue
        k, threshold = fusion.get("k"), fusion.get("changed_threshold")
        without = f"{dataset_value(fusion.get('without_weights'))}" + (
            " (ranked with stand-in weights)" if fusion.get("substituted") else " (excluded)"
        )
        rows.append(
            [
                c.get("name"),
                num(dataset_value(fusion.get("n"))),
                num(without),
                num(interval_cell(fusion.get("mean_overlap"), fmt_rate)),
                num(interval_cell(fusion.get("share_changed"), fmt_rate)),
            ]
        )
    if not rows:
        return Html("")
    header = ["candidate", "queries", "without weights", f"mean overlap@{k}", f"share changed by > {threshold}"]
    note = (
        f"Each held-out query's per-channel score lists fused under the candidate's weights and under the teacher's: "
        f"the share of the teacher-weighted top {k} that the candidate's weights also return (mean over the queries), "
        f"and the share of queries whose top {k} changes by more than {threshold} results; 95% intervals."
    )
    return _section(
        "What a weight error does to search (fusion impact)",
        _el("p", note, class_="muted"),
        table(header, rows),
        anchor="fusion",
    )


BREAKDOWNS = (("category", "Per query category"), ("dominant_channel", "Per dominant channel (the teacher's)"))


def _breakdowns(report: Mapping[str, Any]) -> Html:
    parts: list[Any] = []
    for dimension, title in BREAKDOWNS:
        rows = []
        for c in _candidate_list(report):
            for row in get_path(c, "breakdowns", dimension) or []:
                if isinstance(row, Mapping):
                    rows.append(
                        [
                            c.get("name"),
                            row.get("key"),
                            num(dataset_value(row.get("n"))),
                            num(fmt_score(row.get("rubric_mean"))),
                            num(fmt_mae(row.get("mae_overall"))),
                            num(fmt_rate(row.get("dominant_accuracy"))),
                        ]
                    )
        if rows:
            header = ["candidate", dimension.replace("_", " "), "queries", "rubric mean", "MAE", "dominant accuracy"]
            parts += [_el("h3", title), table(header, rows)]
    confusions = [
        (c.get("name"), c["confusion"]) for c in _candidate_list(report) if isinstance(c.get("confusion"), Mapping)
    ]
    for name, matrix in confusions:
        columns = [str(col) for col in matrix.get("columns") or []]
        rows = [
            [_el("strong", row), *(num(dataset_value(v)) for v in counts)]
            for row, counts in zip(matrix.get("rows") or [], matrix.get("matrix") or [], strict=False)
        ]
        parts += [
            _el("h3", f"Dominant channel of {name}: teacher (rows) vs candidate (columns)"),
            table(["teacher \\ candidate", *columns], rows),
        ]
    return _section("Where it goes wrong", *parts, anchor="breakdowns") if parts else Html("")


def weights_html(
    reference: Mapping[str, Any] | None, weights: Mapping[str, Any] | None, channels: Sequence[str]
) -> Html:
    """The teacher's and the candidate's weights side by side (one column per channel)."""
    names = list(channels) or sorted({*(reference or {}), *(weights or {})})
    rows = [
        ["teacher", *(num(_weight(get_path(reference, ch))) for ch in names)],
        ["candidate", *(num(_weight(get_path(weights, ch))) for ch in names)]
        if weights is not None
        else ["candidate", Cell("no usable weights")],
    ]
    head = _el("tr", _join(_el("th", h, scope="col") for h in ["", *names]))
    body = _join(
        _el("tr", _join(c.render() if isinstance(c, Cell) else _el("th", c, scope="row") for c in row)) for row in rows
    )
    return _el("table", _join([_el("thead", head), _el("tbody", body)]), class_="weights")


def _weight(value: Any) -> str:
    return fmt_score(value)  # two decimals, n/a when absent


def _worst(report: Mapping[str, Any]) -> Html:
    channels = [str(ch) for ch in report.get("channels") or []]
    parts: list[Any] = []
    for c in _candidate_list(report):
        worst = [w for w in c.get("worst") or [] if isinstance(w, Mapping)]
        if not worst:
            continue
        rows = [
            [
                num(index),
                Cell(w.get("query"), css="query"),
                w.get("category") or NA,
                w.get("split") or NA,
                num(dataset_value(w.get("rubric"))),
                num(fmt_mae(w.get("mae"))),
                w.get("failure") or "—",
                weights_html(w.get("reference"), w.get("weights"), channels),
            ]
            for index, w in enumerate(worst, start=1)
        ]
        header = ["#", "query", "category", "split", "rubric", "MAE", "failure", "weights: teacher vs candidate"]
        parts += [_el("h3", f"{c.get('name')}: the {len(worst)} worst answers"), table(header, rows)]
    if not parts:
        return Html("")
    note = "Lowest rubric first, then the largest mean error; the teacher's reference weights above the candidate's."
    return _section("Worst queries", _el("p", note, class_="muted"), *parts, anchor="worst")


def _judge_reliability(report: Mapping[str, Any]) -> Html:
    reliability = report.get("judge_reliability")
    if not isinstance(reliability, Mapping) or not reliability:
        return Html("")
    rows = [
        [
            name,
            num(dataset_value(r.get("repeats"))),
            num(", ".join(fmt_score(s) for s in r.get("scores") or []) or NA),
            num(fmt_score(r.get("spread"))),
            num(fmt_score(r.get("rank_correlation"))),
            num(fmt_rate(r.get("disagreement_share"))),
        ]
        for name, r in reliability.items()
        if isinstance(r, Mapping)
    ]
    header = ["candidate", "judge runs", "scores", "spread", "rank correlation with the rubric", "differ by ≥ 2 points"]
    note = (
        "The judge's scores over repeated runs, and how it agrees with the deterministic rubric on the same queries "
        "(a rank correlation near 1 means the judge adds little beyond the rubric; a large share differing by 2 or "
        "more points means the two disagree)."
    )
    return _section("The judge's reliability", _el("p", note, class_="muted"), table(header, rows), anchor="judge")


# ---------------------------------------------------------------------------------------------------------
# Dataset, charts, page
# ---------------------------------------------------------------------------------------------------------
def _dataset(report: Mapping[str, Any]) -> Html:
    dataset = report.get("dataset")
    if not isinstance(dataset, Mapping) or not dataset:
        return _section("Dataset", _el("p", "No dataset manifest was given."), anchor="dataset")
    items = _join(_join([_el("dt", key), _el("dd", dataset_value(value))]) for key, value in dataset.items())
    return _section("Dataset", _el("dl", items), anchor="dataset")


def png_data_uri(body: bytes) -> str:
    """``data:image/png;base64,...``; ``ValueError`` when ``body`` is not a PNG."""
    if not isinstance(body, bytes | bytearray) or not bytes(body).startswith(PNG_SIGNATURE):
        raise ValueError("a chart must be PNG bytes (they start with the PNG signature)")
    return "data:image/png;base64," + base64.b64encode(bytes(body)).decode("ascii")


def _charts(report: Mapping[str, Any], charts: Mapping[str, bytes]) -> Html:
    order = [key for key in CHART_FILES if key in charts] + [key for key in charts if key not in CHART_FILES]
    figures = []
    for key in order:
        title = CHART_TITLES.get(key, key)
        # a data URI is base64's alphabet and "data:image/png;base64,": nothing to escape in a quoted attribute
        image = Html(f'<img src="{png_data_uri(charts[key])}" alt="{esc(title)}" loading="lazy">')
        figures.append(_el("figure", _join([image, _el("figcaption", title)]), id=f"chart-{key}"))
    if report.get("charts_error"):
        figures.append(_el("p", f"The charts could not be drawn: {report['charts_error']}", class_="warnings"))
    return _section("Charts", *figures, anchor="charts") if figures else Html("")


def _simulated_banner(report: Mapping[str, Any]) -> Html:
    simulated = report.get("simulated")
    if not simulated:
        return Html("")
    notes = simulated.get("notes") if isinstance(simulated, Mapping) else None
    listed = _el("ul", _join(_el("li", n) for n in notes)) if isinstance(notes, list) and notes else ""
    return _el(
        "div",
        _join(
            [_el("strong", "SIMULATED RUN — NOT A MEASUREMENT."), " Every number on this page is simulated.", listed]
        ),
        class_="banner simulated",
        id="simulated",
        role="alert",
    )


def _intro(report: Mapping[str, Any]) -> Html:
    facts = [f"Run {report.get('run_id')}"]
    if report.get("generated_at"):
        facts.append(f"generated at {report['generated_at']}")
    lines = [_el("p", ", ".join(facts) + ".", class_="muted")]
    channels = report.get("channels") or []
    if channels:
        lines.append(_el("p", _join(["Channels: ", _join(_join([_code(c), " "]) for c in channels)])))
    if report.get("teacher"):
        lines.append(_el("p", f"Teacher: {teacher_text(report['teacher'])}"))
    return _join(lines)


def render_html(report: Mapping[str, Any], charts: Mapping[str, bytes] | None = None) -> str:
    """``report`` (a ``report.json`` document) as one self-contained HTML page; ``charts`` maps a chart key
    (:data:`~search_router.pipeline.report.CHART_FILES`) to its PNG bytes, inlined as ``data:`` URIs.

    ``ValueError`` when a chart is not PNG bytes. Sections the report lacks are left out.
    """
    simulated = bool(report.get("simulated"))
    title = f"{'SIMULATED — ' if simulated else ''}Routing evaluation report — run {report.get('run_id')}"
    body = _join(
        [
            _simulated_banner(report),
            _el("h1", title),
            _intro(report),
            _verdict(report),
            _candidates(report),
            _splits(report),
            _production(report),
            _cascade(report),
            _fusion(report),
            _breakdowns(report),
            _worst(report),
            _judge_reliability(report),
            _dataset(report),
            _charts(report, charts or {}),
        ]
    )
    head = _join(
        [
            Html('<meta charset="utf-8">'),
            Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            _el("title", title),
            Html(f"<style>{STYLE}</style>"),
        ]
    )
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>{body}</body>\n</html>\n'
