"""``make simulate``: the whole pipeline on this machine, against a SIMULATED Amazon Bedrock.

The synthesized state machine runs in moto's Step Functions interpreter, its Lambda tasks run the real handlers
in-process, and Bedrock is :class:`simulation.bedrock_fake.BedrockFake` answering with the deterministic
stand-in models of :mod:`simulation.models`. Nothing reaches AWS; no number it prints is a measurement.

Modules: :mod:`~simulation.runner` (one run, end to end), :mod:`~simulation.cli` (``python -m simulation``),
:mod:`~simulation.models` (simulated teacher, students, baseline and judge), :mod:`~simulation.clock`
(simulated latency on a virtual clock), :mod:`~simulation.progress` (live progress), :mod:`~simulation.output`
(``./out``), and the offline-execution machinery shared with the tests: :mod:`~simulation.harness`,
:mod:`~simulation.bedrock_fake`, :mod:`~simulation.synth`.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
# The app (``app.py``, ``infra``) and the Lambda code (``lambdas/``: handlers and the shared ``routing``
# package) are imported by module name, as in the tests (pyproject's pytest ``pythonpath``).
for _path in (REPO_ROOT, LAMBDAS_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
