"""Cold start of each function, and the memory a 100,000-entry manifest takes, loaded the way
Lambda loads them.

Cold import: each function's app.py imported in a fresh interpreter (median of `--runs`, 10 by
default, the functions and the naive floor taking turns), module-scope construction included
(Settings, boto3 clients, Powertools, the X-Ray recorder), no network I/O (boto3 clients connect
on first use). The interpreter sees what the function sees in Lambda: `python -S` with only the
layer's packages (pip-installed from layers/gateway/requirements.txt into .local/bench/layer,
with pip's bytecode) and our package copied without bytecode (SAM copies sources; /opt is
read-only, so Lambda compiles them on every cold start); Lambda's environment variables with
tracing on (template: `Tracing: Active`, LAMBDA_TASK_ROOT set). The naive floor (issue 15) is a
handler importing boto3, httpx, pydantic and Powertools' Logger, Metrics, Tracer, REST resolver
and parameters, and nothing else; each function prints `cold_start <function> <ms> floor <ms>
ratio <r>`. Also shown: the same with our package precompiled, and where the time goes (one `-X
importtime` run, self time by package; what is left is module-scope construction).

First request: init and then the sample create-session event in fresh environments of the
session function (median of `--runs`), against moto server and the Cloudflare emulator run by
this process, traced as in Lambda: `first_request session_api <ms> (init <ms>, first request
<ms>; status <s>)`. What init leaves to the first request (deferred work) shows there.

Memory: the session function, in its own process, handles a 100,000-entry manifest (gzip, as
the API door requires) against moto server and the Cloudflare emulator run by this process:
peak RSS (what Lambda reports as Max Memory Used) and tracemalloc's peak during the call.

When the layer cannot be installed (no network, no pip cache) the venv stands in, with every
package it has: figures then say so. Prints figures; asserts nothing.

    .venv/bin/python bench/cold_start.py [--runs N] [--cold-only]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from bench_support import manifest_body, roomy_policy
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.stack import LocalStack, StackOptions

LAYER_SOURCE = REPO_ROOT / "layers" / "gateway"
LAYER_REQUIREMENTS = LAYER_SOURCE / "requirements.txt"
LAYER_MAKEFILE = LAYER_SOURCE / "Makefile"
LAYER_DIR = REPO_ROOT / ".local" / "bench" / "layer"
FUNCTIONS = {
    name: REPO_ROOT / "functions" / name / "app.py"
    for name in ("session_api", "manifest_events", "deploy_api", "admin_api")
}
# The naive floor (issue 15): a handler that imports the libraries every function uses, and
# nothing else. Measured the same way as the functions, interleaved with them.
FLOOR = "floor"
FLOOR_SOURCE = """
import boto3
import httpx
import pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities import parameters
"""
# What Lambda and template.yaml set; the names are dummies (nothing is called at import).
LAMBDA_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": "assets-gateway-bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "POWERTOOLS_SERVICE_NAME": "assets-gateway",
    "POWERTOOLS_METRICS_NAMESPACE": "AssetsGateway",
    "CONTROL_TABLE_NAME": "bench-control",
    "QUOTA_TABLE_NAME": "bench-quota",
    "CLOUDFLARE_TOKEN_SECRET_ID": "bench-token",
    "MANIFEST_BUCKET_NAME": "bench-manifests",
    "IDEMPOTENCY_TABLE_NAME": "bench-control",
    "DECISIONS_TABLE_NAME": "bench-decisions",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}
# Peak RSS of this process image: /proc's VmHWM (Linux, as Lambda); getrusage's ru_maxrss would
# also count the parent's pages at fork time.
PEAK_RSS = """
def peak_rss_kb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
IMPORT_PROBE = (
    PEAK_RSS
    + """
import json, sys, time
started = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = (time.perf_counter() - started) * 1000
sys.stderr.write("\\nBENCH " + json.dumps({"ms": elapsed, "rss_kb": peak_rss_kb()}) + "\\n")
"""
)
LAMBDA_CONTEXT = """
class Context:
    function_name = "session-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:session-api"
    memory_limit_in_mb = 512
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/session-api"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 25_000
"""
MEMORY_PROBE = (
    PEAK_RSS
    + LAMBDA_CONTEXT
    + """
import json, sys, time, tracemalloc
import importlib.util
app_path, event_path, result_path, trace = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("app", app_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
after_import_kb = peak_rss_kb()
with open(event_path) as source:  # as the runtime hands it over: JSON parsed into a dict
    event = json.load(source)

before_kb = peak_rss_kb()
if trace == "trace":  # tracemalloc's own records take memory: RSS is read from the other run
    tracemalloc.start()
started = time.perf_counter()
result = module.lambda_handler(event, Context())
elapsed = (time.perf_counter() - started) * 1000
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
with open(result_path, "w") as out:
    json.dump({
        "status": result["statusCode"],
        "ms": elapsed,
        "after_import_kb": after_import_kb,
        "before_call_kb": before_kb,
        "peak_kb": peak_rss_kb(),
        "traced_peak_bytes": peak,
        "body_gzip_bytes": len(event["body"]) * 3 // 4,
        "answer_bytes": len(result["body"]),
    }, out)
"""
)

