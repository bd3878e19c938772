"""Quotas through the real pipeline: DynamoDB on moto server, the Cloudflare emulator over HTTP,
and an injected clock for the windows and the org's budget (nothing sleeps)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from assets_gateway.adapters.quota_store import BUDGET_KEY
from assets_gateway.domain.quota import MICROS, CallBudget
from assets_gateway.doors.session import SessionService
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from assets_gateway.ports.audit import AuditRecord
from assets_gateway.ports.sessions import SessionRequest
from gateway_local.cloudflare_emulator import Fault, busiest_window
from gateway_local.demo import (
    OUTSIDER,
    UNLINKED_ACCOUNT_ID,
    WEB_DEPLOYER,
    demo_policy,
    web_session_request,
)
from gateway_local.stack import LocalStack
from helpers import (
    HTTP_TIMEOUT,
    manifest_of,
    numbers_of,
    quota_items,
    session_url,
    signed_client,
)

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
    """Every team window item by key, with its numeric counters."""
    return {
        item["pk"]["S"]: numbers_of(item, ("sessions", "entries", "bytes"))
        for item in quota_items(stack)
        if item["pk"]["S"].startswith("team#")
    }


def global_calls(stack: LocalStack) -> int:
    """The org's counter of calls that reached Cloudflare (every 5-minute item summed)."""
    return sum(
        int(item.get("calls", {}).get("N", "0"))
        for item in quota_items(stack)
        if item["pk"]["S"].startswith("global#300#")
    )


def budget_steps(stack: LocalStack, clock: Clock, ceiling: int = 1000) -> int:
    """The calls the org's budget (GCRA) holds at the clock's time: its TAT is
    `now + calls * interval` while the clock stands still (0 when idle)."""
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    item = dynamodb.get_item(
        TableName=stack.names.quota_table, Key={"pk": {"S": BUDGET_KEY}}, ConsistentRead=True
    ).get("Item", {})
    ahead = int(item.get("tat", {}).get("N", "0")) - round(clock.now * MICROS)
    calls, rest = divmod(max(0, ahead), CallBudget.for_ceiling(ceiling).interval_us)
    assert rest == 0, "the clock moved: count calls at the instant they were admitted"
    return calls


def used(stack: LocalStack) -> dict[str, int]:
    """Team totals per counter kind and window, e.g. {"team sessions": 2}."""
    totals: dict[str, int] = {}
    for key, values in counters(stack).items():
        scope = "team-day" if "#86400#" in key else "team"
        for name, value in values.items():
            totals[f"{scope} {name}"] = totals.get(f"{scope} {name}", 0) + value
    return totals


# What `request()` (one 4-byte file) costs the team.
ONE_FILE_USED = {
    "team sessions": 1,
    "team-day sessions": 1,
    "team-day entries": 1,
    "team-day bytes": 4,
}
# Team counters that were charged and given back: present, at zero.
NOTHING_USED = dict.fromkeys(ONE_FILE_USED, 0)


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


# Retry-After: 0 keeps the client's retries from waiting (its waits are its own tests' business).
NOW = {"Retry-After": "0"}
UNREACHABLE = {"CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:9/client/v4"}


