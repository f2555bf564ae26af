"""Resource tags (what IAM reads as ``aws:ResourceTag``)."""

from __future__ import annotations

from typing import Any

from simulation.bedrock.state import FakeState
from simulation.bedrock.values import FakeServiceError


class TagHandlers(FakeState):
    """``ListTagsForResource``, ``TagResource``, ``UntagResource``."""

    def resource_tags(self, arn: str) -> dict[str, str]:
        """The tags a resource carries now (``{}`` for an unknown one): what IAM reads as ``aws:ResourceTag``."""
        with self._lock:
            return {t["key"]: t["value"] for t in self._tags.get(arn, [])}

    def _tags_for(self, arn: str) -> list[dict[str, str]]:
        if arn not in self._tags:
            raise FakeServiceError("ResourceNotFoundException", f"Resource {arn} not found.")
        return self._tags[arn]

    def _list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"tags": [dict(t) for t in self._tags_for(params["resourceARN"])]}

    def _tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            tags = self._tags_for(params["resourceARN"])
            new = {t["key"]: t["value"] for t in params["tags"]}
            tags[:] = [t for t in tags if t["key"] not in new] + [{"key": k, "value": v} for k, v in new.items()]
        return {}

    def _untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            tags = self._tags_for(params["resourceARN"])
            tags[:] = [t for t in tags if t["key"] not in set(params["tagKeys"])]
        return {}
