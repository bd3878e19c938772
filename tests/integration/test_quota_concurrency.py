"""Quotas under real concurrency: many requests at once against one counter never overshoot it.

Every request is released by one barrier so they really overlap, and all of them go over loopback
HTTP to moto server (DynamoDB) and the Cloudflare emulator; nothing of ours is replaced.

Team windows are fixed and aligned on the epoch, so a window can roll over while a test runs,
and a test may not sleep to avoid that. Each test notes the time before the first request and
after the last one: every charge was made at a moment between the two, so the windows that can
hold a charge are exactly the ones spanned by that interval. Within one window the test asserts
the exact total; across a rollover it asserts what still holds: no window over its limit, every
success counted once, and at least one full window (more requests were sent than two windows
minus one can hold, so one window must have filled).

The org's budget (a GCRA) depends on when each call arrives, so its test stops the clock: every
caller arrives at the same instant, and exactly the budget's burst gets through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from assets_gateway.adapters.quota_store import BUDGET_KEY
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.domain.quota import DAY, MICROS, MINUTE, CallBudget
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from assets_gateway.ports.audit import AuditRecord
from assets_gateway.ports.sessions import Outcome, SessionRequest, SessionResult
from gateway_local.api_front import LocalIdentity
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    DOCS_SCRIPT,
    PLATFORM_ADMIN,
    WEB_DEPLOYER,
    WEB_SCRIPT,
    demo_policy,
)
from gateway_local.stack import LocalStack
from helpers import manifest_of, session_url, signed_client

T = TypeVar("T")

BODY = {"manifest": manifest_of({"/index.html": b"<h1>hello</h1>"})}
GENEROUS = {
    "sessions_per_minute": 10_000,
    "sessions_per_day": 10_000,
    "entries_per_day": 10_000_000,
    "bytes_per_day": 2**40,
}
PLATFORM_SCRIPT = "platform-tools"


class RecordingAudit:
    """Keeps audit records in memory; the service calls it from many threads."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self._lock = threading.Lock()

    def record(self, record: AuditRecord) -> None:
        with self._lock:
            self.records.append(record)


def run_together(count: int, call: Callable[[int], T]) -> list[T]:
    """`call(i)` for i in range(count), each in its own thread, all released at the same moment."""
    barrier = threading.Barrier(count)

    def worker(index: int) -> T:
        barrier.wait(timeout=120)  # a bound against a hung test, not a speed assumption
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


