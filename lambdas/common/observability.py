"""The one place Powertools objects are created. Handlers import ``logger``, ``tracer`` and ``metrics``.

Service name and metrics namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE`` (set per function by the Lambda factory).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(utc=True)
tracer = Tracer()
metrics = Metrics()
