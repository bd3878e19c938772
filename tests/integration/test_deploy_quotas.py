"""The deploy door's quotas in the real quota store: DynamoDB on moto server over loopback HTTP,
the same table and items as the session door's quotas, at a fixed instant (nothing sleeps).

A team's window item holds a counter per kind: the deploy door's `deploy_calls` and `deploys`
sit beside `sessions`, `entries` and `bytes` in the same minute and day items, and neither door's
charges, refusals or refunds move the other's counters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from assets_gateway.adapters.quota_store import BUDGET_KEY, QuotaStore
from assets_gateway.domain.errors import QuotaExceeded
from assets_gateway.domain.policy import BUILT_IN_QUOTAS
from assets_gateway.domain.quota import MICROS, CallBudget, Charge
from gateway_local.stack import LocalStack
from helpers import numbers_of, quota_items

NOW = 1_795_608_010.0  # 2026-11-25T12:00:10Z
MINUTE_ITEM = "team#web#60#1795608000"
HOUR_ITEM = "team#web#3600#1795608000"
DAY_ITEM = "team#web#86400#1795564800"
COUNTERS = ("sessions", "entries", "bytes", "deploy_calls", "deploys")
# The built-ins, with deploy quotas small enough to spend.
QUOTAS = replace(BUILT_IN_QUOTAS, deploy_calls_per_minute=4, deploys_per_hour=2, deploys_per_day=10)
BUDGET = CallBudget.for_ceiling(1000)


@pytest.fixture
def store(stack: LocalStack) -> QuotaStore:
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    return QuotaStore(table_name=stack.names.quota_table, dynamodb=dynamodb, budget=BUDGET)


def team_items(stack: LocalStack) -> dict[str, dict[str, int]]:
    return {
        item["pk"]["S"]: numbers_of(item, COUNTERS)
        for item in quota_items(stack)
        if item["pk"]["S"].startswith("team#")
    }


def by_window(
    minute: dict[str, int], hour: dict[str, int], day: dict[str, int]
) -> dict[str, dict[str, int]]:
    return {MINUTE_ITEM: minute, HOUR_ITEM: hour, DAY_ITEM: day}


def spend(store: QuotaStore, charge: Charge, count: int) -> QuotaExceeded:
    """`count` deploy door charges that pass, then the refusal of one more."""
    for n in range(count):
        store.charge("web", QUOTAS.deploy_limits(), charge, NOW, f"call-{n}")
    with pytest.raises(QuotaExceeded) as refused:
        store.charge("web", QUOTAS.deploy_limits(), charge, NOW, "one-too-many")
    return refused.value


def budget_calls(stack: LocalStack) -> int:
    """Calls the org's budget holds at NOW (its TAT is NOW + calls * interval)."""
    item = next(i for i in quota_items(stack) if i["pk"]["S"] == BUDGET_KEY)
    return (int(item["tat"]["N"]) - round(NOW * MICROS)) // BUDGET.interval_us


def test_deploy_and_session_charges_in_one_window_keep_their_own_counters(
    stack: LocalStack, store: QuotaStore
) -> None:
    session = store.charge("web", QUOTAS.limits(), Charge(entries=3, bytes=70), NOW, "session")
    upload = store.charge("web", QUOTAS.deploy_limits(), Charge.deploy_call(deploys=1), NOW, "up")
    read = store.charge("web", QUOTAS.deploy_limits(), Charge.deploy_call(), NOW, "read")

    assert team_items(stack) == by_window(
        {"sessions": 1, "deploy_calls": 2},
        {"deploys": 1},
        {"sessions": 1, "entries": 3, "bytes": 70, "deploys": 1},
    )
    assert budget_calls(stack) == 3  # every call reaches Cloudflare: each takes one
    assert {s.limit.name: s.used for s in read.after} == {
        "deploy-calls-minute": 2,
        "deploys-hour": 1,
        "deploys-day": 1,
    }
    assert {s.limit.name: s.used for s in session.after}["sessions-minute"] == 1
    assert upload.headers()["RateLimit"] == '"deploys-hour";r=1;t=3590'
    usage = store.usage("web", [*QUOTAS.limits(), *QUOTAS.deploy_limits()], NOW)
    assert {s.limit.name: s.used for s in usage} == {
        "sessions-minute": 1,
        "sessions-day": 1,
        "entries-day": 3,
        "bytes-day": 70,
        "deploy-calls-minute": 2,
        "deploys-hour": 1,
        "deploys-day": 1,
    }


def test_refunds_give_back_only_their_own_counters(stack: LocalStack, store: QuotaStore) -> None:
    session = store.charge("web", QUOTAS.limits(), Charge(entries=3, bytes=70), NOW, "session")
    upload = store.charge("web", QUOTAS.deploy_limits(), Charge.deploy_call(deploys=1), NOW, "up")

    # What is left after each refund, in order: the upload's, then the session's.
    left_after = [
        (upload, ({"sessions": 1, "deploy_calls": 0}, {"sessions": 1, "entries": 3, "bytes": 70})),
        (session, ({"sessions": 0, "deploy_calls": 0}, {"sessions": 0, "entries": 0, "bytes": 0})),
    ]
    for ticket, (minute, day) in left_after:
        store.refund(ticket)
        assert team_items(stack) == by_window(minute, {"deploys": 0}, {**day, "deploys": 0})


def test_spent_deploys_refuse_uploads_but_not_reads_nor_sessions(
    stack: LocalStack, store: QuotaStore
) -> None:
    refused = spend(store, Charge.deploy_call(deploys=1), 2)

    assert "2 deploys (Worker uploads and deployments) per hour (deploys-hour)" in refused.message
    assert refused.headers["Retry-After"] == "3590"
    assert refused.headers["RateLimit"] == '"deploys-hour";r=0;t=3590'
    # The refused upload moved nothing; a read and a session still go through.
    store.charge("web", QUOTAS.deploy_limits(), Charge.deploy_call(), NOW, "read")
    store.charge("web", QUOTAS.limits(), Charge(entries=1, bytes=1), NOW, "session")
    assert team_items(stack) == by_window(
        {"sessions": 1, "deploy_calls": 3},
        {"deploys": 2},
        {"sessions": 1, "entries": 1, "bytes": 1, "deploys": 2},
    )


def test_spent_deploy_calls_refuse_every_deploy_call_and_leave_sessions_alone(
    stack: LocalStack, store: QuotaStore
) -> None:
    refused = spend(store, Charge.deploy_call(), 4)

    assert "4 deploy door calls per minute (deploy-calls-minute)" in refused.message
    assert refused.headers["Retry-After"] == "50"
    session = store.charge("web", QUOTAS.limits(), Charge(entries=1, bytes=1), NOW, "session")
    assert {s.limit.name: s.used for s in session.after}["sessions-minute"] == 1
    assert team_items(stack)[MINUTE_ITEM] == {"deploy_calls": 4, "sessions": 1}
