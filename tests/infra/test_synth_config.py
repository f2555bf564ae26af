"""A bad configuration value fails synth (the same path `cdk synth` takes) with a message naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app import build_app
from infra.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_bad_value_fails_synth_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"Invalid configuration 'run_defaults\.shard_size': Input should be a valid integer"
    ):
        build_app({"run_defaults.shard_size": "lots"}, outdir=str(tmp_path))


def test_bad_cli_context_fails_the_cdk_app_process(tmp_path: Path) -> None:
    # Given the context the CDK CLI passes for `cdk synth -c api_auth=open`
    env = {
        "PATH": "/usr/bin:/bin",
        "CDK_CONTEXT_JSON": '{"api_auth": "open"}',
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    # When the app process runs
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it fails and says which key and what is allowed
    assert result.returncode != 0
    assert "Invalid configuration 'api_auth': must be one of iam, api_key; got 'open'" in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


def test_a_region_without_documented_distillation_warns_at_synth(tmp_path: Path) -> None:
    from aws_cdk.assertions import Annotations, Match

    _, stack = build_app({"region": "us-west-2"}, outdir=str(tmp_path / "west"))
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("lists distillation of"))
    assert len(warnings) == 1
    text = str(warnings[0].entry.data)
    assert "us-west-2" in text and "us-east-1 only" in text and "Preflight" in text
    # The documented Region synthesizes without it
    _, east = build_app(outdir=str(tmp_path / "east"))
    assert Annotations.from_stack(east).find_warning("*", Match.string_like_regexp("lists distillation of")) == []
