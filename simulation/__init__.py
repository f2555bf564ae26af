"""``make simulate``: the whole pipeline on this machine, against a SIMULATED Amazon Bedrock.

The synthesized state machine runs in moto's Step Functions interpreter, its Lambda tasks run the real handlers
in-process, and Bedrock is :class:`simulation.bedrock_fake.BedrockFake` answering with the deterministic
stand-in models of :mod:`simulation.models`. Nothing reaches AWS; no number it prints is a measurement.

Modules: :mod:`~simulation.runner` (one run, end to end), :mod:`~simulation.cli` (``python -m simulation``),
:mod:`~simulation.models` (simulated teacher, students, baseline and judge), :mod:`~simulation.clock`
(simulated latency on a virtual clock), :mod:`~simulation.progress` (live progress), :mod:`~simulation.output`
(``./out``), and the offline-execution machinery shared with the tests: :mod:`~simulation.harness`,
:mod:`~simulation.bedrock_fake` (with its parts in :mod:`simulation.bedrock`), :mod:`~simulation.synth`.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
