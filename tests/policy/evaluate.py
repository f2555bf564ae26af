"""A small IAM policy evaluator over resolved policy statements: would this request be allowed?

It implements the parts of IAM's evaluation logic the stack's policies use, and refuses (raises) on anything else,
so a policy feature it does not understand can never make a test pass: ``Effect`` Allow/Deny, ``Action`` and
``NotAction``, ``Resource``, ``Principal`` (``Service``, ``AWS``, ``*``), and the condition operators
``StringEquals``/``StringNotEquals``/``StringLike``/``StringNotLike``/``ArnEquals``/``ArnLike``/``ArnNotEquals``/
``ArnNotLike`` (the Arn operators match each ARN part with wildcards, ``ArnEquals`` too, as IAM documents) and
``Bool``; a missing context key fails a positive operator and satisfies a negated one, as in IAM.
An explicit Deny wins over any Allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.policy.globs import glob_match

Context = Mapping[str, str | Sequence[str]]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


@dataclass(frozen=True)
class Statement:
    """One resolved policy statement (every CloudFormation intrinsic already replaced by a string)."""

    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    principals: Mapping[str, tuple[str, ...]] | str | None = None
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sid: str | None = None
    source: str = ""  # where it comes from, for messages (logical id of the policy)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], source: str = "") -> Statement:
        principal = raw.get("Principal")
        principals: Mapping[str, tuple[str, ...]] | str | None
        if isinstance(principal, str) or principal is None:
            principals = principal
        else:
            principals = {k: tuple(str(v) for v in as_list(vals)) for k, vals in principal.items()}
        return cls(
            effect=str(raw["Effect"]),
            actions=tuple(str(a) for a in as_list(raw.get("Action"))),
            not_actions=tuple(str(a) for a in as_list(raw.get("NotAction"))),
            resources=tuple(str(r) for r in as_list(raw.get("Resource"))),
            principals=principals,
            conditions=dict(raw.get("Condition") or {}),
            sid=raw.get("Sid"),
            source=source,
        )


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Context = field(default_factory=dict)
    service_principal: str | None = None  # the calling AWS service (resource policies)

    def describe(self) -> str:
        who = f" by {self.service_principal}" if self.service_principal else ""
        return f"{self.action} on {self.resource}{who}"


_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _condition_holds(  # noqa: PLR0911 - one return per operator
    operator: str, key: str, expected: Any, context: Context
) -> bool:
    base = operator.removesuffix("IfExists")
    if_exists = operator.endswith("IfExists")
    present = key in context
    if not present:
        return base in _NEGATED or if_exists
    actual = [str(v) for v in as_list(context[key])]
    wanted = [str(v) for v in as_list(expected)]
    if base == "StringEquals":
        return any(a == w for a in actual for w in wanted)
    if base == "StringNotEquals":
        return not any(a == w for a in actual for w in wanted)
    if base == "StringLike":
        return any(glob_match(w, a) for a in actual for w in wanted)
    if base == "StringNotLike":
        return not any(glob_match(w, a) for a in actual for w in wanted)
    # IAM: ArnEquals and ArnLike both match each of the six colon-delimited ARN parts separately, with wildcards.
    if base in ("ArnEquals", "ArnLike"):
        return any(arn_like(w, a) for a in actual for w in wanted)
    if base in ("ArnNotEquals", "ArnNotLike"):
        return not any(arn_like(w, a) for a in actual for w in wanted)
    if base == "Bool":
        return any(a.lower() == w.lower() for a in actual for w in wanted)
    raise NotImplementedError(f"condition operator {operator} is not modelled by tests/policy/evaluate.py")


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: the six colon-delimited parts matched one by one (the last one may hold more colons)."""
    left, right = pattern.split(":", 5), arn.split(":", 5)
    return len(left) == len(right) == 6 and all(glob_match(p, a) for p, a in zip(left, right, strict=True))


def _matches(statement: Statement, request: Request) -> bool:
    if statement.actions and not any(glob_match(a, request.action, ignore_case=True) for a in statement.actions):
        return False
    if statement.not_actions and any(glob_match(a, request.action, ignore_case=True) for a in statement.not_actions):
        return False
    if not any(glob_match(r, request.resource) for r in statement.resources):
        return False
    if statement.principals is not None and statement.principals != "*":
        services = statement.principals.get("Service", ()) if isinstance(statement.principals, Mapping) else ()
        everyone = isinstance(statement.principals, Mapping) and "*" in statement.principals.get("AWS", ())
        if not everyone and request.service_principal not in services:
            return False
    return all(
        _condition_holds(operator, key, expected, request.context)
        for operator, entries in statement.conditions.items()
        for key, expected in entries.items()
    )


def allowed(statements: Iterable[Statement], request: Request) -> bool:
    """Some statement allows the request and none denies it."""
    found = list(statements)
    if any(s.effect == "Deny" and _matches(s, request) for s in found):
        return False
    return any(s.effect == "Allow" and _matches(s, request) for s in found)
