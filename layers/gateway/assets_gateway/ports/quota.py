"""The quota gate as the session door charges it: the team's windows and the org's Cloudflare
budget, taken together and given back (the DynamoDB store implements it: `quota_store`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from assets_gateway.domain.quota import (
    BudgetState,
    Charge,
    Limit,
    LimitState,
    RatelimitItem,
    Scope,
    ratelimit_headers,
)

if TYPE_CHECKING:
    from assets_gateway.ports.idempotency import KeyClaim


@dataclass(frozen=True)
class WindowItem:
    """One counter item a charge moved: the store's key, the limits it counts, its expiry."""

    key: str
    limits: tuple[Limit, ...]
    expires_at: int


@dataclass(frozen=True)
class Ticket:
    """A successful charge: the counters after it, what to give back on a refund, and the id of
    the upstream call it admitted (`take_back` returns that call if it never left)."""

    team: str
    charge: Charge
    items: tuple[WindowItem, ...]
    after: tuple[LimitState, ...]
    call_id: str = ""
    budget: BudgetState | None = None
    charged_at: float = 0.0

    def headers(self) -> dict[str, str]:
        return ratelimit_headers([s for s in self.after if s.limit.scope is Scope.TEAM])


class QuotaGate(Protocol):
    """Raises the domain's `QuotaExceeded`, `GlobalBudgetExceeded` or `QuotaUnavailable`."""

    def charge(
        self,
        team: str,
        limits: Sequence[Limit],
        charge: Charge,
        now: float,
        request_id: str = "",
        *,
        claim: KeyClaim | None = None,
    ) -> Ticket:
        """With a `claim`, the request's Idempotency-Key is claimed in the same write, and a key
        already claimed raises `KeyClaimed` (nothing charged)."""
        ...

    def refund(self, ticket: Ticket) -> None: ...

    def permit(self, request_id: str, now: float) -> str | None: ...

    def take_back(self, call_id: str, admitted_at: float) -> bool: ...

    def follow(
        self, items: Sequence[RatelimitItem], now: float, seen: BudgetState | None
    ) -> None: ...

    def usage(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]: ...

    def usage_and_budget(
        self, team: str, limits: Sequence[Limit], now: float
    ) -> tuple[list[LimitState], BudgetState]: ...

    def open_cooldown(self, until: float) -> None: ...
