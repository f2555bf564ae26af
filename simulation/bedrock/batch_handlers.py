"""Batch inference: ``CreateModelInvocationJob``, ``GetModelInvocationJob``, ``StopModelInvocationJob``,
``ListModelInvocationJobs``, for ``modelInvocationType="Converse"`` jobs.

A job completes on its N-th ``Get`` (``batch_polls_to_complete``). Then the fake reads every ``.jsonl`` input
object (the input ``s3Uri`` names one object or a prefix) from S3 (``batch_s3``: a boto3 S3 client, by default
one made when first needed, which moto answers inside ``mock_aws``), answers each record's ``modelInput`` with the
same responder as Converse (each validated against botocore's Converse request shape, the job's ``modelId``
added), and writes ``<output s3Uri>/<job id>/<input file name>.out`` with ``{"recordId", "modelInput",
"modelOutput"}`` lines (or ``"error": {"errorCode", "errorMessage"}``) in an order other than the input's, and
``manifest.json.out`` with the counts (Bedrock user guide, "View the results of a batch inference job"). Fewer
records than ``batch_min_records`` fail the job as the service's validation does.

Switches: :meth:`fail_next_batch_job` (the next job ends ``Failed`` with that ``message``, writing nothing) and
:meth:`corrupt_next_batch_job` (the next job's first N output lines are cut off mid-line).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3

from simulation.bedrock.records import BatchJobRecord
from simulation.bedrock.runtime_handlers import RuntimeHandlers
from simulation.bedrock.state import contains, equals, now_after
from simulation.bedrock.values import ACCOUNT_ID, REGION, RUNTIME_SERVICE, FakeServiceError

RUNNING = ("Submitted", "Validating", "Scheduled", "InProgress")


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise FakeServiceError("ValidationException", f"{uri!r} is not an S3 URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class BatchHandlers(RuntimeHandlers):
    """Converse batch inference jobs (knobs: ``batch_polls_to_complete``, ``batch_min_records``, ``batch_s3``)."""

    def fail_next_batch_job(self, message: str) -> None:
        """The next batch job created ends ``Failed`` with ``message`` when it would have completed."""
        with self._lock:
            self._next_batch_failure = message

    def corrupt_next_batch_job(self, lines: int) -> None:
        """The next batch job created writes its first ``lines`` output lines cut off mid-line (not JSON)."""
        with self._lock:
            self._next_batch_corruption = lines

    def batch_job(self, identifier: str) -> dict[str, Any]:
        """The current ``GetModelInvocationJob`` view of a job, without counting as a poll."""
        with self._lock:
            return self._batch_view(self._find_batch(identifier))

    # ------------------------------------------------------------------------------------------------ operations
    def _create_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        operation = "CreateModelInvocationJob"
        if params.get("modelInvocationType") != "Converse":
            raise NotImplementedError(
                "BedrockFake models CreateModelInvocationJob for Converse jobs only (modelInvocationType='Converse')"
            )
        with self._lock:
            existing = self._idempotent(operation, params)
            if existing is not None:
                return {"jobArn": existing}
            jobs = self._batch_jobs
            if any(job.name == params["jobName"] for job in jobs.values()):
                raise FakeServiceError(
                    "ConflictException", f"A model invocation job named {params['jobName']!r} already exists."
                )
            self._resolve_known_model(params["modelId"], "model")
            for config, key in (("inputDataConfig", "s3InputDataConfig"), ("outputDataConfig", "s3OutputDataConfig")):
                if key not in params[config]:
                    raise FakeServiceError("ValidationException", f"{config}.{key} is required")
                _split_s3_uri(params[config][key]["s3Uri"])
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT_ID}:model-invocation-job/{self._new_id()}"
            submitted = now_after(self._latest_creation())
            jobs[arn] = BatchJobRecord(
                arn=arn,
                name=params["jobName"],
                params=params,
                created=submitted,
                last_modified=submitted,
                polls_to_complete=max(self.batch_polls_to_complete, 1),
                fail_message=self._next_batch_failure,
                corrupt_lines=self._next_batch_corruption,
            )
            self._next_batch_failure, self._next_batch_corruption = None, 0
            self._tags[arn] = self._tags_or_empty(params.get("tags"))
            self._remember_token(operation, params, arn)
        return {"jobArn": arn}

    def _find_batch(self, identifier: str) -> BatchJobRecord:
        jobs = self._batch_jobs
        job = jobs.get(identifier) or next((j for j in jobs.values() if j.arn.endswith("/" + identifier)), None)
        if job is None:
            raise FakeServiceError("ResourceNotFoundException", f"Model invocation job {identifier} not found.")
        return job

    def _get_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._find_batch(params["jobIdentifier"])
            now = now_after(job.last_modified)
            finishing = False
            if job.status == "Stopping":
                job.status, job.last_modified, job.end_time = "Stopped", now, now
            elif job.status in RUNNING:
                job.polls += 1
                job.status, job.last_modified = "InProgress", now
                finishing = job.polls >= job.polls_to_complete
        if finishing:
            self._finish_batch(job)  # outside the lock: S3 and the responder
        with self._lock:
            return self._batch_view(job)

    def _stop_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._find_batch(params["jobIdentifier"])
            if job.status not in RUNNING:
                raise FakeServiceError(
                    "ValidationException", f"Model invocation job {job.name} can't be stopped in status {job.status}."
                )
            job.status, job.last_modified = "Stopping", now_after(job.last_modified)
        return {}

    def _list_batches(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_page(
            "ListModelInvocationJobs",
            "invocationJobSummaries",
            self._batch_jobs.values(),
            params,
            filters={"statusEquals": (lambda j: j.status, equals), "nameContains": (lambda j: j.name, contains)},
            summary=self._batch_view,
        )

    def _batch_view(self, job: BatchJobRecord) -> dict[str, Any]:
        params = job.params
        view: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "modelId": params["modelId"],
            "roleArn": params["roleArn"],
            "status": job.status,
            "submitTime": job.created,
            "lastModifiedTime": job.last_modified,
            "inputDataConfig": copy.deepcopy(params["inputDataConfig"]),
            "outputDataConfig": copy.deepcopy(params["outputDataConfig"]),
            "modelInvocationType": params["modelInvocationType"],
            "timeoutDurationInHours": params.get("timeoutDurationInHours", 24),
        }
        if "clientRequestToken" in params:
            view["clientRequestToken"] = params["clientRequestToken"]
        if job.end_time is not None:
            view["endTime"] = job.end_time
        if job.message is not None:
            view["message"] = job.message
        view.update(job.counts)
        return view

    # ------------------------------------------------------------------------------------------------ completion
    def _s3(self) -> Any:
        if self.batch_s3 is None:
            self.batch_s3 = boto3.client("s3", region_name=REGION)
        return self.batch_s3

    def _finish_batch(self, job: BatchJobRecord) -> None:
        if job.fail_message is not None:
            self._end_batch(job, "Failed", job.fail_message, {})
            return
        inputs = self._batch_inputs(job.params["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
        total = sum(len(records) for _, records in inputs)
        if total < self.batch_min_records:
            message = f"The job has {total} records; a batch inference job needs at least {self.batch_min_records}."
            self._end_batch(job, "Failed", message, {})
            return
        bucket, prefix = _split_s3_uri(job.params["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        job_id = job.arn.rsplit("/", 1)[1]
        counts = {"totalRecordCount": total, "processedRecordCount": 0, "successRecordCount": 0, "errorRecordCount": 0}
        tokens = {"inputTokenCount": 0, "outputTokenCount": 0}
        corrupt = job.corrupt_lines
        for name, records in inputs:
            lines = []
            for record in reversed(records):  # the output's order is not the input's
                line = self._batch_record(job, record, counts, tokens)
                if corrupt > 0:
                    line, corrupt = line[: len(line) // 2], corrupt - 1
                lines.append(line)
            key = f"{prefix.rstrip('/')}/{job_id}/{name}.out".lstrip("/")
            self._s3().put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode() + b"\n")
        manifest = f"{prefix.rstrip('/')}/{job_id}/manifest.json.out".lstrip("/")
        self._s3().put_object(Bucket=bucket, Key=manifest, Body=json.dumps({**counts, **tokens}).encode())
        self._end_batch(job, "Completed", None, counts)

    def _end_batch(self, job: BatchJobRecord, status: str, message: str | None, counts: dict[str, int]) -> None:
        with self._lock:
            if job.status != "InProgress":  # stopped while the records were answered
                return
            job.status, job.message, job.counts = status, message, counts
            job.last_modified = job.end_time = now_after(job.last_modified)

    def _batch_inputs(self, uri: str) -> list[tuple[str, list[dict[str, Any]]]]:
        bucket, key = _split_s3_uri(uri)
        s3 = self._s3()
        if key.endswith(".jsonl"):
            keys = [key]
        else:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
            keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".jsonl"))
        inputs = []
        for name in keys:
            text = s3.get_object(Bucket=bucket, Key=name)["Body"].read().decode()
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
            inputs.append((name.rsplit("/", 1)[-1], records))
        return inputs

    def _batch_record(
        self, job: BatchJobRecord, record: dict[str, Any], counts: dict[str, int], tokens: dict[str, int]
    ) -> str:
        counts["processedRecordCount"] += 1
        line: dict[str, Any] = {"recordId": record.get("recordId", ""), "modelInput": record.get("modelInput")}
        request = {"modelId": job.params["modelId"], **(record.get("modelInput") or {})}
        shape = self._runtime.meta.service_model.operation_model("Converse").input_shape
        report = self._validator.validate(request, shape)
        try:
            if report.has_errors():
                raise FakeServiceError("ValidationException", report.generate_report())
            reply = self._respond(self._converse_request("Converse", request))
        except FakeServiceError as error:
            counts["errorRecordCount"] += 1
            line["error"] = {"errorCode": self._status_for(RUNTIME_SERVICE, error.code), "errorMessage": error.message}
            return json.dumps(line)
        counts["successRecordCount"] += 1
        line["modelOutput"] = self._converse_body(reply)
        tokens["inputTokenCount"] += line["modelOutput"]["usage"]["inputTokens"]
        tokens["outputTokenCount"] += line["modelOutput"]["usage"]["outputTokens"]
        return json.dumps(line)
