"""Charts of the evaluation report, drawn with matplotlib (Agg backend, no display).

Only the report Lambda imports this module; it gets matplotlib from a layer. matplotlib is imported inside
:func:`render_charts`, so importing :mod:`routing` never needs it. The PNGs are 1200×700 pixels and carry
no timestamp or software version, so the same report renders byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from search_router.pipeline.metrics import QueryResult, percentile
from search_router.pipeline.report import CHART_FILES, chart_applies

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 7.0, 100
_PNG_METADATA: dict[str, str | None] = {"Software": None}  # no matplotlib version in the file
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _color(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _new_figure() -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")


TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 13, 11, 10


def _style(
    ax: Any, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None, grid: str | None = "y"
) -> None:
    """The one style of every chart: the same title, label and tick sizes, a light grid (``"y"``, ``"both"`` or
    None) behind the data, and a title that says what the chart shows."""
    if title is not None:
        ax.set_title(title, fontsize=TITLE_SIZE)
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    if grid is not None:
        ax.grid(axis=grid, alpha=0.3)
        ax.set_axisbelow(True)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=DPI, metadata=_PNG_METADATA)
    return path


def _latency_chart(names: Sequence[str], results: Mapping[str, Sequence[QueryResult]], path: Path) -> Path:
    fig = _new_figure()
    ax = fig.add_subplot()
    positions = list(range(1, len(names) + 1))
    data: list[list[float]] = [
        [float(r.latency_ms) for r in results.get(name, ()) if r.answered and r.latency_ms is not None]
        for name in names
    ]
    filled = [(pos, values, index) for index, (pos, values) in enumerate(zip(positions, data, strict=True)) if values]
    if filled:
        boxes = ax.boxplot(
            [values for _pos, values, _index in filled],
            positions=[pos for pos, _values, _index in filled],
            widths=0.5,
            patch_artist=True,
            showmeans=True,
            meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black", "markersize": 7},
            medianprops={"color": "black", "linewidth": 1.5},
            flierprops={"marker": "o", "markersize": 4, "alpha": 0.5},
        )
        for patch, (_pos, _values, index) in zip(boxes["boxes"], filled, strict=True):
            patch.set_facecolor(_color(index))
            patch.set_alpha(0.6)
        top = max(max(values) for _pos, values, _index in filled)
        for pos, values, _index in filled:
            mean = sum(values) / len(values)
            ax.annotate(
                f"mean {mean:,.0f} ms\np95 {percentile(values, 95):,.0f} ms\nn = {len(values)}",
                xy=(pos, top),
                xytext=(0, 8),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=10,
            )
        ax.set_ylim(0, top * 1.25)
    else:
        ax.set_ylim(0, 1)
    for pos, values in zip(positions, data, strict=True):
        if not values:
            ax.text(
                pos,
                0.5,
                "no latencies\n(no answered calls)",
                ha="center",
                va="center",
                fontsize=11,
                color="gray",
                transform=ax.get_xaxis_transform(),
            )
    ax.set_xticks(positions, list(names))
    ax.set_xlim(0.4, len(names) + 0.6)
    _style(
        ax,
        title="Routing latency per candidate (box: quartiles, line: median, ◆: mean)",
        xlabel="candidate",
        ylabel="latency per query (ms, client-measured)",
    )
    return _save(fig, path)


def _bar_x(group: int, index: int, count: int) -> float:
    """The centre of series ``index``'s bar (of ``count``) in ``group``."""
    return group + (index - (max(count, 1) - 1) / 2) * (0.8 / max(count, 1))


def _interval(candidate: Mapping[str, Any], metric: str) -> tuple[float, float] | None:
    """The candidate's ``intervals[metric]`` bounds (report field, optional), None when absent or open."""
    interval = (candidate.get("intervals") or {}).get(metric)
    if not isinstance(interval, Mapping):
        return None
    low, high = _number(interval.get("low")), _number(interval.get("high"))
    return None if low is None or high is None else (low, high)


def _grouped_bars(
    ax: Any,
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    label_of: Callable[[float], str],
    label_above: Mapping[tuple[int, int], float] | None = None,
) -> float:
    """Draw grouped bars (one colour per series); a None value is annotated ``n/a``. Returns the max value.

    ``label_above``: (series, group) → the height above which that bar's label goes (the top of its error bar)."""
    count = max(len(series), 1)
    width = 0.8 / count
    highest = 0.0
    for index, (label, values) in enumerate(series):
        xs = [_bar_x(g, index, count) for g in range(len(groups))]
        heights = [0.0 if v is None else v for v in values]
        bars = ax.bar(xs, heights, width=width * 0.95, label=label, color=_color(index))
        for group, (bar, value) in enumerate(zip(bars, values, strict=True)):
            text = "n/a" if value is None else label_of(value)
            top = max(bar.get_height(), (label_above or {}).get((index, group), 0.0))
            ax.annotate(
                text,
                xy=(bar.get_x() + bar.get_width() / 2, top),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                color="gray" if value is None else "black",
            )
        highest = max([highest, *(v for v in values if v is not None)])
    ax.set_xticks(range(len(groups)), list(groups))
    return highest


