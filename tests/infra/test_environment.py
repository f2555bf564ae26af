"""Each function's environment in the synthesized template is exactly its contract's variables
(search_router.contract.environment): nothing the handlers would miss, nothing written twice under two names."""

from __future__ import annotations

from search_router.contract.environment import CommonEnvironment, CompensationEnvironment, PipelineEnvironment
from simulation.synth import Synthesized


def _variables(synth: Synthesized, handler_prefix: str) -> list[set[str]]:
    return [
        set(f["Properties"]["Environment"]["Variables"])
        for f in synth.resources("AWS::Lambda::Function").values()
        if str(f["Properties"].get("Handler", "")).startswith(handler_prefix)
    ]


def test_each_function_gets_exactly_its_contracts_variables(synth: Synthesized) -> None:
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
    common = {CommonEnvironment.variable(f) for f in CommonEnvironment.model_fields}
    pipeline = {PipelineEnvironment.variable(f) for f in PipelineEnvironment.model_fields}
    pipeline -= {PipelineEnvironment.variable(f) for f in PipelineEnvironment.optional}
    compensation = {CompensationEnvironment.variable(f) for f in CompensationEnvironment.model_fields}
    compensation -= {CompensationEnvironment.variable(f) for f in CompensationEnvironment.optional}
    tasks = [
        "preflight",
        "plan_queries",
        "label_shard",
        "prepare_dataset",
        "distillation",
        "deployment",
        "record_outputs",
        "evaluate",
        "judge",
        "report",
        "promote",
        "notify",
    ]
    for task in tasks:
        (variables,) = set(map(frozenset, _variables(synth, f"search_router.handlers.{task}.")))
        assert variables == pipeline | powertools, task
    (variables,) = set(map(frozenset, _variables(synth, "search_router.handlers.compensate.")))
    assert variables == compensation | common | powertools
