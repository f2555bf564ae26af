"""``make simulate``: the whole pipeline against the simulated Bedrock, at a tiny size, into a temporary folder."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from matplotlib import image as mpimg

from search_router.pipeline import labeling
from search_router.pipeline.dataset import TRAINING_SUM_TOLERANCE
from search_router.pipeline.queries.planning import plan_queries
from search_router.pipeline.queries.query import normalize_query
from search_router.pipeline.report import CHART_FILES, CHART_TITLES
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import DEFAULT_CHANNELS
from simulation.cli import main
from simulation.models import SimulatedModels
from tests.html_page import check_report_page, png_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHARTS = ("latency.png", "mae_per_channel.png", "rubric_distribution.png")


def test_simulate_writes_a_labelled_report_and_charts(tmp_path: Path) -> None:
    # Given a tiny simulated run (110 queries: 3 shards of at most 50) into a temporary folder, no real sleeps
    out_dir = tmp_path / "out"
    console = io.StringIO()
    environment_before = dict(os.environ)

    # When it runs
    code = main(
        ["--examples", "100", "--eval", "60", "--seed", "3", "--out", str(out_dir), "--time-scale", "0"], out=console
    )

    # Then it succeeds and says everywhere that Bedrock was simulated
    printed = console.getvalue()
    assert code == 0, printed
    assert "SIMULATED RUN" in printed and "NOT measurements" in printed

    # And report.html is one self-contained page: SIMULATED, the verdict, every candidate and every chart inlined
    report_json = json.loads((out_dir / "report.json").read_text())
    page = check_report_page(
        (out_dir / "report.html").read_text(encoding="utf-8"),
        candidates=[c["name"] for c in report_json["candidates"]],
        charts=[CHART_TITLES[key] for key in CHART_FILES if key in report_json["charts"]],
        gate="PASSED" if report_json["gate"]["passed"] else "FAILED",
    )
    assert page.title.startswith("SIMULATED — Routing evaluation report")
    assert page.by_id["simulated"].text.startswith("SIMULATED RUN — NOT A MEASUREMENT.")
    assert sorted(png_of(image) for image in page.images) == sorted(
        (out_dir / CHART_FILES[key]).read_bytes() for key in report_json["charts"]
    )  # the stamped charts, as written next to it
    assert "confusion" in report_json["charts"] and {"comparison", "fusion", "breakdowns", "worst"} <= set(page.by_id)
    rubric = page.tables[0][0].index("rubric mean (1-5)")
    assert all(re.fullmatch(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\]", row[rubric]) for row in page.tables[0][1:])

    # 100 + 60 queries, 50 a shard
    assert "LabelShards" in printed and "shards 4/4 labeled" in printed and "100%" in printed
    report_md = (out_dir / "report.md").read_text()
    assert report_md.startswith("# SIMULATED — Routing evaluation report")
    assert "SIMULATED RUN — NOT A MEASUREMENT" in report_md
    for chart in CHARTS:
        assert f"]({chart})" in report_md  # the links work next to the files

    # And the charts are valid, decodable PNGs
    for chart in CHARTS:
        body = (out_dir / chart).read_bytes()
        assert body.startswith(PNG_SIGNATURE), chart
        assert mpimg.imread(io.BytesIO(body), format="png").shape[:2] == (700, 1200), chart

    # And the run started with {} chose its teacher at run time, and says which one (Nova Premier is LEGACY)
    report = json.loads((out_dir / "report.json").read_text())
    assert report["teacher"]["requested"] == "auto" and report["teacher"]["model_id"] == "us.amazon.nova-pro-v1:0"
    assert "teacher: us.amazon.nova-pro-v1:0 (chosen automatically from teacher_preference" in printed
    assert "Teacher: `us.amazon.nova-pro-v1:0`" in report_md

    # And the report is the pipeline's, with the simulated numbers it was designed to show
    assert report["simulated"]["label"] == "SIMULATED"
    assert report["gate"]["passed"] is True
    metrics = {c["name"]: c["metrics"] for c in report["candidates"]}
    assert metrics["distilled"]["n"] == 60 and metrics["distilled"]["valid_json_rate"] == 1.0
    assert metrics["base-student"]["schema_valid_rate"] < 0.5
    # With no real sleep at all, the client-measured latency still follows the simulated distributions
    assert 500 < metrics["distilled"]["latency"]["mean"] < 1_300
    assert metrics["baseline"]["latency"]["mean"] > metrics["distilled"]["latency"]["mean"]
    manifest = json.loads((out_dir / "dataset_manifest.json").read_text())
    assert manifest["simulated"]["label"] == "SIMULATED" and manifest["train_records"] == 100
    # The simulated judge rates each answer with the rubric (simulation/models.py): where its ratings vary, they
    # pair with the report's own per-query rubric exactly, by judged prompt (a mispairing would break the ranks)
    reliability = report["judge_reliability"]
    assert set(reliability) == {"distilled", "distilled-weights", "base-student", "baseline"}
    for name, entry in reliability.items():
        assert entry["repeats"] == 1 and entry["spread"] is None and entry["paired_queries"] == metrics[name]["n"], name
        assert entry["disagreement_share"] == 0.0, name
        assert entry["rank_correlation"] in (None, pytest.approx(1.0)), name
    assert any(entry["rank_correlation"] is not None for entry in reliability.values())
    assert "## The judge's reliability" in report_md

    # And the process is left as it was: real clock in the domain code, environment restored
    assert labeling.time is time
    assert dict(os.environ) == environment_before


@pytest.mark.parametrize("seed", [0, 11])
def test_simulated_models_are_deterministic_and_answer_in_the_expected_formats(seed: int) -> None:
    planned = plan_queries(DEFAULT_CHANNELS, n_total=120, seed=seed, user=None, mix_user=True)
    categories = {normalize_query(q.text): q.category for q in planned}
    models = SimulatedModels(DEFAULT_CHANNELS, teacher_model_ids=["teacher"], seed=seed, categories=categories)
    again = SimulatedModels(DEFAULT_CHANNELS, teacher_model_ids=["teacher"], seed=seed, categories=categories)
    leads = 0
    for query in planned:
        teacher = parse_routing_answer(models.teacher_answer(query.text), DEFAULT_CHANNELS)
        assert teacher.ok and models.teacher_answer(query.text) == again.teacher_answer(query.text)
        assert abs(sum(teacher.decision.weights.values()) - 1) <= TRAINING_SUM_TOLERANCE
        distilled = models.distilled_answer(query.text)
        assert distilled.startswith('{"visual":') and parse_routing_answer(distilled, DEFAULT_CHANNELS).ok
        if query.category.endswith("_dominant"):
            leads += teacher.decision.dominant_channel == query.category.removesuffix("_dominant")
    assert leads == sum(1 for q in planned if q.category.endswith("_dominant"))
    base_ok = sum(parse_routing_answer(models.base_student_answer(q.text), DEFAULT_CHANNELS).ok for q in planned)
    assert base_ok < len(planned) / 2


def test_simulate_captured_runs_the_scheduled_retraining_on_a_local_file(tmp_path: Path) -> None:
    # Given a local file of routed queries: compacted lines with counts, captured records, and one broken line
    queries = [q.text for q in plan_queries(DEFAULT_CHANNELS, n_total=50, seed=8, user=None, mix_user=False)]
    lines = [json.dumps({"query": q, "count": 1 + i % 3}) for i, q in enumerate(queries[:40])]
    lines += [json.dumps({"query": q, "weights": {}, "source": "model"}) for q in queries[40:]]
    lines.append("{not json")
    captured = tmp_path / "routed.jsonl"
    captured.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out_dir, console = tmp_path / "out", io.StringIO()
    # When the simulation runs the loop on it
    arguments = ["--examples", "100", "--eval", "20", "--time-scale", "0", "--out", str(out_dir)]
    code = main([*arguments, "--captured", str(captured), "--min-new-queries", "30", "--heldout-queries", "10"],
                out=console)  # fmt: skip
    printed = console.getvalue()
    assert code == 0, printed
    # Then the file was compacted (the broken line counted), and the scheduled retraining started the run
    assert "Delivered 90 lines of routed queries" in printed
    assert "Compacted: 50 distinct queries, 89 routes (malformed: 1 not_json)" in printed
    assert re.search(r"Started retrain-\d{8}T\d{6}Z", printed)
    # with 10 production queries held out (split production), the other 40 captured ones trained or evaluated
    report = json.loads((out_dir / "report.json").read_text())
    assert all(c["metrics_by_split"]["production"]["n"] == 10 for c in report["candidates"])
    # and ShadowReplay asked the model in service (the router's default: nothing promoted yet) those 10 queries
    production = report["production"]
    assert production["shadow"]["status"] == "ok" and production["shadow"]["replayed"] == 10
    assert production["service_figures"]["n"] == 10 and production["candidate_figures"]["n"] == 10
    assert "## Production traffic" in (out_dir / "report.md").read_text()
    manifest = json.loads((out_dir / "dataset_manifest.json").read_text())
    assert manifest["per_source"]["production"] == {"train": 0, "heldout": 10}
    assert sum(manifest["per_source"]["user"].values()) == 40


@pytest.mark.parametrize(
    ("file", "arguments", "message"),
    [
        (("routed.csv", b"query\nx\n"), [], "use a .jsonl file"),
        (("routed.txt", b"\n\n"), [], "holds no routed query"),
        (("routed.txt", b"rain\n"), ["--heldout-queries", "60"], "--heldout-queries must be smaller than --min-new"),
    ],
)
def test_simulate_refuses_an_unusable_captured_file_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: tuple[str, bytes], arguments: list[str], message: str
) -> None:
    path = tmp_path / file[0]
    path.write_bytes(file[1])
    with pytest.raises(SystemExit) as exited:
        main(["--captured", str(path), *arguments], out=io.StringIO())
    assert exited.value.code == 2 and message in capsys.readouterr().err
