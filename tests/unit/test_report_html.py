"""report.html: one self-contained page (verdict first, every candidate, every chart inlined), escaped, read back
with the standard library's HTML parser; the optional sections of issue 13 are rendered from what
``pipeline/stats.py`` and ``pipeline/fusion.py`` serialise, and an old report without them still renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from search_router.pipeline.charts import render_charts
from search_router.pipeline.fusion import drawn_lists, fusion_impact, items_from_results
from search_router.pipeline.gate import GateThresholds, evaluate_gate
from search_router.pipeline.metrics import Price, QueryResult, compute_metrics, metrics_by_split, rubric_score
from search_router.pipeline.report import (
    CHART_FILES,
    CHART_TITLES,
    build_report,
    fmt_mae,
    fmt_rate,
    fmt_score,
    interval_cell,
)
from search_router.pipeline.report_html import render_html
from search_router.pipeline.stats import bootstrap_mean, non_inferiority, paired_difference
from search_router.shared.channels import DEFAULT_CHANNELS
from tests.html_page import check_report_page, parse_page, png_of

CHANNELS = DEFAULT_CHANNELS
NAMES = list(CHANNELS.names)
PRICE = Price(0.000035, 0.00014)
INJECTED = '<script>alert("owned")</script> cats & "dogs"'
REF = {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}
NEAR = {"visual": 0.55, "audio": 0.25, "transcription": 0.1, "metadata": 0.1}
WRONG = {"visual": 0.1, "audio": 0.7, "transcription": 0.1, "metadata": 0.1}


def _results(name: str) -> list[QueryResult]:
    rows = []
    for i in range(24):
        query = INJECTED if i == 0 else f"query {i}"
        weights = {"distilled": REF if i % 4 else NEAR, "baseline": NEAR if i % 3 else WRONG}.get(name)
        if name == "base-student" and i % 2:
            rows.append(QueryResult(query, "visual_dominant", REF, "sorry", parse_failure="no_json", latency_ms=300.0))
            continue
        rows.append(
            QueryResult(
                query,
                "visual_dominant" if i % 2 else "complex",
                REF,
                "{}",
                weights=weights or WRONG,
                latency_ms=500.0 + 10 * i,
                input_tokens=100,
                output_tokens=40,
                split="seen" if i % 3 else "unseen_template",
            )
        )
    return rows


def _fields(name: str, results: list[QueryResult]) -> dict[str, Any]:
    """A candidate's optional report fields, built with the statistics modules' own serialisation."""
    rubric = [float(rubric_score(r.weights, r.reference, NAMES)) for r in results]
    mae = [None if r.weights is None else sum(abs(r.weights[c] - r.reference[c]) for c in NAMES) / 4 for r in results]
    fusion = fusion_impact(items_from_results(results), drawn_lists(NAMES), seed=7)
    worst = sorted(results, key=lambda r: rubric_score(r.weights, r.reference, NAMES))[:3]
    return {
        "intervals": {
            "rubric_mean": bootstrap_mean(rubric, seed=7, resamples=200).to_dict(),
            "mae_overall": bootstrap_mean(mae, seed=7, resamples=200).to_dict(),
        },
        "fusion": fusion.to_dict(),
        "breakdowns": {
            "category": [
                {"key": "complex", "n": 12, "rubric_mean": 4.5, "mae_overall": 0.02, "dominant_accuracy": 1.0}
            ],
            "dominant_channel": [
                {"key": "visual", "n": 24, "rubric_mean": 4.25, "mae_overall": 0.03, "dominant_accuracy": 0.9}
            ],
        },
        "confusion": {
            "rows": NAMES,
            "columns": [*NAMES, "unusable"],
            "matrix": [[20, 3, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
        },
        "worst": [
            {
                "query": r.query,
                "category": r.category,
                "split": r.split,
                "reference": dict(r.reference),
                "weights": None if r.weights is None else dict(r.weights),
                "rubric": rubric_score(r.weights, REF, NAMES),
                "mae": None if r.weights is None else 0.25,
                "failure": r.parse_failure,
            }
            for r in worst
        ],
    }


def full_report() -> tuple[dict[str, Any], dict[str, list[QueryResult]]]:
    """A report with every optional field of issue 13, as report.json holds it."""
    results = {name: _results(name) for name in ("distilled", "base-student", "baseline")}
    metrics = {name: compute_metrics(rows, CHANNELS, price=PRICE) for name, rows in results.items()}
    decision = evaluate_gate(
        metrics["distilled"], baseline=metrics["baseline"], judge_score=None, thresholds=GateThresholds()
    ).to_dict()
    report = build_report(
        run_id="exec-13",
        channels=CHANNELS,
        candidates=[
            {"name": n, "model_id": f"model-{n}", "prompt_kind": "student", "metrics": m} for n, m in metrics.items()
        ],
        gate={**decision, "candidate": "distilled"},
        dataset={"train_records": 300, "heldout_records": 24},
        prices={},
    )
    for candidate in report["candidates"]:
        rows = results[candidate["name"]]
        candidate.update(_fields(candidate["name"], rows))
        candidate["metrics_by_split"] = metrics_by_split(rows, CHANNELS, price=PRICE)
    rubric = {n: [(r.query, float(rubric_score(r.weights, REF, NAMES))) for r in rows] for n, rows in results.items()}
    comparison = non_inferiority(
        paired_difference(rubric["distilled"], rubric["baseline"], seed=7, resamples=200),
        metric="rubric_mean",
        margin=0.2,
        direction="higher_is_better",
    )
    report["comparison"] = {"candidate": "distilled", "baseline": "baseline", **comparison.to_dict()}
    report["gate"]["checks"].append(
        {
            "name": "non_inferiority",
            "passed": comparison.outcome.value == "pass",
            "skipped": False,
            "actual": comparison.bound,
            "threshold": comparison.threshold,
            "message": comparison.reason,
        }
    )
    report["judge_reliability"] = {
        "distilled": {
            "repeats": 3,
            "scores": [4.5, 4.25, 4.75],
            "spread": 0.5,
            "rank_correlation": 0.81,
            "disagreement_share": 0.125,
        }
    }
    report["warnings"] = ["the held-out set is too small for the gate's non-inferiority margin: 24 queries ..."]
    return report, results


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, bytes], str]:
    report, results = full_report()
    paths = render_charts(report, results, tmp_path_factory.mktemp("charts"))
    charts = {key: path.read_bytes() for key, path in paths.items()}
    return report, charts, render_html(report, charts)


def _row(table: list[list[str]], first: str) -> list[str]:
    return next(row for row in table if row and row[0] == first)


def _table_with(page: Any, header: str) -> list[list[str]]:
    return next(t for t in page.tables if t and header in t[0])


# ---------------------------------------------------------------------------------------------------------
def test_the_page_has_the_verdict_first_every_candidate_and_every_chart_inlined(rendered: Any) -> None:
    report, charts, markup = rendered

    assert set(charts) == {"latency", "mae_per_channel", "rubric_distribution", "confusion"}
    page = check_report_page(
        markup,
        candidates=["distilled", "base-student", "baseline"],
        charts=[CHART_TITLES[key] for key in CHART_FILES if key in charts],
        gate="PASSED" if report["gate"]["passed"] else "FAILED",
    )
    # Each check of the gate, the new non-inferiority one included, with its message
    verdict = page.by_id["verdict"].text
    for check in report["gate"]["checks"]:
        assert f"{check['name']}: {check['message']}" in verdict
    # The inlined charts are the very bytes the charts module wrote
    assert sorted(png_of(image) for image in page.images) == sorted(charts.values())


def test_the_non_inferiority_comparison_shows_its_outcome_and_interval(rendered: Any) -> None:
    report, _charts, markup = rendered
    page = parse_page(markup)
    comparison = report["comparison"]

    text = page.by_id["comparison"].text
    assert text.startswith(f"{comparison['outcome']} non-inferiority against the baseline")
    assert f"distilled − baseline on rubric_mean: {interval_cell(comparison['difference'], fmt_score)}" in text
    assert f"bound {fmt_score(comparison['bound'])} against threshold {fmt_score(-0.2)} (margin 0.2" in text
    assert f"{comparison['matched']} paired" in text and comparison["reason"] in text
    assert comparison["sample"]["message"] in text
    # and the warnings sit in the verdict, before the tables
    assert "too small for the gate's non-inferiority margin" in page.by_id["warnings"].text
    assert page.text.index("Warnings") < page.text.index("Candidates")


def test_metrics_with_intervals_read_estimate_low_high(rendered: Any) -> None:
    report, _charts, markup = rendered
    table = parse_page(markup).tables[0]
    header = table[0]
    for candidate in report["candidates"]:
        row = _row(table, candidate["name"])
        rubric, mae = candidate["intervals"]["rubric_mean"], candidate["intervals"]["mae_overall"]
        metrics = candidate["metrics"]
        assert row[header.index("rubric mean (1-5)")] == (
            f"{fmt_score(metrics['rubric_mean'])} [{fmt_score(rubric['low'])}, {fmt_score(rubric['high'])}]"
        )
        assert (
            row[header.index("MAE")]
            == f"{fmt_mae(metrics['mae_overall'])} [{fmt_mae(mae['low'])}, {fmt_mae(mae['high'])}]"
        )
        # without an interval for the metric, its plain value
        assert row[header.index("valid JSON")] == fmt_rate(candidate["metrics"]["valid_json_rate"])


def test_fusion_breakdowns_worst_queries_and_judge_reliability(rendered: Any) -> None:
    report, _charts, markup = rendered
    page = parse_page(markup)
    distilled = report["candidates"][0]

    fusion = _row(_table_with(page, "mean overlap@10"), "distilled")
    assert fusion[3] == interval_cell(distilled["fusion"]["mean_overlap"], fmt_rate)
    assert fusion[4] == interval_cell(distilled["fusion"]["share_changed"], fmt_rate)
    category = _row(_table_with(page, "category"), "distilled")
    assert category[1:] == ["complex", "12", "4.50", "0.020", "100.0%"]
    confusion = _table_with(page, "teacher \\ candidate")
    assert confusion[0] == ["teacher \\ candidate", *NAMES, "unusable"]
    assert confusion[1] == ["visual", "20", "3", "0", "0", "1"]
    reliability = _row(_table_with(page, "judge runs"), "distilled")
    assert reliability[1:] == ["3", "4.50, 4.25, 4.75", "0.50", "0.81", "12.5%"]
    assert "distilled: the 3 worst answers" in page.text and "base-student: the 3 worst answers" in page.text


def test_worst_queries_show_teacher_and_candidate_weights_side_by_side(rendered: Any) -> None:
    report, _charts, markup = rendered
    page = parse_page(markup)
    weights_tables = [t for t in page.tables if t and t[0][:1] == [""] and t[1][0] == "teacher"]

    worst = [w for c in report["candidates"] for w in c["worst"]]
    assert len(weights_tables) == len(worst)
    first = report["candidates"][0]["worst"][0]
    assert weights_tables[0][0] == ["", *NAMES]
    assert weights_tables[0][1] == ["teacher", *(fmt_score(first["reference"][c]) for c in NAMES)]
    assert weights_tables[0][2] == ["candidate", *(fmt_score(first["weights"][c]) for c in NAMES)]
    unusable = next(i for i, w in enumerate(worst) if w["weights"] is None)
    assert weights_tables[unusable][2] == ["candidate", "no usable weights"]
    assert "no_json" in page.text  # the failure is named


def test_user_text_is_escaped_everywhere(rendered: Any) -> None:
    _report, _charts, markup = rendered
    page = parse_page(markup)

    assert "script" not in page.tags  # the injected query did not become an element
    assert INJECTED in page.text  # it is shown as the text it is
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; cats &amp; &quot;dogs&quot;" in markup
    assert "<script>" not in markup


def test_names_and_attribute_values_are_escaped_too() -> None:
    report = build_report(run_id='r" onload="x', channels=CHANNELS, candidates=[], gate=None, dataset=None, prices={})
    report["candidates"] = [{"name": "<img src=x>", "metrics": {}, "judge": None}]
    page = parse_page(render_html(report, {}))
    assert page.images == [] and page.fetching == []
    assert 'run r" onload="x' in page.title
    assert page.tables[0][1][0] == "<img src=x>"


def test_a_simulated_report_is_labelled_in_the_title_and_a_banner(rendered: Any) -> None:
    report, charts, _markup = rendered
    simulated = {**report, "simulated": {"label": "SIMULATED", "notes": ["Bedrock was replaced by <fakes>."]}}

    page = parse_page(render_html(simulated, charts))

    assert page.title.startswith("SIMULATED — Routing evaluation report — run exec-13")
    banner = page.by_id["simulated"]
    assert banner.attrs["role"] == "alert"
    assert (
        banner.text.startswith("SIMULATED RUN — NOT A MEASUREMENT.")
        and "Bedrock was replaced by <fakes>." in banner.text
    )
    assert page.text.index("SIMULATED RUN") < page.text.index("Quality gate:")
    assert "simulated" not in parse_page(render_html(report, charts)).by_id


def test_an_old_report_without_the_new_fields_renders(tmp_path: Path) -> None:
    # Given a report as build_report wrote it before issue 13, without a gate and without charts
    results = {"distilled": _results("distilled")}
    report = build_report(
        run_id="old",
        channels=CHANNELS,
        candidates=[{"name": "distilled", "metrics": compute_metrics(results["distilled"], CHANNELS, price=None)}],
        gate=None,
        dataset=None,
        prices={},
    )

    # When it is rendered
    markup = render_html(report, {})

    # Then the page holds what there is, and none of the sections it has no data for
    page = check_report_page(markup, candidates=["distilled"], charts=[], gate="NOT EVALUATED")
    assert "The quality gate was not evaluated." in page.text
    assert "No dataset manifest was given." in page.text
    for absent in ("comparison", "warnings", "fusion", "breakdowns", "worst", "judge", "simulated", "charts"):
        assert absent not in page.by_id, absent
    row = _row(page.tables[0], "distilled")
    assert row[4] == fmt_score(report["candidates"][0]["metrics"]["rubric_mean"])  # no interval: the value alone

    # And with its own charts (no confusion matrix, so no confusion chart)
    paths = render_charts(report, results, tmp_path)
    charts = {key: path.read_bytes() for key, path in paths.items()}
    assert "confusion" not in charts
    check_report_page(
        render_html(report, charts),
        candidates=["distilled"],
        charts=[CHART_TITLES[key] for key in CHART_FILES if key in charts],
        gate="NOT EVALUATED",
    )


def test_sections_follow_the_reading_order(rendered: Any) -> None:
    report, charts, _markup = rendered
    cascade = {"outcome": {"enabled": False, "reason": "no micro-router"}, "sweep": []}
    markup = render_html({**report, "cascade": cascade}, charts)
    order = [
        "verdict",
        "candidates",
        "splits",
        "cascade",
        "fusion",
        "breakdowns",
        "worst",
        "judge",
        "dataset",
        "charts",
    ]
    positions = [markup.index(f'id="{anchor}"') for anchor in order]
    assert positions == sorted(positions)


def test_a_chart_that_is_not_a_png_is_refused_by_name() -> None:
    report = build_report(run_id="r", channels=CHANNELS, candidates=[], gate=None, dataset=None, prices={})
    with pytest.raises(ValueError, match="PNG"):
        render_html(report, {"latency": b"GIF89a..."})
