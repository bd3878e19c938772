"""Quota arithmetic: windows, charges and the RateLimit headers (pure)."""

from __future__ import annotations

import pytest

from assets_gateway.domain.policy import PolicyDocument
from assets_gateway.domain.quota import (
    DAY,
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
    sessions_per_minute=5, sessions_per_day=100, entries_per_day=1000, bytes_per_day=10_000
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
    assert [charge.amount(c) for c in Counter] == [1, 40, 900, 1]
    assert charge.negated() == Charge(entries=-40, bytes=-900, sessions=-1)


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


def test_policy_quotas_fall_back_to_defaults_then_built_ins() -> None:
    policy = PolicyDocument.model_validate(
        {
            "defaults": {"quotas": {"sessions_per_minute": 7}},
            "teams": {
                "a": {
                    "principals": ["arn:aws:iam::111111111111:role/a"],
                    "quotas": {"sessions_per_day": 9},
                },
                "b": {"principals": ["arn:aws:iam::111111111111:role/b"]},
            },
        }
    )
    a, b = policy.limits_of("a").quotas, policy.limits_of("b").quotas
    assert (a.sessions_per_minute, a.sessions_per_day) == (7, 9)
    assert (b.sessions_per_minute, b.sessions_per_day) == (7, 2_000)
    assert a.entries_per_day == 10_000_000
