"""Cold start: a fresh process importing a handler and answering its first request, the router function against
a minimal boto3 handler doing the published reference's work (``benchmarks/minimal_handler.py``).

Each run is a new interpreter (``python -c``) that imports the handler module, calls it once with the API
Gateway event ``tests/events/router_post.json`` and exits at once (``os._exit``: Lambda never tears a process
down between the init and the first answer, so neither does the benchmark). Both handlers reach "AWS" over
HTTP on the loopback through their real boto3 clients (``AWS_ENDPOINT_URL_*``): a local server that answers
SSM ``GetParameter`` and Bedrock ``Converse`` / ``ConverseStream``, and refuses any request botocore's service
model does not accept (so a wrong parameter fails the benchmark instead of being timed). The router runs with
the environment the stack gives it (``infra.routing_api.router_environment`` from ``cdk.json``) and in Lambda
mode (``LAMBDA_TASK_ROOT`` and a trace header set: the tracer patches botocore and records segments, sent over
UDP to nowhere). A run whose answer did not come from the model (``source`` other than ``model``) stops the
benchmark: a fallback would be timed instead.

The runs alternate (router, minimal, router, ...) after a warm-up of each, so the ratio of each pair holds when
the shared machine's speed drifts; the figures quoted are medians over the runs and the median of the pairs'
ratios:

- ``process wall``: spawn to exit, as the parent sees it (the interpreter's own start included, the same for
  both);
- ``import + first request``: measured inside the child, from before the handler's import to its first answer;
- ``cpu``: user + system seconds of the child (``wait4``): what a Lambda's vCPU share has to supply, which the
  memory sizing projects (``memory_projection``);
- ``peak rss``: the child's maximum resident set.

Both handlers import from bytecode: the router's package is compiled first (:func:`compile_router_package`), as
site-packages already is. (In Lambda neither the function's asset nor the SDK layer carries ``.pyc`` files today:
``infra/lambda_factory.ASSET_EXCLUDES``, ``infra/layers._PRUNE``; see the README's "Cold start".)

Run from the repository root::

    .venv/bin/python -m benchmarks.cold_start [--runs 9]

:func:`cold_start_ratio` returns the figures for other benchmarks (``benchmarks.router_overhead``).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = ROOT / "lambdas"
EVENT = ROOT / "tests" / "events" / "router_post.json"
ROUTER = "search_router.handlers.router_api"
MINIMAL = "benchmarks.minimal_handler"
PARAMETER = "/benchmark/router/promoted-model"
MODEL = "us.amazon.nova-micro-v1:0"
ANSWER = '{"visual":0.7,"audio":0.1,"transcription":0.1,"metadata":0.1,"reasoning":"Mostly what is seen."}'
CHARS_PER_EVENT = 4
DEFAULT_RUNS = 9
MIN_RUNS = 7
TARGET_RATIO = 1.4
# Lambda gives a function CPU in proportion to its memory; 1,769 MB is one full vCPU (Lambda developer guide).
MB_PER_VCPU = 1769
MEMORY_SIZES_MB = (256, 512, 768, 1024, 1536, 1769)

# The child: import the handler, answer one event, report its own timings to a file (stdout is the handler's
# log and metrics stream), exit without tearing down.
CHILD = r"""
import importlib, json, os, sys, time
started = time.perf_counter()
module_name, event_path, result_path = sys.argv[1:4]
handler = importlib.import_module(module_name).lambda_handler
imported = time.perf_counter()
class Context:
    function_name = "router"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:router"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    def get_remaining_time_in_millis(self):
        return 10000
with open(event_path, encoding="utf-8") as f:
    event = json.load(f)
response = handler(event, Context())
answered = time.perf_counter()
with open("/proc/self/status", encoding="ascii") as f:  # VmHWM: this program's peak (reset by exec, unlike wait4's)
    peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
with open(result_path, "w", encoding="utf-8") as f:
    timings = {"import_s": imported - started, "total_s": answered - started, "peak_kb": peak_kb}
    json.dump({**timings, "response": response}, f)
