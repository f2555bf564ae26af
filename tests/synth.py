"""The synth helper moved to :mod:`simulation.synth` (shared by the tests and ``make simulate``).

Re-exported here so that ``from tests.synth import Synthesized`` keeps working.
"""

from simulation import synth as _moved
from simulation.synth import *  # noqa: F403

__all__ = _moved.__all__
