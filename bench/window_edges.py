"""Arrivals around clock-aligned 5-minute window edges, and the fixed-window rule the org's
budget used before the GCRA: the schedule that let twice the budget through, shared by
`budget_edges.py` (which prints what it does to the gateway) and tests/unit/test_quota_budget.py
(which holds the GCRA to it). Pure; no I/O."""

from __future__ import annotations

EDGE = 1_795_608_000.0  # a multiple of 300 s: where a clock-aligned 5-minute window starts


def edge_schedule(edges: int, burst: int, steady: float) -> list[float]:
    """Arrivals (epoch seconds, in order) that defeat fixed windows: at each of `edges` window
    edges after EDGE, `burst` in the last second before it and as many in the first second after
    it, then `steady` a second until a second before the next edge."""
    moments: list[float] = []
    for n in range(edges):
        edge = EDGE + 300 * (n + 1)
        moments += [edge - 1 + i / burst for i in range(burst)]
        moments += [edge + i / burst for i in range(burst)]
        between = int(298 * steady)
        moments += [edge + 1 + i / steady for i in range(between)]
    return moments


def fixed_windows(ceiling: int, arrivals: list[float]) -> list[float]:
    """What the gateway let through before: `ceiling` calls per clock-aligned 300 s window."""
    counts: dict[int, int] = {}
    passed = []
    for arrival in arrivals:
        window = int(arrival // 300)
        if counts.get(window, 0) < ceiling:
            counts[window] = counts.get(window, 0) + 1
            passed.append(arrival)
    return passed
