"""The Bedrock fake moved to :mod:`simulation.bedrock_fake` (shared by the tests and ``make simulate``).

Re-exported here so that ``from tests.fakes.bedrock import BedrockFake`` keeps working.
"""

from simulation import bedrock_fake as _moved
from simulation.bedrock_fake import *  # noqa: F403

__all__ = _moved.__all__
