"""What the router function imports: no pydantic (its import and the models the contract modules build with it
cost ~120 ms of the router's cold start, ``benchmarks/cold_start.py``), nothing of the micro-router's until one is
loaded, and the settings it reads under the names the stack writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from search_router.contract.environment import CommonEnvironment
from search_router.router.settings import ENV_CHANNELS

ROOT = Path(__file__).resolve().parents[2]
NOT_ON_THE_ROUTER_PATH = (
    "pydantic",
    "pydantic_core",
    "search_router.contract.environment",
    "search_router.contract.promotion",
    "search_router.pipeline",
    "search_router.shared.micro_router",
    "search_router.router.capture",  # capture_queries off (the default): nothing of the capture is imported
    "search_router.adapters.firehose",
)


def test_the_router_function_imports_no_pydantic() -> None:
    # Given a fresh interpreter with only the project's code on the path (not the test process's modules)
    code = "import json, sys\nimport search_router.handlers.router_api\nprint(json.dumps(sorted(sys.modules)))\n"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lambdas"), str(ROOT)])}
    environment.pop("AWS_LAMBDA_FUNCTION_NAME", None)  # no init: the import alone
    # When it imports the router's handler
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True, check=True
    )
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    # Then the handler is there and nothing of pydantic (or of the micro-router's) is
    assert "search_router.handlers.router_api" in modules
    assert "search_router.router.api_models" in modules and "search_router.contract.promotion_rules" in modules
    assert [m for m in modules if any(m == n or m.startswith(f"{n}.") for n in NOT_ON_THE_ROUTER_PATH)] == []


def test_the_router_reads_the_channels_under_the_name_every_function_gets() -> None:
    assert CommonEnvironment.variable("channels") == ENV_CHANNELS
    assert ENV_CHANNELS in CommonEnvironment(channels="[]").to_environment()
