"""Where a run's objects live in the data bucket: every key and prefix, defined once.

::

    inputs/...                                           your uploads (query files); never written by the pipeline
    runs/<run>/dataset/plan.json                         the plan (PlanQueries)
    runs/<run>/dataset/{train.jsonl,heldout.jsonl,manifest.json}   the dataset (PrepareDataset)
    runs/<run>/dataset/train-groups.jsonl                each training line's template (PrepareDataset; read by
                                                         TrainMicroRouter for its calibration groups)
    runs/<run>/distillation/                             the customization job's output (Bedrock)
    runs/<run>/batch-labeling/input/queries.jsonl        a batch labeling job's records (StartBatchLabeling)
    runs/<run>/batch-labeling/output/                    its output, <job id>/queries.jsonl.out (Bedrock; read by
                                                         CollectBatchLabels into the shards' labeled files)
    runs/<run>/outputs.json                              the job, model and deployment of the run (RecordOutputs)
    runs/<run>/evaluation/<candidate>/                   a candidate's results and metrics (EvaluateCandidate)
    runs/<run>/evaluation/judge-input/<candidate>.jsonl  a judge job's prompts (EvaluateCandidate; read by Bedrock)
    runs/<run>/evaluation/judge-output/<candidate>/      a judge job's results (Bedrock; read by CheckJudge)
    runs/<run>/evaluation/judge-output/<candidate>--repeat-N/   the results of its repeat N ≥ 2 (judge_repeats)
    runs/<run>/evaluation/shadow/{results.jsonl,summary.json}   the model in service's answers to the run's
                                                         production held-out queries, and their summary (ShadowReplay)
    runs/<run>/report/                                   report.json, report.md, report.html and the charts (Report)
    runs/<run>/micro-router/{model.bin,heldout-predictions.jsonl}   the micro-router and its held-out answers
    runs/<run>/compensation/attempt-<redrive>.json       the claim of a failure's compensation
    promoted/micro-router/<run>/<sha256>.bin             a promoted micro-router (Promote; read by the router);
                                                         outside runs/, so data_retention_days never expires it
    tmp/<run>/plan/shard-NNNNN.json                      the shards' queries (PlanQueries); expired by lifecycle
    tmp/<run>/labeled/shard-NNNNN{.jsonl,.stats.json,.error.json,/part-*.json}   a shard's labels (ShardKeys)
    captured/raw/<yyyy-MM-dd>/...                        routed queries, gzip JSON lines (capture_queries: the
                                                         router through Firehose, partitioned by arrival day)
    captured/errors/<error type>/<yyyy-MM-dd>/...        what Firehose could not deliver (its error output)
    inputs/captured/<yyyy-MM-dd>.jsonl                   one day's captured queries, deduplicated with a count
                                                         per query (the daily compaction); a user query file
    drift/latest.json, drift/<yyyy-MM-dd>.json           the daily drift check's summary (capture_queries): the
                                                         latest, and a copy per day checked
    inputs/retrain/<execution>/{queries,production-heldout}.jsonl   a scheduled run's training queries and its
                                                         production held-out sample (retrain_schedule)
    retrain/state.json                                   the last scheduled run: its execution and last day used
    retrain/latest.json, retrain/decisions/<time>.json   the scheduled retraining's latest decision, and each one

The IAM grants of the stack are derived from the same definitions: :meth:`RunLayout.pattern` turns a key of
:data:`ANY_RUN` into the ``runs/*/...`` pattern a policy names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Final

RUNS: Final = "runs/"
TMP: Final = "tmp/"
INPUTS: Final = "inputs/"
PROMOTED: Final = "promoted/"
CAPTURED: Final = "captured/"
CAPTURED_RAW: Final = f"{CAPTURED}raw/"
CAPTURED_ERRORS: Final = f"{CAPTURED}errors/"
CAPTURED_INPUTS: Final = f"{INPUTS}captured/"
DRIFT: Final = "drift/"
DRIFT_LATEST: Final = f"{DRIFT}latest.json"
RETRAIN: Final = "retrain/"
RETRAIN_STATE: Final = f"{RETRAIN}state.json"
RETRAIN_LATEST: Final = f"{RETRAIN}latest.json"
RETRAIN_DECISIONS: Final = f"{RETRAIN}decisions/"
RETRAIN_INPUTS: Final = f"{INPUTS}retrain/"
FIREHOSE_DAY: Final = "!{timestamp:yyyy-MM-dd}"
"""Firehose's prefix expression of the arrival day (UTC) of the oldest record of an object."""
FIREHOSE_RAW_PREFIX: Final = f"{CAPTURED_RAW}{FIREHOSE_DAY}/"
FIREHOSE_ERROR_PREFIX: Final = f"{CAPTURED_ERRORS}!{{firehose:error-output-type}}/{FIREHOSE_DAY}/"
ANY_RUN: Final = "*"
"""The run id of :meth:`RunLayout.any`: its keys are IAM resource patterns (``runs/*/dataset/``)."""

