"""What the admin door reads and resets of the quota counters (the session door charges them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from assets_gateway.domain.quota import BudgetState, Limit, LimitState


class QuotaUsage(Protocol):
    def usage(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]:
        """The team's counters in the windows of `limits` at `now`, charging nothing."""
        ...

    def reset(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]:
        """Set those counters back to zero; returns what they were."""
        ...

    def budget_state(self, now: float) -> BudgetState: ...
