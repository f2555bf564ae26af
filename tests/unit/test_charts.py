"""Report charts: real, decodable 1200×700 PNGs, byte-identical across runs, even for a candidate with no answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.image import imread  # the report Lambda's layer; requirements-dev.txt for tests

from search_router.pipeline.charts import confusion_problem, render_charts
from search_router.pipeline.gate import GateThresholds, evaluate_gate
from search_router.pipeline.metrics import Price, QueryResult, compute_metrics
from search_router.pipeline.report import build_report
from search_router.shared.channels import DEFAULT_CHANNELS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = DEFAULT_CHANNELS
REF = {"visual": 0.6, "audio": 0.2, "transcription": 0.1, "metadata": 0.1}
PRICE = Price(0.000035, 0.00014)


def _answered(latencies: list[float], weights: dict[str, float]) -> list[QueryResult]:
    return [
        QueryResult(f"q{i}", "visual", REF, "{}", weights=weights, latency_ms=ms, input_tokens=100, output_tokens=50)
        for i, ms in enumerate(latencies)
    ]


def _nothing_valid() -> list[QueryResult]:
    """A candidate whose calls all failed or answered garbage: no weights, no answered latencies."""
    return [
        QueryResult("q0", "visual", REF, None, error_kind="ModelTimeoutException"),
        QueryResult("q1", "visual", REF, "sorry", parse_failure="no_json"),
    ]


def _inputs() -> tuple[dict[str, object], dict[str, list[QueryResult]]]:
    results = {
        "distilled": _answered([700.0, 820.0, 833.0, 910.0, 1200.0], REF),
        "baseline": _answered([1500.0, 1741.0, 1900.0], {**REF, "visual": 0.5, "audio": 0.3}),
        "broken": _nothing_valid(),
    }
    metrics = {name: compute_metrics(rows, CHANNELS, price=PRICE) for name, rows in results.items()}
    gate = evaluate_gate(
        metrics["distilled"], baseline=metrics["baseline"], judge_score=None, thresholds=GateThresholds()
    )
    report = build_report(
        run_id="exec-1",
        channels=CHANNELS,
        candidates=[
            {"name": name, "model_id": name, "prompt_kind": "student", "metrics": m} for name, m in metrics.items()
        ],
        gate=gate.to_dict(),
        dataset=None,
        prices={},
    )
    return report, results


def test_three_decodable_pngs_of_the_expected_size(tmp_path: Path) -> None:
    report, results = _inputs()

    paths = render_charts(report, results, tmp_path / "charts")

    assert set(paths) == {"latency", "mae_per_channel", "rubric_distribution"}
    assert {p.name for p in paths.values()} == {"latency.png", "mae_per_channel.png", "rubric_distribution.png"}
    for path in paths.values():
        assert path.parent == tmp_path / "charts"
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        pixels = imread(path)
        assert pixels.shape[:2] == (700, 1200)
        assert pixels.std() > 0.01  # something was drawn, not a blank canvas


def test_charts_are_byte_identical_across_runs(tmp_path: Path) -> None:
    report, results = _inputs()

    first = render_charts(report, results, tmp_path / "a")
    second = render_charts(report, results, tmp_path / "b")

    for key, path in first.items():
        assert path.read_bytes() == second[key].read_bytes(), key
        assert b"matplotlib" not in path.read_bytes()  # no software/version metadata


def test_only_candidates_without_answers_do_not_crash(tmp_path: Path) -> None:
    results = {"broken": _nothing_valid(), "also-broken": []}
    metrics = {name: compute_metrics(rows, CHANNELS, price=None) for name, rows in results.items()}
    report = build_report(
        run_id="exec-2",
        channels=CHANNELS,
        candidates=[{"name": name, "metrics": m} for name, m in metrics.items()],
        gate=None,
        dataset=None,
        prices={},
    )

    paths = render_charts(report, results, tmp_path)

    for path in paths.values():
        assert imread(path).shape[:2] == (700, 1200)


def test_no_candidates_at_all_still_renders(tmp_path: Path) -> None:
    report = build_report(run_id="r", channels=CHANNELS, candidates=[], gate=None, dataset=None, prices={})
    paths = render_charts(report, {}, tmp_path)
    assert all(path.read_bytes().startswith(PNG_SIGNATURE) for path in paths.values())


def test_the_cascade_chart_is_drawn_only_when_the_report_has_a_cascade(tmp_path: Path) -> None:
    from search_router.pipeline.cascade import evaluate_cascade

    report, results = _inputs()
    distilled = results["distilled"]
    predictions = [
        {"query": r.query, "reference": r.reference, "micro": REF if i % 2 else r.reference, "confidence": i / 5}
        for i, r in enumerate(distilled)
    ]
    evaluation = evaluate_cascade(predictions, distilled, CHANNELS.names, price=PRICE)
    report = {**report, "cascade": {"choice": evaluation.choice.to_dict(), "sweep": evaluation.sweep}}

    paths = render_charts(report, results, tmp_path)

    assert paths["cascade_tau"].name == "cascade_tau.png"
    pixels = imread(paths["cascade_tau"])
    assert pixels.shape[:2] == (700, 1200) and pixels.std() > 0.01
    assert "cascade_tau" not in render_charts(_inputs()[0], results, tmp_path / "without")


def _with_issue_13_fields(report: dict[str, Any]) -> dict[str, Any]:
    """The report with the confusion matrices and intervals a report of issue 13 carries (optional fields)."""
    from search_router.pipeline.stats import bootstrap_mean

    names = list(CHANNELS.names)
    candidates = []
    for index, candidate in enumerate(report["candidates"]):
        rows = [[4 - index, index, 0, 0, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
        intervals = {
            "rubric_mean": bootstrap_mean([5, 4, 4, 3, 5 - index], seed=1, resamples=100).to_dict(),
            "mae_overall": bootstrap_mean([0.01, 0.02, 0.05 * (index + 1)], seed=1, resamples=100).to_dict(),
        }
        confusion = {"rows": names, "columns": [*names, "unusable"], "matrix": rows}
        candidates.append({**candidate, "confusion": confusion, "intervals": intervals})
    return {**report, "candidates": candidates}


def test_the_confusion_chart_is_drawn_when_a_candidate_has_a_matrix(tmp_path: Path) -> None:
    report, results = _inputs()

    paths = render_charts(_with_issue_13_fields(report), results, tmp_path / "a")
    again = render_charts(_with_issue_13_fields(report), results, tmp_path / "b")

    assert paths["confusion"].name == "confusion.png"
    pixels = imread(paths["confusion"])
    assert pixels.shape[:2] == (700, 1200) and pixels.std() > 0.01
    assert all(path.read_bytes() == again[key].read_bytes() for key, path in paths.items())  # still reproducible


def test_intervals_add_error_bars_to_the_mae_and_rubric_charts_only(tmp_path: Path) -> None:
    report, results = _inputs()

    plain = render_charts(report, results, tmp_path / "plain")
    with_intervals = render_charts(_with_issue_13_fields(report), results, tmp_path / "intervals")

    for key in ("mae_per_channel", "rubric_distribution"):
        assert imread(with_intervals[key]).shape[:2] == (700, 1200)
        assert with_intervals[key].read_bytes() != plain[key].read_bytes(), key
    assert with_intervals["latency"].read_bytes() == plain["latency"].read_bytes()


def test_a_malformed_confusion_matrix_is_noted_in_its_panel_not_fatal(tmp_path: Path) -> None:
    report, results = _inputs()
    broken = _with_issue_13_fields(report)
    first = broken["candidates"][0]
    first["confusion"] = {**first["confusion"], "matrix": [[1, 2]]}  # one row for four channels

    paths = render_charts(broken, results, tmp_path)

    assert imread(paths["confusion"]).shape[:2] == (700, 1200)
    assert confusion_problem(first["confusion"]) == "matrix must have one row per teacher channel (4)"
    assert confusion_problem(broken["candidates"][1]["confusion"]) is None
