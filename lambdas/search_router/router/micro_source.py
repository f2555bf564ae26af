"""The promoted micro-router (:mod:`search_router.shared.micro_router`), loaded once per container and artifact.

The promotion document names the artifact and τ (``micro_router``, read by
:func:`search_router.router.model_source.parse_promotion`); the model source re-reads the document every
``model_ttl_seconds``, so a new artifact takes effect within the model's TTL: :class:`MicroRouterSource` loads an
artifact the first time a request sees its URI, keeps it while the promotion names it, and loads the next one when
it changes. A missing, unreadable or broken artifact (or one for other channels) leaves the router on the model
path and reports the problem once; the load is tried again after ``retry_seconds``. Nothing here raises to the
caller. The artifact is read through a reader it is given
(:func:`search_router.adapters.s3_artifacts.artifact_reader` reads S3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from search_router.shared.channels import ChannelSet

if TYPE_CHECKING:
    from search_router.shared.micro_router import MicroRouter


class MicroProblem(StrEnum):
    """Why the micro-router is not used (a metric dimension)."""

    INVALID_REFERENCE = "invalid_reference"  # the promotion's micro_router block is malformed
    ARTIFACT_NOT_FOUND = "artifact_not_found"
    ARTIFACT_UNAVAILABLE = "artifact_unavailable"
    ARTIFACT_INVALID = "artifact_invalid"
    CHANNEL_MISMATCH = "channel_mismatch"
    PREDICTION_FAILED = "prediction_failed"


class ArtifactNotFound(LookupError):
    """The artifact does not exist."""


class ArtifactUnavailable(Exception):
    """The artifact could not be read this time (throttling, permissions, the network ...)."""


@dataclass(frozen=True)
class MicroRouterRef:
    """What the promotion names: the artifact's URI and the threshold."""

    artifact_uri: str
    tau: float


@dataclass(frozen=True)
class MicroState:
    """The micro-router to consult now (``router`` and ``tau``), or why there is none. ``refreshed`` is True only
    for the request that tried to load it, so a problem is reported once per attempt."""

    router: MicroRouter | None = None
    tau: float | None = None
    problem: MicroProblem | None = None
    detail: str | None = None
    refreshed: bool = False


NO_MICRO_ROUTER = MicroState()
"""Nothing promoted: every query goes to the model, with nothing to report."""


class MicroRouterSource:
    """Loads the artifact a :class:`MicroRouterRef` names, once per URI (``read_artifact(uri)`` returns its bytes
    or raises :class:`ArtifactNotFound` / :class:`ArtifactUnavailable`); ``clock`` is injectable."""

    def __init__(
        self,
        *,
        read_artifact: Callable[[str], bytes],
        channels: ChannelSet,
        retry_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._read = read_artifact
        self._channels = channels
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._uri: str | None = None
        self._router: MicroRouter | None = None
        self._failure: MicroState | None = None
        self._retry_at = 0.0

    def current(self, ref: MicroRouterRef | None) -> MicroState:
        if ref is None:
            return NO_MICRO_ROUTER
        with self._lock:
            if ref.artifact_uri == self._uri:
                if self._router is not None:
                    return MicroState(self._router, ref.tau)
                if self._failure is not None and self._clock() < self._retry_at:
                    return self._failure
            state = self._load(ref)
            self._uri = ref.artifact_uri
            self._router = state.router
            self._failure = None if state.router is not None else MicroState(problem=state.problem, detail=state.detail)
            self._retry_at = self._clock() + self._retry_seconds
            return state

    def _load(self, ref: MicroRouterRef) -> MicroState:
        # Imported by the first load, not by the router's import: a router with no micro-router promoted never
        # needs it (``benchmarks/cold_start.py``).
        from search_router.shared.micro_router import MicroRouter, MicroRouterArtifactError

        try:
            router = MicroRouter.from_bytes(self._read(ref.artifact_uri))
        except ArtifactNotFound:
            return _failed(MicroProblem.ARTIFACT_NOT_FOUND, ref.artifact_uri)
        except ArtifactUnavailable as error:
            return _failed(MicroProblem.ARTIFACT_UNAVAILABLE, str(error))
        except MicroRouterArtifactError as error:
            return _failed(MicroProblem.ARTIFACT_INVALID, str(error))
        if sorted(router.channels) != sorted(self._channels.names):
            return _failed(
                MicroProblem.CHANNEL_MISMATCH,
                f"the micro-router routes to {list(router.channels)}, the router serves {list(self._channels.names)}",
            )
        return MicroState(router, ref.tau, refreshed=True)


def _failed(problem: MicroProblem, detail: str) -> MicroState:
    return MicroState(problem=problem, detail=detail, refreshed=True)
