"""What ``make simulate`` leaves in ``./out``, every file labelled SIMULATED.

* ``report.md``: the pipeline's own Markdown report (:func:`search_router.pipeline.report.render_markdown` of its
  ``report.json``), titled "SIMULATED — ..." with a banner that says what was simulated, and a closing section
  with the run's settings. Chart links point at the PNGs next to it.
* ``report.json``: the pipeline's report with a top-level ``"simulated"`` object (the same explanation).
* ``report.html``: the same report as one self-contained page
  (:func:`search_router.pipeline.report_html.render_html`), SIMULATED in its title and a banner, the stamped
  charts inlined.
* ``latency.png``, ``mae_per_channel.png``, ``rubric_distribution.png``: the pipeline's charts, stamped with a
  SIMULATED watermark and label.
* ``dataset_manifest.json``: the dataset manifest of the run, with a ``"simulated"`` note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from search_router.pipeline.report import CHART_FILES, render_markdown
from search_router.pipeline.report_html import render_html
from simulation.models import SIMULATED

REPORT_MD: Final = "report.md"
REPORT_JSON: Final = "report.json"
REPORT_HTML: Final = "report.html"
MANIFEST_JSON: Final = "dataset_manifest.json"

SIMULATION_NOTES: Final[tuple[str, ...]] = (
    "Amazon Bedrock was replaced by deterministic simulated models (simulation/models.py): a keyword-heuristic "
    "teacher, a distilled student that copies the teacher with small noise, a base student that mostly answers "
    "prose or broken JSON, a baseline router with larger noise.",
    "The state machine, the Lambda handlers, the dataset, the metrics, the quality gate and the report are the "
    "real code, executed locally (moto's Step Functions interpreter, S3/SSM/SNS in moto).",
    "Latencies are drawn from assumed distributions (distilled Nova Micro ~0.8 s, Nova Micro ~0.6 s, Claude "
    "Haiku 4.5 ~1.7 s mean) and put on a virtual clock; they are not measurements.",
    "Judge scores are the deterministic 1-5 rubric computed from the weights, not an LLM's judgement; token "
    "counts are estimated from characters (about 4 per token), so costs are illustrative.",
    "Distillation and deployment complete instantly and train nothing.",
)


def simulated_section(details: Mapping[str, Any]) -> dict[str, Any]:
    return {"label": SIMULATED, "notes": list(SIMULATION_NOTES), **details}


def _banner() -> list[str]:
    lines = [
        f"> **⚠️ {SIMULATED} RUN — NOT A MEASUREMENT.** Produced by `make simulate` on a local machine; no AWS "
        "account was used.",
        ">",
    ]
    lines += [f"> - {note}" for note in SIMULATION_NOTES]
    lines += [">", "> Deploy the stack (`make deploy`) and start a run to get real numbers.", ""]
    return lines


def _details_table(details: Mapping[str, Any]) -> list[str]:
    lines = ["## About this simulated run", "", "| setting | value |", "|:---|:---|"]
    for key, value in details.items():
        text = json.dumps(value) if isinstance(value, Mapping | list) else str(value)
        escaped = text.replace("|", "\\|")
        lines.append(f"| {key} | {escaped} |")
    return [*lines, ""]


def render_simulated_markdown(report: Mapping[str, Any]) -> str:
    """The pipeline's Markdown report, titled and bannered as SIMULATED."""
    body = render_markdown(report).splitlines()
    title = body[0].removeprefix("# ").strip()
    details = {k: v for k, v in (report.get("simulated") or {}).items() if k not in ("label", "notes")}
    lines = [f"# {SIMULATED} — {title}", "", *_banner(), *body[1:], "", *_details_table(details)]
    return "\n".join(lines).rstrip() + "\n"


def stamp_chart(png: bytes, path: Path) -> Path:
    """Write ``png`` to ``path`` with a faint diagonal SIMULATED watermark and a red label, same pixel size."""
    import io

    from matplotlib import image as mpimg
    from matplotlib.figure import Figure

    image = mpimg.imread(io.BytesIO(png), format="png")
    height, width = image.shape[:2]
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(image, interpolation="none", aspect="auto")
    ax.set_axis_off()
    fig.text(0.5, 0.5, SIMULATED, fontsize=120, color="#c0392b", alpha=0.08, ha="center", va="center", rotation=20)
    fig.text(  # top left: the charts' titles are centred, their axes start lower
        0.004,
        0.995,
        f"{SIMULATED} — not a measurement",
        ha="left",
        va="top",
        fontsize=10,
        color="white",
        bbox={"facecolor": "#c0392b", "edgecolor": "none", "pad": 3},
    )
    fig.savefig(path, format="png", dpi=dpi, metadata={"Software": None})
    return path


def write_outputs(
    out_dir: Path,
    *,
    report: Mapping[str, Any],
    charts: Mapping[str, bytes],
    manifest: Mapping[str, Any] | None,
    details: Mapping[str, Any],
) -> dict[str, Path]:
    """Write the labelled report, charts and manifest into ``out_dir``; returns the files by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for key, filename in CHART_FILES.items():
        if key in charts:
            written[filename] = stamp_chart(charts[key], out_dir / filename)
    local = dict(report)
    local["charts"] = {key: filename for key, filename in CHART_FILES.items() if key in charts}
    local["simulated"] = simulated_section(details)
    written[REPORT_JSON] = out_dir / REPORT_JSON
    written[REPORT_JSON].write_text(json.dumps(local, indent=2, ensure_ascii=False) + "\n")
    written[REPORT_MD] = out_dir / REPORT_MD
    written[REPORT_MD].write_text(render_simulated_markdown(local))
    stamped = {key: written[filename].read_bytes() for key, filename in local["charts"].items()}
    written[REPORT_HTML] = out_dir / REPORT_HTML
    written[REPORT_HTML].write_text(render_html(local, stamped), encoding="utf-8")
    if manifest is not None:
        written[MANIFEST_JSON] = out_dir / MANIFEST_JSON
        labelled = {"simulated": simulated_section({}), **manifest}
        written[MANIFEST_JSON].write_text(json.dumps(labelled, indent=2, ensure_ascii=False) + "\n")
    return written
