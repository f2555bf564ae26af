"""The names in ``search_router.contract.names`` against the code that spells them elsewhere: the state machine's
definition, ``cli status``'s phases, ``make simulate``'s progress bar, and the router's metrics."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from cli.status import PHASES
from infra.asl import expand_file
from search_router.contract.names import INNER_STATES, PipelineState, RouterMetric
from simulation.progress import MILESTONES

ROOT = Path(__file__).resolve().parents[2]


def _states(states: dict[str, Any], *, inner: bool) -> set[str]:
    names = set(states)
    for state in states.values():
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                nested = _states(state[key]["States"], inner=True)
                names |= nested if inner else set()
    return names


def test_the_pipeline_states_are_the_definitions_states() -> None:
    definition = expand_file(ROOT / "stepfunctions" / "pipeline.asl.json")
    top_level = _states(definition["States"], inner=False)
    every = _states(definition["States"], inner=True)
    assert every == set(PipelineState)
    assert every - top_level == INNER_STATES


def test_cli_status_shows_every_top_level_state_in_one_phase() -> None:
    shown = [state for phase in PHASES for state in phase.states]
    assert len(shown) == len(set(shown)), "a state in two phases"
    assert set(shown) == set(PipelineState) - INNER_STATES


def test_the_simulations_progress_bar_places_every_top_level_state() -> None:
    # every state but the final Succeed, where the bar is full
    assert set(MILESTONES) == set(PipelineState) - INNER_STATES - {PipelineState.RUN_SUCCEEDED}


def test_the_router_emits_each_of_its_metrics_by_its_contract_name() -> None:
    # Every metric name the router handler passes is a RouterMetric member, and every member is emitted.
    source = (ROOT / "lambdas/search_router/handlers/router_api.py").read_text()
    used = {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "RouterMetric"
    }
    assert used == {member.name for member in RouterMetric}
    assert {m for m in RouterMetric if m.dimension} == {
        RouterMetric.MODEL_ERROR,
        RouterMetric.PARSE_FAILURE,
        RouterMetric.CIRCUIT_OPEN,
        RouterMetric.CIRCUIT_OPENED,
        RouterMetric.MODEL_PARAMETER_INVALID,
    }


def test_a_count_without_a_dimension_of_its_own_is_refused() -> None:
    assert RouterMetric.MODEL_ERROR.own_dimension == "code"
    with pytest.raises(ValueError, match="CacheHit has no dimension of its own"):
        _ = RouterMetric.CACHE_HIT.own_dimension
