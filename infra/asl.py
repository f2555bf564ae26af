"""The state machine definitions as deployed: the ASL sources of ``stepfunctions/`` with their named retry
policies expanded.

A state's ``"Retry": "@lambda-task"`` names a policy of ``stepfunctions/policies.json``: an ordered list of
retriers, each written there once. :func:`expand` replaces every such reference, in nested Map processors
(``ItemProcessor``, the older ``Iterator``) and Parallel branches too, by a copy of the policy's retriers; a
``Retry`` that is a list is the state's own and stays as it is. The result is complete ASL: what CDK deploys,
what the console shows and what ``python -m infra.asl stepfunctions/pipeline.asl.json`` (``make asl``) prints.

Standard library only, so the expansion needs neither CDK nor AWS.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STEPFUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "stepfunctions"
POLICIES_FILE = STEPFUNCTIONS_DIR / "policies.json"
REFERENCE = "@"

Policies = Mapping[str, list[dict[str, Any]]]


class AslError(ValueError):
    """A definition or policy file that cannot be expanded; the message names the state or policy."""


def load_policies(path: Path = POLICIES_FILE) -> dict[str, list[dict[str, Any]]]:
    """The named policies of ``path``: each one's list of retriers (from its ``Retriers``), in order."""
    document = json.loads(path.read_text(encoding="utf-8"))
    retriers = document.get("Retriers")
    policies = document.get("Policies")
    if not isinstance(retriers, dict) or not isinstance(policies, dict):
        raise AslError(f"{path}: needs a 'Retriers' and a 'Policies' object")
    expanded: dict[str, list[dict[str, Any]]] = {}
    for name, members in policies.items():
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise AslError(f"{path}: policy {name!r} must be a non-empty list of retrier names")
        unknown = [m for m in members if m not in retriers]
        if unknown:
            raise AslError(
                f"{path}: policy {name!r} names unknown retrier(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(retriers))}"
            )
        expanded[name] = [retriers[m] for m in members]
    unused = sorted(set(retriers) - {m for members in policies.values() for m in members})
    if unused:
        raise AslError(f"{path}: retrier(s) {', '.join(map(repr, unused))} are in no policy")
    return expanded


def expand(definition: Mapping[str, Any], policies: Policies) -> dict[str, Any]:
    """A copy of ``definition`` with every ``"Retry": "@<policy>"`` replaced by that policy's retriers."""
    expanded = copy.deepcopy(dict(definition))
    _expand_states(expanded, policies, where="")
    return expanded


def _expand_states(machine: dict[str, Any], policies: Policies, where: str) -> None:
    states = machine.get("States")
    if not isinstance(states, dict):
        raise AslError(f"{where or 'the definition'}: has no 'States' object")
    for name, state in states.items():
        path = f"{where}/{name}" if where else name
        retry = state.get("Retry")
        if isinstance(retry, str):
            state["Retry"] = _policy(retry, policies, path)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                _expand_states(state[key], policies, f"{path}/{key}")
        for index, branch in enumerate(state.get("Branches", [])):
            _expand_states(branch, policies, f"{path}/Branches[{index}]")


def _policy(reference: str, policies: Policies, path: str) -> list[dict[str, Any]]:
    if not reference.startswith(REFERENCE):
        raise AslError(
            f"state {path}: Retry {reference!r} is neither a list of retriers nor a policy reference "
            f"'{REFERENCE}<name>'"
        )
    name = reference.removeprefix(REFERENCE)
    if name not in policies:
        raise AslError(
            f"state {path}: unknown retry policy {name!r} (Retry {reference!r}); "
            f"known: {', '.join(sorted(policies)) or 'none'}"
        )
    return copy.deepcopy(policies[name])


def expand_file(path: Path, policies_file: Path = POLICIES_FILE) -> dict[str, Any]:
    """The ASL source at ``path``, expanded with the policies of ``policies_file``."""
    return expand(json.loads(path.read_text(encoding="utf-8")), load_policies(policies_file))


def render(definition: Mapping[str, Any]) -> str:
    """The definition as deployed: indented like the sources, so it reads the same in the console."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.asl", description="Print a state machine definition with its retry policies expanded."
    )
    parser.add_argument("definition", type=Path, help="an ASL source, e.g. stepfunctions/pipeline.asl.json")
    parser.add_argument("--policies", type=Path, default=POLICIES_FILE, help="the policy file (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        text = render(expand_file(args.definition, args.policies))
    except (AslError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