def _mae_chart(report: Mapping[str, Any], path: Path) -> Path:
    fig = _new_figure()
    ax = fig.add_subplot()
    channels = [str(c) for c in report.get("channels", [])]
    groups = [*channels, "overall"]
    series: list[tuple[str, list[float | None]]] = []
    for candidate in report.get("candidates", []):
        metrics = candidate.get("metrics") or {}
        per_channel = metrics.get("mae_per_channel") or {}
        values = [_number(per_channel.get(ch)) for ch in channels] + [_number(metrics.get("mae_overall"))]
        series.append((str(candidate.get("name")), values))
    overall = len(groups) - 1
    bounds = [_interval(c, "mae_overall") for c in report.get("candidates", [])]
    tops = {(index, overall): b[1] for index, b in enumerate(bounds) if b is not None}
    highest = _grouped_bars(ax, groups, series, label_of=lambda v: f"{v:.3f}", label_above=tops)
    highest = max(highest, _overall_error_bars(ax, bounds, [values[-1] for _label, values in series], overall))
    threshold = _gate_threshold(report, "mae_overall")
    if threshold is not None:
        label = f"gate: overall MAE ≤ {threshold:g}"
        # the gate applies to the overall MAE only: draw it over that group
        style = {"colors": "crimson", "linestyles": "--", "linewidth": 1.5}
        ax.hlines(threshold, overall - 0.45, overall + 0.45, label=label, **style)
        highest = max(highest, threshold)
    if not any(v is not None for _label, values in series for v in values):
        note = "no schema-valid answers: no error to show"
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, color="gray", fontsize=14)
    ax.set_ylim(0, (highest or 0.1) * 1.3)  # headroom for the legend
    with_intervals = any(_interval(c, "mae_overall") for c in report.get("candidates", []))
    title = "Mean absolute error of the routing weights per channel" + (
        " (overall: with its 95% bootstrap interval)" if with_intervals else ""
    )
    _style(ax, title=title, xlabel="channel", ylabel="mean absolute error vs teacher reference (lower is better)")
    if series:
        ax.legend(loc="upper center", ncols=min(len(series) + 1, 4), fontsize=10)
    return _save(fig, path)


def _overall_error_bars(
    ax: Any, bounds: Sequence[tuple[float, float] | None], overall: Sequence[float | None], group: int
) -> float:
    """Each candidate's ``mae_overall`` interval as an error bar on its overall bar; returns the highest bound."""
    highest, labelled = 0.0, False
    for index, (interval, value) in enumerate(zip(bounds, overall, strict=True)):
        if interval is None or value is None:
            continue
        low, high = interval
        below, above = [[max(0.0, value - low)], [max(0.0, high - value)]]
        ax.errorbar(
            [_bar_x(group, index, len(bounds))],
            [value],
            yerr=[below, above],
            fmt="none",
            ecolor="black",
            elinewidth=1.2,
            capsize=5,
            label=None if labelled else "95% interval",
        )
        highest, labelled = max(highest, high), True
    return highest


def _gate_threshold(report: Mapping[str, Any], check_name: str) -> float | None:
    gate = report.get("gate") or {}
    for check in gate.get("checks", []):
        if check.get("name") == check_name:
            return _number(check.get("threshold"))
    return None


