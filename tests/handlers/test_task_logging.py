"""Every log line of a pipeline task carries the run id (Powertools' logger, ``task_handler``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from search_router.handlers.observability import logger, run_id_of, task_handler
from tests.handlers.test_pipeline_handlers import Context


@task_handler
def _task(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("first")
    logger.warning("second", detail="x")
    return {}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """What the logger writes (its handler's stream, swapped for the test)."""
    handler = logger.registered_handler
    captured = io.StringIO()
    previous = handler.setStream(captured)  # type: ignore[attr-defined]
    yield captured
    handler.setStream(previous)  # type: ignore[attr-defined]


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    stream.seek(0)
    stream.truncate()
    return lines


def test_each_line_of_a_task_carries_its_run_id_and_the_next_invocation_starts_clean(stream: io.StringIO) -> None:
    _task({"run": {"run_id": "nightly-1"}}, Context())
    lines = _lines(stream)
    assert [line["message"] for line in lines] == ["first", "second"]
    assert all(line["run_id"] == "nightly-1" for line in lines)
    _task({"something": "else"}, Context())
    lines = _lines(stream)
    assert [line["message"] for line in lines] == ["first", "second"]
    assert all("run_id" not in line for line in lines)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"run": {"run_id": "r1"}, "plan": {}}, "r1"),
        ({"execution_name": "My_Run__2026.11.28", "input": {}}, "My-Run-2026-11-28"),
        ({"compensation": {"run_id": "r2"}}, "r2"),
        ({"input": {}}, None),
        ([1, 2], None),
    ],
)
def test_the_run_id_is_found_where_each_task_receives_it(event: Any, expected: str | None) -> None:
    assert run_id_of(event) == expected
