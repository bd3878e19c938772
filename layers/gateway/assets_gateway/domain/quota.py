"""Quota arithmetic (pure): team windows, the org's Cloudflare budget, what a request charges,
and what the caller is told.

Team quotas are fixed windows aligned on the epoch (a minute, an hour, a day), so every function
instance computes the same window key without talking to the others. The org's Cloudflare budget
cannot be one: Cloudflare counts calls in *any* 5 minutes, and a fixed window admits up to twice
its budget across an edge. It is a GCRA (`CallBudget`), which bounds every rolling 300 s interval.
The answer headers follow draft-ietf-httpapi-ratelimit-headers-11: `RateLimit-Policy` lists the
team's policies, `RateLimit` names the tightest one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

MINUTE, HOUR, DAY = 60, 3_600, 86_400
# Cloudflare counts 1,200 requests per 5 minutes per token and blocks for 5 minutes past that.
GLOBAL_WINDOW = 300


class Scope(StrEnum):
    TEAM = "team"
    GLOBAL = "global"


class Counter(StrEnum):
    """What a window item counts: `sessions` (and their entries and bytes) and the deploy door's
    `deploy_calls` and `deploys` per team window, `calls` for the global budget. A team's counters
    of one window share its item, each its own attribute, so the doors never disturb each other."""

    SESSIONS = "sessions"
    ENTRIES = "entries"
    BYTES = "bytes"
    CALLS = "calls"
    DEPLOY_CALLS = "deploy_calls"
    DEPLOYS = "deploys"


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
    # The deploy door: every call through it (reads included) per minute, and the Worker uploads
    # (script PUT, version POST) and deployment POSTs per hour and per day.
    deploy_calls_per_minute: int
    deploys_per_hour: int
    deploys_per_day: int

    def limits(self) -> tuple[Limit, ...]:
        """The session door's limits (built once per quotas: a policy document keeps each
        team's resolved quotas, so a request reuses them)."""
        return self._session_limits

    def deploy_limits(self) -> tuple[Limit, ...]:
        """The deploy door's limits (a `Charge.deploy_call` takes from them)."""
        return self._deploy_limits

    @cached_property
    def _session_limits(self) -> tuple[Limit, ...]:
        return (
            Limit(
                "sessions-minute", Scope.TEAM, Counter.SESSIONS, MINUTE, self.sessions_per_minute
            ),
            Limit("sessions-day", Scope.TEAM, Counter.SESSIONS, DAY, self.sessions_per_day),
            Limit("entries-day", Scope.TEAM, Counter.ENTRIES, DAY, self.entries_per_day, "entries"),
            Limit("bytes-day", Scope.TEAM, Counter.BYTES, DAY, self.bytes_per_day, "bytes"),
        )

    @cached_property
    def _deploy_limits(self) -> tuple[Limit, ...]:
        return (
            Limit(
                "deploy-calls-minute",
                Scope.TEAM,
                Counter.DEPLOY_CALLS,
                MINUTE,
                self.deploy_calls_per_minute,
            ),
            Limit("deploys-hour", Scope.TEAM, Counter.DEPLOYS, HOUR, self.deploys_per_hour),
            Limit("deploys-day", Scope.TEAM, Counter.DEPLOYS, DAY, self.deploys_per_day),
        )


MICROS = 1_000_000
# A tenth of the ceiling may go to Cloudflare at once; the rest is spread over the 300 s.
BURST_SHARE = 10


