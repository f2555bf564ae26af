"""Synthesizes the real app (cdk-nag included) the way ``cdk synth`` does, for the infra and workflow tests and
for ``make simulate``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk.assertions import Template

from app import build_app

__all__ = ["Synthesized"]


class Synthesized:
    """A synthesized app: the stack's template (as dict and as CDK ``Template``) and the assembly dir."""

    def __init__(self, outdir: Path, overrides: dict[str, Any] | None = None) -> None:
        app, stack = build_app(overrides, outdir=str(outdir))
        assembly = app.synth()
        self.stack = stack
        self.outdir = outdir
        self.template_path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
        self.template: dict[str, Any] = json.loads(self.template_path.read_text())
        self.assertions = Template.from_json(self.template)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}
