"""In-process cost of the session handler, next to the floor of parsing and serialising the body.

For 1k and 20k entry manifests: the whole handler (API Gateway event in, proxy result out, with
moto server and the Cloudflare emulator on loopback), the gateway's own share of it (the audit
record's latency minus the upstream round trip), and a bare `json.loads` + `json.dumps` of the
same body. Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/pipeline.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assets_gateway.audit import AuditRecord
from assets_gateway.settings import Settings
from assets_gateway.wiring import build_session_service
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import (
    demo_policy,
    web_session_request,
)
from gateway_local.stack import LocalStack, StackOptions

EVENT = REPO_ROOT / "events" / "session_api" / "create_session.json"


class _Records:
    def __init__(self) -> None:
        self.items: list[AuditRecord] = []

    def record(self, record: AuditRecord) -> None:
        self.items.append(record)


def manifest_body(entries: int) -> bytes:
    manifest = {
        f"/assets/{i // 100}/file-{i}.js": {
            "hash": hashlib.sha256(str(i).encode()).hexdigest()[:32],
            "size": 1000 + i,
        }
        for i in range(entries)
    }
    return json.dumps({"manifest": manifest}).encode()


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm caches, pools and the emulator's code paths
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(stack: LocalStack, entries: int, runs: int) -> dict[str, float]:
    body = manifest_body(entries)
    event: dict[str, Any] = json.loads(Path(EVENT).read_text())
    event["body"] = body.decode()
    context = lambda_context("bench")

    def handler() -> None:
        result = stack.session_api.lambda_handler(event, context)
        if result["statusCode"] != 200:
            raise RuntimeError(f"handler answered {result['statusCode']}: {result['body'][:300]}")

    records = _Records()
    service = build_session_service(
        Settings.from_environ(stack.handler_environment()), aws=stack.aws, audit=records
    )
    request = web_session_request(body, request_id="bench")
    handler_ms = median_ms(handler, runs)
    median_ms(lambda: service.create_session(request), runs)
    own = [(r.latency_ms or 0) - (r.upstream_ms or 0) for r in records.items[1:]]
    raw_ms = median_ms(lambda: json.dumps(json.loads(body)), runs)
    return {
        "entries": entries,
        "body_kb": len(body) / 1024,
        "handler_ms": handler_ms,
        "gateway_own_ms": statistics.median(own),
        "raw_json_ms": raw_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with contextlib.redirect_stdout(io.StringIO()):  # the handler's JSON logs and EMF metrics
        stack = LocalStack(StackOptions(gateway_port=0))
        # Measure the pipeline, not the demo's small quotas.
        policy = demo_policy()
        policy["teams"]["web"]["quotas"] = {"sessions_per_minute": 10**6, "sessions_per_day": 10**7}
        stack.publish_policy(policy)
        try:
            rows = [measure(stack, entries, args.runs) for entries in (1_000, 20_000)]
        finally:
            stack.stop()
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {python}")
    print(f"median of {args.runs} warm runs\n")
    print(
        f"{'entries':>8} {'body KB':>9} {'handler ms':>11} {'gateway ms':>11} "
        f"{'json ms':>8} {'handler/json':>13} {'gateway/json':>13}"
    )
    for row in rows:
        print(
            f"{row['entries']:>8,.0f} {row['body_kb']:>9.0f} {row['handler_ms']:>11.2f} "
            f"{row['gateway_own_ms']:>11.2f} {row['raw_json_ms']:>8.2f} "
            f"{row['handler_ms'] / row['raw_json_ms']:>12.1f}x "
            f"{row['gateway_own_ms'] / row['raw_json_ms']:>12.1f}x"
        )
    print(
        "\nhandler: the Lambda handler end to end, including the Cloudflare emulator round trip;"
        "\ngateway: the pipeline's own time (audit latency minus the upstream round trip);"
        "\njson: json.loads + json.dumps of the same body, the floor any JSON proxy pays."
    )


if __name__ == "__main__":
    main()