sys.stdout.flush()
os._exit(0)
"""


# The router's cold start in stages, in one process and in the order its init runs them (each stage costs what the
# earlier ones did not already load): where the time goes. The handler is imported without Lambda's function name
# (no init at import), then the init's parts run one by one; the last stage is not the router's: a client of
# botocore's full SSM model, for comparison with the trimmed one the router makes.
STAGES: tuple[tuple[str, str], ...] = (
    ("boto3 + botocore", "import boto3"),
    ("Powertools logger and metrics", "from aws_lambda_powertools import Logger, Metrics; Logger(); Metrics()"),
    (
        "Powertools tracer (X-Ray SDK import, botocore patched)",
        "from aws_lambda_powertools import Tracer; Tracer(patch_modules=('botocore',))",
    ),
    (
        "the router's modules (no pydantic)",
        "name = os.environ.pop('AWS_LAMBDA_FUNCTION_NAME'); from search_router.handlers import router_api as api",
    ),
    (
        "the router's settings and service (init)",
        "from search_router.router.settings import load_settings; settings = load_settings(os.environ); "
        "service = api.build_service(settings)",
    ),
    (
        "bedrock-runtime client, trimmed model (the session's first)",
        "api.router_client('bedrock-runtime', settings)",
    ),
    ("ssm client, trimmed model", "api.router_client('ssm', settings)"),
    (
        "the rest of the init (SnapStart hook, gc.freeze)",
        "os.environ['AWS_LAMBDA_FUNCTION_NAME'] = name; api.initialize_container(os.environ)",
    ),
    ("(for comparison, not the router's) ssm client, botocore's full model", "boto3.client('ssm')"),
)
BREAKDOWN_CHILD = r"""
import json, os, sys, time
stages, result_path = json.loads(sys.argv[1]), sys.argv[2]
marks = [time.perf_counter()]
for code in stages:
    exec(code)
    marks.append(time.perf_counter())
with open(result_path, "w", encoding="utf-8") as f:
    json.dump([b - a for a, b in zip(marks, marks[1:])], f)
os._exit(0)
"""


@dataclass(frozen=True)
class RunFigures:
    """One fresh process: seconds (wall as the parent saw it; import and import + first request inside it),
    CPU seconds, peak resident set in MB."""

    wall_s: float
    import_s: float
    total_s: float
    cpu_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class Summary:
    """Medians over the runs of one handler."""

    wall_s: float
    import_s: float
    total_s: float
    cpu_s: float
    peak_rss_mb: float

    @classmethod
    def of(cls, runs: list[RunFigures]) -> Summary:
        def median(name: str) -> float:
            return statistics.median(getattr(run, name) for run in runs)

        return cls(*(median(name) for name in ("wall_s", "import_s", "total_s", "cpu_s", "peak_rss_mb")))


@dataclass(frozen=True)
class ColdStartFigures:
    """The router's and the minimal handler's medians and the medians of the pairs' ratios (router / minimal)."""

    runs: int
    router: Summary
    minimal: Summary
    ratio_wall: float
    ratio_total: float
    ratio_cpu: float

    @property
    def meets_target(self) -> bool:
        return self.ratio_total <= TARGET_RATIO


# --------------------------------------------------------------------------------------------------------------
# The local AWS endpoint
# --------------------------------------------------------------------------------------------------------------
def _event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One message of the AWS event stream encoding (``application/vnd.amazon.eventstream``)."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        encoded = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(encoded)) + encoded
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


def _stream_body() -> bytes:
    chunks = [ANSWER[i : i + CHARS_PER_EVENT] for i in range(0, len(ANSWER), CHARS_PER_EVENT)]
    events = [_event_message("messageStart", {"role": "assistant"})]
    events += [_event_message("contentBlockDelta", {"delta": {"text": c}, "contentBlockIndex": 0}) for c in chunks]
    events.append(_event_message("messageStop", {"stopReason": "end_turn"}))
    return b"".join(events)