# Init and the first request of a fresh environment: what a cold invocation costs in all, so a
# cost moved from init into the first request shows here (the event is read before the clock
# starts, as the runtime reads it before it calls the handler).
FIRST_REQUEST_PROBE = (
    LAMBDA_CONTEXT
    + """
import json, sys, time
import importlib.util
app_path, event_path = sys.argv[1:3]
with open(event_path) as source:
    event = json.load(source)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", app_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
initialised = time.perf_counter()
result = module.lambda_handler(event, Context())
answered = time.perf_counter()
sys.stderr.write("\\nBENCH " + json.dumps({
    "init_ms": (initialised - started) * 1000,
    "request_ms": (answered - initialised) * 1000,
    "status": result["statusCode"],
}) + "\\n")
"""
)
SESSION_EVENT = REPO_ROOT / "events" / "session_api" / "create_session.json"
# The trace header Lambda sets for a sampled invocation: the X-Ray SDK records the first request
# as in Lambda (the deferred tracer loads the SDK then).
TRACE_HEADER = "Root=1-6b06abb5-fc8d2c10f2f68f32dac78f21;Parent=53995c3f42cd8ad8;Sampled=1"


def make_layer(target: str, artifacts: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """A target of the layer's Makefile (what `sam build` runs), with this interpreter."""
    assigned = {"ARTIFACTS_DIR": str(artifacts), "PYTHON": sys.executable, **variables}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(LAYER_SOURCE), target]
        + [f"{name}={value}" for name, value in assigned.items()],
        capture_output=True,
        text=True,
        check=False,
    )


def layer_site() -> tuple[list[str], str]:
    """(interpreter arguments, what they stand for): the layer as `sam build` makes it (its
    Makefile, for this machine's platform) when it can be built, else the venv's packages."""
    stamp = hashlib.sha256(
        LAYER_REQUIREMENTS.read_bytes() + LAYER_MAKEFILE.read_bytes()
    ).hexdigest()
    marker = LAYER_DIR / ".layer-sha256"
    if not (marker.exists() and marker.read_text() == stamp):
        shutil.rmtree(LAYER_DIR, ignore_errors=True)
        built = make_layer(
            "build-GatewayLayer", LAYER_DIR, PLATFORM=f"manylinux2014_{platform.machine()}"
        )
        if built.returncode != 0:
            return [], "the venv (the layer could not be built: every venv package visible)"
        marker.write_text(stamp)
    return ["-S"], "the layer as sam build makes it (its Makefile), alone (python -S), as in Lambda"


class Environment:
    """A Lambda-like filesystem: the function's code, the layer, our package without bytecode."""

    def __init__(self, root: Path, interpreter_args: list[str]) -> None:
        self.root = root
        self.ours = root / "python"
        for package in ("assets_gateway", "assets_gateway_common"):
            shutil.copytree(
                REPO_ROOT / "layers" / "gateway" / package,
                self.ours / package,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        self.interpreter_args = interpreter_args
        self.apps = {}
        for name, path in [*FUNCTIONS.items(), (FLOOR, None)]:
            task = root / "task" / name
            task.mkdir(parents=True)
            self.apps[name] = task / "app.py"
            if path is None:
                self.apps[name].write_text(FLOOR_SOURCE)
            else:
                shutil.copy(path, self.apps[name])

    def compile_as_shipped(self) -> None:
        """Our packages compiled as the layer's build compiles them."""
        make_layer("compile-layer", self.root).check_returncode()

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        layer = LAYER_DIR / "python"
        site = [str(self.ours), str(layer)] if self.interpreter_args else [str(self.ours)]
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join(site),
            "PYTHONDONTWRITEBYTECODE": "1",
            **extra,
        }

    def run(
        self, app: str, probe: str, *args: str, extra: dict[str, str], importtime: bool = False
    ) -> subprocess.CompletedProcess[str]:
        flags = [*self.interpreter_args, *(["-X", "importtime"] if importtime else [])]
        # Lambda's task root: Powertools' Tracer is on only where it is set (as in Lambda).
        lambda_task = {"LAMBDA_TASK_ROOT": str(self.apps[app].parent)}
        return subprocess.run(
            [sys.executable, *flags, "-c", probe, str(self.apps[app]), *args],
            env=self.env({**lambda_task, **extra}),
            capture_output=True,
            text=True,
            check=True,
            cwd=self.root,
        )


