"""Synthesizes the real app once per session (cdk-nag included) and hands the template to the tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from simulation.synth import Synthesized

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default configuration from cdk.json."""
    return Synthesized(tmp_path_factory.mktemp("cdk-out"))


@pytest.fixture(scope="session")
def synth_with(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Synthesized]:
    """Synthesize with context overrides (as ``cdk synth -c key=value`` would)."""

    def _synth(overrides: dict[str, Any]) -> Synthesized:
        return Synthesized(tmp_path_factory.mktemp("cdk-out"), overrides)

    return _synth
