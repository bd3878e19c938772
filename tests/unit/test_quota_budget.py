"""The org's Cloudflare budget (GCRA, pure): no 300 s interval, wherever it starts, holds more
calls than the ceiling, whatever the arrivals do around clock-aligned window edges."""

from __future__ import annotations

import random

import pytest

from assets_gateway.domain.quota import (
    MICROS,
    CallBudget,
    RatelimitItem,
    parse_ratelimit,
)
from assets_gateway.lambda_glue.settings import Settings, SettingsError
from gateway_local.aws_resources import load_template
from gateway_local.cloudflare_emulator import busiest_window
from window_edges import EDGE, edge_schedule, fixed_windows

# Three edges, 1,500 calls in the second either side of each, 20 a second between.
EDGES = edge_schedule(edges=3, burst=1_500, steady=20)


def admitted(budget: CallBudget, arrivals: list[float]) -> list[float]:
    """The arrivals the GCRA admits, in order, from an idle bucket."""
    tat, passed = 0, []
    for arrival in arrivals:
        now = round(arrival * MICROS)
        after = budget.admit(tat, now)
        if after is not None:
            tat = after
            passed.append(arrival)
    return passed


@pytest.mark.parametrize("ceiling", [2, 3, 15, 150, 1_000, 1_199])
def test_no_300_s_interval_holds_more_than_the_ceiling_across_window_edges(ceiling: int) -> None:
    budget = CallBudget.for_ceiling(ceiling)
    passed = admitted(budget, EDGES)

    busiest = busiest_window(passed, 300)
    assert busiest <= ceiling
    # Not a guard that merely refuses: it admits the burst at once and its steady rate after.
    assert passed[: budget.burst] == EDGES[: budget.burst]
    assert busiest >= ceiling - budget.burst - 1


def test_fixed_windows_let_twice_the_budget_through_the_same_schedule() -> None:
    """The defect the GCRA replaces (seen: 1,200 calls in 105 s against a budget of 1,000)."""
    assert busiest_window(fixed_windows(1_000, EDGES), 300) == 2_000
    assert busiest_window(admitted(CallBudget.for_ceiling(1_000), EDGES), 300) <= 1_000


@pytest.mark.parametrize("seed", range(20))
def test_random_arrivals_never_pass_the_ceiling(seed: int) -> None:
    rng = random.Random(seed)
    ceiling = rng.choice([2, 7, 40, 333, 1_000])
    budget = CallBudget.for_ceiling(ceiling)
    arrivals, now = [], EDGE - rng.uniform(0, 600)
    for _ in range(6_000):
        # Bursts (many arrivals in the same microsecond) mixed with pauses of up to 2 minutes.
        now += rng.choice([0.0, 0.0, 0.001, 0.3, 1.0, rng.uniform(0, 120)])
        arrivals.append(now)
    assert busiest_window(admitted(budget, arrivals), 300) <= ceiling


def test_parameters_for_the_default_budget() -> None:
    budget = CallBudget.for_ceiling(1_000)
    assert (budget.burst, budget.interval_us) == (100, 333_334)
    # burst + 300 s / interval never exceeds the ceiling, for every budget the template allows
    for ceiling in range(2, 1_200):
        each = CallBudget.for_ceiling(ceiling)
        assert each.burst + 300 * MICROS // each.interval_us <= ceiling
    with pytest.raises(ValueError, match="at least 2 calls"):
        CallBudget.for_ceiling(1)


def test_state_reports_what_may_start_now_and_when() -> None:
    budget = CallBudget.for_ceiling(1_000)
    now = round(EDGE * MICROS)
    fresh = budget.state(0, now)
    assert (fresh.available, fresh.wait_seconds, fresh.full_seconds) == (100, 0, 0)
    tat = 0
    for _ in range(100):
        after = budget.admit(tat, now)
        assert after is not None
        tat = after
    assert budget.admit(tat, now) is None
    spent = budget.state(tat, now)
    assert (spent.available, spent.retry_after, spent.full_seconds) == (0, 1, 34)
    report = budget.state(tat, now, window_calls=100).as_dict()
    assert (report["used"], report["remaining"], report["limit"]) == (100, 0, 1_000)
    assert (report["burst"], report["next_call_seconds"], report["reset_seconds"]) == (100, 1, 34)
    assert "at most 1000 calls in any 5 minutes" in spent.describe()


def test_following_cloudflare_admits_no_more_than_it_says_before_its_reset() -> None:
    budget = CallBudget.for_ceiling(1_000)
    now = round(EDGE * MICROS)
    tat = budget.following(remaining=5, reset_seconds=30, now_us=now)
    passed = admitted(budget, [EDGE + i * 0.01 for i in range(3_001)])  # from idle: plenty
    assert len([t for t in passed if t <= EDGE + 30]) > 5
    # with Cloudflare's word, at most 5 calls before its window frees more in 30 s
    count, state = 0, tat
    for i in range(3_001):
        after = budget.admit(state, now + i * 10_000)
        if after is not None:
            state, count = after, count + 1
    assert count <= 5
    # Cloudflare saying there is plenty changes nothing
    assert budget.following(remaining=1_100, reset_seconds=200, now_us=now) < now


def test_cloudflare_ratelimit_header_parsing() -> None:
    assert parse_ratelimit('"default";r=50;t=30') == [RatelimitItem("default", 50, 30)]
    assert parse_ratelimit('"burst";r=0;t=12, "default";r=900;t=200') == [
        RatelimitItem("burst", 0, 12),
        RatelimitItem("default", 900, 200),
    ]
    assert parse_ratelimit(None) == []
    assert parse_ratelimit("garbage;;r=;t=x, default;r=-1;t=3") == []


def test_busiest_window_counts_closed_intervals() -> None:
    assert busiest_window([], 300) == 0
    assert busiest_window([0, 300, 600], 300) == 2
    assert busiest_window([0, 299.999, 600], 300) == 2
    assert busiest_window([0, 1, 2, 302.5], 300) == 3


def test_the_template_allows_only_budgets_the_gateway_accepts() -> None:
    """The stack parameter and the settings agree: every value CloudFormation lets through
    starts the function, and makes a budget under Cloudflare's 1,200."""
    parameter = load_template()["Parameters"]["GlobalBudgetPer5Minutes"]
    low, high = int(parameter["MinValue"]), int(parameter["MaxValue"])
    environment = {"CONTROL_TABLE_NAME": "ctl", "QUOTA_TABLE_NAME": "quota"}
    environment["CLOUDFLARE_TOKEN_SECRET_ID"] = "secret"
    for value in (low, int(parameter["Default"]), high):
        settings = Settings.from_environ({**environment, "GLOBAL_BUDGET_PER_5_MINUTES": str(value)})
        assert CallBudget.for_ceiling(settings.global_budget_per_5_minutes).ceiling < 1_200
    for value in (low - 1, high + 1):
        with pytest.raises(SettingsError):
            Settings.from_environ({**environment, "GLOBAL_BUDGET_PER_5_MINUTES": str(value)})
