"""In-process cost of the session pipeline next to the raw limit, at 1k, 20k and 100k entries.

- raw limit: `orjson.loads` + `orjson.dumps` of the same body, the least any JSON proxy pays;
- gateway CPU: `SessionService.create_session` with in-memory policy, quota gate, token and a
  canned Cloudflare answer: identifiers, body limits, manifest parse and checks, policy, quota
  arithmetic, the body to forward, the reply, the audit record. The gateway's own work, no I/O;
- with loopback I/O: the same service on moto server and the Cloudflare emulator, its audit
  latency minus the emulator's round trip: the gateway's time including the policy read (cached)
  and the quota transaction against moto (~18 ms of moto's own work, see bench/quota.py);
- handler: the Lambda handler on an API Gateway event (sample event's headers, so large answers
  are gzip-compressed), moto and the emulator on loopback, the emulator's work included.

The API door takes at most 6 MiB, so the 100k body (~8 MB) reaches the handler gzip-compressed,
and its row adds the handler with `Content-Encoding: gzip`; the in-process rows read the plain
body (as the S3 door does, which has no such limit). Bodies are compact JSON, as httpx, the
Cloudflare SDKs and wrangler send them. Prints figures and ratios measured in one run; asserts
nothing.

The raw limit and the gateway CPU are timed in turns, sample by sample, over several rounds
(`side_by_side_ms`): on two shared cores a neighbour's burst would otherwise land on one figure
and not the other. The other figures are medians of warm runs.

    .venv/bin/python bench/pipeline.py [--runs N] [--rounds N]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import gzip
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from assets_gateway.domain.policy import PolicyDocument
from assets_gateway.doors.session import SessionService
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from assets_gateway.ports.policy_source import StoredPolicy
from bench_support import (
    AdmitAll,
    FixedCloudflare,
    FixedPolicy,
    FixedToken,
    Records,
    compact,
    generated_manifest,
    roomy_policy,
)
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import web_session_request
from gateway_local.stack import LocalStack, StackOptions

EVENT = REPO_ROOT / "events" / "session_api" / "create_session.json"
SIZES = (1_000, 20_000, 100_000)
MIB = 1024 * 1024
# Each round of the side-by-side figures lasts about this long in raw round trips.
ROUND_NS = 200_000_000


def cloudflare_answer(entries: dict[str, dict[str, Any]]) -> bytes:
    hashes = [entry["hash"] for entry in entries.values()]
    buckets = [hashes[i : i + 50] for i in range(0, len(hashes), 50)]
    result = {"jwt": "j" * 600, "buckets": buckets}
    return compact({"success": True, "errors": [], "messages": [], "result": result})


def side_by_side_ms(
    raw: Callable[[], object], gateway: Callable[[], object], runs: int, rounds: int
) -> tuple[float, float]:
    """(raw ms, gateway ms): each the lowest of `rounds` medians, the two timed in turns (which
    goes first alternates), so both see the same machine: a neighbour's burst slows both, and a
    round it spoils entirely is not the one kept. Each round takes at least `runs` samples of
    each, and as many as fit ~0.2 s of the raw round trip (hundreds at 1k entries, where one
    sample is a fraction of a millisecond)."""
    raw(), gateway()  # warm caches and code paths
    started = time.perf_counter_ns()
    raw()
    per_round = max(runs, int(ROUND_NS / max(time.perf_counter_ns() - started, 1)))
    raw_medians, gateway_medians = [], []
    for _ in range(rounds):
        samples: tuple[list[int], list[int]] = ([], [])
        for sample in range(per_round):
            pair = ((raw, samples[0]), (gateway, samples[1]))
            for action, into in pair if sample % 2 else reversed(pair):
                started = time.perf_counter_ns()
                action()
                into.append(time.perf_counter_ns() - started)
        raw_medians.append(statistics.median(samples[0]))
        gateway_medians.append(statistics.median(samples[1]))
    return min(raw_medians) / 1e6, min(gateway_medians) / 1e6


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm caches, pools and code paths
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def handler_event(body: bytes, *, gzipped: bool) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENT.read_text())
    for field in ("headers", "multiValueHeaders"):
        event[field].pop("Content-Length", None)
    if gzipped:
        event["body"] = base64.b64encode(gzip.compress(body)).decode()
        event["isBase64Encoded"] = True
        event["headers"]["Content-Encoding"] = "gzip"
        event["multiValueHeaders"]["Content-Encoding"] = ["gzip"]
    else:
        event["body"] = body.decode()
        event["isBase64Encoded"] = False
    return event


def measure(stack: LocalStack, entries: int, runs: int, rounds: int) -> dict[str, float]:
    files = generated_manifest(entries)
    body = compact({"manifest": files})
    request = web_session_request(body, request_id="bench")
    stored = StoredPolicy(version=1, policy=PolicyDocument.model_validate(roomy_policy()))
    in_memory = SessionService(
        policies=FixedPolicy(stored),
        quotas=AdmitAll(),
        tokens=FixedToken(),
        upstream=FixedCloudflare(cloudflare_answer(files)),
        audit=Records(),
        max_request_body_bytes=64 * MIB,
    )
    records = Records()
    settings = Settings.from_environ(stack.handler_environment())
    loopback = build_session_service(
        settings, aws=stack.aws, audit=records, max_request_body_bytes=64 * MIB
    )
    context = lambda_context("bench")

    def handler(event: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            # Lambda hands each invocation a fresh event: the handler may not see a used one.
            result = stack.session_api.lambda_handler(copy.copy(event), context)
            if result["statusCode"] != 200:
                raise RuntimeError(f"handler answered {result['statusCode']}")

        return run

    raw_ms, cpu_ms = side_by_side_ms(
        lambda: orjson.dumps(orjson.loads(body)),
        lambda: in_memory.create_session(request),
        runs,
        rounds,
    )
    row = {
        "entries": float(entries),
        "body_kb": len(body) / 1024,
        "raw_ms": raw_ms,
        "cpu_ms": cpu_ms,
    }
    median_ms(lambda: loopback.create_session(request), runs)
    own = [(r.latency_ms or 0) - (r.upstream_ms or 0) for r in records.items[1:]]
    row["loopback_own_ms"] = statistics.median(own)
    if len(body) <= settings.max_request_body_bytes:
        row["handler_ms"] = median_ms(handler(handler_event(body, gzipped=False)), runs)
    row["handler_gzip_ms"] = median_ms(handler(handler_event(body, gzipped=True)), runs)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="warm runs per figure (100k: ⅓)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of raw and CPU timed in turns (lowest median)"
    )
    args = parser.parse_args()
    with contextlib.redirect_stdout(io.StringIO()):  # the handler's JSON logs and EMF metrics
        stack = LocalStack(StackOptions(gateway_port=0))
        stack.publish_policy(roomy_policy(), reason="bench: quotas that never refuse")
        try:
            rows = [
                measure(
                    stack,
                    entries,
                    args.runs if entries < 100_000 else max(3, args.runs // 3),
                    args.rounds,
                )
                for entries in SIZES
            ]
        finally:
            stack.stop()
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(
        f"machine: {platform.machine()}, {python}; medians of warm runs ({args.runs}, 100k: ⅓); "
        f"raw and CPU: timed in turns, lowest median of {args.rounds} rounds\n"
    )
    print(
        f"{'entries':>8} {'body KB':>8} {'raw ms':>8} {'CPU ms':>8} {'CPU/raw':>8} "
        f"{'+I/O own':>9} {'handler':>9} {'hnd/raw':>8} {'hnd gzip':>9}"
    )
    for row in rows:
        handler = row.get("handler_ms")
        print(
            f"{row['entries']:>8,.0f} {row['body_kb']:>8,.0f} {row['raw_ms']:>8.2f} "
            f"{row['cpu_ms']:>8.2f} {row['cpu_ms'] / row['raw_ms']:>7.2f}x "
            f"{row['loopback_own_ms']:>9.2f} "
            + (
                f"{handler:>9.2f} {handler / row['raw_ms']:>7.2f}x "
                if handler
                else f"{'-':>9} {'-':>8} "
            )
            + f"{row['handler_gzip_ms']:>9.2f}"
        )
    print(
        "\nraw: orjson.loads + orjson.dumps of the body (the limit the issue sets);"
        "\nCPU: the pipeline with in-memory policy, quota gate, token and Cloudflare (no I/O);"
        "\n+I/O own: the pipeline on moto + the emulator, audit latency minus the emulator's round"
        "\n  trip (policy read, moto's quota transaction ~18 ms included);"
        "\nhandler: the Lambda handler end to end on loopback, the emulator's work included"
        "\n  (hnd gzip: the body sent as gzip; 100k can only go that way through the API door)."
    )


if __name__ == "__main__":
    main()
