"""``rollback``: put an earlier value of the router's promoted-model parameter back.

The pipeline's Promote step overwrites the SSM parameter the router reads (``RouterModelParameterName``
output), and SSM keeps every earlier version: ``GetParameterHistory`` lists them, and the chosen one's value is
written again as a new version (the history itself is never rewritten). The router switches within its
``router_model_ttl_seconds``, without a redeploy.

Default target: the newest earlier version whose value differs from the current one (so rolling back twice
does not bounce between the same two models).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from cli.app import App
from cli.errors import Aborted, NotFoundError, UsageError
from search_router.contract.promotion import SUMMARY_FIELDS
from search_router.router.model_source import PromotionError, parse_promotion


@dataclass(frozen=True)
class Version:
    number: int
    value: str
    modified: Any

    @property
    def data(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class RollbackPlan:
    parameter: str
    current: Version
    target: Version
    problem: str | None  # why the router would not accept the target value, if it would not


def parameter_history(ssm: Any, name: str) -> list[Version]:
    versions: list[Version] = []
    for page in ssm.get_paginator("get_parameter_history").paginate(Name=name, WithDecryption=False):
        versions += [Version(p["Version"], p["Value"], p.get("LastModifiedDate")) for p in page["Parameters"]]
    return sorted(versions, key=lambda v: v.number)


def plan_rollback(app: App, to_version: int | None = None) -> RollbackPlan:
    name = app.outputs.model_parameter
    ssm = app.client("ssm")
    try:
        versions = parameter_history(ssm, name)
    except ssm.exceptions.ParameterNotFound:
        raise NotFoundError(f"parameter {name} does not exist", hint="redeploy the stack with `make deploy`") from None
    if not versions:  # pragma: no cover - a parameter always has a version
        raise NotFoundError(f"parameter {name} has no versions")
    current = versions[-1]
    if to_version is not None:
        target = next((v for v in versions if v.number == to_version), None)
        if target is None:
            known = ", ".join(str(v.number) for v in versions)
            raise NotFoundError(f"parameter {name} has no version {to_version}", hint=f"versions: {known}")
        if target.number == current.number:
            raise UsageError(f"version {to_version} is the current version of {name}: nothing to roll back")
    else:
        target = next((v for v in reversed(versions[:-1]) if v.value != current.value), None)
        if target is None:
            raise NotFoundError(
                f"parameter {name} has no earlier model to roll back to (version {current.number} is the only one)"
                if len(versions) == 1
                else f"every earlier version of {name} names the current model",
            )
    problem = None
    try:
        parse_promotion(target.value, app.config.channels)
    except PromotionError as exc:
        problem = str(exc)
    return RollbackPlan(parameter=name, current=current, target=target, problem=problem)


def describe(plan: RollbackPlan) -> list[str]:
    lines = [f"Parameter {plan.parameter}", ""]
    width = max(len(f) for f in SUMMARY_FIELDS)
    header = f"  {'':{width}}  current (version {plan.current.number})"
    lines.append(f"{header}  ->  restored (version {plan.target.number})")
    for key in SUMMARY_FIELDS:
        before, after = plan.current.data.get(key), plan.target.data.get(key)
        mark = "*" if before != after else " "
        lines.append(f"{mark} {key:{width}}  {before}  ->  {after}")
    if plan.problem:
        lines += [
            "",
            f"WARNING: the router would not use the restored value ({plan.problem});",
            "it would fall back to its default model.",
        ]
    return lines


def apply_rollback(app: App, plan: RollbackPlan) -> int:
    """Write the target value as a new version; returns that version number."""
    response = app.client("ssm").put_parameter(
        Name=plan.parameter, Value=plan.target.value, Type="String", Overwrite=True
    )
    return int(response["Version"])


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "rollback",
        parents=[common],
        help="restore the router's previously promoted model (SSM parameter history)",
        description="Write an earlier version of the promoted-model parameter back; asks first unless --yes.",
    )
    parser.add_argument("--to-version", type=int, help="the parameter version to restore (default: the previous model)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=run)


def run(app: App, args: argparse.Namespace) -> int:
    plan = plan_rollback(app, args.to_version)
    terminal = app.terminal
    terminal.print("\n".join(describe(plan)))
    terminal.print("")
    if not args.yes:
        if not terminal.interactive():
            raise Aborted("not rolled back: confirmation needed", hint="pass --yes to roll back without a prompt")
        answer = terminal.read_line(f"Restore version {plan.target.number} as the router's model? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Aborted("not rolled back: nothing changed")
    version = apply_rollback(app, plan)
    terminal.print(
        f"Rolled back: {plan.parameter} is now version {version} (the value of version {plan.target.number}). "
        f"The router switches within {app.config.router.model_ttl_seconds} s."
    )
    return 0
