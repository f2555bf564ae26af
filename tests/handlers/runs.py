"""A pipeline run's state as the tasks receive it: a run of a named stack (for tests that create what such a run
creates) or the plain run ``r1`` (for tests of one task)."""

from __future__ import annotations

from typing import Any

from search_router.contract.run import RunState, settings_from_input
from simulation.bedrock.values import ACCOUNT_ID, REGION
from tests.unit.test_run_naming import DEFAULTS


def run_state(run_id: str, stack: str) -> RunState:
    """The run ``run_id`` of ``stack``'s pipeline (``<stack>-pipeline``), with the deployed defaults."""
    return RunState(
        run_id=run_id,
        execution_arn=f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{stack}-pipeline:{run_id}",
        started_at="2026-01-01T00:00:00+00:00",
        settings=settings_from_input(DEFAULTS, {}),
    )


def task_run(**settings: Any) -> dict[str, Any]:
    """The ``run`` a pipeline task receives for run ``r1`` of the state machine ``sm``: the deployed defaults with
    ``settings`` applied, as a dict."""
    return RunState(
        run_id="r1",
        execution_arn=f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:sm:r1",
        started_at="t",
        settings=settings_from_input(DEFAULTS, settings),
    ).model_dump()
