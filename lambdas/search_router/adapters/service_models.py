"""The router's AWS clients on service models cut down to the operations the router calls.

A botocore client decodes its whole service model when it is created: for the router's one SSM call
(``GetParameter``) that is the JSON of all 150 SSM operations, ~48 ms of the router's cold start
(``benchmarks/cold_start.py``). The router's clients are made instead from **trimmed models**: botocore's own
model of the service, as its loader returns it (``sdk-extras`` merged), with only the operations of
:data:`ROUTER_OPERATIONS` and the shapes they reach, each kept exactly as botocore has it (members, traits,
errors, event streams, documentation). The metadata (protocol, signing, endpoint prefix, service id), the
endpoint rule set, the retry rules and every event handler are botocore's, unchanged, so a request is the same
bytes on the wire and a response (or an error) parses the same (``tests/unit/test_service_models.py`` holds both
clients to that, and each shipped file to botocore's installed model).

The trimmed models are files in ``service_models/`` (``<service>-<api version>.json``), shipped with the
function's code. They are derived from the pinned botocore (``requirements.txt``, the SDK layer ships the same):
after a botocore upgrade the test above fails until ``make service-models`` (``python -m
search_router.adapters.service_models``) writes them again.

Only a client made by :func:`create_trimmed_client` uses a trimmed model: it is created on boto3's default
session with that session's loader wrapped for the one call (every other client of the process, and every other
file the loader reads, stay as they are).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import boto3
import botocore.session
from botocore.config import Config

MODELS_DIR: Final = Path(__file__).resolve().parent / "service_models"
ROUTER_OPERATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "bedrock-runtime": ("ConverseStream",),
    "ssm": ("GetParameter",),
    "s3": ("GetObject",),
    "firehose": ("PutRecordBatch",),
}
"""What the router calls of each service: ``adapters/bedrock_runtime.py``, ``ssm.py``, ``s3_artifacts.py``,
``firehose.py`` (``capture_queries`` only)."""

_SERVICE_MODEL: Final = "service-2"
_CREATING = threading.Lock()


class TrimmedModelMissing(LookupError):
    """No trimmed model is shipped for the service (or for botocore's API version of it)."""


def trim(model: Mapping[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """``model`` (a botocore ``service-2`` document) with only ``operations`` and every shape they reach."""
    missing = [name for name in operations if name not in model["operations"]]
    if missing:
        raise KeyError(f"the model has no operation {', '.join(missing)}")
    kept = {name: model["operations"][name] for name in operations}
    shapes: dict[str, Any] = {}
    pending = list(_references(kept))
    while pending:
        name = pending.pop()
        if name not in shapes:
            shapes[name] = model["shapes"][name]
            pending.extend(_references(shapes[name]))
    return {**model, "operations": kept, "shapes": dict(sorted(shapes.items()))}


def _references(node: Any) -> Iterator[str]:
    """Every shape name a part of a model refers to (``{"shape": name}`` at any depth)."""
    if isinstance(node, dict):
        if isinstance(node.get("shape"), str):
            yield node["shape"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def model_path(service: str, api_version: str) -> Path:
    return MODELS_DIR / f"{service}-{api_version}.json"


def latest_api_version(loader: Any, service: str) -> str:
    """The API version botocore's ``loader`` picks for ``service`` (from its directories: no model is read)."""
    return str(loader.determine_latest_version(service, _SERVICE_MODEL))


def load_trimmed(service: str, api_version: str) -> dict[str, Any]:
    path = model_path(service, api_version)
    try:
        with path.open(encoding="utf-8") as file:
            model: dict[str, Any] = json.load(file)
    except FileNotFoundError:
        raise TrimmedModelMissing(
            f"no trimmed model {path.name} for botocore's {service} {api_version}: run `make service-models`"
        ) from None
    return model


class _TrimmedLoader:
    """botocore's loader, but the ``service-2`` model of one service is the trimmed one."""

    def __init__(self, loader: Any, service: str, model: dict[str, Any]) -> None:
        self._loader = loader
        self._service = service
        self._model = model

    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        if service_name == self._service and type_name == _SERVICE_MODEL:
            return self._model
        return self._loader.load_service_model(service_name, type_name, api_version=api_version)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def create_trimmed_client(service: str, *, config: Config, region_name: str | None = None) -> Any:
    """A boto3 client of ``service`` made from its trimmed model (only :data:`ROUTER_OPERATIONS` exist on it),
    on boto3's default session; :class:`TrimmedModelMissing` when none is shipped for botocore's version."""
    if service not in ROUTER_OPERATIONS:
        raise TrimmedModelMissing(f"no trimmed model for {service} (trimmed: {', '.join(ROUTER_OPERATIONS)})")
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()  # what boto3.client does first
    session = boto3.DEFAULT_SESSION
    assert session is not None
    core = session._session  # the botocore session behind boto3's: its components are what clients are made from
    with _CREATING:
        loader = core.get_component("data_loader")
        model = load_trimmed(service, latest_api_version(loader, service))
        core.register_component("data_loader", _TrimmedLoader(loader, service, model))
        try:
            return session.client(service, region_name=region_name, config=config)
        finally:
            core.register_component("data_loader", loader)


def write_trimmed_models(directory: Path = MODELS_DIR) -> list[Path]:
    """Write the trimmed model of every service of :data:`ROUTER_OPERATIONS` from botocore's installed models."""
    loader = botocore.session.get_session().get_component("data_loader")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for service, operations in ROUTER_OPERATIONS.items():
        version = latest_api_version(loader, service)
        model = trim(loader.load_service_model(service, _SERVICE_MODEL, api_version=version), operations)
        path = directory / model_path(service, version).name
        path.write_text(json.dumps(model, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_trimmed_models():
        print(os.path.relpath(written_path))