def bench_line(stderr: str) -> dict[str, float]:
    """What a probe reported (its `BENCH {...}` line)."""
    line = next(row for row in stderr.splitlines() if row.startswith("BENCH "))
    reported: dict[str, float] = json.loads(line.removeprefix("BENCH "))
    return reported


def cold_imports(environment: Environment, apps: list[str], runs: int) -> dict[str, ColdImport]:
    """Each app's module imported in `runs` fresh interpreters, the apps taking turns (so a
    burst of load on the shared machine weighs on all of them alike): medians per app."""
    samples: dict[str, list[dict[str, float]]] = {app: [] for app in apps}
    for _ in range(runs):
        for app in apps:
            stderr = environment.run(app, IMPORT_PROBE, extra=LAMBDA_ENVIRONMENT).stderr
            samples[app].append(bench_line(stderr))
    return {
        app: ColdImport(
            ms=statistics.median(s["ms"] for s in rows),
            rss_mb=statistics.median(s["rss_kb"] for s in rows) / 1024,
        )
        for app, rows in samples.items()
    }


class ColdImport(NamedTuple):
    ms: float
    rss_mb: float


class FirstRequest(NamedTuple):
    """Medians over fresh environments of the session function, in ms; the statuses seen."""

    init_ms: float
    request_ms: float
    total_ms: float
    statuses: list[int]


@contextlib.contextmanager
def roomy_stack() -> Iterator[LocalStack]:
    """The local stack (moto server, the Cloudflare emulator) with quotas that never refuse."""
    with contextlib.redirect_stdout(io.StringIO()):
        stack = LocalStack(StackOptions(gateway_port=0))
        stack.publish_policy(roomy_policy(), reason="bench: quotas that never refuse")
    try:
        yield stack
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            stack.stop()


def first_requests(environment: Environment, stack: LocalStack, runs: int) -> FirstRequest:
    """The session function in `runs` fresh environments: init, then the sample create-session
    event (a session admitted: policy, quota and token read, Cloudflare called), traced."""
    extra = {**LAMBDA_ENVIRONMENT, **stack.handler_environment(), "_X_AMZN_TRACE_ID": TRACE_HEADER}
    extra.pop("POWERTOOLS_TRACE_DISABLED")  # on, as in Lambda
    rows = [
        bench_line(
            environment.run(
                "session_api", FIRST_REQUEST_PROBE, str(SESSION_EVENT), extra=extra
            ).stderr
        )
        for _ in range(runs)
    ]
    return FirstRequest(
        init_ms=statistics.median(row["init_ms"] for row in rows),
        request_ms=statistics.median(row["request_ms"] for row in rows),
        total_ms=statistics.median(row["init_ms"] + row["request_ms"] for row in rows),
        statuses=sorted({int(row["status"]) for row in rows}),
    )


PACKAGE_GROUPS = {
    "AWS SDK (boto3, botocore, s3transfer…)": (
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "dateutil",
        "urllib3",
        "six",
    ),
    "X-Ray SDK (+ its own botocore client)": ("aws_xray_sdk", "wrapt"),
    "Powertools": ("aws_lambda_powertools",),
    "pydantic": ("pydantic", "pydantic_core", "annotated_types", "typing_inspection"),
    "httpx stack": ("httpx", "httpcore", "h11", "anyio", "idna", "certifi", "sniffio"),
    "msgspec": ("msgspec",),
    "assets_gateway (ours)": ("assets_gateway", "assets_gateway_common"),
}


def import_breakdown(environment: Environment, app: str) -> dict[str, float]:
    """Self time by package group in one `-X importtime` run, in ms."""
    stderr = environment.run(app, IMPORT_PROBE, extra=LAMBDA_ENVIRONMENT, importtime=True).stderr
    groups: dict[str, float] = defaultdict(float)
    total = 0.0
    for line in stderr.splitlines():
        if line.startswith("BENCH "):
            total = json.loads(line.removeprefix("BENCH "))["ms"]
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        top = name.strip().split(".")[0]
        group = next((g for g, tops in PACKAGE_GROUPS.items() if top in tops), "stdlib, other")
        groups[group] += int(self_us) / 1000
    groups["module-scope construction (clients…)"] = total - sum(groups.values())
    return dict(groups)