_INVOCATION = re.compile(r"[^A-Za-z0-9]+")
_PART_NAME = re.compile(r"/part-(\d{5,})-([A-Za-z0-9]+)\.json$")


def invocation_token(invocation: str) -> str:
    """Letters and digits of ``invocation`` (a Lambda request id), at most 12: part names stay short and unique."""
    return (_INVOCATION.sub("", invocation) or "x")[:12]


@dataclass(frozen=True)
class ShardKeys:
    """The S3 keys of one shard's labeling output (``pipeline/checkpoint.py`` writes and reads them)."""

    tmp_prefix: str
    index: int

    @property
    def base(self) -> str:
        return f"{self.tmp_prefix}labeled/shard-{self.index:05d}"

    @property
    def examples(self) -> str:
        return f"{self.base}.jsonl"

    @property
    def stats(self) -> str:
        """Written last: the shard is done."""
        return f"{self.base}.stats.json"

    @property
    def error(self) -> str:
        return f"{self.base}.error.json"

    @property
    def parts_prefix(self) -> str:
        return f"{self.base}/"

    def part(self, number: int, invocation: str) -> str:
        return f"{self.parts_prefix}part-{number:05d}-{invocation_token(invocation)}.json"

    def part_keys(self, keys: Iterable[str]) -> list[str]:
        """This shard's part keys among ``keys``, in write order."""
        mine = [k for k in keys if k.startswith(self.parts_prefix) and _PART_NAME.search(k)]
        return sorted(mine, key=part_number)


def captured_raw_prefix(day: date) -> str:
    """Where Firehose writes the captured queries that arrived on ``day`` (UTC): what :data:`FIREHOSE_RAW_PREFIX`
    evaluates to."""
    return f"{CAPTURED_RAW}{day.isoformat()}/"


def drift_summary_key(day: date) -> str:
    """The drift check's summary of the window ending ``day`` (:data:`DRIFT_LATEST` holds the latest copy)."""
    return f"{DRIFT}{day.isoformat()}.json"


def captured_queries(day: date) -> str:
    """The compacted query file of ``day`` (a ``.jsonl`` user query file under ``inputs/``)."""
    return f"{CAPTURED_INPUTS}{day.isoformat()}.jsonl"


def captured_day(key: str) -> date | None:
    """The day of a compacted query file's key (:func:`captured_queries`), None for any other key."""
    name = key.removeprefix(CAPTURED_INPUTS)
    if name == key or not name.endswith(".jsonl") or "/" in name:
        return None
    try:
        return date.fromisoformat(name.removesuffix(".jsonl"))
    except ValueError:
        return None


def retrain_queries(execution: str) -> str:
    """A scheduled run's training queries (a ``.jsonl`` user query file under ``inputs/``)."""
    return f"{RETRAIN_INPUTS}{execution}/queries.jsonl"


def retrain_heldout(execution: str) -> str:
    """A scheduled run's production held-out sample (its ``production_heldout_s3_uri``)."""
    return f"{RETRAIN_INPUTS}{execution}/production-heldout.jsonl"


