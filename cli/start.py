"""``start``: check the run's settings locally, then start the state machine.

The execution input holds only what the user changed (``--input-file`` then ``--set``, the later wins): every
other setting comes from the defaults the stack was deployed with, exactly as for input ``{}``. The settings
are checked with the pipeline's own model (:class:`search_router.contract.run.RunSettings`) over those defaults, so a
typo or an out-of-range value fails here, in a second, instead of in Preflight.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cli.app import OUTPUT_PIPELINE_DEFAULTS, App
from cli.console import execution_url, run_prefix, s3_folder_url
from cli.errors import UsageError
from infra.config import pipeline_defaults as config_pipeline_defaults
from search_router.contract.errors import InvalidRunInput
from search_router.contract.run import RunSettings, run_id_from_execution, settings_from_input

# Step Functions execution names: 1-80 characters, none of whitespace, < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /
# or control characters.
_WHOLE_INPUT_ECHO = re.compile(r" \(got \{[^()]*\}\)")
_EXECUTION_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")


@dataclass(frozen=True)
class StartedRun:
    execution_arn: str
    name: str
    run_id: str
    overrides: dict[str, Any]
    settings: RunSettings


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "start",
        parents=[common],
        help="start a pipeline run (settings checked locally first)",
        description="Start the pipeline. Without options it runs with the deployed defaults (input {}). "
        f"Settings: {', '.join(sorted(RunSettings.model_fields))}.",
    )
    add_settings_arguments(
        parser, "override one run setting (repeatable); VALUE is JSON when it parses (100, true), else a string"
    )
    parser.add_argument("--name", help="execution name (default: run-<UTC date>-<time>); the run id derives from it")
    parser.set_defaults(handler=run)


def add_settings_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    """``--set KEY=VALUE`` (repeatable) and ``--input-file``: run settings over the deployed defaults."""
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--input-file", type=Path, help="a JSON object of run settings (--set wins over it)")


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings given with :func:`add_settings_arguments` (the input file, then ``--set``)."""
    overrides = load_input_file(args.input_file) if args.input_file else {}
    overrides.update(parse_assignments(args.assignments))
    return overrides


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """``["num_examples=500", "judge=false", "queries_s3_uri=s3://b/q.txt"]`` → typed values."""
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {item!r} is not KEY=VALUE", hint="e.g. --set num_examples=500")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def load_input_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --input-file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--input-file {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise UsageError(f'--input-file {path} must hold a JSON object such as {{"num_examples": 500}}')
    return data


def check_keys(overrides: dict[str, Any]) -> None:
    known = sorted(RunSettings.model_fields)
    for key in overrides:
        if key not in RunSettings.model_fields:
            close = difflib.get_close_matches(key, known, n=1)
            suggestion = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"unknown run setting {key!r}", hint=f"{suggestion}Settings: {', '.join(known)}")


def pipeline_defaults(app: App) -> dict[str, Any]:
    """What input ``{}`` means: the stack's ``PipelineDefaults`` output when it has one, else cdk.json's."""
    deployed = app.outputs.get(OUTPUT_PIPELINE_DEFAULTS)
    if deployed:
        return dict(json.loads(deployed))
    return local_pipeline_defaults(app)


def local_pipeline_defaults(app: App) -> dict[str, Any]:
    return config_pipeline_defaults(app.config)


def validate(overrides: dict[str, Any], defaults: dict[str, Any]) -> RunSettings:
    check_keys(overrides)
    try:
        return settings_from_input(defaults, overrides)
    except InvalidRunInput as exc:
        # The pipeline's message, without the echo of the whole merged input on cross-field errors.
        message = _WHOLE_INPUT_ECHO.sub("", str(exc)).replace("invalid execution input", "invalid run settings", 1)
        raise UsageError(message) from None


def default_name(app: App) -> str:
    return app.terminal.now().strftime("run-%Y%m%d-%H%M%S")


def check_name(name: str) -> str:
    if not _EXECUTION_NAME.match(name):
        raise UsageError(
            f"--name {name!r} is not a valid execution name",
            hint="use 1-80 letters, digits, hyphens or underscores (no spaces, '/', ':' ...)",
        )
    return name


def start_run(app: App, overrides: dict[str, Any], *, name: str | None = None) -> StartedRun:
    """Validate, make sure the run id is unused, start the execution."""
    check_keys(overrides)  # before any AWS call
    name = check_name(name or default_name(app))
    settings = validate(overrides, pipeline_defaults(app))
    run_id = run_id_from_execution(name)
    outputs = app.outputs
    existing = app.client("s3").list_objects_v2(Bucket=outputs.bucket, Prefix=run_prefix(run_id), MaxKeys=1)
    if existing.get("KeyCount", 0):
        raise UsageError(
            f"run id {run_id!r} (from execution name {name!r}) already has objects under "
            f"s3://{outputs.bucket}/{run_prefix(run_id)}",
            hint="choose another --name",
        )
    try:
        response = app.client("stepfunctions").start_execution(
            stateMachineArn=outputs.state_machine_arn, name=name, input=json.dumps(overrides)
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            raise UsageError(f"an execution named {name!r} already exists", hint="choose another --name") from None
        raise
    return StartedRun(response["executionArn"], name, run_id, overrides, settings)


def run(app: App, args: argparse.Namespace) -> int:
    started = start_run(app, overrides_from(args), name=args.name)
    s = started.settings
    out = app.terminal
    out.print(f"Started run {started.run_id}")
    out.print(f"  execution      {started.execution_arn}")
    out.print(f"  run id         {started.run_id}")
    changed = ", ".join(f"{k}={json.dumps(v)}" for k, v in started.overrides.items()) or "none (deployed defaults)"
    out.print(f"  overrides      {changed}")
    out.print(
        f"  sizes          {s.num_examples} training + {s.eval_examples} held-out examples, "
        f"teacher {s.teacher_model_id}, judge {'on' if s.judge else 'off'}"
    )
    out.print(f"  Step Functions {execution_url(app.region, started.execution_arn)}")
    out.print(f"  S3 run folder  {s3_folder_url(app.region, app.outputs.bucket, run_prefix(started.run_id))}")
    out.print("")
    out.print(f"Watch it:  python -m cli status {started.run_id} --watch")
    return 0
