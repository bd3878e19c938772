"""The session door's recorded decisions: what the policy judged, kept for admins replaying a
proposed policy (`decision_log` implements both sides over DynamoDB)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from assets_gateway.domain.simulation import RecordedDecision


class DecisionRecorder(Protocol):
    """How the session door keeps a decision. Never fails a request: a decision that cannot be
    kept is only logged."""

    def record(self, decision: RecordedDecision, paths: list[str] | None = None) -> None:
        """Write it now (the deploy door)."""
        ...

    def hold(self, decision: RecordedDecision, paths: list[str] | None = None) -> None:
        """Keep it until a write the request makes anyway carries it: the next quota charge of
        this execution environment (the session door, issue 15: no write of its own). Held
        again under the same request id, the later decision replaces the earlier one."""
        ...

    def withdraw(self, request_id: str) -> None:
        """Drop the decision held for this request (a retry answered with the first answer:
        the first request's decision is the one kept)."""
        ...


class RecordedDecisions(Protocol):
    """How a policy simulation reads them back."""

    def between(self, since: datetime, until: datetime) -> tuple[list[RecordedDecision], bool]:
        """The decisions recorded in [since, until) and whether the read stopped at its cap."""
        ...