def _rubric_chart(report: Mapping[str, Any], path: Path) -> Path:
    fig = _new_figure()
    candidates = list(report.get("candidates", []))
    intervals = [_interval(c, "rubric_mean") for c in candidates]
    if any(intervals):  # a panel below the distribution: each candidate's mean with its interval
        ax, mean_ax = fig.subplots(2, 1, height_ratios=(3, 1))
        _rubric_means(mean_ax, candidates, intervals)
    else:
        ax = fig.add_subplot()
    scores = ["1", "2", "3", "4", "5"]
    series: list[tuple[str, list[float | None]]] = []
    for candidate in report.get("candidates", []):
        metrics = candidate.get("metrics") or {}
        distribution = metrics.get("rubric_distribution") or {}
        counts = [float(distribution.get(s, 0)) for s in scores]
        total = sum(counts)
        mean = _number(metrics.get("rubric_mean"))
        name = str(candidate.get("name"))
        label = f"{name} (mean {mean:.2f}, n = {total:.0f})" if mean is not None else name
        series.append((label, [100.0 * c / total if total else 0.0 for c in counts]))
    highest = _grouped_bars(ax, scores, series, label_of=lambda v: f"{v:.0f}%")
    if not series or highest == 0:
        note = "no queries evaluated"
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, color="gray", fontsize=14)
    ax.set_ylim(0, max(highest, 1) * 1.3)  # headroom for the legend
    ax.set_xticks(range(len(scores)), ["1 unusable", "2 poor", "3 dominant right", "4 within 0.10", "5 within 0.05"])
    _style(
        ax,
        title="Rubric score distribution per candidate (from the weights; 1 = unanswered or unparseable)",
        xlabel="rubric score (from the weights)",
        ylabel="share of the candidate's queries (%)",
    )
    if series:
        ax.legend(loc="upper center", ncols=min(len(series), 3), fontsize=10)
    return _save(fig, path)


