"""`assets-gateway upload` against `wrangler deploy` (pinned, through `assets-gateway wrangler --`)
on the same 5,000-file, ~100 MB folder, in the same run on the same local stack.

Each run uploads the folder once with each tool (the emulator forgets every stored file first,
so each sends everything), alternating the order so that a busy machine weighs on all alike:
`assets-gateway upload`; `wrangler deploy` through `assets-gateway wrangler --` (its session goes
through the gateway, its uploads through the local signing proxy), the target's peer; and
`wrangler deploy` straight at the emulator with a token, to show what the proxy costs wrangler.
All are real processes talking HTTP on loopback. A meter in front of the Cloudflare emulator
times every request it answers and counts its bytes (request and answer, headers included), so
every tool is measured by the same clock at the same place:

- upload phase: from the arrival of the upload-session call (each tool makes one) to the end of
  the last asset upload's answer; for wrangler this leaves out its start, bundling and the
  script upload and deployment that follow;
- requests and bytes: the session call and every upload call of that phase.

A fourth line times our client alone: the emulator answers each upload at once, unparsed, so
that phase is what the client itself costs (the emulator parses multipart and base64 in Python
under one GIL, in this process, on the same 2 cores).

Prints the medians of each tool and the ratio ours / wrangler through the gateway (target
≤ 0.8), and ours / wrangler straight; asserts nothing but that each tool uploaded every file.
The emulator closes every connection after its answer (werkzeug's development server), so no
tool reuses connections here; that weighs on all alike.

    .venv/bin/python bench/upload_vs_wrangler.py [--files N] [--runs N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upload import make_folder, quiet
from wrangler_deploy import (
    CLIENT,
    machine_line,
    straight_to_emulator,
    through_gateway,
    write_worker,
)

from gateway_local.aws_resources import REPO_ROOT
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import DEMO_ACCOUNT_ID
from gateway_local.stack import LocalStack, StackOptions

sys.path.insert(0, str(REPO_ROOT / "tests"))
from wrangler_cli import ConnectionTrap, run_wrangler

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SESSION_SUFFIX = "/assets-upload-session"
CLIENT_ALONE = "assets-gateway-alone"
UNPARSED = Fault(
    status=201,
    body=b'{"success":true,"errors":[],"messages":[],"result":{"jwt":"unparsed"}}',
    count=10**6,
    path_suffix="/workers/assets/upload",
)
UPLOAD_MARK = "/workers/assets/upload"
# wrangler as the brief runs it (through `assets-gateway wrangler --`: its uploads pass the local
# signing proxy), and straight at the emulator with a token (what wrangler alone costs).
# And our client alone: the emulator answers each upload at once without parsing it (it parses
# multipart and base64 in Python, one GIL, in this process), so the phase is what the client
# itself costs; wrangler cannot run that way (its script upload redeems the completion token).
TOOLS = ("assets-gateway", "wrangler", "wrangler-direct", CLIENT_ALONE)


@dataclass(frozen=True)
class Exchange:
    """One request the emulator answered: when, and its bytes as HTTP/1.1 carried them."""

    path: str
    started: float
    ended: float
    sent: int  # request line, headers and body
    answered: int  # status line, headers and body (the server's Date/Server lines aside)


class _CountingInput:
    """The request body stream, counting what the application reads of it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._stream.read(size)
        self.count += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self._stream.readline(size)
        self.count += len(data)
        return data


