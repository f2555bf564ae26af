"""The workflow harness moved to :mod:`simulation.harness` (shared by the tests and ``make simulate``).

Re-exported here so that ``from tests.workflow.harness import PipelineHarness`` keeps working.
"""

from simulation import harness as _moved
from simulation.harness import *  # noqa: F403

__all__ = _moved.__all__