def _rubric_means(ax: Any, candidates: Sequence[Mapping[str, Any]], intervals: Sequence[Any]) -> None:
    """Each candidate's rubric mean (◆) with its 95% interval, on the 1-5 scale, one row per candidate."""
    names = [str(c.get("name")) for c in candidates]
    for index, (candidate, bounds) in enumerate(zip(candidates, intervals, strict=True)):
        mean = _number((candidate.get("metrics") or {}).get("rubric_mean"))
        if mean is None:
            continue
        xerr = None if bounds is None else [[max(0.0, mean - bounds[0])], [max(0.0, bounds[1] - mean)]]
        ax.errorbar([mean], [index], xerr=xerr, fmt="D", color=_color(index), ecolor=_color(index), capsize=4)
        text = f"{mean:.2f}" + ("" if bounds is None else f" [{bounds[0]:.2f}, {bounds[1]:.2f}]")
        ax.annotate(text, xy=(mean, index), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(0.8, 5.2)
    _style(ax, xlabel="rubric mean (1-5) with its 95% bootstrap interval", grid="x")


def _sweep_series(sweep: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for point in sweep:
        tau, value = _number(point.get("tau")), _number(point.get(key))
        if tau is not None and value is not None:
            xs.append(tau)
            ys.append(value)
    return xs, ys


def _model_only(sweep: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """The figure at τ "never" (no micro-router answer: the distilled model alone)."""
    return next((_number(p.get(key)) for p in sweep if p.get("tau") is None), None)


def _cascade_chart(report: Mapping[str, Any], path: Path) -> Path:
    """Three panels over τ (every held-out query): rubric mean and the share the micro-router answers, latency
    mean, cost per 1K routes; the model alone as a dotted line, the chosen τ as a dashed one."""
    from matplotlib.figure import Figure

    cascade = report.get("cascade") or {}
    sweep = cascade.get("sweep") or []
    chosen = _number((cascade.get("choice") or {}).get("tau"))
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    panels = (
        ("rubric_mean", "rubric mean (1-5)", "{:.2f}"),
        ("latency_mean_ms", "latency mean (ms)", "{:,.0f} ms"),
        ("cost_per_1k_routes", "$ per 1K routes", "${:.4f}"),
    )
    for index, (ax, (key, label, text)) in enumerate(zip(axes, panels, strict=True)):
        xs, ys = _sweep_series(sweep, key)
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3, color=_color(index), label="cascade")
        alone = _model_only(sweep, key)
        if alone is not None:
            ax.axhline(alone, color="gray", linestyle=":", label=f"model alone ({text.format(alone)})")
        if chosen is not None:
            ax.axvline(chosen, color="black", linestyle="--", label=f"chosen τ = {chosen:.3f}")
        _style(ax, ylabel=label, grid="both")
        if not xs:
            ax.text(0.5, 0.5, "no cascade evaluated", ha="center", va="center", transform=ax.transAxes, color="gray")
        else:
            ax.legend(loc="best", fontsize=9)
    xs, shares = _sweep_series(sweep, "answered_share")
    if xs:
        share_ax = axes[0].twinx()
        share_ax.plot(xs, [100.0 * s for s in shares], color=_color(3), linestyle="-.", label="answered by micro")
        share_ax.set_ylabel("answered by micro-router (%)")
        share_ax.set_ylim(0, 105)
        share_ax.legend(loc="lower left", fontsize=9)
    _style(axes[-1], xlabel="confidence threshold τ (the micro-router answers when its confidence ≥ τ)", grid=None)
    _style(
        axes[0],
        title="Cascade over τ: quality, latency and cost on every held-out query (the model alone at the dotted line)",
        grid=None,
    )
    return _save(fig, path)


def confusion_problem(confusion: Mapping[str, Any]) -> str | None:
    """Why ``confusion`` cannot be drawn (rows × columns of non-negative counts), None when it can."""
    rows, columns, matrix = confusion.get("rows"), confusion.get("columns"), confusion.get("matrix")
    if not isinstance(rows, list) or not isinstance(columns, list) or not rows or not columns:
        return "rows and columns must be non-empty lists of channel names"
    if not isinstance(matrix, list) or len(matrix) != len(rows):
        return f"matrix must have one row per teacher channel ({len(rows)})"
    for row in matrix:
        if not isinstance(row, list) or len(row) != len(columns):
            return f"every matrix row must have one count per column ({len(columns)})"
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in row):
            return "counts must be non-negative integers"
    return None


def _confusion_panel(ax: Any, name: str, confusion: Mapping[str, Any]) -> None:
    problem = confusion_problem(confusion)
    if problem is not None:  # shown, not dropped: the other candidates' panels still draw
        ax.text(
            0.5,
            0.5,
            f"{name}: confusion matrix not drawn\n({problem})",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="gray",
            fontsize=9,
            wrap=True,
        )
        ax.set_axis_off()
        return
    rows, columns, matrix = list(confusion["rows"]), list(confusion["columns"]), confusion["matrix"]
    shares = [[v / sum(row) if sum(row) else 0.0 for v in row] for row in matrix]
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if shares[i][j] > 0.6 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=9, color=color)
    ax.set_xticks(range(len(columns)), [str(c) for c in columns], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    total = sum(sum(row) for row in matrix)
    right = sum(matrix[i][columns.index(r)] for i, r in enumerate(rows) if r in columns)
    _style(ax, title=f"{name}: {right} of {total} right", grid=None)
    ax.tick_params(labelsize=8)


def _confusion_chart(report: Mapping[str, Any], path: Path) -> Path:
    """One heatmap per candidate with a ``confusion`` matrix: counts in the cells, colour = share of the row."""
    panels = [
        (str(c.get("name")), c["confusion"])
        for c in report.get("candidates", [])
        if isinstance(c.get("confusion"), Mapping)
    ]
    fig = _new_figure()
    columns = min(len(panels), 3)
    axes = fig.subplots(math.ceil(len(panels) / columns), columns, squeeze=False)
    for ax, (name, confusion) in zip(axes.flat, panels, strict=False):
        _confusion_panel(ax, name, confusion)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle(
        "Dominant channel: the teacher's (rows) vs the candidate's (columns)\n"
        "counts of held-out queries; colour = share of the row; unusable = no usable weights",
        fontsize=TITLE_SIZE,
    )
    fig.supxlabel("candidate's dominant channel", fontsize=LABEL_SIZE)
    fig.supylabel("teacher's dominant channel", fontsize=LABEL_SIZE)
    return _save(fig, path)


def render_charts(
    report: Mapping[str, Any], results: Mapping[str, Sequence[QueryResult]], outdir: Path
) -> dict[str, Path]:
    """Write ``latency.png``, ``mae_per_channel.png``, ``rubric_distribution.png``, when the report has a
    cascade section ``cascade_tau.png``, and when a candidate has a ``confusion`` matrix ``confusion.png`` (one
    heatmap per such candidate) into ``outdir``. Every chart has the same style (:func:`_style`); candidates'
    ``intervals``, when present, add error bars to the MAE and rubric charts.

    ``report`` is :func:`search_router.pipeline.report.build_report` output (candidate order and metrics); ``results``
    maps a candidate name to its per-query results (for the latency distribution). A candidate without answers gets an
    annotated empty slot rather than an error. Returns chart key → written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    names = [str(c.get("name")) for c in report.get("candidates", [])]
    charts = {
        "latency": _latency_chart(names, results, outdir / CHART_FILES["latency"]),
        "mae_per_channel": _mae_chart(report, outdir / CHART_FILES["mae_per_channel"]),
        "rubric_distribution": _rubric_chart(report, outdir / CHART_FILES["rubric_distribution"]),
    }
    if report.get("cascade"):
        charts["cascade_tau"] = _cascade_chart(report, outdir / CHART_FILES["cascade_tau"])
    if chart_applies("confusion", report.get("cascade"), report.get("candidates", [])):
        charts["confusion"] = _confusion_chart(report, outdir / CHART_FILES["confusion"])
    return charts