class WireMeter:
    """WSGI middleware in front of the emulator: an `Exchange` per request it answers."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    def take(self) -> list[Exchange]:
        """What was answered since the last call, in order of arrival."""
        with self._lock:
            taken, self._exchanges = self._exchanges, []
        return sorted(taken, key=lambda exchange: exchange.started)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        started = time.perf_counter()
        body = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = body
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        target = f"{path}?{query}" if query else path
        head = len(f"{environ['REQUEST_METHOD']} {target} HTTP/1.1\r\n\r\n")
        head += sum(len(name) + len(value) + 4 for name, value in _request_headers(environ))
        answer_head = 0

        def counting_start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            nonlocal answer_head
            answer_head = len(f"HTTP/1.1 {status}\r\n\r\n")
            answer_head += sum(len(name) + len(value) + 4 for name, value in headers)
            return start_response(status, headers, *rest)

        answer = self._app(environ, counting_start)
        answered = 0
        try:
            for chunk in answer:
                answered += len(chunk)
                yield chunk
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
            exchange = Exchange(
                path, started, time.perf_counter(), head + body.count, answer_head + answered
            )
            with self._lock:
                self._exchanges.append(exchange)


def _request_headers(environ: WSGIEnvironment) -> Iterator[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-"), str(value)


@dataclass(frozen=True)
class Phase:
    seconds: float
    requests: int
    bytes: int
    uploads: int
    wall_s: float


def upload_phase(exchanges: Iterable[Exchange], wall_s: float) -> Phase:
    """From the session call's arrival to the end of the last upload's answer."""
    seen = list(exchanges)
    sessions = [e for e in seen if e.path.endswith(SESSION_SUFFIX)]
    uploads = [e for e in seen if UPLOAD_MARK in e.path]
    if len(sessions) != 1 or not uploads:
        raise SystemExit(f"expected one session and uploads, saw {[e.path for e in seen]}")
    phase = [*sessions, *uploads]
    return Phase(
        seconds=max(e.ended for e in uploads) - sessions[0].started,
        requests=len(phase),
        bytes=sum(e.sent + e.answered for e in phase),
        uploads=len(uploads),
        wall_s=wall_s,
    )


def run_ours(
    stack: LocalStack, site: Path, script: str, env: dict[str, str], concurrency: int | None
) -> float:
    command = [
        str(CLIENT),
        "upload",
        str(site / "public"),
        "--account",
        DEMO_ACCOUNT_ID,
        "--script",
        script,
        "--json",
        "--quiet",
    ]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"assets-gateway upload exited {done.returncode}: {done.stderr!r}")
    result = json.loads(done.stdout)
    if result["already_uploaded"] != 0 or not result["jwt"]:
        raise SystemExit(f"assets-gateway upload did not send every file: {result}")
    return elapsed


def run_wrangler_deploy(site: Path, env: dict[str, str], launcher: list[str]) -> float:
    started = time.perf_counter()
    done = run_wrangler(["deploy"], cwd=site, env=env, launcher=launcher)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"wrangler exited {done.returncode}: {done.output[-2000:]}")
    return elapsed


def race(
    stack: LocalStack, meter: WireMeter, trap: ConnectionTrap, scratch: Path, args: Any
) -> dict[str, list[Phase]]:
    site = scratch / "site"
    gateway_env, launcher = through_gateway(stack)
    phases: dict[str, list[Phase]] = {tool: [] for tool in TOOLS}
    for run in range(args.runs):
        script = f"web-race-{run}"
        write_worker(site, script)
        home = scratch / f"home-{run}"
        home.mkdir()
        env = straight_to_emulator(stack, home, trap)
        for tool in TOOLS if run % 2 == 0 else TOOLS[::-1]:
            stack.emulator.reset()  # Cloudflare forgets every stored file: all are sent
            stack.clear_quotas()
            meter.take()
            if tool == "wrangler-direct":
                wall = run_wrangler_deploy(site, env, [])
            elif tool == "wrangler":
                wall = run_wrangler_deploy(site, env | gateway_env, launcher)
            else:
                if tool == CLIENT_ALONE:
                    stack.emulator.inject_fault(UNPARSED)  # until the next reset
                wall = run_ours(stack, site, script, env | gateway_env, args.concurrency)
            phases[tool].append(upload_phase(meter.take(), wall))
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="our client's (default: its own)"
    )
    args = parser.parse_args()
    print(machine_line())
    with (
        quiet(),
        tempfile.TemporaryDirectory(prefix="assets-race-") as scratch,
        contextlib.closing(ConnectionTrap()) as trap,
    ):
        stack = LocalStack(
            StackOptions(gateway_port=0, policy_cache_seconds=60, cloudflare_rate_limit=10**6)
        )
        # Every request to the emulator passes the meter (werkzeug calls `server.app`).
        meter = WireMeter(stack.emulator_server._server.app)
        stack.emulator_server._server.app = meter
        total = make_folder(Path(scratch) / "site" / "public", args.files)
        try:
            phases = race(stack, meter, trap, Path(scratch), args)
        finally:
            stack.stop()
        if trap.requests:
            raise SystemExit(f"wrangler reached beyond loopback: {trap.requests}")
    print(f"folder: {args.files:,} files, {total / 1e6:.1f} MB")
    medians: dict[str, float] = {}
    for tool in TOOLS:
        runs = phases[tool]
        medians[tool] = statistics.median(p.seconds for p in runs)
        print(
            f"upload_phase {tool} {medians[tool]:.2f} s (runs: "
            f"{', '.join(f'{p.seconds:.2f}' for p in runs)}), requests {runs[0].requests}, "
            f"bytes {statistics.median(p.bytes for p in runs) / 1e6:.1f} MB, "
            f"process {statistics.median(p.wall_s for p in runs):.2f} s"
        )
    ratio = medians["assets-gateway"] / medians["wrangler"]
    direct = medians["assets-gateway"] / medians["wrangler-direct"]
    print(
        f"upload_vs_wrangler {args.files} files, median of {args.runs}: ratio {ratio:.2f} "
        f"(target ≤ 0.8: {'met' if ratio <= 0.8 else 'missed'}); "
        f"against wrangler straight at the emulator {direct:.2f}; our client alone "
        f"{medians[CLIENT_ALONE]:.2f} s"
    )


if __name__ == "__main__":
    main()
