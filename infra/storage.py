"""Storage: the data bucket (datasets, shards, model outputs, reports) and its access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from search_router.contract.layout import CAPTURED, INPUTS, RUNS, TMP

# The object layout of the data bucket is search_router.contract.layout (runs/, tmp/, inputs/).
# Step Functions can redrive an execution for 14 days after it ended; a redriven labeling step reads its shards
# from tmp/, so they outlive that window.
REDRIVE_WINDOW_DAYS = 14
TMP_EXPIRY_DAYS = REDRIVE_WINDOW_DAYS + 1


class Storage(Construct):
    """Encrypted, TLS-only, private buckets.

    ``retain_data=False`` (default) empties and removes both buckets on ``cdk destroy``; ``True`` keeps
    them (datasets and reports survive the stack). ``data_retention_days`` (default ``None``: kept) expires
    run data (``runs/``), uploaded and compacted queries (``inputs/``) and captured queries (``captured/``,
    ``capture_queries``) that many days after they were written.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retain_data: bool,
        data_retention_days: int | None = None,
        tmp_expiry_days: int = TMP_EXPIRY_DAYS,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        auto_delete = not retain_data

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logging requires SSE-S3
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )

        self.data_bucket = s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-temporary-shards",
                    prefix=TMP,
                    expiration=Duration.days(tmp_expiry_days),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                *(
                    s3.LifecycleRule(
                        id=f"expire-{prefix.rstrip('/')}",
                        prefix=prefix,
                        expiration=Duration.days(data_retention_days),
                        noncurrent_version_expiration=Duration.days(1),
                    )
                    for prefix in (RUNS, INPUTS, CAPTURED)
                    if data_retention_days
                ),
                s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(30)),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
            ],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
