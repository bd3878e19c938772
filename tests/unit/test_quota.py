"""Quota arithmetic: windows, charges and the RateLimit headers (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from assets_gateway.domain.policy import PolicyDocument
from assets_gateway.domain.quota import (
    DAY,
    HOUR,
    MINUTE,
    Charge,
    Counter,
    Limit,
    LimitState,
    Scope,
    TeamQuotas,
    first_exceeded,
    ratelimit_headers,
    states,
)

QUOTAS = TeamQuotas(
    sessions_per_minute=5,
    sessions_per_day=100,
    entries_per_day=1000,
    bytes_per_day=10_000,
    deploy_calls_per_minute=20,
    deploys_per_hour=3,
    deploys_per_day=8,
)
NOON = 1_795_608_000.0  # 2026-11-25T12:00:00Z, a whole day, hour and minute


@pytest.mark.parametrize(
    ("now", "window", "start", "reset"),
    [
        (NOON, MINUTE, NOON, 60),
        (NOON + 59.2, MINUTE, NOON, 1),
        (NOON + 60, MINUTE, NOON + 60, 60),
        (NOON + 0.5, 300, NOON, 300),
        (NOON + 3600, DAY, NOON - 12 * 3600, 11 * 3600),
    ],
)
def test_windows_are_aligned_on_the_epoch(
    now: float, window: int, start: float, reset: int
) -> None:
    limit = Limit("x", Scope.TEAM, Counter.SESSIONS, window, 10)
    assert limit.window_start(now) == start
    assert limit.reset_seconds(now) == reset


def test_a_window_never_resets_in_zero_seconds() -> None:
    limit = Limit("x", Scope.TEAM, Counter.SESSIONS, MINUTE, 10)
    assert limit.reset_seconds(NOON + 59.9999) == 1


def test_charge_amounts_and_refund() -> None:
    charge = Charge(entries=40, bytes=900)
    assert [charge.amount(c) for c in Counter] == [1, 40, 900, 1, 0, 0]
    assert charge.negated() == Charge(entries=-40, bytes=-900, sessions=-1)


def test_a_deploy_door_call_charges_its_own_counters_and_no_session() -> None:
    read, upload = Charge.deploy_call(), Charge.deploy_call(deploys=1)
    amounts = {c: (read.amount(c), upload.amount(c)) for c in Counter}
    assert amounts == {
        Counter.SESSIONS: (0, 0),
        Counter.ENTRIES: (0, 0),
        Counter.BYTES: (0, 0),
        Counter.CALLS: (0, 0),
        Counter.DEPLOY_CALLS: (1, 1),
        Counter.DEPLOYS: (0, 1),
    }
    assert upload.negated() == Charge(entries=0, bytes=0, sessions=0, deploy_calls=-1, deploys=-1)
    assert [upload.negated().amount(c) for c in Counter] == [0, 0, 0, 0, -1, -1]


def test_deploy_limits_are_their_own_and_the_session_limits_are_unchanged() -> None:
    assert [limit.name for limit in QUOTAS.limits()] == [
        "sessions-minute",
        "sessions-day",
        "entries-day",
        "bytes-day",
    ]
    assert [
        (limit.name, limit.counter, limit.window_seconds, limit.limit, limit.scope)
        for limit in QUOTAS.deploy_limits()
    ] == [
        ("deploy-calls-minute", Counter.DEPLOY_CALLS, MINUTE, 20, Scope.TEAM),
        ("deploys-hour", Counter.DEPLOYS, HOUR, 3, Scope.TEAM),
        ("deploys-day", Counter.DEPLOYS, DAY, 8, Scope.TEAM),
    ]


def test_an_hour_window_is_aligned_on_the_epoch() -> None:
    hour = QUOTAS.deploy_limits()[1]
    assert hour.window_start(NOON + 3599.5) == NOON
    assert hour.reset_seconds(NOON + 600.2) == 3000
    assert hour.window_start(NOON + 3600) == NOON + 3600


def test_first_exceeded_names_the_deploy_limit_a_call_would_break() -> None:
    limits = QUOTAS.deploy_limits()
    read, upload = Charge.deploy_call(), Charge.deploy_call(deploys=1)
    used = {"deploy-calls-minute": 5, "deploys-hour": 3, "deploys-day": 3}
    assert first_exceeded(limits, used, read) is None  # a read takes no deploy
    assert first_exceeded(limits, used, upload) == limits[1]
    assert first_exceeded(limits, {"deploys-day": 8}, upload) == limits[2]
    assert first_exceeded(limits, {"deploy-calls-minute": 20}, read) == limits[0]
    # A session charge never touches a deploy limit, nor a deploy charge a session limit.
    assert first_exceeded(limits, {"deploy-calls-minute": 20}, Charge(1, 1)) is None
    assert first_exceeded(QUOTAS.limits(), {"sessions-minute": 5}, upload) is None


@pytest.mark.parametrize(
    ("index", "used", "words"),
    [
        (0, 20, "20 deploy door calls per minute (deploy-calls-minute); resets in 12 s"),
        (
            1,
            3,
            "3 deploys (Worker uploads and deployments) per hour (deploys-hour); resets in 12 s",
        ),
        (2, 8, "8 deploys (Worker uploads and deployments) per day (deploys-day); resets in 12 s"),
    ],
)
def test_deploy_limits_are_worded_for_refusal_messages(index: int, used: int, words: str) -> None:
    state = LimitState(QUOTAS.deploy_limits()[index], used=used, reset_seconds=12)
    assert state.remaining == 0
    assert state.describe() == words


def test_deploy_headers_name_the_tightest_deploy_limit() -> None:
    team_states = states(
        QUOTAS.deploy_limits(), {"deploy-calls-minute": 2, "deploys-hour": 2}, NOON
    )
    headers = ratelimit_headers(team_states)
    assert headers["RateLimit-Policy"] == (
        '"deploy-calls-minute";q=20;w=60, "deploys-hour";q=3;w=3600, "deploys-day";q=8;w=86400'
    )
    assert headers["RateLimit"] == '"deploys-hour";r=1;t=3600'


def test_first_exceeded_names_the_limit_the_charge_would_break() -> None:
    limits = QUOTAS.limits()
    charge = Charge(entries=10, bytes=100)
    assert first_exceeded(limits, {"sessions-minute": 4}, charge) is None
    assert first_exceeded(limits, {"sessions-minute": 5}, charge) == limits[0]
    assert first_exceeded(limits, {"entries-day": 991}, charge) == limits[2]
    assert first_exceeded(limits, {"bytes-day": 9_901}, charge) == limits[3]
    assert first_exceeded(limits, {}, Charge(entries=1001, bytes=0)) == limits[2]


def test_ratelimit_headers_list_every_policy_and_name_the_tightest() -> None:
    team_states = states(
        QUOTAS.limits(), {"sessions-minute": 4, "sessions-day": 10, "entries-day": 100}, NOON + 15
    )
    headers = ratelimit_headers(team_states)
    assert headers["RateLimit-Policy"] == (
        '"sessions-minute";q=5;w=60, "sessions-day";q=100;w=86400, '
        '"entries-day";q=1000;w=86400;qu="entries", "bytes-day";q=10000;w=86400;qu="bytes"'
    )
    assert headers["RateLimit"] == '"sessions-minute";r=1;t=45'


def test_no_team_means_no_headers() -> None:
    assert ratelimit_headers([]) == {}


def test_state_describes_the_limit_for_refusal_messages() -> None:
    state = LimitState(QUOTAS.limits()[0], used=5, reset_seconds=12)
    assert state.remaining == 0
    assert state.describe() == "5 sessions per minute (sessions-minute); resets in 12 s"


def teams_a_and_b(defaults: dict[str, int], a: dict[str, int], **more: Any) -> PolicyDocument:
    """Team a with quotas `a`, team b with none, over `defaults` quotas."""
    return PolicyDocument.model_validate(
        {
            "defaults": {"quotas": defaults},
            "teams": {
                "a": {"principals": ["arn:aws:iam::111111111111:role/a"], "quotas": a},
                "b": {"principals": ["arn:aws:iam::111111111111:role/b"]},
            },
            **more,
        }
    )


def test_policy_quotas_fall_back_to_defaults_then_built_ins() -> None:
    policy = teams_a_and_b({"sessions_per_minute": 7}, {"sessions_per_day": 9})
    a, b = policy.limits_of("a").quotas, policy.limits_of("b").quotas
    assert (a.sessions_per_minute, a.sessions_per_day) == (7, 9)
    assert (b.sessions_per_minute, b.sessions_per_day) == (7, 2_000)
    assert a.entries_per_day == 10_000_000
    assert (a.deploy_calls_per_minute, a.deploys_per_hour, a.deploys_per_day) == (120, 30, 200)


def test_deploy_quotas_fall_back_to_defaults_then_built_ins_and_grants_add_to_them() -> None:
    grant = {
        "team": "a",
        "quotas": {"deploys_per_hour": 5, "deploys_per_day": 1},
        "reason": "migration week",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    policy = teams_a_and_b(
        {"deploys_per_hour": 10},
        {"deploys_per_day": 50, "deploy_calls_per_minute": 30},
        grants=[grant],
    )
    a, b = policy.limits_of("a").quotas, policy.limits_of("b").quotas
    assert (a.deploy_calls_per_minute, a.deploys_per_hour, a.deploys_per_day) == (30, 10, 50)
    assert (b.deploy_calls_per_minute, b.deploys_per_hour, b.deploys_per_day) == (120, 10, 200)
    granted = policy.limits_of("a", at=datetime(2029, 1, 1, tzinfo=UTC)).quotas
    assert (granted.deploys_per_hour, granted.deploys_per_day) == (15, 51)
    assert granted.sessions_per_minute == a.sessions_per_minute
    after = policy.limits_of("a", at=datetime(2030, 1, 1, tzinfo=UTC)).quotas
    assert after == a


def test_a_documents_limits_are_resolved_once_and_a_grant_never_changes_them() -> None:
    grant = {
        "team": "a",
        "quotas": {"sessions_per_minute": 5},
        "reason": "launch",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    policy = teams_a_and_b({}, {"sessions_per_minute": 10}, grants=[grant])
    during, after = datetime(2029, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    # A team without grants, or whose grants are over, gets the document's own limits.
    assert policy.limits_of("b", at=during) is policy.limits_of("b")
    assert policy.limits_of("a", at=after) is policy.limits_of("a")
    granted = policy.limits_of("a", at=during)
    assert granted.quotas.sessions_per_minute == 15
    assert granted.quotas.limits()[0].limit == 15
    assert policy.limits_of("a").quotas.sessions_per_minute == 10
    assert policy.limits_of("a").quotas.limits()[0].limit == 10
    assert policy.active_grants("a", during)[0].reason == "launch"
    assert policy.active_grants("b", during) == []
