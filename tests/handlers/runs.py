"""A pipeline run's state as the tasks receive it, for tests that create what a run of a stack creates."""

from __future__ import annotations

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
