"""CompactCaptured (``capture_queries``; EventBridge Scheduler, daily): yesterday's captured queries
(``captured/raw/<date>/``) into ``inputs/captured/<date>.jsonl``, deduplicated with a count per query
(``search_router.pipeline.queries.captured``). Re-running it for a day rewrites the same file; a day without
captured queries writes nothing. Malformed lines are counted by reason in the answer, the log and a metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from search_router.adapters import s3io
from search_router.contract.environment import CaptureCompactionEnvironment
from search_router.contract.layout import captured_queries, captured_raw_prefix
from search_router.contract.tasks import CompactCapturedInput, CompactCapturedOutput
from search_router.handlers.observability import logger, metrics, task_handler
from search_router.pipeline.queries.captured import compact

JSONL = "application/x-ndjson"


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del context
    task = CompactCapturedInput.model_validate(event or {})
    day = task.date or (datetime.now(UTC) - timedelta(days=1)).date()
    bucket = CaptureCompactionEnvironment.load().data_bucket
    keys = sorted(s3io.list_keys(bucket, captured_raw_prefix(day)))
    compaction = compact((key, s3io.get_bytes(bucket, key)) for key in keys)
    uri = None
    if compaction.records:
        uri = s3io.put_bytes(bucket, captured_queries(day), compaction.to_jsonl(), JSONL)
    summary = compaction.summary()
    malformed = sum(compaction.malformed.values())
    metrics.add_metric(name="CapturedQueriesCompacted", unit=MetricUnit.Count, value=compaction.records)
    metrics.add_metric(name="CapturedLinesMalformed", unit=MetricUnit.Count, value=malformed)
    log = logger.warning if malformed else logger.info
    log("Captured queries compacted", date=day.isoformat(), output_uri=uri, **summary)
    return CompactCapturedOutput.model_validate({"date": day, "output_uri": uri, **summary}).to_state()