class _Endpoint:
    """What the handlers call, validated against botocore's service models (the parent process only)."""

    def __init__(self, parameter_value: str) -> None:
        import botocore.session
        from botocore.validate import validate_parameters

        session = botocore.session.get_session()
        self._runtime = session.get_service_model("bedrock-runtime")
        self._ssm = session.get_service_model("ssm")
        self._validate = validate_parameters
        self.parameter_value = parameter_value
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def answer(self, path: str, target: str | None, body: dict[str, Any]) -> tuple[int, str, bytes]:
        if target == "AmazonSSM.GetParameter":
            self._check(self._ssm, "GetParameter", body)
            value = {"Parameter": {"Name": body["Name"], "Type": "String", "Value": self.parameter_value, "Version": 1}}
            return 200, "application/x-amz-json-1.1", json.dumps(value).encode()
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "model" and parts[2] in ("converse", "converse-stream"):
            stream = parts[2] == "converse-stream"
            self._check(self._runtime, "ConverseStream" if stream else "Converse", {**body, "modelId": parts[1]})
            if stream:
                return 200, "application/vnd.amazon.eventstream", _stream_body()
            message = {"role": "assistant", "content": [{"text": ANSWER}]}
            usage = {"inputTokens": 200, "outputTokens": 30, "totalTokens": 230}
            answer = {"output": {"message": message}, "stopReason": "end_turn", "usage": usage}
            return 200, "application/json", json.dumps(answer).encode()
        raise ValueError(f"the benchmark's endpoint does not serve {path} (target {target})")

    def _check(self, model: Any, operation: str, params: dict[str, Any]) -> None:
        self._validate(params, model.operation_model(operation).input_shape)  # raises ParamValidationError
        with self._lock:
            self.requests.append(operation)


@contextmanager
def _serving(endpoint: _Endpoint) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                target = self.headers.get("X-Amz-Target")
                status, content_type, body = endpoint.answer(self.path, target, json.loads(raw))
            except Exception as error:  # a request the service model refuses: the handler sees a 400 and fails
                status, content_type = 400, "application/json"
                body = json.dumps({"__type": "ValidationException", "message": str(error)}).encode()
                endpoint.requests.append(f"refused: {error}")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------------------------------------------
# The environments
# --------------------------------------------------------------------------------------------------------------
def _router_function_environment() -> tuple[dict[str, str], str]:
    """The router function's environment as the stack writes it (``cdk.json``), and its promotion parameter."""
    sys.path[:0] = [str(LAMBDAS), str(ROOT)]
    from infra.config import load_config
    from infra.routing_api import router_environment
    from search_router.contract.environment import CommonEnvironment
    from search_router.contract.promotion import PromotionDocument
    from search_router.shared.prompts import PromptKind

    config = load_config()
    environment = {
        "POWERTOOLS_SERVICE_NAME": "router_api",
        "POWERTOOLS_METRICS_NAMESPACE": "Benchmark",
        **CommonEnvironment(channels=config.channels.to_json()).to_environment(),
        **router_environment(config, PARAMETER, partition="aws", region="us-east-1", account_id="123456789012"),
    }
    promotion = PromotionDocument(model_id=MODEL, prompt_kind=PromptKind.TEACHER, channels=list(config.channels.names))
    return environment, promotion.to_parameter()


