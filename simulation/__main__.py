"""``python -m simulation``: see :mod:`simulation.cli`."""

from simulation.cli import main

raise SystemExit(main())
