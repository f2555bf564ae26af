"""``report``: download a run's evaluation report (``runs/<run>/report/``: report.json, report.md, report.html,
charts) to ``<out>/<run>/``, print its candidates table and the path of report.html (the page to open); with
``--link``, print a pre-signed URL of report.html instead (valid one hour, nothing downloaded).

Without ``RUN``, the newest execution that has a report is used.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cli.app import App
from cli.errors import NotFoundError
from cli.runs import recent_executions, run_id_of
from search_router.contract.layout import RunLayout
from search_router.contract.run import run_id_from_execution
from search_router.pipeline.report import render_markdown

REPORT_FILES = (".json", ".md", ".html", ".png")
LINK_EXPIRES_S = 3600
"""How long ``report --link``'s pre-signed URL is valid."""
DEFAULT_OUT = Path("out")
# How many recent executions to look through for the latest report.
LATEST_SCAN = 50


@dataclass(frozen=True)
class DownloadedReport:
    run_id: str
    folder: Path
    files: list[Path]
    report: dict[str, Any]
    markdown: str

    @property
    def gate_passed(self) -> bool | None:
        gate = self.report.get("gate")
        return bool(gate.get("passed")) if isinstance(gate, dict) else None

    @property
    def candidate_names(self) -> list[str]:
        return [c["name"] for c in self.report.get("candidates", [])]


def report_prefix(run_id: str) -> str:
    return RunLayout(run_id).report_prefix


def report_keys(app: App, run_id: str) -> list[str]:
    keys: list[str] = []
    for page in (
        app.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=app.outputs.bucket, Prefix=report_prefix(run_id))
    ):
        keys += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(REPORT_FILES)]
    return sorted(keys)


def latest_report_run(app: App) -> str:
    """The run id of the newest execution whose report exists."""
    executions = recent_executions(app.client("stepfunctions"), app.outputs.state_machine_arn, LATEST_SCAN)
    for execution in executions:
        run_id = run_id_of(execution)
        if RunLayout(run_id).report_json in report_keys(app, run_id):
            return run_id
    raise NotFoundError(
        f"none of the last {len(executions)} runs has a report yet",
        hint="a report is written near the end of a run: see `python -m cli status`",
    )


def download_report(app: App, run: str | None, out: Path = DEFAULT_OUT) -> DownloadedReport:
    run_id = run_id_from_execution(run.rsplit(":", 1)[-1]) if run else latest_report_run(app)
    keys = report_keys(app, run_id)
    json_key = RunLayout(run_id).report_json
    if json_key not in keys:
        raise NotFoundError(
            f"run {run_id} has no report at s3://{app.outputs.bucket}/{json_key}",
            hint=f"check the run id, or whether it got that far: python -m cli status {run_id}",
        )
    folder = out / run_id
    folder.mkdir(parents=True, exist_ok=True)
    s3 = app.client("s3")
    files: list[Path] = []
    for key in keys:
        target = folder / key.rsplit("/", 1)[-1]
        try:
            body = s3.get_object(Bucket=app.outputs.bucket, Key=key)["Body"].read()
        except ClientError as exc:  # pragma: no cover - listed a moment ago
            raise NotFoundError(f"cannot download s3://{app.outputs.bucket}/{key}: {exc}") from None
        target.write_bytes(body)
        files.append(target)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    markdown_path = folder / "report.md"
    if markdown_path.exists():
        markdown = markdown_path.read_text(encoding="utf-8")
    else:  # re-rendered from the JSON, exactly as the Report step renders it
        markdown = render_markdown(report)
        markdown_path.write_text(markdown, encoding="utf-8")
        files.append(markdown_path)
    return DownloadedReport(run_id=run_id, folder=folder, files=files, report=report, markdown=markdown)


def report_link(app: App, run: str | None, expires_s: int = LINK_EXPIRES_S) -> tuple[str, str]:
    """(run id, a pre-signed GET URL of the run's report.html valid ``expires_s`` seconds)."""
    run_id = run_id_from_execution(run.rsplit(":", 1)[-1]) if run else latest_report_run(app)
    key = RunLayout(run_id).report_html
    if key not in report_keys(app, run_id):
        raise NotFoundError(
            f"run {run_id} has no report.html at s3://{app.outputs.bucket}/{key}",
            hint=f"the run's report predates report.html or is not written yet: `python -m cli report {run_id}` "
            "downloads what there is",
        )
    url = app.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": app.outputs.bucket, "Key": key}, ExpiresIn=expires_s
    )
    return run_id, str(url)


def section(markdown: str, title: str) -> list[str]:
    """The lines of a ``## title`` section up to its first sub-heading (without the heading), trimmed."""
    lines = markdown.splitlines()
    try:
        start = lines.index(f"## {title}") + 1
    except ValueError:
        return []
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


def quality_gate_line(markdown: str) -> str | None:
    return next((line for line in markdown.splitlines() if line.startswith("Quality gate:")), None)


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "report",
        parents=[common],
        help="download a run's report and charts to ./out/<run>/ and print its table",
        description="Download report.json, report.md and the charts of a run and print the candidates table.",
    )
    parser.add_argument("run", nargs="?", help="run id or execution name (default: the latest run with a report)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="base folder; files go to OUT/<run>/ (default ./out)"
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help=f"print a pre-signed URL of report.html (valid {LINK_EXPIRES_S // 60} minutes) instead of downloading",
    )
    parser.set_defaults(handler=run)


def run(app: App, args: argparse.Namespace) -> int:
    if args.link:
        run_id, url = report_link(app, args.run)
        app.terminal.print(
            f"Run {run_id}: report.html, valid for {LINK_EXPIRES_S // 60} minutes (anyone with the link can read it):"
        )
        app.terminal.print(url)
        return 0
    downloaded = download_report(app, args.run, args.out)
    out = app.terminal
    out.print(f"Run {downloaded.run_id}: report saved to {downloaded.folder}/")
    for path in downloaded.files:
        out.print(f"  {path.name}")
    out.print("")
    gate = quality_gate_line(downloaded.markdown)
    if gate:
        out.print(gate.replace("**", ""))
        out.print("")
    for line in section(downloaded.markdown, "Candidates"):
        out.print(line)
    page = downloaded.folder / "report.html"
    out.print("")
    if page in downloaded.files:
        out.print(f"Open {page} in a browser (`python -m cli report {downloaded.run_id} --link` to share it).")
    else:
        out.print("This run's report has no report.html (it predates the page): read report.md.")
    return 0
