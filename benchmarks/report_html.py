"""What report.html costs: the time to render the page next to the Markdown, and its size next to the charts it
inlines (base64 makes an image a third larger).

Reads a ``report.json`` and the chart PNGs beside it (``make simulate`` leaves both in ``./out``), prints the median
and the range of ``--rounds`` renders of each, their ratio, and the page's size. Usage: ``.venv/bin/python -m
benchmarks.report_html [--report out/report.json --rounds 20]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from benchmarks.evaluation_stats import _row, _timed
from search_router.pipeline.report import CHART_FILES, render_markdown
from search_router.pipeline.report_html import render_html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=Path("out/report.json"), help="a report.json (default out/)")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    if not args.report.is_file():
        parser.error(f"{args.report} does not exist: run `make simulate` first, or name a report.json with --report")
    report = json.loads(args.report.read_text(encoding="utf-8"))
    folder = args.report.parent
    charts = {key: (folder / name).read_bytes() for key, name in CHART_FILES.items() if (folder / name).is_file()}
    page = render_html(report, charts)
    html_times = _timed(lambda: render_html(report, charts), args.rounds)
    markdown_times = _timed(lambda: render_markdown(report), args.rounds)
    chart_bytes = sum(len(body) for body in charts.values())
    page_bytes = len(page.encode("utf-8"))
    candidates = len(report.get("candidates") or [])
    print(f"report {args.report}: {candidates} candidates, {len(charts)} charts, {args.rounds} rounds")
    print("| figure | median (range) | note |")
    print("|---|---|---|")
    ratio = statistics.median(html_times) / statistics.median(markdown_times)
    _row("render_html", html_times, f"{ratio:.1f}× render_markdown")
    _row("render_markdown", markdown_times)
    print(
        f"| page size | {page_bytes / 1024:,.0f} KiB | charts {chart_bytes / 1024:,.0f} KiB as PNG, "
        f"page / charts = {page_bytes / max(chart_bytes, 1):.2f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
