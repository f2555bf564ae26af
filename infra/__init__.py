"""Infrastructure: the CDK constructs and the thin stack that composes them.

The Lambda code (``lambdas/search_router``, put on the venv's path by ``make install``: a ``.pth`` file) is
imported like any package, so build-time validation reuses the exact domain rules the functions run with.
"""

from pathlib import Path

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
"""Every function's asset: the folder that holds the ``search_router`` package."""
