"""What the gateway adds to a session, seen by a caller: through the local API front (SigV4
signed with httpx, as teams call it) and the Cloudflare emulator, next to calling the emulator
directly with the same body, interleaved request by request.

- 1,000 entries, p50 and p99 over `--requests` requests each way (default 50: the org
  budget's burst bounds a run), three times:
  with the local stack as it is (quota transaction and decision record on moto server), then
  with an in-memory quota gate swapped into the function (without moto's ~18 ms transaction),
  then also without the decision record (no store I/O left: the SigV4 front standing in for
  API Gateway, the handler, its call to the emulator);
- 100,000 entries, gzip-compressed as the API door requires, a few runs each way: the time
  from the caller's gzip to its parsed answer.

Everything runs in this one process on loopback (client, SigV4 front, handler, moto, emulator),
so the figures carry this machine's GIL contention. Quotas are roomy so they never refuse.
Prints figures; asserts nothing.

    .venv/bin/python bench/end_to_end.py [--requests N] [--large-runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import platform
import statistics
import sys
import time
from collections.abc import Callable

import httpx

from assets_gateway.lambda_glue.api_idempotency import IdempotentSessions
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from bench_support import AdmitAll, manifest_body, roomy_policy, signed_client
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack, StackOptions

PATH = f"/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}/assets-upload-session"


def timed_ms(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    answer = call()
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"answered {answer.status_code}: {answer.text[:300]}")
    return elapsed


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def compare(
    gateway: Callable[[], httpx.Response], direct: Callable[[], httpx.Response], runs: int
) -> tuple[list[float], list[float]]:
    for _ in range(3):  # warm pools, caches and code paths
        gateway(), direct()
    through, straight = [], []
    for _ in range(runs):
        through.append(timed_ms(gateway))
        straight.append(timed_ms(direct))
    return through, straight


def report(label: str, through: list[float], straight: list[float]) -> None:
    p50, p99 = percentile(through, 0.5), percentile(through, 0.99)
    d50, d99 = percentile(straight, 0.5), percentile(straight, 0.99)
    print(
        f"{label:<34} {p50:>8.2f} {p99:>8.2f} {d50:>8.2f} {d99:>8.2f} "
        f"{p50 - d50:>9.2f} {p50 / d50:>6.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    # The direct calls use the org's token too, and the gateway's budget follows Cloudflare's
    # count of it (1,199 per 5 minutes, a tenth at once): past ~55 pairs in a row, the run would
    # measure the budget's 429s, not latency.
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--large-runs", type=int, default=5)
    args = parser.parse_args()
    small, large = manifest_body(1_000), manifest_body(100_000)
    quiet = contextlib.redirect_stdout(io.StringIO())  # the handler's JSON logs and metrics
    with quiet:
        # One execution environment, so the swap below reaches every request.
        stack = LocalStack(
            StackOptions(
                gateway_port=0,
                execution_environments=1,
                extra_environment={"GLOBAL_BUDGET_PER_5_MINUTES": "1199"},
            )
        )
    try:
        with quiet:
            stack.publish_policy(roomy_policy(), reason="bench: quotas that never refuse")
        cloudflare = httpx.Client(
            headers={"Authorization": f"Bearer {stack.cloudflare_token}"}, timeout=60
        )
        with signed_client(WEB_DEPLOYER) as web, cloudflare, quiet:
            gateway_url, direct_url = stack.base_url + PATH, stack.cloudflare_url + PATH
            headers = {"Content-Type": "application/json"}

            def through_small() -> httpx.Response:
                return web.post(gateway_url, content=small, headers=headers)

            def direct_small() -> httpx.Response:
                return cloudflare.post(direct_url, content=small, headers=headers)

            def through_large() -> httpx.Response:
                answer = web.post(
                    gateway_url,
                    content=gzip.compress(large, compresslevel=6),
                    headers={**headers, "Content-Encoding": "gzip"},
                )
                answer.json()
                return answer

            def direct_large() -> httpx.Response:
                answer = cloudflare.post(direct_url, content=large, headers=headers)
                answer.json()
                return answer

            small_real = compare(through_small, direct_small, args.requests)
            stack.emulator.reset()
            large_real = compare(through_large, direct_large, args.large_runs)
            stack.emulator.reset()
            # The same function, its quota store replaced by an in-memory gate; then without
            # the decision record either.
            settings = Settings.from_environ(stack.handler_environment())
            variants = [settings, settings.model_copy(update={"decisions_table_name": None})]
            in_memory = []
            for variant in variants:
                service = build_session_service(variant, aws=stack.aws, quotas=AdmitAll())
                vars(stack.session_api).update(
                    service=service, sessions=IdempotentSessions(service)
                )
                in_memory.append(compare(through_small, direct_small, args.requests))
                stack.emulator.reset()
    finally:
        with quiet:
            stack.stop()
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {python}; everything in one process on loopback\n")
    print(
        f"{'':<34} {'gateway':>17} {'direct':>17} {'overhead':>16}\n"
        f"{'ms':<34} {'p50':>8} {'p99':>8} {'p50':>8} {'p99':>8} {'p50':>9} {'ratio':>7}"
    )
    report(f"1,000 entries ({args.requests} each)", *small_real)
    report("  quota gate in memory", *in_memory[0])
    report("  and no decision record", *in_memory[1])
    report(f"100,000 entries, gzip ({args.large_runs} each)", *large_real)
    print(
        f"\n1,000 entries: {len(small) / 1024:,.0f} KB; 100,000: {len(large) / 1024:,.0f} KB"
        f" ({len(gzip.compress(large)) / 1024:,.0f} KB gzip; the direct call sends it plain)."
        f"\n100,000 entries end to end through the gateway, median: "
        f"{statistics.median(large_real[0]):,.0f} ms (caller's gzip to parsed answer)."
    )


if __name__ == "__main__":
    main()