def _lambda_environment(endpoint_url: str, router: dict[str, str]) -> dict[str, str]:
    """What Lambda sets for a function (in the parts that change what the code does), the fake endpoint, and
    the router's own settings (harmless to the minimal handler, which reads none of them)."""
    blocked_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocked_udp.bind(("127.0.0.1", 0))
    xray_port = blocked_udp.getsockname()[1]
    blocked_udp.close()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    return {
        **keep,
        "PYTHONPATH": os.pathsep.join([str(LAMBDAS), str(ROOT)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "benchmark",
        "AWS_SECRET_ACCESS_KEY": "benchmark",
        "AWS_SESSION_TOKEN": "benchmark",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": endpoint_url,
        "AWS_ENDPOINT_URL_SSM": endpoint_url,
        "LAMBDA_TASK_ROOT": str(LAMBDAS),
        "AWS_LAMBDA_FUNCTION_NAME": "router",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "_X_AMZN_TRACE_ID": "Root=1-6747a1b0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{xray_port}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "MINIMAL_MODEL_ID": MODEL,
        **router,
    }


# --------------------------------------------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------------------------------------------
def _run_once(module: str, environment: dict[str, str], scratch: Path) -> RunFigures:
    result_path = scratch / "result.json"
    result_path.unlink(missing_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, module, str(EVENT), str(result_path)],
        env=environment,
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    stderr = process.stderr.read()  # read before reaping: a full pipe would block the child
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"{module} failed (exit {process.returncode}): {stderr.decode(errors='replace')[-2000:]}")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    _check_answer(module, result["response"])
    return RunFigures(
        wall_s=wall,
        import_s=result["import_s"],
        total_s=result["total_s"],
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=result["peak_kb"] / 1024,
    )


def _check_answer(module: str, response: dict[str, Any]) -> None:
    """The first request must have been answered by the (fake) model, never by a fallback."""
    body = json.loads(response.get("body") or "{}")
    if response.get("statusCode") != 200:
        raise RuntimeError(f"{module} answered {response.get('statusCode')}: {body}")
    if module == ROUTER and body.get("source") != "model":
        raise RuntimeError(f"the router did not answer from the model (source {body.get('source')!r}): {body}")
    if module == MINIMAL and set(body) != {"visual", "audio", "transcription", "metadata", "reasoning"}:
        raise RuntimeError(f"the minimal handler answered {body}")


def compile_router_package() -> None:
    """Bytecode for the router's package, as site-packages (boto3, Powertools) already has it: the children do
    not write any (``PYTHONDONTWRITEBYTECODE``), so a module edited since its last import would otherwise be
    compiled from source in every run, a cost the minimal handler's imports never pay."""
    if not compileall.compile_dir(str(LAMBDAS / "search_router"), quiet=1):
        raise RuntimeError("the router's package does not compile")


def cold_start_ratio(runs: int = DEFAULT_RUNS, warmup: int = 1) -> ColdStartFigures:
    """The router's cold start against the minimal handler's: ``runs`` fresh processes of each (at least
    :data:`MIN_RUNS`), alternating, after ``warmup`` uncounted runs of each."""
    if runs < MIN_RUNS:
        raise ValueError(f"runs must be at least {MIN_RUNS} (got {runs})")
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more (got {warmup})")
    compile_router_package()
    router_environment, parameter_value = _router_function_environment()
    endpoint = _Endpoint(parameter_value)
    figures: dict[str, list[RunFigures]] = {ROUTER: [], MINIMAL: []}
    with _serving(endpoint) as url, tempfile.TemporaryDirectory() as scratch:
        environment = _lambda_environment(url, router_environment)
        for index in range(warmup + runs):
            for module in (ROUTER, MINIMAL):
                run = _run_once(module, environment, Path(scratch))
                if index >= warmup:
                    figures[module].append(run)
    refused = [r for r in endpoint.requests if r.startswith("refused")]
    if refused:
        raise RuntimeError(f"requests refused by the service model: {refused}")
    pairs = list(zip(figures[ROUTER], figures[MINIMAL], strict=True))

    def ratio(name: str) -> float:
        return statistics.median(getattr(a, name) / getattr(b, name) for a, b in pairs)

    return ColdStartFigures(
        runs=runs,
        router=Summary.of(figures[ROUTER]),
        minimal=Summary.of(figures[MINIMAL]),
        ratio_wall=ratio("wall_s"),
        ratio_total=ratio("total_s"),
        ratio_cpu=ratio("cpu_s"),
    )


def cold_start_breakdown(runs: int = DEFAULT_RUNS) -> list[tuple[str, float]]:
    """The median seconds of each of :data:`STAGES` over ``runs`` fresh processes (Lambda's environment, no
    request: the first request is :func:`cold_start_ratio`'s ``total_s - import_s``)."""
    compile_router_package()
    router_environment, _ = _router_function_environment()
    environment = _lambda_environment("http://127.0.0.1:9", router_environment)  # nothing is called
    samples: list[list[float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        result_path = Path(scratch) / "stages.json"
        for _ in range(runs):
            codes = json.dumps([code for _, code in STAGES])
            subprocess.run(
                [sys.executable, "-c", BREAKDOWN_CHILD, codes, str(result_path)],
                env=environment,
                cwd=str(ROOT),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            samples.append(json.loads(result_path.read_text(encoding="utf-8")))
    return [(label, statistics.median(run[i] for run in samples)) for i, (label, _) in enumerate(STAGES)]


def recommended_memory_mb(cpu_s: float, budget_ms: int) -> int:
    """The smallest of :data:`MEMORY_SIZES_MB` whose projected cold start takes at most half the router's time
    budget (``router_timeout_ms``): room for a CPU slower than the one measured on. The router's per-request
    work is under a millisecond of CPU (``benchmarks.router_overhead``) and a request's duration is the model's
    wait, so memory beyond this buys warm requests nothing and raises the GB-second price of every wait."""
    for size, seconds in memory_projection(cpu_s):
        if seconds * 1000 <= budget_ms / 2:
            return size
    return MEMORY_SIZES_MB[-1]


def memory_projection(cpu_s: float, sizes_mb: tuple[int, ...] = MEMORY_SIZES_MB) -> list[tuple[int, float]]:
    """The cold start's CPU seconds, measured here, as seconds at each memory size: a single-threaded cold
    start on ``size / 1769`` of a vCPU (capped at one). Machine speed differs; the proportions hold."""
    return [(size, cpu_s * MB_PER_VCPU / min(size, MB_PER_VCPU)) for size in sizes_mb]


def format_figures(figures: ColdStartFigures) -> list[str]:
    """The table ``main`` prints (and ``benchmarks.router_overhead`` may print beside its own)."""
    header = f"{'cold start (median of ' + str(figures.runs) + ')':34} {'router':>10} {'minimal':>10} {'ratio':>7}"
    rows = [header, "-" * len(header)]
    for label, name, unit, scale, ratio in (
        ("import + first request", "total_s", "ms", 1000, figures.ratio_total),
        ("  of which import", "import_s", "ms", 1000, None),
        ("process wall (spawn to exit)", "wall_s", "ms", 1000, figures.ratio_wall),
        ("cpu (user + sys)", "cpu_s", "ms", 1000, figures.ratio_cpu),
        ("peak rss", "peak_rss_mb", "MB", 1, None),
    ):
        a, b = getattr(figures.router, name) * scale, getattr(figures.minimal, name) * scale
        shown = f"{ratio:6.2f}x" if ratio is not None else ""
        rows.append(f"{label:34} {a:8.1f}{unit} {b:8.1f}{unit} {shown:>7}")
    verdict = "meets" if figures.meets_target else "misses"
    rows.append(f"import + first request ratio {figures.ratio_total:.2f}x {verdict} the target <= {TARGET_RATIO}x")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"counted runs of each (>= {MIN_RUNS})")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs of each, first")
    parser.add_argument("--breakdown", action="store_true", help="also time the router's cold start in stages")
    args = parser.parse_args(argv)
    figures = cold_start_ratio(args.runs, args.warmup)
    print("\n".join(format_figures(figures)))
    first_request = figures.router.total_s - figures.router.import_s
    minimal_first = figures.minimal.total_s - figures.minimal.import_s
    print(
        f"first request after init (what a SnapStart restore leaves): router {first_request * 1000:.1f} ms, "
        f"minimal {minimal_first * 1000:.1f} ms"
    )
    if args.breakdown:
        print(f"\nrouter cold start in stages (median of {args.runs}, one process, import order):")
        for label, seconds in cold_start_breakdown(args.runs):
            print(f"  {label:66} {seconds * 1000:7.1f} ms")
    print("\nrouter cold start projected by memory size (measured cpu x 1769 MB / memory, capped at one vCPU):")
    for size, seconds in memory_projection(figures.router.cpu_s):
        print(f"  {size:5d} MB  {seconds * 1000:7.0f} ms")
    sys.path[:0] = [str(LAMBDAS), str(ROOT)]
    from infra.config import load_config

    config = load_config()
    budget = config.router.timeout_ms
    recommended = recommended_memory_mb(figures.router.cpu_s, budget)
    print(
        f"smallest size with a projected cold start <= half of router_timeout_ms ({budget} ms): {recommended} MB "
        f"(router_memory_mb is {config.router.memory_mb} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
