"""Quota arithmetic (pure): fixed windows, what a request charges, and what the caller is told.

Team quotas and the global Cloudflare budget are fixed windows aligned on the epoch (a minute, a
day, five minutes), so every function instance computes the same window key without talking to
the others. The answer headers follow draft-ietf-httpapi-ratelimit-headers-11:
`RateLimit-Policy` lists the team's policies, `RateLimit` names the tightest one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

MINUTE, DAY = 60, 86_400
# Cloudflare counts 1,200 requests per 5 minutes per token and blocks for 5 minutes past that.
GLOBAL_WINDOW = 300


class Scope(StrEnum):
    TEAM = "team"
    GLOBAL = "global"


class Counter(StrEnum):
    """What a window item counts: `sessions` per team window, `calls` for the global budget."""

    SESSIONS = "sessions"
    ENTRIES = "entries"
    BYTES = "bytes"
    CALLS = "calls"


@dataclass(frozen=True)
class Limit:
    """One quota: `limit` of `counter` per window of `window_seconds`."""

    name: str
    scope: Scope
    counter: Counter
    window_seconds: int
    limit: int
    unit: str | None = None  # the draft's `qu`; None means requests

    def window_start(self, now: float) -> int:
        return int(now // self.window_seconds) * self.window_seconds

    def reset_seconds(self, now: float) -> int:
        """Whole seconds until the window rolls over (at least 1: a window never ends 'now')."""
        return max(1, math.ceil(self.window_start(now) + self.window_seconds - now))


@dataclass(frozen=True)
class TeamQuotas:
    sessions_per_minute: int
    sessions_per_day: int
    entries_per_day: int
    bytes_per_day: int

    def limits(self) -> tuple[Limit, ...]:
        return (
            Limit(
                "sessions-minute", Scope.TEAM, Counter.SESSIONS, MINUTE, self.sessions_per_minute
            ),
            Limit("sessions-day", Scope.TEAM, Counter.SESSIONS, DAY, self.sessions_per_day),
            Limit("entries-day", Scope.TEAM, Counter.ENTRIES, DAY, self.entries_per_day, "entries"),
            Limit("bytes-day", Scope.TEAM, Counter.BYTES, DAY, self.bytes_per_day, "bytes"),
        )


def global_limit(budget: int) -> Limit:
    return Limit("cloudflare-5min", Scope.GLOBAL, Counter.CALLS, GLOBAL_WINDOW, budget)


@dataclass(frozen=True)
class Charge:
    """What one session request costs: one session (one upstream call) and its manifest's
    entries and bytes. A refund is the same charge negated."""

    entries: int
    bytes: int
    sessions: int = 1

    def amount(self, counter: Counter) -> int:
        if counter is Counter.ENTRIES:
            return self.entries
        if counter is Counter.BYTES:
            return self.bytes
        return self.sessions

    def negated(self) -> Charge:
        return Charge(entries=-self.entries, bytes=-self.bytes, sessions=-self.sessions)


@dataclass(frozen=True)
class LimitState:
    limit: Limit
    used: int
    reset_seconds: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit.limit - self.used)

    @property
    def share_left(self) -> float:
        return self.remaining / self.limit.limit if self.limit.limit else 0.0

    def describe(self) -> str:
        what = {"sessions": "sessions", "entries": "manifest entries", "bytes": "manifest bytes"}
        window = {MINUTE: "minute", DAY: "day", GLOBAL_WINDOW: "5 minutes"}
        return (
            f"{self.limit.limit} {what.get(self.limit.counter, 'calls')} per "
            f"{window.get(self.limit.window_seconds, f'{self.limit.window_seconds} s')} "
            f"({self.limit.name}); resets in {self.reset_seconds} s"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.limit.name,
            "scope": self.limit.scope.value,
            "counter": self.limit.counter.value,
            "limit": self.limit.limit,
            "used": self.used,
            "remaining": self.remaining,
            "window_seconds": self.limit.window_seconds,
            "reset_seconds": self.reset_seconds,
        }


def states(limits: Sequence[Limit], used: Mapping[str, int], now: float) -> list[LimitState]:
    """Each limit's state from the counters read, keyed by limit name."""
    return [
        LimitState(limit, used.get(limit.name, 0), limit.reset_seconds(now)) for limit in limits
    ]


def first_exceeded(
    limits: Sequence[Limit], used: Mapping[str, int], charge: Charge
) -> Limit | None:
    """The limit this charge would push past, given the counters before it."""
    for limit in limits:
        if used.get(limit.name, 0) + charge.amount(limit.counter) > limit.limit:
            return limit
    return None


def ratelimit_headers(team_states: Sequence[LimitState]) -> dict[str, str]:
    """`RateLimit-Policy` lists every team policy; `RateLimit` names the tightest one."""
    if not team_states:
        return {}
    policies = ", ".join(_policy_item(state.limit) for state in team_states)
    tightest = min(team_states, key=lambda s: (s.share_left, s.reset_seconds))
    current = f'"{tightest.limit.name}";r={tightest.remaining};t={tightest.reset_seconds}'
    return {"RateLimit-Policy": policies, "RateLimit": current}


def _policy_item(limit: Limit) -> str:
    item = f'"{limit.name}";q={limit.limit};w={limit.window_seconds}'
    return item + (f';qu="{limit.unit}"' if limit.unit else "")
