"""How much memory the local stack keeps per request: sessions through the SigV4 front, the
handler, moto server and the Cloudflare emulator, all in this process, as a load run drives it.

Runs `--warmup` requests (pools, caches, code paths), then `--requests` more in rounds, and
prints the process's resident memory after each round and the growth per request; then what
the stand-ins hold (the emulator's recorded calls and sessions, moto's DynamoDB items and
their history). With `--trace`, tracemalloc also lists the source lines whose allocations grew
most over the measured requests (slower: tracing costs every allocation).

Each request is a fresh manifest of `--entries` files (distinct hashes, as new deploys have).
Quotas are roomy, and the counters are cleared every 50 requests so the org budget never
refuses.
Prints figures; asserts nothing.

    .venv/bin/python bench/local_stack_memory.py [--requests N] [--rounds N] [--trace]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import platform
import sys
import tracemalloc
from pathlib import Path

from bench_support import compact, roomy_policy, signed_client
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack, StackOptions

# The org budget admits its burst (a tenth of 1,000 per 5 minutes) at once, then one call per
# 0.3 s: the counters are cleared well before a run of requests in a row reaches it.
CLEAR_EVERY = 50
PATH = f"/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}/assets-upload-session"


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def body(request: int, entries: int) -> bytes:
    manifest = {
        f"/assets/{request}/file-{i}.js": {
            "hash": hashlib.sha256(f"{request}:{i}".encode()).hexdigest()[:32],
            "size": 100 + i,
        }
        for i in range(entries)
    }
    return compact({"manifest": manifest})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()

    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    stack = LocalStack(
        StackOptions(
            gateway_port=0,
            policy_cache_seconds=0,
            cloudflare_rate_limit=10**9,
            extra_environment=quiet,  # one audit line per request would bury the figures
        )
    )
    stack.publish_policy(roomy_policy())
    url = stack.base_url + PATH
    sent = 0

    def run(count: int) -> None:
        nonlocal sent
        with signed_client(WEB_DEPLOYER) as client:
            for _ in range(count):
                answer = client.post(
                    url,
                    content=body(sent, args.entries),
                    headers={"Content-Type": "application/json"},
                )
                if answer.status_code != 200:
                    raise RuntimeError(f"answered {answer.status_code}: {answer.text[:300]}")
                sent += 1
                if sent % CLEAR_EVERY == 0:
                    stack.clear_quotas()  # the org budget must not refuse the next requests

    try:
        print(f"python {platform.python_version()} on {platform.machine()}, {args.entries} entries")
        run(args.warmup)
        gc.collect()
        if args.trace:
            tracemalloc.start(40)
            before_snapshot = tracemalloc.take_snapshot()
        start = rss_bytes()
        print(f"after {args.warmup} warm-up requests: RSS {start / 2**20:.1f} MiB")
        per_round = args.requests // args.rounds
        for round_number in range(1, args.rounds + 1):
            run(per_round)
            gc.collect()
            now = rss_bytes()
            print(
                f"after {round_number * per_round:>6} more: RSS {now / 2**20:7.1f} MiB, "
                f"growth {(now - start) / (round_number * per_round) / 1024:6.2f} kB/request"
            )
        measured = per_round * args.rounds
        print(f"emulator retains: {stack.emulator.retained()}")
        print(f"moto retains: {stack.moto.retained()}")
        if args.trace:
            after_snapshot = tracemalloc.take_snapshot()
            stats = after_snapshot.compare_to(before_snapshot, "traceback")
            print(f"top allocation growth over {measured} requests (traced):")
            for stat in stats[:8]:
                print(f"  {stat.size_diff / measured / 1024:7.2f} kB/request")
                # The frames that say whose allocation it is, not the copy/json internals.
                frames = [
                    frame
                    for frame in stat.traceback
                    if "/copy.py" not in frame.filename and "/json/" not in frame.filename
                ]
                for frame in frames[-7:]:
                    print(f"      {frame.filename.rsplit('site-packages/', 1)[-1]}:{frame.lineno}")
    finally:
        stack.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