@pytest.mark.parametrize(
    ("faults", "settings", "status", "code", "reached"),
    [
        pytest.param([Fault(status=500, headers=NOW, count=3)], {}, 502, 19031, 3, id="500x3"),
        pytest.param([Fault(status=503, headers=NOW)], {}, 200, None, 2, id="503-then-ok"),
        pytest.param([Fault(garbage=True, count=3)], {}, 502, 19031, 3, id="garbage-x3"),
        pytest.param([Fault(reset=True)], {}, 200, None, 2, id="reset-then-ok"),
        pytest.param(
            # held until the client gives up: no answer can race the short read timeout
            [Fault(hold=True)],
            {"UPSTREAM_READ_TIMEOUT_SECONDS": "0.2", "UPSTREAM_ATTEMPTS": "1"},
            504,
            19031,
            1,
            id="read-timeout",
        ),
        pytest.param([], UNREACHABLE, 502, 19031, 0, id="connection-refused-x3"),
        pytest.param(
            [], {"CLOUDFLARE_TOKEN_SECRET_ID": "no-such-secret"}, 503, 19030, 0, id="no-token"
        ),
        pytest.param(
            [Fault(status=429, headers={"Retry-After": "30"})], {}, 429, 19021, 1, id="429"
        ),
        pytest.param([Fault(status=400)], {}, 400, None, 1, id="cloudflare-400"),
        pytest.param([], {}, 200, None, 1, id="ok"),
    ],
)
def test_fault_matrix_the_budget_counts_every_call_that_reached_cloudflare(  # noqa: PLR0917
    stack: LocalStack,
    faults: list[Fault],
    settings: dict[str, str],
    status: int,
    code: int | None,
    reached: int,
) -> None:
    """Each row: the org's budget moved by exactly the requests Cloudflare received (retries
    included, connections that never opened excluded), and the team paid only for a success
    or Cloudflare's own refusal."""
    records, clock = Records(), Clock()
    for fault in faults:
        stack.emulator.inject_fault(fault)

    result = service(stack, clock, records, **settings).create_session(request())

    assert result.reply.status == status
    if code is not None:
        assert envelope_code(result.reply.body) == code
    received = len(stack.emulator.calls_to("/assets-upload-session"))
    assert received == reached
    assert global_calls(stack) == received  # upstream attempts = global counter delta
    assert budget_steps(stack, clock) == received  # and the guard holds exactly those
    assert records.items[-1].upstream_attempts == received
    # The charge happened (the audit saw it); the team keeps paying only for what it got.
    assert records.items[-1].quota is not None
    assert records.items[-1].quota["sessions-minute"] == 1
    kept = 1 if status < 500 and status != 429 else 0
    assert used(stack) == {name: kept * value for name, value in ONE_FILE_USED.items()}


def test_cloudflare_refusals_keep_the_charge(stack: LocalStack) -> None:
    clock = Clock()
    gateway = service(stack, clock)
    result = gateway.create_session(
        web_session_request(
            json.dumps({"manifest": manifest_of({"/a": b"a"})}).encode(),
            account_id=UNLINKED_ACCOUNT_ID,
            request_id="cf-403",
        )
    )
    # Cloudflare answered (and counted the call against the org token): the charge stands.
    assert result.reply.status == 403
    assert global_calls(stack) == 1
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
    assert global_calls(stack) == 1  # Cloudflare counted that call, and so does the budget

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
    # A budget of 2 per 300 s: one call at once (its burst), the next 300 s later.
    clock = Clock()
    gateway = service(stack, clock, GLOBAL_BUDGET_PER_5_MINUTES="2")
    statuses = [gateway.create_session(request()).reply.status for _ in range(2)]
    assert statuses == [200, 429]
    refused = gateway.create_session(request())
    assert envelope_code(refused.reply.body) == 19021
    message = json.loads(refused.reply.body)["errors"][0]["message"]
    assert "at most 2 calls in any 5 minutes (cloudflare-5min), 1 at once" in message
    assert "the next call may start in 300 s" in message
    assert refused.reply.headers["Retry-After"] == "300"
    assert budget_steps(stack, clock, ceiling=2) == 1
    assert used(stack)["team sessions"] == 1  # the refused requests gave the team its quota back

    clock.now += 299
    assert gateway.create_session(request()).reply.status == 429
    clock.now += 1
    assert gateway.create_session(request()).reply.status == 200


def test_a_retry_needs_room_in_the_budget(stack: LocalStack) -> None:
    """Retries are calls too: with the budget spent, a failed call is not retried."""
    clock = Clock()
    stack.emulator.inject_fault(Fault(status=500, headers=NOW, count=3))
    result = service(stack, clock, GLOBAL_BUDGET_PER_5_MINUTES="2").create_session(request())
    assert (result.reply.status, envelope_code(result.reply.body)) == (502, 19031)
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1
    assert budget_steps(stack, clock, ceiling=2) == 1


def test_the_budget_follows_cloudflares_ratelimit_when_it_is_lower(stack: LocalStack) -> None:
    """Something else spends the org token: Cloudflare says 0 calls remain for 120 s while the
    budget believes it has 99 at once. The gateway stops calling until Cloudflare's reset."""
    clock = Clock()
    gateway = service(stack, clock)
    stack.emulator.inject_fault(Fault(headers={"Ratelimit": '"default";r=0;t=120'}))
    assert gateway.create_session(request()).reply.status == 200

    refused = gateway.create_session(request())
    assert (refused.reply.status, envelope_code(refused.reply.body)) == (429, 19021)
    # 120 s of Cloudflare's window, then one emission interval (1/3 s) of the budget's own
    assert refused.reply.headers["Retry-After"] == "121"
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1

    clock.now += 121
    assert gateway.create_session(request()).reply.status == 200


