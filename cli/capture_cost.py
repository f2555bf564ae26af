"""The monthly cost of capturing routed queries (``capture_queries``): Amazon Data Firehose ingestion and S3, from
list prices (us-east-1, *unconfirmed*: :class:`CaptureRates`, the only place to change them).

The sizes are measured, not assumed: the router's own record (:func:`search_router.router.capture.capture_record`)
of queries the synthesizer plans, packed as the router packs them (:data:`~search_router.router.capture.PACK_BYTES`:
Firehose bills each record rounded up to the next 5 KB) and gzip-compressed as the stream delivers them.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass

from infra.config import CAPTURE_BUFFER_MB as BUFFER_MB
from infra.config import CAPTURE_BUFFER_SECONDS as BUFFER_SECONDS
from infra.config import AppConfig
from search_router.pipeline.queries.planning import plan_queries
from search_router.router.capture import LINGER_SECONDS, PACK_BYTES, capture_record

SAMPLE_QUERIES = 500
KB = 1024
GB = 1024**3


@dataclass(frozen=True)
class CaptureRates:
    """List prices, us-east-1 (*unconfirmed*: check the Firehose and S3 pricing pages before relying on them)."""

    firehose_usd_per_gb: float = 0.029
    """Direct PUT ingestion, first 500 TB a month; each record billed rounded up to a multiple of 5 KB."""
    firehose_billing_unit_kb: int = 5
    s3_put_usd_per_1k: float = 0.005
    """S3 Standard PUT, COPY, POST, LIST requests."""
    s3_get_usd_per_1k: float = 0.0004
    s3_storage_usd_per_gb_month: float = 0.023
    """S3 Standard, first 50 TB a month."""
    days_per_month: float = 30.0
    router_environments: int = 4
    """*Unconfirmed*: concurrent router environments sharing the traffic (each packs only its own queries: what
    it routes in :data:`LINGER_SECONDS` shares a Firehose record)."""


CAPTURE_RATES = CaptureRates()


@dataclass(frozen=True)
class CaptureCost:
    routes_per_day: int
    record_bytes: float  # one query's JSON line
    queries_per_record: int  # packed into one Firehose record, at this traffic
    pack_capacity: int  # queries a full Firehose record holds
    billed_gb: float  # Firehose ingestion billed in a month
    unpacked_billed_gb: float  # the same with one Firehose record per query
    firehose_usd: float
    unpacked_firehose_usd: float
    s3_puts: float  # objects written in a month (Firehose deliveries and the daily compacted file)
    s3_requests_usd: float
    stored_gb_per_month: float  # compressed raw objects one month of capture adds
    storage_usd_per_month: float  # what one month of data kept costs each month it is kept

    @property
    def total_usd(self) -> float:
        """Firehose + S3 requests + the storage of one month of data."""
        return self.firehose_usd + self.s3_requests_usd + self.storage_usd_per_month


def capture_cost(
    config: AppConfig, routes_per_day: int = 1_000_000, rates: CaptureRates = CAPTURE_RATES
) -> CaptureCost:
    """Capture of ``routes_per_day`` routes for a month at ``rates``."""
    seed = config.run_defaults.seed
    queries = plan_queries(config.channels, n_total=SAMPLE_QUERIES, seed=seed, user=None, mix_user=True)
    weights = dict(config.router.default_weights)
    model = config.router.default_model.model_id
    records = [
        capture_record(query=q.text, weights=weights, source="model", model=model, latency_ms=123.4, timestamp=0.0)
        for q in queries
    ]
    record_bytes = sum(map(len, records)) / len(records)
    compressed_bytes = len(gzip.compress(b"".join(records))) / len(records)
    capacity = max(1, int(PACK_BYTES // record_bytes))
    per_environment = routes_per_day / 86_400 / rates.router_environments  # queries a second
    per_record = max(1, min(capacity, math.floor(1 + per_environment * LINGER_SECONDS)))
    unit = rates.firehose_billing_unit_kb * KB
    routes = routes_per_day * rates.days_per_month
    billed_gb = math.ceil(routes / per_record) * unit / GB
    unpacked_gb = routes * math.ceil(record_bytes / unit) * unit / GB
    daily_bytes = routes_per_day * compressed_bytes
    deliveries_per_day = max(86_400 / BUFFER_SECONDS, daily_bytes / (BUFFER_MB * 1024**2))
    puts = (deliveries_per_day + 1) * rates.days_per_month  # + the compacted file
    gets = deliveries_per_day * rates.days_per_month  # the compaction reads each object once
    stored_gb = daily_bytes * rates.days_per_month / GB
    return CaptureCost(
        routes_per_day=routes_per_day,
        record_bytes=record_bytes,
        queries_per_record=per_record,
        pack_capacity=capacity,
        billed_gb=billed_gb,
        unpacked_billed_gb=unpacked_gb,
        firehose_usd=billed_gb * rates.firehose_usd_per_gb,
        unpacked_firehose_usd=unpacked_gb * rates.firehose_usd_per_gb,
        s3_puts=puts,
        s3_requests_usd=puts / 1000 * rates.s3_put_usd_per_1k + gets / 1000 * rates.s3_get_usd_per_1k,
        stored_gb_per_month=stored_gb,
        storage_usd_per_month=stored_gb * rates.s3_storage_usd_per_gb_month,
    )


def capture_cost_lines(cost: CaptureCost, rates: CaptureRates = CAPTURE_RATES) -> list[str]:
    """What ``estimate`` prints about capture."""
    return [
        f"Capture (capture_queries) at {cost.routes_per_day:,} routes a day, {rates.days_per_month:g} days, list "
        "prices us-east-1 *:",
        f"  a query's record ~{cost.record_bytes:.0f} bytes; ~{cost.queries_per_record} share a Firehose record "
        f"({rates.firehose_billing_unit_kb} KB billing unit; full: {cost.pack_capacity}) with the traffic spread over "
        f"{rates.router_environments} router environments * each sending every {LINGER_SECONDS:g} s",
        f"  Firehose ingestion: {cost.billed_gb:.2f} GB billed, ${cost.firehose_usd:.2f}/month "
        f"(one record per query: {cost.unpacked_billed_gb:.0f} GB, ${cost.unpacked_firehose_usd:.2f})",
        f"  S3 requests: {cost.s3_puts:,.0f} PUTs (Firehose objects + the daily compacted file) and the compaction's "
        f"GETs, ${cost.s3_requests_usd:.3f}/month",
        f"  S3 storage: {cost.stored_gb_per_month:.2f} GB gzip a month of capture, "
        f"${cost.storage_usd_per_month:.3f}/month for each month kept (data_retention_days bounds it)",
        f"  Total ~${cost.total_usd:.2f}/month (the compaction's Lambda and the scheduler: fractions of a cent)",
    ]
