"""One simulated pipeline run, end to end: synth → moto → execution with live progress → ``./out``.

1. Synthesize the real app (cdk-nag included) into a temporary ``cdk.out`` with context overrides for a small
   run (``run_defaults`` ``num_examples``, ``eval_examples``, ``shard_size``) and no waits between status polls.
2. Inside ``moto.mock_aws`` (Step Functions interpreter on, Lambda without Docker): create the template's
   buckets, topic and parameter, the state machine from the synthesized definition, and route every Lambda
   invoke to the real handler in-process (:class:`simulation.harness.PipelineHarness`).
3. Bedrock is :class:`simulation.bedrock_fake.BedrockFake` (requests validated against botocore's model)
   answering with :class:`simulation.models.SimulatedModels`; evaluation latency runs on a virtual clock
   (:mod:`simulation.clock`).
4. Start the execution with ``{}`` (plus ``seed`` if asked), poll it and the bucket for progress, then write the
   labelled report, charts and manifest (:mod:`simulation.output`). With ``captured`` (``--captured FILE``) the
   stack is synthesized with ``capture_queries`` and a retraining schedule, the file is delivered as captured
   traffic of yesterday (:mod:`simulation.captured`), compacted, and the execution is the one the real scheduled
   retraining starts (with the production held-out sample); a skipped schedule ends the simulation with its
   reason (:class:`RetrainingSkipped`).

Dummy credentials and a fixed Region are set for the duration of the run (and the environment restored after),
so it works from a fresh clone without an AWS account; nothing leaves the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

import boto3
from moto import mock_aws

from search_router.adapters.clients import CLIENTS
from search_router.contract.environment import PipelineEnvironment
from search_router.contract.layout import CANDIDATE_METRICS, STATS_SUFFIX, RunLayout, captured_raw_prefix
from search_router.contract.run import run_id_from_execution
from search_router.pipeline.queries.planning import plan_queries, unseen_template_queries
from search_router.pipeline.queries.query import normalize_query
from search_router.pipeline.report import CHART_FILES
from search_router.shared.channels import ChannelSet, load_channels
from simulation.bedrock_fake import BedrockFake
from simulation.captured import firehose_object
from simulation.clock import VirtualClock, virtual_latency
from simulation.harness import REGION, Execution, PipelineHarness
from simulation.models import ROLES, SimulatedModels
from simulation.output import write_outputs
from simulation.progress import Counts, Progress
from simulation.synth import Synthesized

DEFAULT_EXAMPLES: Final = 300
DEFAULT_EVAL: Final = 200
DEFAULT_SHARD_SIZE: Final = 50
DEFAULT_TIME_SCALE: Final = 0.1
DEFAULT_MIN_NEW_QUERIES: Final = 50
DEFAULT_HELDOUT_QUERIES: Final = 20
_COMPACT: Final = "search_router.handlers.compact_captured.handler"
_RETRAIN: Final = "search_router.handlers.retrain.handler"
MOTO_CONFIG: Final = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

_OFFLINE_ENVIRONMENT: Final = {
    "AWS_ACCESS_KEY_ID": "simulated",
    "AWS_SECRET_ACCESS_KEY": "simulated",
    "AWS_SESSION_TOKEN": "simulated",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "simulation",
    "POWERTOOLS_METRICS_NAMESPACE": "Simulation",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
_UNSET: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
_LABEL_SHARD: Final = "search_router.handlers.label_shard.handler"


class RetrainingSkipped(RuntimeError):
    """The scheduled retraining started no run on the captured file; the message is its explanation."""


class SimulationFailed(RuntimeError):
    """The simulated execution did not succeed; the message carries the state machine's error and cause, and
    ``result`` what the run produced (the outputs that existed were written)."""

    def __init__(self, message: str, result: SimulationResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class SimulationOptions:
    examples: int = DEFAULT_EXAMPLES
    eval_examples: int = DEFAULT_EVAL
    seed: int | None = None  # None: the stack's default seed (the execution starts with {})
    out_dir: Path = Path("out")
    shard_size: int = DEFAULT_SHARD_SIZE
    time_scale: float = DEFAULT_TIME_SCALE
    timeout_s: float = 600.0
    captured: Path | None = None  # a local file of routed queries: run the scheduled retraining on it
    min_new_queries: int = DEFAULT_MIN_NEW_QUERIES  # retrain_min_new_queries for --captured
    heldout_queries: int = DEFAULT_HELDOUT_QUERIES  # retrain_heldout_queries for --captured

    def context_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {
            "run_defaults.num_examples": self.examples,
            "run_defaults.eval_examples": self.eval_examples,
            "run_defaults.shard_size": self.shard_size,
            "run_defaults.poll_seconds": 0,
            "run_defaults.deployment_poll_seconds": 0,
        }
        if self.captured is not None:
            overrides |= {
                "capture_queries": True,
                "retrain_schedule": "rate(7 days)",
                "retrain_min_new_queries": self.min_new_queries,
                "retrain_heldout_queries": self.heldout_queries,
            }
        return overrides

    def execution_input(self) -> dict[str, Any]:
        return {} if self.seed is None else {"seed": self.seed}


@dataclass
class SimulationResult:
    status: str
    execution: Execution
    run_id: str
    report: dict[str, Any]
    files: dict[str, Path]
    notifications: list[dict[str, str]]
    promoted_model: dict[str, Any] | None
    answers: dict[str, int]
    synth_s: float
    run_s: float
    wall_s: float
    details: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def offline_environment() -> Iterator[None]:
    """Dummy credentials, a fixed Region and quiet Powertools for the run; the environment is restored after
    (the harness also sets each function's variables while it runs)."""
    saved = dict(os.environ)
    os.environ.update(_OFFLINE_ENVIRONMENT)
    for name in _UNSET:
        os.environ.pop(name, None)
    CLIENTS.reset()
    try:
        with warnings.catch_warnings():
            # Handlers that publish no metric of their own make Powertools warn once per invocation.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            yield
    finally:
        CLIENTS.reset()
        os.environ.clear()
        os.environ.update(saved)


def planned_categories(channels: ChannelSet, settings: Mapping[str, Any]) -> dict[str, str]:
    """Normalized query text → synthesizer category, for the queries PlanQueries will produce for ``settings``
    (the same call with the same seed), so that the simulated teacher recognizes them."""
    planned = plan_queries(
        channels,
        n_total=int(settings["num_examples"]) + int(settings["eval_examples"]),
        seed=int(settings["seed"]),
        user=None,
        mix_user=bool(settings.get("mix_user_queries", True)),
        unseen_heldout=unseen_template_queries(
            int(settings["eval_examples"]), float(settings.get("heldout_unseen_template_share", 0.0))
        ),
    )
    return {normalize_query(q.text): q.category for q in planned}


def _count_keys(s3: Any, bucket: str, prefix: str, suffix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(1 for page in pages for item in page.get("Contents", []) if item["Key"].endswith(suffix))


def _model_parameter(harness: PipelineHarness) -> dict[str, Any] | None:
    names = [
        harness.resolver.ref(logical_id)
        for logical_id, resource in harness.synthesized.template["Resources"].items()
        if resource["Type"] == "AWS::SSM::Parameter"
    ]
    if not names:
        return None
    value = boto3.client("ssm", region_name=REGION).get_parameter(Name=names[0])["Parameter"]["Value"]
    try:
        parsed = json.loads(value)
    except ValueError:
        return {"value": value}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def run_simulation(
    options: SimulationOptions,
    *,
    stream: TextIO | None = None,
    interactive: bool | None = None,
    say: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Run the pipeline once against the simulated Bedrock and write ``options.out_dir``.

    ``stream`` receives the live progress (default stdout); ``say`` one-line status messages. Raises
    :class:`SimulationFailed` if the execution does not succeed (the outputs that exist are still written).
    """
    say = say or (lambda _message: None)
    wall_started = time.perf_counter()
    with offline_environment(), tempfile.TemporaryDirectory(prefix="simulate-cdk-out-") as tmp:
        say(
            f"Synthesizing the CDK app (cdk-nag on) with {options.examples} training + {options.eval_examples} "
            f"held-out examples, shards of {options.shard_size}, no poll waits ..."
        )
        synth_started = time.perf_counter()
        synthesized = Synthesized(Path(tmp), options.context_overrides())
        synth_s = time.perf_counter() - synth_started
        say(f"  synthesized in {synth_s:.1f} s")
        with mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]
            return _run_in_moto(
                options=options,
                synthesized=synthesized,
                stream=stream,
                interactive=interactive,
                say=say,
                synth_s=synth_s,
                wall_started=wall_started,
            )


def _run_in_moto(
    *,
    options: SimulationOptions,
    synthesized: Synthesized,
    stream: TextIO | None,
    interactive: bool | None,
    say: Callable[[str], None],
    synth_s: float,
    wall_started: float,
) -> SimulationResult:
    harness = PipelineHarness(synthesized)
    label_env = harness.function_for(_LABEL_SHARD).environment
    channels = load_channels(PipelineEnvironment.read(label_env, "channels"))
    settings = {**PipelineEnvironment.read(label_env, "pipeline_defaults"), **options.execution_input()}
    candidates = PipelineEnvironment.read(label_env, "candidates")
    clock = VirtualClock()
    models = SimulatedModels(
        channels,
        teacher_model_ids=PipelineEnvironment.read(label_env, "teacher_preference"),
        seed=int(settings["seed"]),
        categories=planned_categories(channels, settings),
        clock=clock,
        time_scale=options.time_scale,
    )
    fake = BedrockFake().with_default_catalog().install()
    fake.model_polls_to_active = 2  # a completed job's model stays "Creating" for a while, as in Bedrock
    fake.responder = models
    fake.on_evaluation_complete = models.write_judge_results

    name = f"simulated-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    run_id = run_id_from_execution(name)
    layout = RunLayout(run_id)
    s3 = boto3.client("s3", region_name=REGION)

    def read_counts() -> Counts:
        return Counts(
            shards_total=_count_keys(s3, harness.bucket, layout.plan_shards_prefix, ".json"),
            shards_labeled=_count_keys(s3, harness.bucket, layout.labeled_prefix, STATS_SUFFIX),
            candidates_total=len(candidates),
            candidates_done=_count_keys(s3, harness.bucket, layout.evaluation_prefix, f"/{CANDIDATE_METRICS}"),
            answers=sum(models.answers.values()),
        )

    top_level = {state: spec["Type"] for state, spec in harness.definition["States"].items()}
    run_started = time.perf_counter()
    with harness.installed(), virtual_latency(clock):
        if options.captured is not None:
            arn, name = _retrain_on(harness, options.captured, say)
            run_id = run_id_from_execution(name)
            layout = RunLayout(run_id)
        else:
            arn = harness.start(options.execution_input(), name=name)
            say(f"Started execution {name} with input {json.dumps(options.execution_input())} in moto's interpreter")
        progress = Progress(history=lambda: harness.history(arn), read_counts=read_counts, top_level=top_level,
                            stream=stream, interactive=interactive)  # fmt: skip
        try:
            execution = harness.wait(arn, timeout_s=options.timeout_s, poll_s=0.1, on_poll=progress.update)
            progress.finish(execution.description)
        finally:  # a timeout or Ctrl-C must not leave a terminal without its cursor
            progress.stop()
        # A run that ended badly is compensated, as the stack's EventBridge rule would start it.
        execution.compensation = harness.compensate(execution)
        if execution.compensation is not None:
            say(
                f"Compensation (stops and deletes what the run created, then notifies): {execution.compensation.status}"
            )
    run_s = time.perf_counter() - run_started

    report = _s3_json(harness, layout.report_json) or {"run_id": run_id, "candidates": []}
    charts = {
        key: body
        for key, filename in CHART_FILES.items()
        if (body := _s3_bytes(harness, f"{layout.report_prefix}{filename}")) is not None
    }
    manifest = _s3_json(harness, layout.manifest)
    promoted = _model_parameter(harness)
    details: dict[str, Any] = {
        "command": "make simulate (python -m simulation)",
        "execution": execution.arn,
        "status": execution.status,
        "training examples requested": settings["num_examples"],
        "held-out examples requested": settings["eval_examples"],
        "seed": settings["seed"],
        "shard size": options.shard_size,
        "real sleep per simulated call": f"{options.time_scale:g} × its simulated latency",
        "simulated model answers": dict(models.answers),
        "synth time (s)": round(synth_s, 1),
        "execution time (s)": round(run_s, 1),
    }
    files = write_outputs(options.out_dir, report=report, charts=charts, manifest=manifest, details=details)
    result = SimulationResult(
        status=execution.status,
        execution=execution,
        run_id=run_id,
        report=json.loads(files["report.json"].read_text()),
        files=files,
        notifications=harness.notifications(),
        promoted_model=promoted,
        answers={role: models.answers.get(role, 0) for role in ROLES},
        synth_s=synth_s,
        run_s=run_s,
        wall_s=time.perf_counter() - wall_started,
        details=details,
    )
    if execution.status != "SUCCEEDED":
        raise SimulationFailed(f"execution {execution.status}: {execution.error}: {execution.cause}", result)
    return result


def _retrain_on(harness: PipelineHarness, path: Path, say: Callable[[str], None]) -> tuple[str, str]:
    """Deliver ``path`` as yesterday's captured traffic, compact it and run the scheduled retraining now; the
    execution it started (ARN, name), or :class:`RetrainingSkipped` with its reason."""
    body, routes = firehose_object(path)
    now = datetime.now(UTC)
    day = (now - timedelta(days=1)).date()
    key = f"{captured_raw_prefix(day)}simulated-capture.gz"
    boto3.client("s3", region_name=REGION).put_object(Bucket=harness.bucket, Key=key, Body=body)
    say(
        f"Delivered {routes} lines of routed queries from {path} as captured traffic of {day} (s3://{harness.bucket}/{key})"
    )
    compacted = harness.call(_COMPACT, {"date": day.isoformat()})
    malformed = ", ".join(f"{n} {reason}" for reason, n in compacted["malformed"].items()) or "none"
    say(f"Compacted: {compacted['queries']} distinct queries, {compacted['records']} routes (malformed: {malformed})")
    decided = harness.call(_RETRAIN, {"scheduled_time": now.replace(microsecond=0).isoformat()})
    if decided["status"] != "start":
        raise RetrainingSkipped(f"{decided['status']}: {decided['explanation']} (here: --min-new-queries)")
    arn = str(decided["execution_arn"])
    say(f"Scheduled retraining: {decided['explanation']} Started {arn.rsplit(':', 1)[-1]}")
    return arn, arn.rsplit(":", 1)[-1]


def _s3_bytes(harness: PipelineHarness, key: str) -> bytes | None:
    try:
        body = boto3.client("s3", region_name=REGION).get_object(Bucket=harness.bucket, Key=key)["Body"]
    except Exception:  # a missing object (the run failed before writing it) is reported as absent
        return None
    return bytes(body.read())


def _s3_json(harness: PipelineHarness, key: str) -> dict[str, Any] | None:
    body = _s3_bytes(harness, key)
    return json.loads(body) if body is not None else None
