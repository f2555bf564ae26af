#!/usr/bin/env python3
"""CDK entry point: ``cdk synth`` / ``make synth`` (no AWS credentials or Docker needed)."""

from __future__ import annotations

from aws_cdk import App, Environment

from infra.config import load_config, read_cdk_json_context
from infra.nag import apply_security_checks
from infra.stack import RouterDistillationStack


def build_app(
    overrides: dict[str, object] | None = None, outdir: str | None = None
) -> tuple[App, RouterDistillationStack]:
    """The app, configured exactly as ``cdk synth`` configures it, with cdk-nag applied.

    ``cdk.json`` context (project settings *and* CDK feature flags) is the base even when the app runs as
    plain ``python app.py`` or inside tests; the CLI's context (``-c key=value``) overrides it, and
    ``overrides`` (tests) override both.
    """
    app = App(context=read_cdk_json_context(), post_cli_context=overrides, outdir=outdir)
    config = load_config(app.node.get_all_context())
    stack = RouterDistillationStack(
        app,
        config.stack_name,
        config=config,
        env=Environment(region=config.region),
        description="Distils a search-intent router with Amazon Bedrock Model Distillation and serves it",
    )
    apply_security_checks(app)
    return app, stack


if __name__ == "__main__":
    built_app, _ = build_app()
    built_app.synth()
