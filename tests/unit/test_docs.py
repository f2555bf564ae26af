"""The README stays in step with the code: every setting documented, the CI runs the documented commands."""

from __future__ import annotations

import re
from pathlib import Path

from infra.config import FIELDS
from routing.dataset import SCHEMA_VERSION

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