def windows_spanned(started: float, finished: float, seconds: int) -> list[int]:
    """Starts of every window of `seconds` that holds a moment in [started, finished]."""
    first = int(started // seconds) * seconds
    last = int(finished // seconds) * seconds
    return list(range(first, last + 1, seconds))


def counters(stack: LocalStack, owner: str, seconds: int, attribute: str) -> dict[int, int]:
    """Every window item `<owner>#<seconds>#<start>` of the quota table: start -> attribute."""
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    prefix = f"{owner}#{seconds}#"
    found: dict[int, int] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=stack.names.quota_table, ConsistentRead=True
    ):
        for item in page["Items"]:
            key = item["pk"]["S"]
            if key.startswith(prefix):
                found[int(key.removeprefix(prefix))] = int(item.get(attribute, {}).get("N", "0"))
    return found


def assert_window_totals(
    found: dict[int, int], spanned: list[int], *, limit: int, successes: int
) -> None:
    """The binding windows: only spanned ones, none over `limit`, together every success; and
    exactly `limit` successes when no rollover happened."""
    assert set(found) <= set(spanned), (found, spanned)
    assert all(used <= limit for used in found.values()), found
    assert sum(found.values()) == successes
    if len(spanned) == 1:
        assert successes == limit
    else:  # a rollover mid-test: each window admits `limit` on its own
        assert limit <= successes <= limit * len(spanned)


def policy_with(teams: dict[str, dict[str, Any]]) -> dict[str, Any]:
    policy = demo_policy()
    policy["teams"] = teams
    return policy


@pytest.fixture
def gateway() -> Iterator[httpx.Client]:
    """One signing client shared by every thread (httpx clients are thread-safe)."""
    with signed_client(WEB_DEPLOYER) as client:
        yield client


@pytest.mark.parametrize(
    ("binding", "limit_name", "window"),
    [("sessions_per_minute", "sessions-minute", MINUTE), ("sessions_per_day", "sessions-day", DAY)],
)
def test_one_team_at_once_gets_exactly_its_quota_over_http(
    stack: LocalStack, gateway: httpx.Client, binding: str, limit_name: str, window: int
) -> None:
    limit, callers = 20, 50
    web = demo_policy()["teams"]["web"]
    stack.publish_policy(policy_with({"web": {**web, "quotas": {**GENEROUS, binding: limit}}}))
    url = session_url(stack)

    started = time.time()
    answers = run_together(callers, lambda _: gateway.post(url, json=BODY))
    finished = time.time()

    spanned = windows_spanned(started, finished, window)
    ok = [answer for answer in answers if answer.status_code == 200]
    refused = [answer for answer in answers if answer.status_code != 200]
    for answer in answers:  # each answer is its own request's, whatever ran beside it
        assert answer.headers["X-Request-Id"] == answer.headers["x-amzn-RequestId"]
    for answer in ok:
        assert answer.json()["success"] is True
        assert answer.json()["result"]["jwt"]
    for answer in refused:
        assert answer.status_code == 429, answer.text
        envelope = answer.json()
        assert envelope["success"] is False
        assert envelope["errors"][0]["code"] == 19020
        assert f"({limit_name})" in envelope["errors"][0]["message"]
        assert 1 <= int(answer.headers["Retry-After"]) <= window
        if len(spanned) == 1:  # after a rollover the headers describe the new window
            assert answer.headers["RateLimit"].startswith(f'"{limit_name}";r=0;')

    binding_windows = counters(stack, "team#web", window, "sessions")
    assert_window_totals(binding_windows, spanned, limit=limit, successes=len(ok))
    # The charge is one transaction: a refused request moved no other counter either.
    other = DAY if window == MINUTE else MINUTE
    assert sum(counters(stack, "team#web", other, "sessions").values()) == len(ok)
    forwarded = stack.emulator.calls_to("/assets-upload-session")
    assert len(forwarded) == len(ok)
    assert all(call.status == 200 for call in forwarded)


def budget_tat(stack: LocalStack) -> int:
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    item = dynamodb.get_item(
        TableName=stack.names.quota_table, Key={"pk": {"S": BUDGET_KEY}}, ConsistentRead=True
    )["Item"]
    return int(item["tat"]["N"])


def test_the_global_budget_holds_across_teams_at_once(stack: LocalStack) -> None:
    """45 callers of three teams at one instant against a budget of 150 per 300 s, whose burst
    is 15: exactly 15 calls go out, the TAT moved exactly 15 steps, no team paid for a refusal."""
    budget, per_team, now = 150, 15, 1_795_608_010.0
    burst = CallBudget.for_ceiling(budget).burst
    web, docs = demo_policy()["teams"]["web"], demo_policy()["teams"]["docs"]
    platform = {
        "principals": ["arn:aws:iam::999999999999:role/platform-admin"],
        "accounts": [DEMO_ACCOUNT_ID],
        "scripts": ["platform-*"],
    }
    stack.publish_policy(
        policy_with(
            {
                "web": {**web, "quotas": GENEROUS},
                "docs": {**docs, "quotas": GENEROUS},
                "platform": {**platform, "quotas": GENEROUS},
            }
        )
    )
    audit = RecordingAudit()
    service = build_session_service(
        Settings.from_environ(
            {**stack.handler_environment(), "GLOBAL_BUDGET_PER_5_MINUTES": str(budget)}
        ),
        aws=stack.aws,
        audit=audit,
        now=lambda: now,
    )
    callers: list[tuple[LocalIdentity, str]] = [
        (WEB_DEPLOYER, WEB_SCRIPT),
        (DOCS_CI, DOCS_SCRIPT),
        (PLATFORM_ADMIN, PLATFORM_SCRIPT),
    ] * per_team
    body = httpx.Request("POST", "http://body", json=BODY).read()

    def create(index: int) -> SessionResult:
        identity, script = callers[index]
        return service.create_session(
            SessionRequest(
                caller=Caller(identity.principal_arn),
                target=SessionTarget(DEMO_ACCOUNT_ID, script),
                body=body,
                content_type="application/json",
                request_id=f"concurrent-{index}",
            )
        )

    results = run_together(len(callers), create)

    ok = [result for result in results if result.reply.status == 200]
    assert len(ok) == burst == 15
    refused = [result for result in results if result.reply.status != 200]
    assert all(result.outcome is Outcome.ALLOWED for result in ok)
    for result in refused:
        assert result.reply.status == 429, result.reply.body
        assert result.outcome is Outcome.REFUSED_BUDGET
        envelope = result.reply.json()
        assert envelope["errors"][0]["code"] == 19021
        assert "(cloudflare-5min)" in envelope["errors"][0]["message"]
        assert result.reply.headers["Retry-After"] == "3"  # one emission interval: 2.2 s
    assert sorted(record.request_id for record in audit.records) == sorted(
        f"concurrent-{index}" for index in range(len(callers))
    )

    interval = CallBudget.for_ceiling(budget).interval_us
    assert budget_tat(stack) == round(now * MICROS) + burst * interval
    # A call refused by the budget charged no team: every team counter moved with it or not at all.
    team_sessions = sum(
        sum(counters(stack, f"team#{team}", DAY, "sessions").values())
        for team in ("web", "docs", "platform")
    )
    assert team_sessions == len(ok)
    forwarded = stack.emulator.calls_to("/assets-upload-session")
    assert len(forwarded) == len(ok)
    assert all(call.status == 200 for call in forwarded)
