"""The state machine definitions and the task models (search_router.contract.tasks) say the same thing.

Every path the definitions read or write is resolved through the models: a task's ``Parameters`` (or a Map's
``ItemSelector``) are its input model's fields, each ``ResultPath`` is a field of ``PipelineState`` typed with the
task's output model, and what a ``Choice``, ``Wait`` or ``Map`` reads exists in the model it points into. A rename
on either side fails here, not in a run.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from infra import asl
from infra.compensation import DEFINITION_FILE as COMPENSATION_FILE
from infra.pipeline import DEFINITION_FILE as PIPELINE_FILE
from search_router.contract.tasks import (
    COMPENSATION_TASK_INPUTS,
    TASK_INPUTS,
    TASK_OUTPUTS,
    Payload,
    PipelineState,
    PreflightOutput,
)

CONTEXT = "$$."
PATH_FIELDS = ("Variable", "SecondsPath", "ItemsPath", "MaxConcurrencyPath", "InputPath", "OutputPath")


def _states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(name, state, the ItemSelector of the Map it runs in) for every state, nested ones included."""

    def walk(states: dict[str, Any], selector: dict[str, Any] | None) -> Iterator[tuple[str, dict[str, Any], Any]]:
        for name, state in states.items():
            yield name, state, selector
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                yield from walk(processor["States"], state.get("ItemSelector") or state.get("Parameters"))
            for branch in state.get("Branches", []):
                yield from walk(branch["States"], None)

    yield from walk(machine["States"], None)


def _members(annotation: Any) -> list[Any]:
    """The types an annotation admits, ``None`` and ``Optional`` taken off, ``list[X]`` read as ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for a in get_args(annotation) if a is not type(None) for m in _members(a)]
    if get_origin(annotation) is list:
        return _members(get_args(annotation)[0])
    return [annotation]


def _resolve(model: type[BaseModel], path: str) -> list[Any]:
    """The types at ``path`` (``$.a.b``) inside ``model``; fails naming the first part that is not a field."""
    types_here: list[Any] = [model]
    for part in path.removeprefix("$.").split("."):
        found = []
        for holder in types_here:
            if holder is dict or get_origin(holder) is dict or holder is Any:
                found.append(Any)  # a free-form document: anything below it is its own business
                continue
            assert isinstance(holder, type) and issubclass(holder, BaseModel), f"{path}: {part!r} is inside {holder}"
            assert part in holder.model_fields, f"{path}: {holder.__name__} has no field {part!r}"
            found.extend(_members(holder.model_fields[part].annotation))
        types_here = found
    return types_here


def _admits(expected: list[Any], given: Any) -> bool:
    """A value of type ``given`` is valid where ``expected`` is read (a ``Literal`` of strings where a string is)."""
    if get_origin(given) is Literal:
        return any(all(isinstance(v, e) for v in get_args(given)) for e in expected if isinstance(e, type))
    return given in expected


def _tasks(machine: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, its input document: Parameters, or the enclosing Map's ItemSelector) of every Task."""
    return [
        (name, state, state.get("Parameters") or selector or {})
        for name, state, selector in _states(machine)
        if state.get("Type") == "Task"
    ]


PIPELINE = asl.expand_file(PIPELINE_FILE)
COMPENSATION = asl.expand_file(COMPENSATION_FILE)


def test_every_task_of_the_pipeline_has_an_input_and_an_output_model() -> None:
    names = {name for name, _, _ in _tasks(PIPELINE)}
    assert names == set(TASK_INPUTS) == set(TASK_OUTPUTS)
    assert {name for name, _, _ in _tasks(COMPENSATION)} == set(COMPENSATION_TASK_INPUTS)


@pytest.mark.parametrize(
    ("machine", "inputs"),
    [(PIPELINE, TASK_INPUTS), (COMPENSATION, COMPENSATION_TASK_INPUTS)],
    ids=["pipeline", "compensation"],
)
def test_each_tasks_parameters_are_its_input_models_fields(
    machine: dict[str, Any], inputs: dict[str, type[Payload]]
) -> None:
    for name, _, parameters in _tasks(machine):
        model = inputs[name]
        given = {key.removesuffix(".$") for key in parameters}
        required = {field for field, info in model.model_fields.items() if info.is_required()}
        assert required <= given <= set(model.model_fields), (name, sorted(given), sorted(model.model_fields))


def test_what_the_pipeline_passes_to_a_task_is_of_the_type_the_task_reads() -> None:
    for name, _, parameters in _tasks(PIPELINE):
        model = TASK_INPUTS[name]
        for key, value in parameters.items():
            if not key.endswith(".$") or value.startswith(CONTEXT) or name == "Preflight":
                continue  # context values, and Preflight's raw execution input, are not in the state model
            field = key.removesuffix(".$")
            expected = _members(model.model_fields[field].annotation)
            given = _resolve(PipelineState, value)
            assert all(_admits(expected, one) for one in given), (name, field, value, given, expected)


def test_each_result_path_is_a_state_field_of_the_tasks_output_type() -> None:
    for name, state, selector in _states(PIPELINE):
        result_path = state.get("ResultPath", "$")
        if state.get("Type") not in ("Task", "Map") or result_path is None or selector is not None:
            continue  # a task inside a Map returns the iteration's result: the Map's ResultPath places it
        if result_path == "$":
            assert TASK_OUTPUTS[name] is PreflightOutput
            assert set(PreflightOutput.model_fields) <= set(PipelineState.model_fields)
            continue
        task = (
            name
            if state["Type"] == "Task"
            else next(n for n, s, _ in _tasks({"States": state["ItemProcessor"]["States"]}))
        )
        assert set(_members(TASK_OUTPUTS[task])) <= set(_resolve(PipelineState, result_path)), (name, result_path)


def test_every_path_a_choice_wait_or_map_reads_is_in_the_state_model() -> None:
    read = []
    for name, state, _ in _states(PIPELINE):
        for field in PATH_FIELDS:
            if field in state and not state[field].startswith(CONTEXT):
                read.append((name, state[field]))
        for choice in state.get("Choices", []):
            read.append((name, choice["Variable"]))
    assert len(read) >= 8  # the walk found the Choice, Wait and Map paths
    for name, path in read:
        assert _resolve(PipelineState, path), (name, path)


def test_a_catch_result_path_is_a_field_that_holds_the_error() -> None:
    for name, state, _ in _states(PIPELINE):
        for catch in state.get("Catch", []):
            path = catch.get("ResultPath")
            if path and path != "$":
                assert _resolve(PipelineState, path) == [Any] or _resolve(PipelineState, path) == [dict[str, Any]], (
                    name,
                    path,
                )


def test_the_resolver_fails_on_a_path_that_is_not_in_the_model() -> None:
    with pytest.raises(AssertionError, match="has no field 'shard'"):
        _resolve(PipelineState, "$.plan.shard")
    with pytest.raises(AssertionError, match="has no field 'train_url'"):
        _resolve(PipelineState, "$.dataset.train_url")
