"""cdk-nag (AwsSolutions) and cfn-lint over the synthesized templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint_file

from app import build_app
from simulation.synth import Synthesized


def _nag_report(outdir: Path) -> dict[str, Any]:
    report = json.loads((outdir / "validation-report.json").read_text())
    (plugin,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    return plugin


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synthesized) -> None:
    # Synthesis itself fails on a finding; the report proves the pack actually ran.
    plugin = _nag_report(synth.outdir)
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []


def test_every_acknowledgment_is_narrow_and_gives_a_reason(synth: Synthesized) -> None:
    acknowledged = _nag_report(synth.outdir)["suppressedViolations"]
    assert acknowledged, "the report lists acknowledged findings for audit"
    for finding in acknowledged:
        assert len(finding["reason"]) >= 20, finding["ruleName"]
        # narrow: one construct per acknowledgment, never the whole stack
        assert len(finding["violatingConstructs"]) == 1, finding["ruleName"]
        # an IAM5 acknowledgment names the exact wildcard, never the whole rule
        if finding["ruleName"].startswith("AwsSolutions-IAM5"):
            assert "[" in finding["acknowledgedId"], finding["acknowledgedId"]


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    # Given the real app, checked as app.py checks it, with one careless bucket added
    built, stack = build_app(outdir=str(tmp_path))
    s3.Bucket(stack, "CarelessBucket")
    # When it is synthesized, Then cdk-nag stops synthesis
    with pytest.raises(RuntimeError, match="AwsSolutions-S10"):
        built.synth()
    # And the report names the finding that was not acknowledged
    plugin = _nag_report(next(tmp_path.glob("**/validation-report.json")).parent)
    violations = {v["ruleName"]: v for v in plugin["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= set(violations)
    paths = {c["constructPath"] for v in violations.values() for c in v["violatingConstructs"]}
    assert paths == {f"{stack.stack_name}/CarelessBucket/Resource"}


def test_cfn_lint_finds_no_errors(synth: Synthesized) -> None:
    matches = lint_file(synth.template_path, config=ManualArgs(regions=["us-east-1"]))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], "\n".join(str(m) for m in errors)