def large_event(path: Path) -> None:
    """The sample API event carrying a 100,000-entry manifest, gzip-compressed."""
    body = gzip.compress(manifest_body(100_000))
    event = json.loads((REPO_ROOT / "events" / "session_api" / "create_session.json").read_text())
    for field in ("headers", "multiValueHeaders"):
        event[field].pop("Content-Length", None)
    event["headers"]["Content-Encoding"] = "gzip"
    event["multiValueHeaders"]["Content-Encoding"] = ["gzip"]
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    path.write_text(json.dumps(event))


def memory_at_100k(environment: Environment, stack: LocalStack) -> dict[str, Any]:
    result_path = environment.root / "memory.json"
    event_path = environment.root / "event-100k.json"
    large_event(event_path)
    results = []
    for trace in ("plain", "trace"):
        environment.run(
            "session_api",
            MEMORY_PROBE,
            str(event_path),
            str(result_path),
            trace,
            extra={**stack.handler_environment(), "POWERTOOLS_TRACE_DISABLED": "true"},
        )
        results.append(json.loads(result_path.read_text()))
    plain, traced = results
    plain["traced_peak_bytes"] = traced["traced_peak_bytes"]
    result: dict[str, Any] = plain
    return result


def print_targets(cold: dict[str, ColdImport], first: FirstRequest) -> None:
    print("\ntarget: ratio <= 1.0 for session_api and manifest_events (the layer as shipped)")
    floor = cold[FLOOR].ms
    for app in FUNCTIONS:
        ms = cold[app].ms
        print(f"cold_start {app} {ms:.0f} floor {floor:.0f} ratio {ms / floor:.2f}")
    print(
        f"first_request session_api {first.total_ms:.0f} (init {first.init_ms:.0f}, "
        f"first request {first.request_ms:.0f}; status {', '.join(map(str, first.statuses))})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--cold-only", action="store_true", help="only the cold_start lines (no memory run)"
    )
    args = parser.parse_args()
    interpreter_args, site = layer_site()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as temp:
        environment = Environment(Path(temp), interpreter_args)
        apps = [*FUNCTIONS, FLOOR]
        # First as the python3.13 build method shipped our packages (sources only), for the
        # record; then as the layer's Makefile ships them (bytecode): the targets.
        source = {} if args.cold_only else cold_imports(environment, apps, args.runs)
        # One local stack for the process (moto's state outlives a stopped stack).
        with roomy_stack() as stack:
            memory = None if args.cold_only else memory_at_100k(environment, stack)
            environment.compile_as_shipped()
            shipped = cold_imports(environment, apps, args.runs)
            first = first_requests(environment, stack, args.runs)
        breakdown = None if args.cold_only else import_breakdown(environment, "session_api")
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {python}")
    print(f"packages: {site}\n")
    if breakdown is None or memory is None:
        print_targets(shipped, first)
        return
    print(f"cold import, median of {args.runs} fresh interpreters")
    print(f"{'function':<18} {'shipped ms':>10} {'RSS MB':>8} {'ours from source ms':>20}")
    for app, (ms, rss) in shipped.items():
        print(f"{app:<18} {ms:>10.0f} {rss:>8.0f} {source[app].ms:>20.0f}")
    print_targets(shipped, first)
    print("\nsession_api, where the time goes (one -X importtime run, self time, ms):")
    for group, ms in sorted(breakdown.items(), key=lambda item: -item[1]):
        print(f"  {group:<46} {ms:>7.0f}")
    print("\n100,000-entry manifest through the session function (gzip body, 100k hashes back)")
    print(
        f"  status {memory['status']}; handler {memory['ms']:.0f} ms (moto, emulator on loopback)"
    )
    print(
        f"  peak RSS {memory['peak_kb'] / 1024:.0f} MB "
        f"(after import {memory['after_import_kb'] / 1024:.0f} MB, "
        f"with the event read {memory['before_call_kb'] / 1024:.0f} MB); "
        f"Python allocations peak during the call (tracemalloc, another run) "
        f"{memory['traced_peak_bytes'] / 2**20:.0f} MB"
    )
    print(
        f"  request body {memory['body_gzip_bytes'] / 2**20:.1f} MB gzip; "
        f"answer {memory['answer_bytes'] / 2**20:.1f} MB as returned (base64 of gzip)"
    )


if __name__ == "__main__":
    main()
