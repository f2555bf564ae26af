"""Infrastructure: the CDK constructs and the thin stack that composes them.

The Lambda code under ``lambdas/`` is importable from here (``routing`` is the shared domain package), so
build-time validation reuses the exact domain rules the functions run with.
"""

import sys
from pathlib import Path

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
if str(LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDAS_DIR))
