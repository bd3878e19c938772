"""Quotas through the real pipeline: DynamoDB on moto server, the Cloudflare emulator over HTTP,
and an injected clock for the windows (nothing sleeps)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from assets_gateway.audit import AuditRecord
from assets_gateway.service import SessionRequest, SessionService
from assets_gateway.settings import Settings
from assets_gateway.wiring import build_session_service
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    OUTSIDER,
    UNLINKED_ACCOUNT_ID,
    WEB_DEPLOYER,
    WEB_SCRIPT,
    demo_policy,
    web_session_request,
)
from gateway_local.stack import LocalStack
from helpers import HTTP_TIMEOUT, manifest_of, signed_client

NOON = 1_795_608_000.0  # 2026-11-25T12:00:00Z: starts a minute, a 5-minute window and no day


@dataclass
class Clock:
    now: float = NOON + 10

    def __call__(self) -> float:
        return self.now


class Records:
    def __init__(self) -> None:
        self.items: list[AuditRecord] = []

    def record(self, record: AuditRecord) -> None:
        self.items.append(record)


def publish_web_quotas(stack: LocalStack, **quotas: int) -> None:
    policy = demo_policy()
    policy["teams"]["web"]["quotas"] = quotas
    stack.publish_policy(policy)


def service(
    stack: LocalStack, clock: Clock, records: Records | None = None, **settings: str
) -> SessionService:
    environment = {**stack.handler_environment(), **settings}
    return build_session_service(
        Settings.from_environ(environment), aws=stack.aws, audit=records, now=clock
    )


def request(files: dict[str, bytes] | None = None, body: bytes | None = None) -> SessionRequest:
    payload = body or json.dumps({"manifest": manifest_of(files or {"/a.html": b"aaaa"})}).encode()
    return web_session_request(payload, request_id="quota-test")


def counters(stack: LocalStack) -> dict[str, dict[str, int]]:
    """Every quota item by key, with its numeric counters (the cool-down item aside)."""
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    items = dynamodb.scan(TableName=stack.names.quota_table)["Items"]
    return {
        item["pk"]["S"]: {
            name: int(value["N"])
            for name, value in item.items()
            if name in ("sessions", "entries", "bytes", "calls")
        }
        for item in items
        if item["pk"]["S"] != "global#cooldown"
    }


def used(stack: LocalStack) -> dict[str, int]:
    """Totals per counter kind and scope, e.g. {"team sessions": 2, "global calls": 2}."""
    totals: dict[str, int] = {}
    for key, values in counters(stack).items():
        scope = "team" if key.startswith("team#") and "#60#" in key else key.split("#")[0]
        scope = "team-day" if key.startswith("team#") and "#86400#" in key else scope
        for name, value in values.items():
            totals[f"{scope} {name}"] = totals.get(f"{scope} {name}", 0) + value
    return totals


# Counters that were charged and given back: present, at zero.
NOTHING_USED = {
    "team sessions": 0,
    "team-day sessions": 0,
    "team-day entries": 0,
    "team-day bytes": 0,
    "global calls": 0,
}


def envelope_code(body: bytes) -> int:
    code: int = json.loads(body)["errors"][0]["code"]
    return code


def test_limit_refuses_then_the_window_rolls_over(stack: LocalStack) -> None:
    publish_web_quotas(stack, sessions_per_minute=2)
    clock = Clock(NOON + 50)
    gateway = service(stack, clock)
    first, second, third = (gateway.create_session(request()) for _ in range(3))
    assert [first.reply.status, second.reply.status, third.reply.status] == [200, 200, 429]
    assert envelope_code(third.reply.body) == 19020
    assert third.reply.headers["Retry-After"] == "10"
    message = json.loads(third.reply.body)["errors"][0]["message"]
    assert "2 sessions per minute (sessions-minute); resets in 10 s" in message
    assert third.reply.headers["RateLimit"] == '"sessions-minute";r=0;t=10'

    clock.now = NOON + 60  # the next minute
    fourth = gateway.create_session(request())
    assert fourth.reply.status == 200
    assert fourth.reply.headers["RateLimit"] == '"sessions-minute";r=1;t=60'
    minute_items = {k: v for k, v in counters(stack).items() if "#60#" in k}
    assert minute_items == {
        f"team#web#60#{int(NOON)}": {"sessions": 2},
        f"team#web#60#{int(NOON) + 60}": {"sessions": 1},
    }
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 3


def test_entries_and_bytes_per_day_are_charged_and_enforced(stack: LocalStack) -> None:
    publish_web_quotas(stack, entries_per_day=5, bytes_per_day=1_000)
    gateway = service(stack, Clock())
    three = {f"/f{i}": b"x" * 100 for i in range(3)}
    assert gateway.create_session(request(three)).reply.status == 200
    refused = gateway.create_session(request(three))
    assert refused.reply.status == 429
    assert (
        "5 manifest entries per day (entries-day)"
        in json.loads(refused.reply.body)["errors"][0]["message"]
    )
    assert used(stack)["team-day entries"] == 3
    assert used(stack)["team-day bytes"] == 300


def test_a_request_larger_than_the_whole_quota_is_refused_without_a_charge(
    stack: LocalStack,
) -> None:
    publish_web_quotas(stack, entries_per_day=2)
    result = service(stack, Clock()).create_session(request({f"/f{i}": b"x" for i in range(3)}))
    assert result.reply.status == 429
    assert "alone exceeds" in json.loads(result.reply.body)["errors"][0]["message"]
    assert counters(stack) == {}
    assert stack.emulator.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"manifest": {"/a": {"hash": "zz", "size": 1}}}',
        json.dumps({"manifest": manifest_of({"/a": b"a"}), "extra": 1}).encode(),
    ],
)
def test_bad_requests_consume_no_quota_but_see_their_state(stack: LocalStack, body: bytes) -> None:
    result = service(stack, Clock()).create_session(request(body=body))
    assert result.reply.status == 400
    assert counters(stack) == {}
    assert result.reply.headers["RateLimit"] == '"sessions-minute";r=30;t=50'


def test_policy_refusals_consume_no_quota(stack: LocalStack) -> None:
    refused = service(stack, Clock()).create_session(
        web_session_request(
            json.dumps({"manifest": {}}).encode(), script_name="docs", request_id="policy"
        )
    )
    assert refused.reply.status == 403
    assert counters(stack) == {}


@pytest.mark.parametrize(
    ("fault", "settings", "status", "code"),
    [
        (Fault(status=500), {}, 502, 19031),
        (Fault(status=503), {}, 502, 19031),
        (Fault(garbage=True), {}, 502, 19031),
        (Fault(reset=True), {}, 502, 19031),
        # held until the client gives up: no answer can race the short read timeout
        (Fault(hold=True), {"UPSTREAM_READ_TIMEOUT_SECONDS": "0.2"}, 504, 19031),
        (None, {"CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:9/client/v4"}, 502, 19031),
        (None, {"CLOUDFLARE_TOKEN_SECRET_ID": "no-such-secret"}, 503, 19030),
    ],
)
def test_every_failure_after_the_charge_gives_it_back(
    stack: LocalStack, fault: Fault | None, settings: dict[str, str], status: int, code: int
) -> None:
    records = Records()
    if fault is not None:
        stack.emulator.inject_fault(fault)
    settings = {"UPSTREAM_ATTEMPTS": "1", **settings}
    result = service(stack, Clock(), records, **settings).create_session(request())
    assert (result.reply.status, envelope_code(result.reply.body)) == (status, code)
    # The charge happened (the audit saw the counters) and was given back.
    assert records.items[-1].quota is not None
    assert records.items[-1].quota["sessions-minute"] == 1
    assert used(stack) == NOTHING_USED


def test_cloudflare_refusals_keep_the_charge(stack: LocalStack) -> None:
    gateway = service(stack, Clock())
    result = gateway.create_session(
        web_session_request(
            json.dumps({"manifest": manifest_of({"/a": b"a"})}).encode(),
            account_id=UNLINKED_ACCOUNT_ID,
            request_id="cf-403",
        )
    )
    # Cloudflare answered (and counted the call against the org token): the charge stands.
    assert result.reply.status == 403
    assert used(stack)["global calls"] == 1
    assert used(stack)["team sessions"] == 1


def test_cloudflare_429_opens_a_cool_down(stack: LocalStack) -> None:
    clock = Clock()
    gateway = service(stack, clock)
    stack.emulator.inject_fault(Fault(status=429, headers={"Retry-After": "30"}))
    throttled = gateway.create_session(request())
    assert throttled.reply.status == 429
    assert envelope_code(throttled.reply.body) == 19021
    assert throttled.reply.headers["Retry-After"] == "30"
    assert used(stack) == NOTHING_USED

    clock.now += 29
    paused = gateway.create_session(request())
    assert paused.reply.status == 429
    assert envelope_code(paused.reply.body) == 19021
    assert paused.reply.headers["Retry-After"] == "1"
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1
    assert used(stack) == NOTHING_USED

    clock.now += 1
    assert gateway.create_session(request()).reply.status == 200
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 2


def test_global_budget_refuses_every_team(stack: LocalStack) -> None:
    gateway = service(stack, Clock(), GLOBAL_BUDGET_PER_5_MINUTES="2")
    statuses = [gateway.create_session(request()).reply.status for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = gateway.create_session(request())
    assert envelope_code(refused.reply.body) == 19021
    assert "1 calls" not in json.loads(refused.reply.body)["errors"][0]["message"]
    assert (
        "2 calls per 5 minutes (cloudflare-5min); resets in 290 s"
        in json.loads(refused.reply.body)["errors"][0]["message"]
    )
    assert refused.reply.headers["Retry-After"] == "290"
    assert used(stack)["global calls"] == 2


def test_quota_store_down_fails_closed(stack: LocalStack) -> None:
    result = service(stack, Clock(), QUOTA_TABLE_NAME="no-such-table").create_session(request())
    assert (result.reply.status, envelope_code(result.reply.body)) == (503, 19022)
    assert stack.emulator.calls == []


def test_audit_carries_the_counters_after_the_decision(stack: LocalStack) -> None:
    records = Records()
    gateway = service(stack, Clock(), records)
    gateway.create_session(request({"/a": b"12345", "/b": b"678"}))
    gateway.create_session(request({"/c": b"1"}))
    assert records.items[-1].quota == {
        "sessions-minute": 2,
        "sessions-day": 2,
        "entries-day": 3,
        "bytes-day": 9,
        "cloudflare-5min": 2,
    }


def usage_url(stack: LocalStack) -> str:
    return f"{stack.base_url}/gateway/usage"


def test_usage_route_tells_the_team_where_it_stands_without_charging(stack: LocalStack) -> None:
    with signed_client(WEB_DEPLOYER) as web:
        created = web.post(
            f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}/assets-upload-session",
            json={"manifest": manifest_of({"/a": b"abc"})},
        )
        assert created.status_code == 200
        assert created.headers["RateLimit"].startswith('"sessions-minute";r=29;')
        before = counters(stack)
        answer = web.get(usage_url(stack))
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()["result"]
    assert result["team"] == "web"
    by_name = {quota["name"]: quota for quota in result["quotas"]}
    assert by_name["sessions-minute"]["used"] == 1
    assert by_name["sessions-minute"]["limit"] == 30
    assert by_name["sessions-minute"]["remaining"] == 29
    assert 1 <= by_name["sessions-minute"]["reset_seconds"] <= 60
    assert by_name["entries-day"]["used"] == 1
    assert by_name["bytes-day"]["used"] == 3
    assert result["cloudflare_budget"]["used"] == 1
    assert result["cloudflare_budget"]["limit"] == 1000
    assert answer.headers["RateLimit-Policy"].startswith('"sessions-minute";q=30;w=60')
    assert counters(stack) == before


def test_usage_route_refuses_callers_without_a_team(stack: LocalStack) -> None:
    with signed_client(OUTSIDER) as outsider:
        answer = outsider.get(usage_url(stack))
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == 19010


def test_unsigned_usage_call_never_reaches_the_handler(stack: LocalStack) -> None:
    assert httpx.get(usage_url(stack), timeout=HTTP_TIMEOUT).status_code == 403
