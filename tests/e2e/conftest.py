"""End-to-end tier: tests here run against a deployed stack and are skipped unless ``E2E_STACK_NAME`` is set.

They also need real AWS credentials (and ``AWS_REGION``) for the account that holds the stack. Every test in
this folder is marked ``e2e``, which tells the root conftest not to block the network or replace credentials.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

E2E_DIR = Path(__file__).parent
STACK_ENV = "E2E_STACK_NAME"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``e2e`` and skip them without a stack (this hook sees the whole session)."""
    skip = pytest.mark.skip(
        reason=f"e2e: set {STACK_ENV} to a deployed stack's name, with AWS credentials for its account and Region"
    )
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            if not os.environ.get(STACK_ENV):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def stack_name() -> str:
    """The CloudFormation stack under test."""
    return os.environ[STACK_ENV]