def retrain_decision(token: str) -> str:
    """The record of one scheduled decision (``token``: its scheduled time, e.g. ``20261201T030000Z``)."""
    return f"{RETRAIN_DECISIONS}{token}.json"


def part_number(key: str) -> int:
    """The number of a checkpoint part, from its key (:meth:`ShardKeys.part`)."""
    match = _PART_NAME.search(key)
    if match is None:
        raise ValueError(f"{key!r} is not a checkpoint part key")
    return int(match.group(1))


CANDIDATE_METRICS: Final = "metrics.json"
"""The file name of a candidate's metrics under its evaluation prefix (the simulation counts them)."""
JUDGE_REPEAT_SEPARATOR: Final = "--repeat-"
"""Between a candidate's name and a judge repeat's number in its output prefix (a candidate name has no ``--``)."""
SHADOW: Final = "shadow"
"""The folder of the shadow replay under a run's evaluation prefix (beside the candidates' folders)."""
RESERVED_CANDIDATE_NAMES: Final = (SHADOW, "judge-input", "judge-output")
"""Folders of a run's evaluation prefix that are not a candidate's: no candidate may be named like them."""
STATS_SUFFIX: Final = ".stats.json"
"""How a finished shard's stats object ends (``cli status`` counts them)."""


@dataclass(frozen=True)
class RunLayout:
    """The keys of one run (``run_id``), or with :meth:`any` the patterns that match every run's."""

    run_id: str

    @classmethod
    def any(cls) -> RunLayout:
        return cls(ANY_RUN)

    @staticmethod
    def pattern(prefix: str) -> str:
        """A key or prefix of :meth:`any` as an object pattern: ``runs/*/dataset/`` → ``runs/*/dataset/*``."""
        return prefix if prefix.endswith((".json", ".jsonl")) else f"{prefix}*"

    # --- runs/<run>/ ---------------------------------------------------------------------------------
    @property
    def run_prefix(self) -> str:
        return f"{RUNS}{self.run_id}/"

    @property
    def dataset_prefix(self) -> str:
        return f"{self.run_prefix}dataset/"

    @property
    def plan(self) -> str:
        return f"{self.dataset_prefix}plan.json"

    @property
    def train(self) -> str:
        return f"{self.dataset_prefix}train.jsonl"

    @property
    def train_groups(self) -> str:
        """One line per line of :attr:`train`, in its order: the query's template id (``null`` for a user's query),
        category and source — what the micro-router groups its calibration slice by, which the training file
        (Bedrock's format) cannot carry."""
        return f"{self.dataset_prefix}train-groups.jsonl"

    @property
    def heldout(self) -> str:
        return f"{self.dataset_prefix}heldout.jsonl"

    @property
    def manifest(self) -> str:
        return f"{self.dataset_prefix}manifest.json"

    @property
    def micro_router_prefix(self) -> str:
        """What TrainMicroRouter writes: the artifact and its held-out predictions."""
        return f"{self.run_prefix}micro-router/"

    @property
    def micro_router_artifact(self) -> str:
        return f"{self.micro_router_prefix}model.bin"

    @property
    def promoted_micro_router_prefix(self) -> str:
        """Where Promote copies the run's micro-router: the router reads it from there for as long as the
        promotion names it, whatever happens to the run's folder (``data_retention_days``)."""
        return f"{PROMOTED}micro-router/{self.run_id}/"

    def promoted_micro_router(self, digest: str) -> str:
        """The promoted copy of an artifact whose sha256 starts with ``digest``: a reused execution name (run
        id) never overwrites the copy an earlier promotion (and a rollback to it) names."""
        return f"{self.promoted_micro_router_prefix}{digest}.bin"

    @property
    def micro_router_predictions(self) -> str:
        """One line per held-out query: its split, the teacher's reference, the micro-router's weights and
        confidence."""
        return f"{self.micro_router_prefix}heldout-predictions.jsonl"

    @property
    def batch_labeling_prefix(self) -> str:
        return f"{self.run_prefix}batch-labeling/"

    @property
    def batch_labeling_input(self) -> str:
        return f"{self.batch_labeling_prefix}input/queries.jsonl"

    @property
    def batch_labeling_output_prefix(self) -> str:
        return f"{self.batch_labeling_prefix}output/"

    @property
    def distillation_prefix(self) -> str:
        return f"{self.run_prefix}distillation/"

    @property
    def outputs(self) -> str:
        return f"{self.run_prefix}outputs.json"

    @property
    def evaluation_prefix(self) -> str:
        return f"{self.run_prefix}evaluation/"

    def candidate_prefix(self, candidate: str) -> str:
        return f"{self.evaluation_prefix}{candidate}/"

    def candidate_results(self, candidate: str) -> str:
        """One line per held-out query: the candidate's answer, its parse and its error against the teacher."""
        return f"{self.candidate_prefix(candidate)}results.jsonl"

    def candidate_metrics(self, candidate: str) -> str:
        return f"{self.candidate_prefix(candidate)}{CANDIDATE_METRICS}"

    @property
    def judge_input_prefix(self) -> str:
        return f"{self.evaluation_prefix}judge-input/"

    def judge_input(self, candidate: str) -> str:
        return f"{self.judge_input_prefix}{candidate}.jsonl"

    @property
    def judge_output_prefix(self) -> str:
        return f"{self.evaluation_prefix}judge-output/"

    def judge_output(self, candidate: str, repeat: int = 1) -> str:
        """Where Bedrock writes the results of ``candidate``'s judge job number ``repeat`` (``judge_repeats``).

        The first repeat keeps the prefix it always had; a later one gets ``<candidate>--repeat-N/``, a sibling:
        listing one repeat's prefix never returns another's objects, and no candidate is named like that (names
        have single hyphens only)."""
        if repeat < 1:
            raise ValueError(f"a judge repeat is numbered from 1, got {repeat}")
        name = candidate if repeat == 1 else f"{candidate}{JUDGE_REPEAT_SEPARATOR}{repeat}"
        return f"{self.judge_output_prefix}{name}/"

    @property
    def shadow_prefix(self) -> str:
        """What ShadowReplay writes: the model in service's answers to the production held-out queries. A sibling
        of the candidates' folders: no candidate may be named :data:`SHADOW` (``infra/config.py``)."""
        return f"{self.evaluation_prefix}{SHADOW}/"

    @property
    def shadow_results(self) -> str:
        """One line per replayed production query: the model in service's answer, as a candidate's results."""
        return f"{self.shadow_prefix}results.jsonl"

    @property
    def shadow_summary(self) -> str:
        """What was replayed against which model, and its metrics against the teacher's labels."""
        return f"{self.shadow_prefix}summary.json"

    @property
    def report_prefix(self) -> str:
        return f"{self.run_prefix}report/"

    @property
    def report_json(self) -> str:
        return f"{self.report_prefix}report.json"

    @property
    def report_markdown(self) -> str:
        return f"{self.report_prefix}report.md"

    @property
    def report_html(self) -> str:
        """The self-contained page of the report (charts inlined): what ``cli report --link`` points at."""
        return f"{self.report_prefix}report.html"

    def report_chart(self, file_name: str) -> str:
        """A chart of the report (``latency.png`` ...)."""
        return f"{self.report_prefix}{file_name}"

    @property
    def compensation_prefix(self) -> str:
        return f"{self.run_prefix}compensation/"

    def compensation_claim(self, redrive_count: int) -> str:
        return f"{self.compensation_prefix}attempt-{redrive_count}.json"

    # --- tmp/<run>/ ----------------------------------------------------------------------------------
    @property
    def tmp_prefix(self) -> str:
        return f"{TMP}{self.run_id}/"

    @property
    def plan_shards_prefix(self) -> str:
        return f"{self.tmp_prefix}plan/"

    def plan_shard(self, index: int) -> str:
        return f"{self.plan_shards_prefix}shard-{index:05d}.json"

    @property
    def labeled_prefix(self) -> str:
        return f"{self.tmp_prefix}labeled/"

    def shard(self, index: int) -> ShardKeys:
        return ShardKeys(self.tmp_prefix, index)
