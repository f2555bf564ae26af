"""The README stays in step with the code: every setting documented, the CI runs the documented commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from infra.config import FIELDS
from search_router.pipeline.dataset import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_configuration_key_is_documented() -> None:
    missing = [key for key in FIELDS if f"`{key}`" not in README]
    assert missing == []


def test_ci_runs_the_test_command_the_readme_gives() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in README and re.search(r"^make test$", ci, re.MULTILINE)
    assert "make synth" in README and re.search(r"^make synth$", ci, re.MULTILINE)


def test_readme_names_the_training_schema_exactly() -> None:
    assert SCHEMA_VERSION in README
    assert "bedrock-conversion-2024" not in README


def test_every_command_the_readme_quotes_exists() -> None:
    modules = set(re.findall(r"python -m ([a-z_.]+)", README))
    assert {
        "benchmarks.labeling_throughput",
        "benchmarks.pipeline_steps",
        "benchmarks.router_overhead",
        "cli",
    } <= modules
    for module in modules:
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), module
    targets = set(re.findall(r"make ([a-z][a-z0-9-]*)", README))
    makefile = (ROOT / "Makefile").read_text()
    assert {t for t in targets if not re.search(rf"^{t}:", makefile, re.MULTILINE)} == set()


def test_the_quoted_pipeline_step_benchmark_runs_from_the_repository_root() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline_steps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "PrepareDataset (measured, 10,100 examples)" in result.stdout
