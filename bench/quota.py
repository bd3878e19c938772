"""What quotas cost: decisions per second of the quota store, and its share of a request.

(a) `QuotaStore.charge` against moto server over loopback HTTP, with the shape the service uses
(the team's four limits and the global budget: one TransactWriteItems of three window updates and
the cool-down check; the counters set to the values last seen, so no read follows):
single-threaded and from 8 threads, every charge admitted; then refusals, once the team's quota
is spent (the cancelled transaction and the usage read for the RateLimit headers).

(b) The quota check inside each request: `SessionService.create_session` built as the handler
builds it, with the real quota store timed per call, next to the request's end-to-end time (which
includes the Cloudflare emulator round trip and the policy read). Asserts nothing.

    .venv/bin/python bench/quota.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from assets_gateway.adapters.quota_store import QuotaStore
from assets_gateway.domain.errors import QuotaExceeded
from assets_gateway.domain.quota import CallBudget, Charge, Limit, TeamQuotas
from assets_gateway.doors.session import SessionService
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import AWS_CLIENT_CONFIG, build_session_service
from assets_gateway.ports.quota import Ticket
from gateway_local.demo import (
    demo_policy,
    web_session_request,
)
from gateway_local.stack import LocalStack, StackOptions

THREADS = 8
# Requests timed end to end: within the largest budget's burst (119 at once), so the budget
# never refuses one of them.
BURST_TIMED = 100
HIGH = 10**12
CHARGE = Charge(entries=1, bytes=17)
BODY = b'{"manifest": {"/index.html": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}}}'


def fresh_team() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"


def admitting_limits() -> tuple[Limit, ...]:
    return TeamQuotas(HIGH, HIGH, HIGH, HIGH, HIGH, HIGH, HIGH).limits()


@dataclass(frozen=True)
class Figures:
    count: int
    median_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples_s: Sequence[float]) -> Figures:
        ms = [sample * 1000 for sample in samples_s]
        return cls(len(ms), statistics.median(ms), statistics.quantiles(ms, n=100)[98])


def quota_store(stack: LocalStack) -> QuotaStore:
    dynamodb = stack.aws.client(
        "dynamodb", endpoint_url=stack.moto.endpoint_url, config=AWS_CLIENT_CONFIG
    )
    return QuotaStore(
        table_name=stack.names.quota_table, dynamodb=dynamodb, budget=CallBudget.for_ceiling(HIGH)
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def admitted_per_second(store: QuotaStore, charges: int, threads: int) -> float:
    """Charges of one fresh team, every one admitted, from `threads` threads at once."""
    team, limits = fresh_team(), admitting_limits()
    store.charge(team, limits, CHARGE, time.time())  # warm the connection pool and moto

    def work(count: int) -> None:
        for _ in range(count):
            store.charge(team, limits, CHARGE, time.time())

    shares = [charges // threads + (1 if i < charges % threads else 0) for i in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, shares))
    return charges / (time.perf_counter() - started)


def refused_per_second(store: QuotaStore, charges: int) -> tuple[float, int]:
    """Charges of a team whose daily session quota (1) is already spent: each is refused."""
    team = fresh_team()
    limits = TeamQuotas(HIGH, 1, HIGH, HIGH, HIGH, HIGH, HIGH).limits()
    store.charge(team, limits, CHARGE, time.time())
    admitted = 0  # only if the day rolls over mid-run
    started = time.perf_counter()
    for _ in range(charges):
        try:
            store.charge(team, limits, CHARGE, time.time())
            admitted += 1
        except QuotaExceeded:
            pass
    return charges / (time.perf_counter() - started), admitted


def round_trip(stack: LocalStack, runs: int) -> Figures:
    """The floor of any call to moto server: one GetItem of a missing item, same client setup."""
    dynamodb = stack.aws.client(
        "dynamodb", endpoint_url=stack.moto.endpoint_url, config=AWS_CLIENT_CONFIG
    )

    def get() -> None:
        dynamodb.get_item(TableName=stack.names.quota_table, Key={"pk": {"S": "bench#none"}})

    get()
    return Figures.of([timed(get) for _ in range(runs)])


class TimedQuotas(QuotaStore):
    """The real quota store, with the time each charge takes noted."""

    charges: list[float]

    def charge(self, *args: Any, **kwargs: Any) -> Ticket:
        started = time.perf_counter()
        try:
            return super().charge(*args, **kwargs)
        finally:
            self.charges.append(time.perf_counter() - started)


def request_share(stack: LocalStack, runs: int) -> dict[str, Figures]:
    """create_session end to end, and the quota charge inside each of those same requests."""
    policy: dict[str, Any] = demo_policy()
    policy["teams"]["web"]["quotas"] = {"sessions_per_minute": 100_000, "sessions_per_day": HIGH}
    stack.publish_policy(policy)
    stack.clear_quotas()
    stack.emulator.reset()
    settings = Settings.from_environ(
        {**stack.handler_environment(), "GLOBAL_BUDGET_PER_5_MINUTES": "1199"}
    )
    # Instrumented, not replaced: the real store over moto does the work.
    dynamodb = stack.aws.client(
        "dynamodb", endpoint_url=stack.moto.endpoint_url, config=AWS_CLIENT_CONFIG
    )
    # The org's budget as deployed at its largest: its burst (119) covers the requests timed.
    budget = CallBudget.for_ceiling(1199)
    quotas = TimedQuotas(table_name=stack.names.quota_table, dynamodb=dynamodb, budget=budget)
    quotas.charges = []
    service: SessionService = build_session_service(settings, aws=stack.aws, quotas=quotas)
    request = web_session_request(BODY, request_id="bench")

    def create() -> None:
        status = service.create_session(request).reply.status
        if status != 200:
            raise RuntimeError(f"create_session answered {status}")

    create()  # warm: policy, token, connection pools
    quotas.charges.clear()
    end_to_end = [timed(create) for _ in range(min(runs, BURST_TIMED))]
    store = quota_store(stack)
    team, limits = fresh_team(), admitting_limits()
    store.charge(team, limits, CHARGE, time.time())
    alone = [timed(lambda: store.charge(team, limits, CHARGE, time.time())) for _ in range(runs)]
    reads = [timed(lambda: store.usage(team, limits, time.time())) for _ in range(runs)]
    return {
        "create_session, end to end": Figures.of(end_to_end),
        "  its quota charge (in the same requests)": Figures.of(quotas.charges),
        "charge alone (one transaction)": Figures.of(alone),
        "a usage read (a refusal's RateLimit headers)": Figures.of(reads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="charges or requests per figure")
    args = parser.parse_args()
    runs: int = args.runs
    with contextlib.redirect_stdout(io.StringIO()):  # the handler's JSON logs and EMF metrics
        stack = LocalStack(StackOptions(gateway_port=0))
        try:
            store = quota_store(stack)
            single = admitted_per_second(store, runs, threads=1)
            threaded = admitted_per_second(store, runs, threads=THREADS)
            refused, refused_admitted = refused_per_second(store, runs)
            floor = round_trip(stack, runs)
            share = request_share(stack, runs)
        finally:
            stack.stop()

    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {python}")
    print(
        "DynamoDB here is moto server on loopback, and moto server is not DynamoDB: the local\n"
        "stack serialises its requests (so threads add no throughput), moto copies the table\n"
        "for each item of a transaction, and it never cancels a transaction for a conflict, so\n"
        "the store's conflict retries are not exercised. Real DynamoDB: a transaction takes\n"
        "~10-20 ms, and concurrent transactions on one counter conflict and are retried.\n"
    )
    print(
        f"moto floor on this machine: one GetItem round trip {floor.median_ms:.2f} ms median,"
        f" {floor.p99_ms:.2f} ms p99\n"
    )
    print(f"(a) quota decisions per second, {runs} charges each")
    print(f"    admitted, 1 thread:  {single:>8,.0f} /s")
    print(f"    admitted, {THREADS} threads: {threaded:>8,.0f} /s  (one team, one set of counters)")
    print(f"    refused, 1 thread:   {refused:>8,.0f} /s  (quota spent; with the headers' read)")
    if refused_admitted:
        print(f"    ({refused_admitted} of the refusal run were admitted: the day rolled over)")
    print(f"\n(b) quota check per request, {min(runs, BURST_TIMED)} requests (ms)")
    print(f"    {'':<44} {'median':>8} {'p99':>8}")
    for name, figures in share.items():
        print(f"    {name:<44} {figures.median_ms:>8.2f} {figures.p99_ms:>8.2f}")
    whole = share["create_session, end to end"]
    inside = share["  its quota charge (in the same requests)"]
    print(
        f"\n    the quota charge is {inside.median_ms / whole.median_ms:.0%} of a request's median"
        f" ({inside.median_ms:.2f} of {whole.median_ms:.2f} ms) here; the rest is the"
        "\n    policy and token (both cached), validation and the Cloudflare emulator round trip."
    )


if __name__ == "__main__":
    main()