@dataclass(frozen=True)
class CallBudget:
    """The org's Cloudflare budget as a GCRA: a token bucket kept as one number, the theoretical
    arrival time (TAT, epoch microseconds) of the next call at the steady rate.

    A call at `now` is admitted when `TAT - now <= tolerance`, and then moves the TAT one
    `interval` past `max(TAT, now)`. That admits `burst` calls at once and one per `interval`
    after that, so any closed interval of L seconds holds at most `burst + L / interval` calls
    (proof: n admissions from `s` push the TAT to at least `s + n*interval`, and the last one was
    admitted at a time `<= s + L` with the TAT then at most `tolerance` ahead). The interval is
    rounded up so that `burst + 300 s / interval <= ceiling`: no 300 s interval, wherever it
    starts, holds more than `ceiling` calls. Integers only, so DynamoDB's `ADD` is exact.
    """

    ceiling: int
    burst: int
    interval_us: int

    @classmethod
    def for_ceiling(cls, ceiling: int) -> CallBudget:
        if ceiling < 2:
            raise ValueError("the Cloudflare budget must allow at least 2 calls per 300 s")
        burst = max(1, ceiling // BURST_SHARE)
        interval_us = -(-GLOBAL_WINDOW * MICROS // (ceiling - burst))  # rounded up
        return cls(ceiling=ceiling, burst=burst, interval_us=interval_us)

    @property
    def tolerance_us(self) -> int:
        return (self.burst - 1) * self.interval_us

    def admit(self, tat_us: int, now_us: int) -> int | None:
        """The TAT after one more call at `now_us`, or None when that call must wait."""
        base = max(tat_us, now_us)
        if base - now_us > self.tolerance_us:
            return None
        return base + self.interval_us

    def wait_us(self, tat_us: int, now_us: int) -> int:
        """How long until one call may start (0: now)."""
        return max(0, tat_us - self.tolerance_us - now_us)

    def available(self, tat_us: int, now_us: int) -> int:
        """How many calls may start right now, one after the other."""
        debt = max(0, tat_us - now_us)
        return max(0, self.burst - -(-debt // self.interval_us))

    def following(self, remaining: int, reset_seconds: float, now_us: int) -> int:
        """The TAT that admits at most `remaining` calls before Cloudflare's window frees one
        more in `reset_seconds`: Cloudflare's own count wins when it is lower than ours."""
        spoken_for = (self.burst - remaining) * self.interval_us
        return now_us + spoken_for + round(reset_seconds * MICROS)

    def state(self, tat_us: int, now_us: int, window_calls: int = 0) -> BudgetState:
        return BudgetState(
            budget=self,
            tat_us=tat_us,
            window_calls=window_calls,
            available=self.available(tat_us, now_us),
            wait_seconds=_whole_seconds(self.wait_us(tat_us, now_us)),
            full_seconds=_whole_seconds(max(0, tat_us - now_us)),
        )


def _whole_seconds(micros: int) -> int:
    return -(-micros // MICROS)


@dataclass(frozen=True)
class BudgetState:
    """Where the org's Cloudflare budget stands: calls that may start now, and when."""

    budget: CallBudget
    tat_us: int
    available: int
    wait_seconds: int  # until the next call may start (0: now)
    full_seconds: int  # until the whole burst is available again
    # Calls that reached Cloudflare in the current clock-aligned 5 minutes: a report for people
    # (the guard is the GCRA, which bounds every 300 s, not only these).
    window_calls: int = 0

    @property
    def retry_after(self) -> int:
        return max(1, self.wait_seconds)

    def describe(self) -> str:
        return (
            f"at most {self.budget.ceiling} calls in any 5 minutes (cloudflare-5min), "
            f"{self.budget.burst} at once; the next call may start in {self.retry_after} s"
        )

    def as_dict(self) -> dict[str, object]:
        """`limit` is the ceiling of any 300 s; `used` the calls of the current clock-aligned
        5 minutes; `remaining` the calls that may start now (at most `burst`);
        `next_call_seconds` when the next may start when none may; `reset_seconds` when the
        whole burst is back."""
        return {
            "name": "cloudflare-5min",
            "scope": Scope.GLOBAL.value,
            "counter": Counter.CALLS.value,
            "limit": self.budget.ceiling,
            "window_seconds": GLOBAL_WINDOW,
            "burst": self.budget.burst,
            "interval_ms": self.budget.interval_us / 1000,
            "used": self.window_calls,
            "remaining": self.available,
            "next_call_seconds": self.wait_seconds,
            "reset_seconds": self.full_seconds,
        }


@dataclass(frozen=True)
class RatelimitItem:
    """One item of Cloudflare's `Ratelimit` answer header: `"<policy>";r=<left>;t=<seconds>`."""

    policy: str
    remaining: int
    reset_seconds: int


def parse_ratelimit(value: str | None) -> list[RatelimitItem]:
    """Cloudflare's `Ratelimit` header (draft-ietf-httpapi-ratelimit-headers: a list of items,
    each a policy name with `r` and `t` parameters); items it cannot read are skipped."""
    items: list[RatelimitItem] = []
    if not value:  # what most answers carry
        return items
    for raw in value.split(","):
        name, *params = (part.strip() for part in raw.split(";"))
        fields: dict[str, int] = {}
        for param in params:
            key, _, number = param.partition("=")
            if number.isdigit() and len(number) <= 9:
                fields[key.strip().lower()] = int(number)
        if name and "r" in fields and "t" in fields:
            items.append(RatelimitItem(name.strip('"'), fields["r"], fields["t"]))
    return items


@dataclass(frozen=True)
class Charge:
    """What one request costs. A session request: one session (one upstream call) and its
    manifest's entries and bytes. A deploy door call: one deploy call, and one deploy when it
    uploads a Worker or creates a deployment (`deploy_call`). A refund is the same charge
    negated."""

    entries: int
    bytes: int
    sessions: int = 1
    deploy_calls: int = 0
    deploys: int = 0

    @classmethod
    def deploy_call(cls, *, deploys: int = 0) -> Charge:
        """One call through the deploy door; `deploys=1` for a Worker upload or a deployment."""
        return cls(entries=0, bytes=0, sessions=0, deploy_calls=1, deploys=deploys)

    def amount(self, counter: Counter) -> int:
        amounts = {
            Counter.ENTRIES: self.entries,
            Counter.BYTES: self.bytes,
            Counter.DEPLOY_CALLS: self.deploy_calls,
            Counter.DEPLOYS: self.deploys,
        }
        return amounts.get(counter, self.sessions)

    def negated(self) -> Charge:
        return Charge(
            entries=-self.entries,
            bytes=-self.bytes,
            sessions=-self.sessions,
            deploy_calls=-self.deploy_calls,
            deploys=-self.deploys,
        )


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
        what = {
            Counter.SESSIONS: "sessions",
            Counter.ENTRIES: "manifest entries",
            Counter.BYTES: "manifest bytes",
            Counter.DEPLOY_CALLS: "deploy door calls",
            Counter.DEPLOYS: "deploys (Worker uploads and deployments)",
        }
        window = {MINUTE: "minute", HOUR: "hour", DAY: "day", GLOBAL_WINDOW: "5 minutes"}
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
