"""Links to the AWS console for what the CLI prints (an execution, a run's S3 folder)."""

from __future__ import annotations

from urllib.parse import quote

from search_router.contract.layout import RunLayout


def execution_url(region: str, execution_arn: str) -> str:
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def s3_folder_url(region: str, bucket: str, prefix: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/s3/buckets/{quote(bucket)}"
        f"?region={region}&prefix={quote(prefix, safe='/')}&showversions=false"
    )


def run_prefix(run_id: str) -> str:
    """Where a run's lasting objects live (``runs/<run>/``, see ``search_router.contract.layout``)."""
    return RunLayout(run_id).run_prefix