def test_plenty_left_at_cloudflare_changes_nothing(stack: LocalStack) -> None:
    clock = Clock()
    gateway = service(stack, clock)
    assert gateway.create_session(request()).reply.status == 200  # the emulator says r=1199
    assert global_calls(stack) == 1
    assert gateway.create_session(request()).reply.status == 200


def test_an_open_circuit_gives_the_call_back(stack: LocalStack) -> None:
    clock = Clock()
    gateway = service(
        stack,
        clock,
        CIRCUIT_FAILURE_THRESHOLD="1",
        UPSTREAM_ATTEMPTS="1",
        CIRCUIT_OPEN_SECONDS="60",
    )
    stack.emulator.inject_fault(Fault(status=500))
    assert gateway.create_session(request()).reply.status == 502
    assert global_calls(stack) == 1
    refused = gateway.create_session(request())
    assert (refused.reply.status, envelope_code(refused.reply.body)) == (503, 19031)
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1
    assert global_calls(stack) == 1  # the circuit sent nothing: its call went back


def test_edges_through_the_pipeline_no_300_s_holds_more_than_the_budget(
    stack: LocalStack,
) -> None:
    """Arrivals that defeated the fixed windows: bursts just before and just after a 300 s edge,
    then steady traffic for two more windows. The forwarded calls, at their (injected) times,
    never number more than the budget in any 300 s interval."""
    budget = 20
    publish_web_quotas(stack, sessions_per_minute=10_000, sessions_per_day=100_000)
    clock = Clock(NOON)
    gateway = service(stack, clock, GLOBAL_BUDGET_PER_5_MINUTES=str(budget))
    edge = NOON + 300
    schedule = [edge - 0.5 + i / 100 for i in range(30)]  # 30 in the last half second
    schedule += [edge + i / 100 for i in range(30)]  # 30 in the first
    schedule += [edge + 1 + 10 * i for i in range(60)]  # one every 10 s for 10 minutes
    forwarded = []
    for moment in schedule:
        clock.now = moment
        answer = gateway.create_session(request())
        if answer.reply.status == 200:
            forwarded.append(moment)
        else:
            assert envelope_code(answer.reply.body) == 19021, answer.reply.body

    assert len(stack.emulator.calls_to("/assets-upload-session")) == len(forwarded)
    assert busiest_window(forwarded, 300) <= budget
    # The store decided exactly as the pure GCRA does: its burst at once, then its steady rate.
    assert forwarded == admitted_by(CallBudget.for_ceiling(budget), schedule)
    assert len(forwarded) > budget


def admitted_by(budget: CallBudget, arrivals: list[float]) -> list[float]:
    tat, passed = 0, list[float]()
    for arrival in arrivals:
        after = budget.admit(tat, round(arrival * MICROS))
        if after is not None:
            tat, passed = after, [*passed, arrival]
    return passed


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
        "cloudflare-5min": 2,  # calls the budget's burst still holds
    }


def usage_url(stack: LocalStack) -> str:
    return f"{stack.base_url}/gateway/usage"


def test_usage_route_tells_the_team_where_it_stands_without_charging(stack: LocalStack) -> None:
    with signed_client(WEB_DEPLOYER) as web:
        created = web.post(session_url(stack), json={"manifest": manifest_of({"/a": b"abc"})})
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
    budget = result["cloudflare_budget"]
    assert (budget["name"], budget["limit"], budget["window_seconds"]) == (
        "cloudflare-5min",
        1000,
        300,
    )
    assert (budget["burst"], budget["interval_ms"]) == (100, 333.334)
    # Real time runs here: the call weighs on the burst for a third of a second, then not at all.
    assert budget["used"] == 1  # calls of the current 5 minutes
    # Real time runs here: the call weighs on the burst for a third of a second, then not at all.
    assert budget["remaining"] in (99, 100)
    assert budget["next_call_seconds"] == 0
    assert budget["reset_seconds"] == 100 - budget["remaining"]
    assert answer.headers["RateLimit-Policy"].startswith('"sessions-minute";q=30;w=60')
    assert counters(stack) == before


def test_usage_route_refuses_callers_without_a_team(stack: LocalStack) -> None:
    with signed_client(OUTSIDER) as outsider:
        answer = outsider.get(usage_url(stack))
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == 19010


def test_unsigned_usage_call_never_reaches_the_handler(stack: LocalStack) -> None:
    assert httpx.get(usage_url(stack), timeout=HTTP_TIMEOUT).status_code == 403
